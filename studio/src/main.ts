// rulekit studio's page: the editor, the diagram and the Run, Test and Compare panels,
// all talking to the local server through the token-carrying client.

import "./style.css";
import { basicSetup } from "codemirror";
import { EditorView, keymap } from "@codemirror/view";
import { Compartment } from "@codemirror/state";
import { linter, lintGutter, nextDiagnostic } from "@codemirror/lint";
import { yaml } from "@codemirror/lang-yaml";
import { ApiError, Client, readToken } from "./api";
import { toCodeMirror, offsetOf } from "./diagnostics";
import { collect, fieldFor, zoneChoices, zonedToIso, type Field } from "./forms";
import { drawGraph, type Marks, type View } from "./graph";
import type { CheckResult, DiffResult, FileList, Format, Graph, PolicyModel, ScenarioRun, Sim, TimelineRecord } from "./model";
import { rulekitLanguage } from "./rklang";
import { besidePolicy, dirname, download } from "./scenario";
import { fill, h } from "./dom";

const client = new Client(readToken(document));
const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

interface Current {
  path: string;
  format: Format;
  etag: string | null;
}

const app = {
  files: null as FileList | null,
  current: null as Current | null,
  policy: null as PolicyModel | null,
  workflow: "",
  graph: null as Graph | null,
  sim: null as Sim | null,
  diff: null as DiffResult | null,
};

function say(text: string): void {
  const box = $("message");
  box.textContent = text;
  window.setTimeout(() => {
    if (box.textContent === text) box.textContent = "";
  }, 8000);
}

function problemText(err: unknown): string {
  if (err instanceof ApiError) return `${err.code ?? err.status}: ${err.message}`;
  return String(err);
}

// ---- the editor -------------------------------------------------------------------

const language = new Compartment();

const checkLinter = linter(
  async (view) => {
    if (!app.current) return [];
    const text = view.state.doc.toString();
    let result: CheckResult;
    try {
      result = await client.post<CheckResult>("/api/check", { text, format: app.current.format, path: app.current.path });
    } catch (err) {
      say(problemText(err));
      return [];
    }
    if (view.state.doc.toString() !== text) return [];
    const errors = result.diagnostics.filter((d) => d.severity === "error").length;
    $("check-status").textContent = result.ok
      ? `ok${result.diagnostics.length ? ` (${result.diagnostics.length} notes)` : ""}`
      : `${errors} error${errors === 1 ? "" : "s"}`;
    $("check-status").dataset.ok = String(result.ok);
    if (result.policy) {
      const first = !app.policy || app.policy.hash !== result.policy.hash;
      app.policy = result.policy;
      if (first) onPolicy();
    }
    return result.diagnostics.map((d) => toCodeMirror(view.state.doc, d));
  },
  { delay: 400 },
);

const editor = new EditorView({
  parent: $("edit"),
  extensions: [keymap.of([{ key: "F8", run: nextDiagnostic }]), basicSetup, language.of(rulekitLanguage), checkLinter, lintGutter(), EditorView.lineWrapping],
});

function jumpTo(line: number, column: number): void {
  const pos = offsetOf(editor.state.doc, line, column);
  editor.dispatch({ selection: { anchor: pos }, effects: EditorView.scrollIntoView(pos, { y: "center" }) });
  editor.focus();
}

// ---- files ------------------------------------------------------------------------

async function loadFiles(): Promise<void> {
  app.files = await client.get<FileList>("/api/files");
  const select = $<HTMLSelectElement>("policy-select");
  select.replaceChildren(...app.files.policies.map((p) => h("option", { value: p.path }, p.path)));
  if (app.files.policies.length) await openFile(app.files.policies[0].path);
}

