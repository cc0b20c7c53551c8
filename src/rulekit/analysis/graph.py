"""Diagrams of compiled workflows: Mermaid (stateDiagram-v2), Graphviz DOT, SVG.

Edges carry what an author needs to read the policy off the picture: the
event and who sends it, or the deadline, or the automatic condition; the
guard; the citation. Final states lead to the end marker; a deliberate wait
is a note on its state.
"""

from __future__ import annotations

import shutil
import subprocess

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
    else:
        assert t.guard is not None
        parts = [f"when {_short(t.guard.text)}"]
    if t.guard is not None and t.kind != "auto":
        parts.append(f"[{_short(t.guard.text)}]")
    if t.target is None:
        parts.append("(stays)")
    if t.cite:
        parts.append(f"— {_short(t.cite)}")
    if t.assumption:
        parts.append(f"(assumption: {_short(t.assumption)})")
    return " ".join(parts)


_MERMAID_ESCAPES = {"#": "#35;", ":": "#58;", ";": "#59;", '"': "#quot;"}


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
        if notes:
            lines += [
                f"    note right of {state.name}",
                *(f"        {n}" for n in notes),
                "    end note",
            ]
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def dot(workflows: list[ir.Workflow]) -> str:
    """Graphviz DOT: one cluster per workflow."""
    lines = [
        "digraph rulekit {",
        "    rankdir=LR;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    for wf in workflows:
        p = wf.name
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
            lines.append(f'        "{p}:{state.name}" [{", ".join(attrs)}];')
            for t in state.transitions:
                target = t.target if t.target is not None else state.name
                style = ", style=dashed" if t.kind in ("after", "at") else ""
                lines.append(
                    f'        "{p}:{state.name}" -> "{p}:{target}" [label="{_dot_text(label(t))}"{style}];'
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
