// The diagram: the DOT the server writes, laid out and drawn by Graphviz compiled to
// WebAssembly (@viz-js/viz, bundled). Nodes and edges carry the server's ids as SVG
// element ids, so highlighting and click-to-jump work by id.

import type { Viz } from "@viz-js/viz";
import type { Graph } from "./model";

let vizPromise: Promise<Viz> | null = null;

/** Graphviz, loaded on first use: its WebAssembly is most of the page's weight, so the
 * editor comes up first and the diagram follows. */
function viz(): Promise<Viz> {
  vizPromise ??= import("@viz-js/viz").then((m) => m.instance());
  return vizPromise;
}

export interface Marks {
  current?: string | null; // a state name
  taken?: string[]; // edge ids a simulation took
  added?: string[];
  changed?: string[];
}

export interface View {
  direction: "LR" | "TB"; // the layout's rank direction
  fit: boolean; // scaled to the panel's width, or at Graphviz's own size (scrolls)
}

export interface Place {
  line: number;
  column: number;
}

/** Draw ``graph`` into ``host``; clicking a node or edge calls ``onJump`` with its place.
 * ``wanted`` is asked once the layout is done: a drawing no longer wanted (the page moved
 * on while Graphviz worked) leaves ``host`` as it is. */
export async function drawGraph(
  host: HTMLElement,
  graph: Graph,
  marks: Marks,
  view: View,
  onJump: (place: Place, id: string) => void,
  wanted: () => boolean = () => true,
): Promise<void> {
  const dot = graph.dot.replace(/\brankdir\s*=\s*\w+/, `rankdir=${view.direction}`);
  const svg = (await viz()).renderSVGElement(dot);
  if (!wanted()) return;
  if (view.fit) {
    svg.setAttribute("width", "100%");
    svg.removeAttribute("height");
  }
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "workflow diagram");
  const places = new Map<string, Place>();
  for (const n of graph.nodes) places.set(n.id, n);
  for (const e of graph.edges) places.set(e.id, e);
  for (const [id, place] of places) {
    const el = svg.querySelector<SVGGElement>(`[id="${CSS.escape(id)}"]`);
    if (!el) continue;
    el.classList.add("clickable");
    el.setAttribute("tabindex", "0");
    const jump = (): void => onJump(place, id);
    el.addEventListener("click", jump);
    el.addEventListener("keydown", (ev) => {
      if ((ev as KeyboardEvent).key === "Enter") jump();
    });
  }
  const mark = (id: string, cls: string): void => {
    svg.querySelector(`[id="${CSS.escape(id)}"]`)?.classList.add(cls);
  };
  if (marks.current) {
    const node = graph.nodes.find((n) => n.state === marks.current);
    if (node) mark(node.id, "current");
  }
  for (const id of marks.taken ?? []) mark(id, "taken");
  for (const id of marks.added ?? []) mark(id, "added");
  for (const id of marks.changed ?? []) mark(id, "changed");
  host.replaceChildren(svg);
}