async function openFile(path: string): Promise<void> {
  const file = await client.get<{ path: string; text: string; format: Format; etag: string }>(
    `/api/file?path=${encodeURIComponent(path)}`,
  );
  app.current = { path: file.path, format: file.format, etag: file.etag };
  app.policy = null;
  app.sim = null;
  app.graph = null;
  drawing++; // a diagram of the previous file still being laid out is dropped
  // Nothing of the previous file stays on show (or clickable) until this one is checked.
  const status = $("check-status");
  status.textContent = "checking…";
  delete status.dataset.ok;
  $("diagram").replaceChildren();
  editor.dispatch({
    changes: { from: 0, to: editor.state.doc.length, insert: file.text },
    effects: language.reconfigure(file.format === "yaml" ? yaml() : rulekitLanguage),
  });
  $<HTMLSelectElement>("policy-select").value = file.path;
  renderRun();
  renderTest();
  renderCompare();
}

async function save(): Promise<void> {
  if (!app.current) return;
  const text = editor.state.doc.toString();
  try {
    const r = await client.put<{ etag: string }>("/api/file", { path: app.current.path, text, etag: app.current.etag });
    app.current.etag = r.etag;
    say(`saved ${app.current.path}`);
  } catch (err) {
    if (err instanceof ApiError && err.code === "changed_on_disk") {
      if (window.confirm(`${app.current.path} changed on disk since it was opened. Overwrite it?`)) {
        const r = await client.put<{ etag: string }>("/api/file", { path: app.current.path, text, etag: null });
        app.current.etag = r.etag;
        say(`saved ${app.current.path}`);
      } else say("not saved");
    } else say(problemText(err));
  }
}

// ---- the policy and its diagram -----------------------------------------------------

function onPolicy(): void {
  const policy = app.policy;
  if (!policy) return;
  const select = $<HTMLSelectElement>("workflow-select");
  const names = policy.workflows.map((w) => w.name);
  if (!names.includes(app.workflow)) app.workflow = names[0] ?? "";
  select.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
  select.value = app.workflow;
  void refreshGraph();
  if (!app.sim) renderRun();
}

async function refreshGraph(): Promise<void> {
  if (!app.current || !app.workflow) return;
  const path = app.current.path;
  try {
    const graph = await client.post<Graph>("/api/graph", {
      text: editor.state.doc.toString(),
      format: app.current.format,
      path,
      workflow: app.workflow,
    });
    if (app.current?.path !== path) return; // another file was opened meanwhile
    app.graph = graph;
    await redraw();
  } catch (err) {
    say(problemText(err));
  }
}

/** Counts drawings (and file switches): Graphviz lays out asynchronously, and only the
 * latest drawing may reach the page, never one of a file no longer open. */
let drawing = 0;

async function redraw(): Promise<void> {
  const mine = ++drawing;
  const host = $("diagram");
  const comparing = !$("panel-compare").hidden && app.diff;
  const graph = comparing ? app.diff!.graph : app.graph;
  if (!graph) return;
  const marks: Marks = comparing
    ? { added: app.diff!.added, changed: app.diff!.changed }
    : { current: app.sim?.state, taken: app.sim?.timeline.map((r) => r.edge).filter((e): e is string => !!e) };
  const view: View = {
    direction: $<HTMLSelectElement>("diagram-direction").value === "TB" ? "TB" : "LR",
    fit: $<HTMLInputElement>("diagram-fit").checked,
  };
  await drawGraph(host, graph, marks, view, (place) => jumpTo(place.line, place.column), () => mine === drawing);
  if (mine !== drawing) return;
  // What the user is looking for: the case's state, or the first edge a comparison marks.
  host.querySelector(".current, .changed, .added")?.scrollIntoView({ block: "center", inline: "center" });
}

// ---- forms --------------------------------------------------------------------------

