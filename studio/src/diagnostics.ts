// rulekit's diagnostics as CodeMirror lint diagnostics. The checker counts columns in
// characters (code points); CodeMirror counts positions in UTF-16 code units, so a line
// holding an emoji or any astral character must be walked, not indexed.

import type { Diagnostic } from "@codemirror/lint";
import type { Text } from "@codemirror/state";
import type { ServerDiagnostic } from "./model";

/** The document offset of 1-based ``line`` and code-point ``column`` (clamped into the text). */
export function offsetOf(doc: Text, line: number, column: number): number {
  if (line < 1) return 0;
  if (line > doc.lines) return doc.length;
  const l = doc.line(line);
  let units = 0;
  let chars = 1;
  for (const ch of l.text) {
    if (chars >= column) break;
    units += ch.length;
    chars += 1;
  }
  return l.from + units;
}

const SEVERITY: Record<ServerDiagnostic["severity"], Diagnostic["severity"]> = {
  error: "error",
  warning: "warning",
  info: "info",
};

/** One server diagnostic as a CodeMirror one: its range, severity, code and help line. */
export function toCodeMirror(doc: Text, d: ServerDiagnostic): Diagnostic {
  const from = offsetOf(doc, d.line, d.column);
  let to = offsetOf(doc, d.end_line, d.end_column);
  if (to < from) to = from;
  // An empty spot (a missing token) still needs a visible mark: widen it by one character
  // when there is one on the line.
  if (to === from && from < doc.lineAt(from).to) to = from + 1;
  const help = d.help ? `\nhelp: ${d.help}` : "";
  const notes = d.notes.map((n) => `\nnote: ${n}`).join("");
  return {
    from,
    to,
    severity: SEVERITY[d.severity] ?? "error",
    source: d.code,
    message: `${d.message}${help}${notes}`,
  };
}
