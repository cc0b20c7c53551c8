"""Diagrams of compiled workflows: Mermaid (stateDiagram-v2), Graphviz DOT, SVG.

Edges carry what an author needs to read the policy off the picture: the
event and who sends it, or the deadline, or the automatic condition; the
guard; the citation. Final states lead to the end marker; a deliberate wait
is a note on its state.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from rulekit.policy import ir

_LABEL_LIMIT = 60


class GraphvizMissing(RuntimeError):
    """``dot`` is not installed (needed for SVG)."""


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _LABEL_LIMIT else text[: _LABEL_LIMIT - 1] + "…"


def label(t: ir.Transition) -> str:
    """The words on an edge: trigger, guard, stay, citation."""
    if t.kind == "event":
        parts = [f"{t.event} by {'/'.join(t.actors)}"]
    elif t.kind == "after":
        assert t.deadline is not None
        parts = [
            f"after {t.deadline.text}"
            + (f" from {t.start.text}" if t.start is not None else "")
            + t.adjusted
        ]
    elif t.kind == "at":
        assert t.deadline is not None
        parts = [f"at {t.deadline.text}{t.adjusted}"]
    elif t.kind == "soon":
        assert t.guard is not None
        parts = [f"as soon as {_short(t.guard.text)}"]
    else:
        assert t.guard is not None
        parts = [f"when {_short(t.guard.text)}"]
    if t.guard is not None and t.kind not in ("auto", "soon"):
        parts.append(f"[{_short(t.guard.text)}]")
    if t.target is None:
        parts.append("(stays)")
    for action in t.clocks:
        parts.append(
            f"{action.verb} {action.clock}"
            + (f" by {action.by.text}" if action.by is not None else "")
        )
    if t.cite:
        parts.append(f"— {_short(t.cite)}")
    if t.assumption:
        parts.append(f"(assumption: {_short(t.assumption)})")
    return " ".join(parts)


_MERMAID_ESCAPES = {"#": "#35;", ":": "#58;", ";": "#59;", '"': "#quot;"}


def clock_label(c: ir.Clock) -> str:
    """The words on a clock's expiry edge: ``clock response (20d) runs out``, then what
    the expiry emits, whether it stays, and its citation."""
    words = [f"clock {c.name} ({_short(c.length.text)}) runs out"]
    if c.expiry.emits:
        words.append(f"emit {', '.join(e.effect for e in c.expiry.emits)}")
    if c.expiry.target is None:
        words.append("(stays)")
    if c.expiry.cite:
        words.append(f"— {_short(c.expiry.cite)}")
    return " ".join(words)


def clock_edges(wf: ir.Workflow) -> list[tuple[str, str, ir.Clock]]:
    """(from, to, clock) for each state a clock's expiry applies in: the states it names,
    or every non-final state (where the clock may run, the expiry may be taken)."""
    out = []
    for c in wf.clocks.values():
        sources = c.expiry_in or tuple(s.name for s in wf.states.values() if not s.final)
        for name in sources:
            out.append((name, c.expiry.target if c.expiry.target is not None else name, c))
    return out


def _paused(wf: ir.Workflow, state: str) -> list[str]:
    return [c.name for c in wf.clocks.values() if state in c.paused_in]


def _mermaid_text(text: str) -> str:
    # Mermaid ends a label at a colon and breaks on some punctuation: use its entity codes.
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in text)


def mermaid(workflow: ir.Workflow) -> str:
    """A Mermaid ``stateDiagram-v2`` of ``workflow``."""
    lines = [
        "stateDiagram-v2",
        f"    %% workflow {workflow.name}",
        f"    [*] --> {workflow.initial}",
    ]
    for state in workflow.states.values():
        for t in state.transitions:
            target = t.target if t.target is not None else state.name
            lines.append(f"    {state.name} --> {target} : {_mermaid_text(label(t))}")
    for source, target, c in clock_edges(workflow):
        lines.append(f"    {source} --> {target} : {_mermaid_text(clock_label(c))}")
    for state in workflow.states.values():
        if state.final:
            outcome = f" ({state.outcome})" if state.outcome and state.outcome != state.name else ""
            lines.append(
                f"    {state.name} --> [*]{' : ' + _mermaid_text('outcome' + outcome) if outcome else ''}"
            )
        notes = []
        if state.waits:
            notes.append(
                f"waits{' unbounded' if state.unbounded else ''}: {_mermaid_text(state.waits)}"
            )
        if state.assumption:
            notes.append(f"assumption: {_mermaid_text(state.assumption)}")
        paused = _paused(workflow, state.name)
        if paused:
            notes.append(f"paused here: clock {', '.join(paused)}")
        if notes:
            lines += [
                f"    note right of {state.name}",
                *(f"        {n}" for n in notes),
                "    end note",
            ]
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class Node:
    """A state on the diagram, with the id its DOT (and so its SVG) carries."""

    id: str
    state: str
    line: int
    column: int


@dataclass(frozen=True)
class Edge:
    """An edge on the diagram: ``kind`` is ``event``, ``deadline`` (after/at), ``auto``,
    ``soon`` or ``clock`` (a clock's expiry); ``rule`` is the transition's place as history
    records name it (``file:line:col``), so a step can be matched to its edge; ``trigger``
    tells the edge from the state's others as ``rulekit diff`` does (the event and its
    guard; a deadline or an automatic transition by its target; a clock by its name), so
    two versions' edges can be matched."""

    id: str
    source: str
    target: str
    kind: str
    label: str
    line: int
    column: int
    cite: str | None
    rule: str
    trigger: str


