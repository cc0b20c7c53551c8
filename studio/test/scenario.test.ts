import { describe, expect, it, vi } from "vitest";
import { besidePolicy, dirname, download, downloadName } from "../src/scenario";

describe("scenario export helpers", () => {
  it.each([
    ["rules/p.rk", "rules"],
    ["p.rk", ""],
    ["a/b/c.yaml", "a/b"],
  ])("dirname(%s) = %s", (path, dir) => expect(dirname(path)).toBe(dir));

  it.each([
    ["rules/p.rk", "fast_refund.yaml", "rules/fast_refund.yaml"],
    ["p.rk", "x.yaml", "x.yaml"],
    ["rules/p.rk", "../../etc/x.yaml", "rules/x.yaml"],
  ])("beside %s, %s is saved as %s", (policy, name, path) => expect(besidePolicy(policy, name)).toBe(path));

  it.each([
    ["fast refund.yaml", "fast_refund.yaml"],
    ["../x", "x.yaml"],
    ["", "scenario.yaml"],
    ["..", "scenario.yaml"],
    ["a\\b.yml", "b.yml"],
  ])("download name of %j is %s", (name, safe) => expect(downloadName(name)).toBe(safe));

  it("downloads through a temporary link", () => {
    const create = vi.fn(() => "blob:x");
    const revoke = vi.fn();
    Object.assign(URL, { createObjectURL: create, revokeObjectURL: revoke });
    const clicked: string[] = [];
    HTMLAnchorElement.prototype.click = function (this: HTMLAnchorElement) {
      clicked.push(this.download);
    };
    download(document, "rules/case.yaml", "steps: []\n");
    expect(clicked).toEqual(["case.yaml"]);
    expect(create).toHaveBeenCalledOnce();
    expect(document.querySelector("a")).toBeNull();
  });
});
