// Highlighting for .rk policies: a stream tokenizer (the language's keywords come from
// grammar/rules.lark; expressions inside rules are CEL, whose literals and operators get
// the same treatment). The checker, not this mode, decides what is valid.

import { StreamLanguage, type StringStream } from "@codemirror/language";

export const KEYWORDS = new Set(
  (
    "actors after as assumption at by calendar cite clock condition const cost_limit counting " +
    "effect emit enum event every except expiry extend facts final fragment from initial note " +
    "on open outcome paused policy record requires reschedule restart set soon source start " +
    "starts state stay stop timezone unbounded use value version waits when why workflow"
  ).split(" "),
);
const ATOMS = new Set(["true", "false", "null"]);
const TYPES = new Set(["money", "time", "timestamp", "duration", "int", "bool", "string", "double", "list", "map"]);

interface State {
  inBlockComment: boolean;
}

function token(stream: StringStream, state: State): string | null {
  if (state.inBlockComment) {
    if (stream.skipTo("*/")) {
      stream.match("*/");
      state.inBlockComment = false;
    } else stream.skipToEnd();
    return "comment";
  }
  if (stream.eatSpace()) return null;
  if (stream.match("//")) {
    stream.skipToEnd();
    return "comment";
  }
  if (stream.match("/*")) {
    state.inBlockComment = true;
    return "comment";
  }
  const quote = stream.peek();
  if (quote === '"' || quote === "'") {
    stream.next();
    let escaped = false;
    let ch: string | void;
    while ((ch = stream.next()) !== undefined) {
      if (ch === quote && !escaped) break;
      escaped = !escaped && ch === "\\";
    }
    return "string";
  }
  // Durations (48h, 10d, 1h30m) before plain numbers.
  if (stream.match(/^\d+(?:ms|[smhdw])(?:\d+(?:ms|[smhdw]))*\b/)) return "number";
  if (stream.match(/^\d+(?:\.\d+)?/)) return "number";
  if (stream.match(/^->|^[=!<>]=|^&&|^\|\||^[+\-*/%<>!?:]/)) return "operator";
  if (stream.match(/^[A-Za-z_][A-Za-z0-9_]*/)) {
    const word = stream.current();
    if (KEYWORDS.has(word)) return "keyword";
    if (ATOMS.has(word)) return "atom";
    if (TYPES.has(word)) return "typeName";
    if (/^[A-Z]/.test(word)) return "typeName";
    return "variableName";
  }
  stream.next();
  return null;
}

export const rulekitLanguage = StreamLanguage.define<State>({
  name: "rulekit",
  startState: () => ({ inBlockComment: false }),
  token,
  languageData: { commentTokens: { line: "//", block: { open: "/*", close: "*/" } } },
});
