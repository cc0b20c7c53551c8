import { describe, expect, it } from "vitest";
import type { FactDecl } from "../src/model";
import { collect, fieldFor, FieldError, parseValue, zonedToIso, zoneChoices } from "../src/forms";

const facts: FactDecl[] = [
  { path: "order.amount", type: "money", optional: false, enum: null, doc: "yuan", by: [] },
  { path: "order.paid_at", type: "timestamp", optional: false, enum: null, doc: null, by: [] },
  { path: "order.shipped", type: "bool", optional: false, enum: null, doc: null, by: [] },
  { path: "offer.service", type: "Service", optional: true, enum: ["exchange", "repair"], doc: null, by: ["offer_offline"] },
  { path: "evidence.within", type: "duration", optional: true, enum: null, doc: null, by: [] },
  { path: "count", type: "int", optional: false, enum: null, doc: null, by: [] },
];

describe("fieldFor", () => {
  it("picks the widget from the type", () => {
    expect(facts.map(fieldFor).map((f) => f.widget)).toEqual(["money", "timestamp", "bool", "enum", "duration", "int"]);
  });
  it("keeps enum options, optionality and docs", () => {
    const f = fieldFor(facts[3]);
    expect(f.options).toEqual(["exchange", "repair"]);
    expect(f.optional).toBe(true);
    expect(fieldFor(facts[0]).doc).toBe("yuan");
  });
  it("names payload parameters by name", () => {
    expect(fieldFor({ name: "reason", type: "string", optional: false, enum: null }).name).toBe("reason");
  });
  it("treats an unknown type as text", () => {
    expect(fieldFor({ name: "x", type: "list<string>", optional: false, enum: null }).widget).toBe("string");
  });
});

describe("collect", () => {
  const fields = facts.map(fieldFor);
  it("turns the form into engine values", () => {
    const values = collect(fields, {
      "order.amount": "120.50", "order.paid_at": "2023-03-01T10:00", "order.shipped": "false",
      "offer.service": "", "evidence.within": "", count: "3",
    }, "Asia/Shanghai");
    expect(values).toEqual({ "order.amount": "120.50", "order.paid_at": "2023-03-01T10:00:00+08:00", "order.shipped": false, count: 3 });
  });
  it.each([
    ["order.amount", "12,5"],
    ["count", "1.5"],
    ["evidence.within", "two days"],
    ["offer.service", "refund"],
    ["order.paid_at", "yesterday"],
  ])("refuses %s = %s", (name, raw) => {
    const f = fields.find((x) => x.name === name)!;
    expect(() => parseValue(f, raw, "UTC")).toThrow(FieldError);
  });
  it("requires required fields", () => {
    expect(() => parseValue(fields[0], "  ", "UTC")).toThrow(/required/);
  });
});

describe("zonedToIso", () => {
  it.each([
    ["2023-03-01T10:00", "Asia/Shanghai", "2023-03-01T10:00:00+08:00"],
    ["2023-03-01T10:00:30", "UTC", "2023-03-01T10:00:30+00:00"],
    ["2023-07-01T09:00", "Europe/Paris", "2023-07-01T09:00:00+02:00"],
    ["2023-01-01T09:00", "Europe/Paris", "2023-01-01T09:00:00+01:00"],
    ["2023-03-12T12:00", "America/New_York", "2023-03-12T12:00:00-04:00"],
    ["2023-03-01T10:00:00Z", "Asia/Shanghai", "2023-03-01T10:00:00Z"],
    ["2023-03-01T10:00:00+05:30", "UTC", "2023-03-01T10:00:00+05:30"],
  ])("%s in %s is %s", (local, zone, iso) => {
    expect(zonedToIso(local, zone)).toBe(iso);
  });
});

describe("zoneChoices", () => {
  it("puts the policy's zone first, then UTC, without repeats", () => {
    const z = zoneChoices("Asia/Shanghai");
    expect(z.slice(0, 2)).toEqual(["Asia/Shanghai", "UTC"]);
    expect(new Set(z).size).toBe(z.length);
  });
});