function input(field: Field, zone: string, prefix: string): HTMLElement {
  const id = `${prefix}-${field.name}`.replace(/[^A-Za-z0-9_-]/g, "_");
  const common = { id, name: field.name, "data-field": field.name, "data-widget": field.widget };
  let control: HTMLElement;
  switch (field.widget) {
    case "enum":
      control = h("select", common, field.optional ? h("option", { value: "" }, "(none)") : null,
        ...field.options.map((o) => h("option", { value: o }, o)));
      break;
    case "bool":
      control = h("select", common, field.optional ? h("option", { value: "" }, "(none)") : null,
        h("option", { value: "false" }, "false"), h("option", { value: "true" }, "true"));
      break;
    case "timestamp":
      control = h("input", { ...common, type: "datetime-local", step: "1", title: `in ${zone}` });
      break;
    case "money":
      control = h("input", { ...common, type: "text", inputmode: "decimal", placeholder: "120.00" });
      break;
    case "int":
      control = h("input", { ...common, type: "number", step: "1" });
      break;
    case "duration":
      control = h("input", { ...common, type: "text", placeholder: "48h" });
      break;
    default:
      control = h("input", { ...common, type: "text" });
  }
  return h("div", { class: "field" },
    h("label", { for: id }, `${field.label}${field.optional ? "" : " *"}`, h("span", { class: "type" }, ` (${field.widget})`)),
    control,
    field.doc ? h("small", {}, field.doc) : null);
}

function raws(container: HTMLElement): Record<string, string> {
  const out: Record<string, string> = {};
  container.querySelectorAll<HTMLInputElement | HTMLSelectElement>("[data-field]").forEach((el) => {
    out[el.dataset.field!] = el.value;
  });
  return out;
}

function zonePicker(id: string, zone: string): HTMLSelectElement {
  const select = h("select", { id, "data-testid": id, "aria-label": "time zone" },
    ...zoneChoices(zone).map((z) => h("option", { value: z }, z)));
  select.value = zone;
  return select;
}

function nowLocal(zone: string): string {
  // The current wall-clock time in ``zone`` as datetime-local wants it.
  const parts = new Intl.DateTimeFormat("sv-SE", { timeZone: zone, dateStyle: "short", timeStyle: "medium" }).format(new Date());
  return parts.replace(" ", "T");
}

// ---- Run ----------------------------------------------------------------------------

function renderRun(): void {
  const panel = $("panel-run");
  const policy = app.policy;
  if (!policy) {
    panel.replaceChildren(h("p", {}, "Fix the policy's errors to run it."));
    return;
  }
  const zone = policy.zone || "UTC";
  const fields = policy.facts.map(fieldFor);
  // Required facts first; the optional ones (most are stored by events later) folded away.
  const required = fields.filter((f) => !f.optional);
  const optional = fields.filter((f) => f.optional);
  const factsBox = h("fieldset", { "data-testid": "facts-form" }, h("legend", {}, "Facts"),
    ...required.map((f) => input(f, zone, "fact")),
    optional.length ? h("details", {}, h("summary", {}, `Optional facts (${optional.length})`),
      ...optional.map((f) => input(f, zone, "fact"))) : null);
  const zoneSel = zonePicker("fact-zone", zone);
  const at = h("input", { id: "open-at", "data-testid": "open-at", type: "datetime-local", step: "1", value: nowLocal(zone) });
  const by = h("select", { id: "open-by", "aria-label": "opened by" }, h("option", { value: "" }, "(nobody)"),
    ...policy.actors.map((a) => h("option", { value: a }, a)));
  const open = async (): Promise<void> => {
    try {
      const z = zoneSel.value;
      const facts = collect(fields, raws(factsBox), z);
      app.sim = await client.post<Sim>("/api/sim", {
        text: editor.state.doc.toString(), format: app.current!.format, path: app.current!.path,
        workflow: app.workflow, facts, at: zonedToIso(at.value, z), by: by.value || null,
      });
      renderSim();
      void redraw();
    } catch (err) {
      say(problemText(err));
    }
  };
  panel.replaceChildren(
    h("h2", {}, "Open a case"),
    factsBox,
    h("div", { class: "row" }, h("label", { for: "open-at" }, "At"), at, h("label", { for: "fact-zone" }, "Zone"), zoneSel,
      h("label", { for: "open-by" }, "By"), by,
      h("button", { type: "button", "data-testid": "open-case", onclick: () => void open() }, "Open case")),
    h("div", { id: "sim", "data-testid": "sim" }),
  );
  if (app.sim) renderSim();
}