def node_id(workflow: str, state: str) -> str:
    return f"n:{workflow}:{state}"


def edges(wf: ir.Workflow) -> list[Edge]:
    """Every edge of ``wf``'s diagram, in the order :func:`dot` draws them. An edge's id is
    stable while the state's transitions keep their order: ``e:WORKFLOW:STATE:INDEX``, or
    ``e:WORKFLOW:STATE:clock:NAME`` for a clock's expiry."""
    out = []
    kinds = {"after": "deadline", "at": "deadline"}
    for state in wf.states.values():
        for i, t in enumerate(state.transitions):
            at = t.at or state.at
            out.append(
                Edge(
                    f"e:{wf.name}:{state.name}:{i}",
                    state.name,
                    t.target if t.target is not None else state.name,
                    kinds.get(t.kind, t.kind),
                    label(t),
                    at.line,
                    at.column,
                    t.cite,
                    str(t.at) if t.at is not None else "",
                    f"on {t.event}" + (f" when {t.guard.text}" if t.guard else "")
                    if t.kind == "event"
                    else f"{t.kind} -> {t.target or 'stay'}",
                )
            )
    for source, target, c in clock_edges(wf):
        out.append(
            Edge(
                f"e:{wf.name}:{source}:clock:{c.name}",
                source,
                target,
                "clock",
                clock_label(c),
                c.at.line,
                c.at.column,
                c.expiry.cite,
                str(c.expiry.at) if c.expiry.at is not None else "",
                f"clock {c.name}",
            )
        )
    return out


def nodes(wf: ir.Workflow) -> list[Node]:
    """The states of ``wf``'s diagram, with their ids and places in the source."""
    return [
        Node(node_id(wf.name, s.name), s.name, s.at.line, s.at.column) for s in wf.states.values()
    ]


def dot(workflows: list[ir.Workflow], *, ids: bool = False) -> str:
    """Graphviz DOT: one cluster per workflow. With ``ids``, every state and edge carries
    its :func:`nodes`/:func:`edges` id as an ``id`` attribute, which Graphviz copies into
    the SVG (what the studio highlights by); without, the text ``rulekit graph`` prints."""
    lines = [
        "digraph rulekit {",
        "    rankdir=LR;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    for wf in workflows:
        p = wf.name
        # the edges come in the order edges() lists them
        edge_ids = iter([f', id="{_dot_text(e.id)}"' if ids else "" for e in edges(wf)])
        lines.append(f'    subgraph "cluster_{p}" {{')
        lines.append(f'        label="{_dot_text(p)}";')
        lines.append(f'        "{p}:start" [shape=point, width=0.15, label=""];')
        lines.append(f'        "{p}:start" -> "{p}:{wf.initial}";')
        for state in wf.states.values():
            attrs = [f'label="{_dot_text(state.name)}"']
            if state.final:
                attrs.append("peripheries=2")
            if state.waits:
                attrs.append(
                    f'tooltip="waits{" unbounded" if state.unbounded else ""}: {_dot_text(state.waits)}"'
                )
                attrs.append('style="rounded,dashed"')
            paused = _paused(wf, state.name)
            if paused:
                attrs[0] = f'label="{_dot_text(state.name)}\\n(clock {", ".join(paused)} paused)"'

            if ids:
                attrs.append(f'id="{_dot_text(node_id(p, state.name))}"')
            lines.append(f'        "{p}:{state.name}" [{", ".join(attrs)}];')
            for t in state.transitions:
                target = t.target if t.target is not None else state.name
                style = ", style=dashed" if t.kind in ("after", "at", "soon") else ""
                lines.append(
                    f'        "{p}:{state.name}" -> "{p}:{target}" [label="{_dot_text(label(t))}"{style}'
                    f"{next(edge_ids)}];"
                )
        for source, target, c in clock_edges(wf):
            lines.append(
                f'        "{p}:{source}" -> "{p}:{target}" '
                f'[label="{_dot_text(clock_label(c))}", style=dotted{next(edge_ids)}];'
            )
        lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def svg(workflows: list[ir.Workflow]) -> str:
    """SVG through Graphviz's ``dot`` (raises GraphvizMissing when it is not installed)."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing(
            "SVG needs Graphviz's `dot` program: install Graphviz (Debian/Ubuntu: apt-get install graphviz; "
            "macOS: brew install graphviz), or use --format mermaid or --format dot"
        )
    done = subprocess.run(
        [exe, "-Tsvg"], input=dot(workflows), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"dot failed: {done.stderr.strip()}")
    return done.stdout
