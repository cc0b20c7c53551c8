// The shapes the back end answers with (docs: the studio contract), typed once here.

export type Format = "rk" | "yaml";

export interface ServerDiagnostic {
  code: string;
  severity: "error" | "warning" | "info";
  message: string;
  file: string;
  line: number;
  column: number;
  end_line: number;
  end_column: number;
  help: string | null;
  notes: string[];
  rendered?: string;
}

export interface Param {
  name: string;
  type: string;
  optional: boolean;
  enum: string[] | null;
}

export interface FactDecl extends Omit<Param, "name"> {
  path: string;
  doc: string | null;
  by: string[];
}

export interface PolicyModel {
  name: string;
  version: string;
  hash: string;
  zone: string;
  workflows: { name: string; initial: string; states: { name: string; final: boolean; line: number; column: number }[] }[];
  facts: FactDecl[];
  events: { name: string; by: string[]; payload: Param[] }[];
  actors: string[];
}

export interface CheckResult {
  ok: boolean;
  diagnostics: ServerDiagnostic[];
  policy: PolicyModel | null;
}

export interface GraphEdge {
  id: string;
  from: string;
  to: string;
  kind: string;
  label: string;
  line: number;
  column: number;
  cite: string | null;
}

export interface Graph {
  dot: string;
  nodes: { id: string; state: string; line: number; column: number }[];
  edges: GraphEdge[];
  removed_edges?: { from: string; to: string; label: string }[];
}

export interface TimelineRecord {
  at: string;
  kind: string;
  text: string;
  from: string | null;
  to: string | null;
  edge: string | null;
  cite: string | null;
  conditions: { text: string; value: unknown; held: boolean }[];
}

export interface Sim {
  id: string;
  workflow: string;
  now: string;
  state: string;
  final: boolean;
  facts: Record<string, unknown>;
  deadlines: { name: string; due: string; to: string; edge: string }[];
  allowed: Record<string, { event: string; payload: Param[] }[]>;
  timeline: TimelineRecord[];
  effects: { name: string; args: Record<string, unknown> }[];
  refused: { code: string; message: string } | null;
}

export interface ScenarioRun {
  passed: number;
  failed: number;
  results: { file: string; name: string; passed: boolean; message: string | null; timeline: TimelineRecord[] }[];
}

export interface DiffResult {
  changes: { kind: string; breaking: boolean; text: string; workflow: string; edge: string | null; state: string | null }[];
  breaking: boolean;
  graph: Graph;
  added: string[];
  changed: string[];
  removed: { from: string; to: string; label: string }[] | string[];
}

export interface FileList {
  roots: string[];
  policies: { path: string; format: Format }[];
  scenarios: { path: string; policy: string | null }[];
}
