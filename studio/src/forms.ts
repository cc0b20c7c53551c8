// Forms generated from the policy's declarations: each fact (or event parameter) becomes
// a field whose widget follows its type, and the strings the user types become the JSON
// values the engine takes (money as an exact decimal string, times as ISO-8601 with the
// offset of the zone the user picked, durations as the language writes them).

import type { FactDecl, Param } from "./model";

export type Widget = "money" | "timestamp" | "duration" | "int" | "bool" | "string" | "enum";

export interface Field {
  name: string;
  label: string;
  widget: Widget;
  optional: boolean;
  options: string[];
  doc: string | null;
}

const BASIC: Record<string, Widget> = {
  money: "money",
  timestamp: "timestamp",
  time: "timestamp",
  duration: "duration",
  int: "int",
  bool: "bool",
  string: "string",
};

/** The field for one declaration (a fact has ``path``, a payload parameter ``name``). */
export function fieldFor(decl: Param | FactDecl): Field {
  const name = "path" in decl ? decl.path : decl.name;
  const type = decl.type.replace(/\?$/, "");
  const widget: Widget = decl.enum ? "enum" : (BASIC[type] ?? "string");
  return {
    name,
    label: name,
    widget,
    optional: decl.optional,
    options: decl.enum ?? [],
    doc: "doc" in decl ? decl.doc : null,
  };
}

export class FieldError extends Error {
  constructor(
    public readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

const MONEY = /^-?\d+(\.\d+)?$/;
const INT = /^-?\d+$/;
const DURATION = /^(\d+(ms|s|m|h|d|w))+$/;

/** The JSON value of ``raw`` for ``field``; undefined when an optional field was left empty. */
export function parseValue(field: Field, raw: string, zone: string): unknown {
  const text = raw.trim();
  if (text === "" && field.widget !== "bool") {
    if (field.optional) return undefined;
    throw new FieldError(field.name, "required");
  }
  switch (field.widget) {
    case "money":
      if (!MONEY.test(text)) throw new FieldError(field.name, "an amount such as 120 or 99.50");
      return text;
    case "int":
      if (!INT.test(text)) throw new FieldError(field.name, "a whole number");
      return Number.parseInt(text, 10);
    case "bool":
      if (text === "" && field.optional) return undefined;
      return text === "true";
    case "duration":
      if (!DURATION.test(text)) throw new FieldError(field.name, "a duration such as 48h or 10d");
      return text;
    case "timestamp":
      return zonedToIso(text, zone);
    case "enum":
      if (!field.options.includes(text)) throw new FieldError(field.name, `one of ${field.options.join(", ")}`);
      return text;
    default:
      return raw;
  }
}

/** The values of every field (by name), leaving out optional ones left empty. */
export function collect(fields: Field[], raws: Record<string, string>, zone: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const value = parseValue(f, raws[f.name] ?? "", zone);
    if (value !== undefined) out[f.name] = value;
  }
  return out;
}

/** The offset of ``zone`` from UTC at instant ``utcMs``, in minutes (east positive). */
export function zoneOffsetMinutes(zone: string, utcMs: number): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(utcMs));
  const get = (t: string): number => Number(parts.find((p) => p.type === t)?.value ?? 0);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return Math.round((asUtc - Math.floor(utcMs / 1000) * 1000) / 60000);
}

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?$/;
const WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * A wall-clock time in ``zone`` ("2023-03-01T10:00", as <input type=datetime-local>
 * gives it) as ISO-8601 with that zone's offset at that moment. A text that already has
 * an offset is kept as written.
 */
export function zonedToIso(local: string, zone: string): string {
  if (WITH_OFFSET.test(local)) return local;
  const m = LOCAL.exec(local);
  if (!m) throw new FieldError("time", `a date and time such as 2023-03-01T10:00, not ${JSON.stringify(local)}`);
  const [y, mo, d, h, mi, s] = m.slice(1).map((v) => Number(v ?? 0));
  const wall = Date.UTC(y, mo - 1, d, h, mi, s);
  // The offset at the wall time read as UTC is right except within hours of a change;
  // once more from the corrected instant settles it.
  let offset = zoneOffsetMinutes(zone, wall);
  offset = zoneOffsetMinutes(zone, wall - offset * 60000);
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  const pad = (n: number): string => String(n).padStart(2, "0");
  const base = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? "00"}`;
  return `${base}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** The time zones the picker offers: the policy's own first, then UTC, then the rest. */
export function zoneChoices(policyZone: string): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  const all = intl.supportedValuesOf ? intl.supportedValuesOf("timeZone") : [];
  const first = [policyZone, "UTC"].filter((z, i, a) => z && a.indexOf(z) === i);
  return [...first, ...all.filter((z) => !first.includes(z))];
}