/** A record's text without the time it starts with (shown apart, in the record's ISO form). */
function withoutTime(text: string): string {
  return text.replace(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?\s+/, "");
}

function timeline(records: TimelineRecord[]): HTMLElement {
  return h("ol", { class: "timeline", "data-testid": "timeline" }, ...records.map((r) =>
    h("li", { "data-kind": r.kind },
      h("span", { class: "at" }, r.at), " ", h("strong", {}, r.kind), " ", withoutTime(r.text),
      r.cite ? h("span", { class: "cite", "data-testid": "cite" }, ` [clause ${r.cite}]`) : null,
      r.conditions.length ? h("ul", {}, ...r.conditions.map((c) =>
        h("li", { class: c.held ? "cond-held" : "cond-failed" }, `${c.held ? "✓" : "✗"} ${c.text}: ${typeof c.value === "string" ? c.value : JSON.stringify(c.value)}`))) : null)));
}

async function simCall(path: string, body: unknown): Promise<void> {
  try {
    app.sim = await client.post<Sim>(`/api/sim/${encodeURIComponent(app.sim!.id)}/${path}`, body);
    renderSim();
    void redraw();
  } catch (err) {
    say(problemText(err));
  }
}

function renderSim(): void {
  const box = document.getElementById("sim");
  const sim = app.sim;
  if (!box || !sim || !app.policy) return;
  const zone = app.policy.zone || "UTC";
  const actors = Object.entries(sim.allowed).map(([actor, events]) =>
    h("fieldset", { "data-actor": actor }, h("legend", {}, `As ${actor}`),
      events.length ? null : h("p", {}, "nothing allowed"),
      ...events.map((ev) => {
        const fields = ev.payload.map(fieldFor);
        const form = h("div", { class: "row", "data-event": ev.event }, ...fields.map((f) => input(f, zone, `${actor}-${ev.event}`)));
        const send = (): void => {
          try {
            const payload = collect(fields, raws(form), zone);
            void simCall("send", { event: ev.event, by: actor, payload, at: null });
          } catch (err) {
            say(problemText(err));
          }
        };
        form.prepend(h("button", { type: "button", "data-testid": `send-${actor}-${ev.event}`, onclick: send }, ev.event));
        return form;
      })));
  const byInput = h("input", { id: "advance-by", "data-testid": "advance-by", type: "text", placeholder: "48h", size: 6 });
  const toInput = h("input", { id: "advance-to", "data-testid": "advance-to", type: "datetime-local", step: "1" });
  const toZone = zonePicker("advance-zone", zone);
  fill(box,
    h("h2", {}, "Case"),
    h("p", { "data-testid": "sim-state" }, "State: ", h("strong", { "data-state": sim.state }, sim.state), sim.final ? " (final)" : "",
      " · now ", h("span", { "data-testid": "sim-now" }, sim.now)),
    sim.refused ? h("div", { class: "refused", role: "alert", "data-testid": "refused" }, `refused ${sim.refused.code}: ${sim.refused.message}`) : null,
    sim.deadlines.length ? h("ul", { "data-testid": "deadlines" }, ...sim.deadlines.map((d) => h("li", {}, `${d.name} due ${d.due} → ${d.to}`))) : null,
    h("div", { class: "row" },
      h("button", { type: "button", "data-testid": "advance-next", onclick: () => void simCall("advance", { next_deadline: true }) }, "Next deadline"),
      h("label", { for: "advance-by" }, "By"), byInput,
      h("button", { type: "button", "data-testid": "advance-by-go", onclick: () => void simCall("advance", { by: byInput.value.trim() }) }, "Advance"),
      h("label", { for: "advance-to" }, "To"), toInput, toZone,
      h("button", { type: "button", "data-testid": "advance-to-go", onclick: () => {
        try { void simCall("advance", { to: zonedToIso(toInput.value, toZone.value) }); } catch (err) { say(problemText(err)); }
      } }, "Go")),
    h("h3", {}, "Allowed events"), ...actors,
    sim.effects.length ? h("div", {}, h("h3", {}, "Effects"), h("ul", { "data-testid": "effects" },
      ...sim.effects.map((e) => h("li", {}, `${e.name}(${Object.entries(e.args).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ")})`)))) : null,
    h("h3", {}, "Timeline"), timeline(sim.timeline),
  );
  renderTest();
}

