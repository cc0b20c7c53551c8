import { describe, expect, it } from "vitest";
import { classHighlighter, highlightTree } from "@lezer/highlight";
import { rulekitLanguage } from "../src/rklang";

/** The highlighted spans of ``text`` as [text, classes] pairs. */
function spans(text: string): [string, string][] {
  const tree = rulekitLanguage.parser.parse(text);
  const out: [string, string][] = [];
  highlightTree(tree, classHighlighter, (from, to, classes) => out.push([text.slice(from, to), classes]));
  return out;
}

function classOf(text: string, word: string): string | undefined {
  return spans(text).find(([t]) => t === word)?.[1];
}

describe("the .rk highlighting", () => {
  it.each([
    ["policy kuaishou.after_sales", "policy", "tok-keyword"],
    ["  order.amount: money  // yuan", "money", "tok-typeName"],
    ["  order.amount: money  // yuan", "// yuan", "tok-comment"],
    ['  source "快手"', '"快手"', "tok-string"],
    ["const REVIEW_WINDOW = 48h", "48h", "tok-number"],
    ["const RETURN_WINDOW = 1d12h", "1d12h", "tok-number"],
    ["const FAST_REFUND_LIMIT = 300", "300", "tok-number"],
    ["    on approve -> refunded", "->", "tok-operator"],
    ["enum Party { consumer, merchant }", "Party", "tok-typeName"],
    ["    when x == true", "true", "tok-atom"],
  ])("in %j, %j is %s", (text, word, cls) => {
    expect(classOf(text, word)).toBe(cls);
  });

  it("keeps a block comment across lines", () => {
    const text = "/* a\nstate b */ state";
    const s = spans(text);
    expect(s.filter(([, c]) => c === "tok-comment").map(([t]) => t).join("")).toContain("state b */");
    expect(s.at(-1)).toEqual(["state", "tok-keyword"]);
  });
});
