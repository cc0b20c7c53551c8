import { describe, expect, it } from "vitest";
import { Text } from "@codemirror/state";
import { offsetOf, toCodeMirror } from "../src/diagnostics";
import type { ServerDiagnostic } from "../src/model";

const doc = Text.of(["policy p", '  source "😀 x" bad', "end"]);

function diag(over: Partial<ServerDiagnostic>): ServerDiagnostic {
  return { code: "RK0101", severity: "error", message: "m", file: "f.rk", line: 1, column: 1, end_line: 1, end_column: 2, help: null, notes: [], ...over };
}

describe("offsetOf", () => {
  it.each([
    [1, 1, 0],
    [1, 8, 7],
    [2, 1, 9],
    // column 14 (characters) is after the emoji, one UTF-16 unit further on
    [2, 14, 9 + 14],
    [2, 11, 9 + 10],
    [9, 1, doc.length],
    [0, 5, 0],
    [1, 99, 8],
  ])("line %i column %i is offset %i", (line, column, offset) => {
    expect(offsetOf(doc, line, column)).toBe(offset);
  });
});

describe("toCodeMirror", () => {
  it("maps the range, severity, code and help", () => {
    const d = toCodeMirror(doc, diag({ line: 2, column: 16, end_line: 2, end_column: 19, help: "write it so", severity: "warning" }));
    expect(doc.sliceString(d.from, d.to)).toBe("bad");
    expect(d.severity).toBe("warning");
    expect(d.source).toBe("RK0101");
    expect(d.message).toBe("m\nhelp: write it so");
  });
  it("widens an empty spot to one character", () => {
    const d = toCodeMirror(doc, diag({ line: 3, column: 1, end_line: 3, end_column: 1 }));
    expect([d.from, d.to]).toEqual([doc.line(3).from, doc.line(3).from + 1]);
  });
  it("keeps an end before the start at the start", () => {
    const d = toCodeMirror(doc, diag({ line: 2, column: 5, end_line: 1, end_column: 1, notes: ["n"] }));
    expect(d.to).toBeGreaterThanOrEqual(d.from);
    expect(d.message).toContain("note: n");
  });
});