// ---- Test ---------------------------------------------------------------------------

async function exportScenario(toFile: boolean): Promise<void> {
  if (!app.sim || !app.current) return;
  const id = encodeURIComponent(app.sim.id);
  try {
    const s = await client.get<{ yaml: string; filename: string }>(`/api/sim/${id}/scenario`);
    if (!toFile) {
      download(document, s.filename, s.yaml);
      return;
    }
    const path = besidePolicy(app.current.path, s.filename);
    try {
      await client.post(`/api/sim/${id}/scenario`, { path });
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409)) throw err;
      if (!window.confirm(`${path} exists. Overwrite it?`)) return;
      await client.post(`/api/sim/${id}/scenario`, { path, overwrite: true });
    }
    say(`saved ${path}`);
    const out = document.getElementById("export-result");
    if (out) out.textContent = `saved ${path}`;
  } catch (err) {
    say(problemText(err));
  }
}

function renderTest(): void {
  const panel = $("panel-test");
  const folder = h("input", { id: "scenario-paths", "data-testid": "scenario-paths", type: "text", size: 30,
    value: app.current ? dirname(app.current.path) || "." : "." });
  const results = h("div", { "data-testid": "scenario-results" });
  const run = async (): Promise<void> => {
    try {
      const r = await client.post<ScenarioRun>("/api/scenarios/run", { paths: folder.value.split(",").map((p) => p.trim()).filter(Boolean) });
      const detail = h("div", { "data-testid": "scenario-timeline" });
      results.replaceChildren(
        h("p", { "data-testid": "scenario-summary" }, `${r.passed} passed, ${r.failed} failed`),
        h("ul", {}, ...r.results.map((res) => h("li", { class: res.passed ? "pass" : "fail" },
          res.passed ? `✓ ${res.file}: ${res.name}`
            : h("button", { type: "button", class: "fail", onclick: () => detail.replaceChildren(h("p", {}, res.message ?? ""), timeline(res.timeline)) },
                `✗ ${res.file}: ${res.name}`)))),
        detail);
      const firstFail = r.results.find((res) => !res.passed);
      if (firstFail) detail.replaceChildren(h("p", {}, firstFail.message ?? ""), timeline(firstFail.timeline));
    } catch (err) {
      say(problemText(err));
    }
  };
  fill(panel,
    h("h2", {}, "Export the simulation"),
    app.sim ? h("div", { class: "row" },
      h("button", { type: "button", "data-testid": "export-download", onclick: () => void exportScenario(false) }, "Download scenario"),
      h("button", { type: "button", "data-testid": "export-save", onclick: () => void exportScenario(true) }, "Save next to the policy"),
      h("span", { id: "export-result", "data-testid": "export-result", role: "status" }))
      : h("p", {}, "Open a case in the Run panel first."),
    h("h2", {}, "Run scenarios"),
    h("div", { class: "row" }, h("label", { for: "scenario-paths" }, "Files or folders"), folder,
      h("button", { type: "button", "data-testid": "run-scenarios", onclick: () => void run() }, "Run")),
    results,
  );
}

// ---- Compare ------------------------------------------------------------------------

type Side = { path: string } | { text: string; format: Format } | { git: string; path: string };

function renderCompare(): void {
  const panel = $("panel-compare");
  const path = app.current?.path ?? "";
  const side = (name: string, defaultKind: string): [HTMLElement, () => Side] => {
    const kind = h("select", { id: `${name}-kind`, "data-testid": `${name}-kind`, "aria-label": `${name} version from` },
      h("option", { value: "editor" }, "the editor"), h("option", { value: "file" }, "a file"), h("option", { value: "git" }, "a git revision"));
    kind.value = defaultKind;
    const file = h("input", { id: `${name}-path`, "data-testid": `${name}-path`, type: "text", value: path, "aria-label": `${name} file` });
    const rev = h("input", { id: `${name}-rev`, "data-testid": `${name}-rev`, type: "text", value: "HEAD", size: 10, "aria-label": `${name} git revision` });
    const get = (): Side => {
      if (kind.value === "editor") return { text: editor.state.doc.toString(), format: app.current!.format };
      if (kind.value === "git") return { git: rev.value.trim(), path: file.value.trim() };
      return { path: file.value.trim() };
    };
    const shown = (): void => {
      file.hidden = kind.value === "editor";
      rev.hidden = kind.value !== "git";
    };
    kind.addEventListener("change", shown);
    shown();
    return [h("div", { class: "row" }, h("strong", {}, name === "old" ? "Old" : "New"), kind, file, rev), get];
  };
  const [oldRow, oldSide] = side("old", "git");
  const [newRow, newSide] = side("new", "editor");
  const out = h("div", { "data-testid": "diff-result" });
  const compare = async (): Promise<void> => {
    try {
      app.diff = await client.post<DiffResult>("/api/diff", { old: oldSide(), new: newSide(), workflow: app.workflow || null });
      const d = app.diff;
      const removed = (d.graph.removed_edges ?? []).map((e) => `${e.from} → ${e.to} ${e.label}`);
      fill(out,
        h("p", { "data-testid": "diff-summary", class: d.breaking ? "breaking" : "" },
          `${d.changes.length} change${d.changes.length === 1 ? "" : "s"}${d.breaking ? ", breaking" : ""}`),
        h("ul", {}, ...d.changes.map((c) => h("li", { class: c.breaking ? "breaking" : "", "data-breaking": String(c.breaking) },
          c.breaking && !c.text.startsWith("BREAKING") ? "BREAKING " : "", c.text))),
        removed.length ? h("div", {}, h("h3", {}, "Removed edges"), h("ul", { "data-testid": "removed-edges" }, ...removed.map((r) => h("li", {}, r)))) : null,
      );
      await redraw();
    } catch (err) {
      say(problemText(err));
    }
  };
  panel.replaceChildren(h("h2", {}, "Compare two versions"), oldRow, newRow,
    h("button", { type: "button", "data-testid": "compare", onclick: () => void compare() }, "Compare"), out);
}

// ---- wiring -------------------------------------------------------------------------

for (const name of ["run", "test", "compare"]) {
  $(`tab-${name}`).addEventListener("click", () => {
    for (const other of ["run", "test", "compare"]) {
      $(`tab-${other}`).setAttribute("aria-selected", String(other === name));
      $(`panel-${other}`).hidden = other !== name;
    }
    void redraw();
  });
}
$("save").addEventListener("click", () => void save());
$("diagram-direction").addEventListener("change", () => void redraw());
$("diagram-fit").addEventListener("change", () => void redraw());
// The status names the errors; clicking it goes to the next one (F8 in the editor too).
$("check-status").addEventListener("click", () => {
  nextDiagnostic(editor);
  editor.focus();
});
$<HTMLSelectElement>("policy-select").addEventListener("change", (ev) => void openFile((ev.target as HTMLSelectElement).value));
$<HTMLSelectElement>("workflow-select").addEventListener("change", (ev) => {
  app.workflow = (ev.target as HTMLSelectElement).value;
  app.sim = null;
  renderRun();
  void refreshGraph();
});
document.addEventListener("keydown", (ev) => {
  if ((ev.ctrlKey || ev.metaKey) && ev.key === "s") {
    ev.preventDefault();
    void save();
  }
});

loadFiles().catch((err) => say(problemText(err)));
