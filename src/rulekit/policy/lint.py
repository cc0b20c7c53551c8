"""Structural analyses of a checked policy: warnings about what it does, not how it is written.

Run by the checker on every policy that has no errors. Each finding is a
warning with a stable code (docs/diagnostics.md):

- RK0701 a state no case can reach from the initial state;
- RK0702 a non-final state with no way out at all;
- RK0703 a non-final state where a case can wait forever (no deadline, no
  automatic transition) unless it is marked ``waits "reason"``;
- RK0704 a fact no condition, deadline, assignment or effect uses;
- RK0705 an event no transition takes;
- RK0706 an `after` deadline a shorter one always beats.
"""

from __future__ import annotations

from datetime import timedelta

from rulekit import diagnostics as diag
from rulekit.diagnostics import Diagnostic
from rulekit.errors import EvaluationError
from rulekit.expr import ast as expr_ast
from rulekit.policy import ast, ir
from rulekit.source import Span


def lint(tree: ast.Policy, policy: ir.Policy) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    states = _state_nodes(tree)
    for wf in policy.workflows.values():
        reachable = _reachable(wf)
        for name, state in wf.states.items():
            node = states.get((wf.name, name))
            if node is None:
                continue
            where = f"workflow {wf.name}"
            if name not in reachable:
                out.append(
                    diag.make(
                        "RK0701",
                        f"no case of {where} can reach state `{name}`",
                        node.source,
                        node.name.span,
                        help="add a transition into it, or remove it",
                        severity="warning",
                    )
                )
            if state.final:
                continue
            if not state.transitions:
                out.append(
                    diag.make(
                        "RK0702",
                        f"state `{name}` of {where} has no way out",
                        node.source,
                        node.name.span,
                        help="add transitions, or make it a `final state`",
                        severity="warning",
                    )
                )
            elif not state.deadlines and not state.automatic and state.waits is None:
                out.append(
                    diag.make(
                        "RK0703",
                        f"a case can wait in state `{name}` of {where} forever: no deadline and no automatic "
                        "transition moves it",
                        node.source,
                        node.name.span,
                        help='add a deadline (after ...), or mark the wait as deliberate: state NAME waits "why"',
                        severity="warning",
                    )
                )
        out.extend(_dead_deadlines(wf, states))
    used_facts = _used_facts(policy)
    for decl in tree.facts:
        if decl.path.text in policy.facts and decl.path.text not in used_facts:
            out.append(
                diag.make(
                    "RK0704",
                    f"fact `{decl.path.text}` is declared but nothing uses it",
                    decl.source,
                    decl.path.span,
                    help="read it in a condition, set it, or remove it",
                    severity="warning",
                )
            )
    taken = {
        t.event
        for wf in policy.workflows.values()
        for s in wf.states.values()
        for t in s.transitions
    }
    for ev in tree.events:
        if ev.name.text not in taken:
            out.append(
                diag.make(
                    "RK0705",
                    f"no transition takes event `{ev.name.text}`",
                    ev.source,
                    ev.name.span,
                    help="take it in some state (on NAME -> ...), or remove it",
                    severity="warning",
                )
            )
    return out


def _fixed_delay(t: ir.Transition) -> timedelta | None:
    """The delay of an `after` deadline that counts from entry and needs no facts."""
    if t.kind != "after" or t.start is not None or t.deadline is None:
        return None
    checked = t.deadline.compiled.checked
    if checked.variables or checked.uses_now:
        return None
    try:
        value = t.deadline.compiled.evaluate({})
    except EvaluationError:
        return None
    return value if isinstance(value, timedelta) else None


def _dead_deadlines(wf: ir.Workflow, states: dict[tuple[str, str], ast.State]) -> list[Diagnostic]:
    """`after` deadlines that a shorter, unguarded one leaving the same state always beats."""
    out = []
    for name, state in wf.states.items():
        fixed = [(d, _fixed_delay(d)) for d in state.deadlines]
        winners = [
            (d, delay)
            for d, delay in fixed
            if delay is not None and d.guard is None and d.target is not None
        ]
        for d, delay in fixed:
            if delay is None:
                continue
            beaten = [w for w, wd in winners if w is not d and wd < delay]
            node = states.get((wf.name, name))
            if beaten and node is not None and d.at is not None:
                w = beaten[0]
                out.append(
                    diag.make(
                        "RK0706",
                        f"in state `{name}` of workflow {wf.name}, `after {d.deadline.text if d.deadline else ''}` can never "
                        f"fire: `after {w.deadline.text if w.deadline else ''}` always leaves the state first",
                        node.source,
                        _span_at(node, d.at),
                        help="shorten it, guard the shorter one, or remove it",
                        severity="warning",
                    )
                )
    return out


def _span_at(node: ast.State, at: ir.Position) -> Span:
    """The span of the line and column a compiled position names (in the state's source)."""
    lines = node.source.text.split("\n")
    offset = sum(len(line) + 1 for line in lines[: at.line - 1]) + at.column - 1
    return Span(offset, offset + 5)


def _state_nodes(tree: ast.Policy) -> dict[tuple[str, str], ast.State]:
    """Where each state of each workflow was written (its own or a used fragment's)."""
    fragments = {f.name.text: f for f in tree.fragments}
    out: dict[tuple[str, str], ast.State] = {}
    for wf in tree.workflows:
        bodies = [
            wf,
            *(
                fragments[u.fragment.text]
                for u in wf.parts
                if isinstance(u, ast.Use) and u.fragment.text in fragments
            ),
        ]
        for body in bodies:
            for part in body.parts:
                if isinstance(part, ast.State):
                    out.setdefault((wf.name.text, part.name.text), part)
    return out


def _reachable(wf: ir.Workflow) -> set[str]:
    seen = {wf.initial}
    todo = [wf.initial]
    while todo:
        for t in wf.states[todo.pop()].transitions:
            if t.target is not None and t.target not in seen:
                seen.add(t.target)
                todo.append(t.target)
    return seen


def _used_facts(policy: ir.Policy) -> set[str]:
    """Fact paths some expression reads (or a parent object of them), or some transition sets."""
    used: set[str] = set()
    exprs: list[ir.Expr] = []
    for wf in policy.workflows.values():
        used.update(wf.requires)
        for s in wf.states.values():
            for t in s.transitions:
                exprs += [e for e in (t.guard, t.deadline, t.start) if e is not None]
                exprs += [a.value for a in t.assigns] + [v for e in t.emits for _, v in e.args]
                used.update(a.fact for a in t.assigns)
    for e in exprs:
        for path in _read_paths(e):
            used.update(
                f
                for f in policy.facts
                if f == path or f.startswith(path + ".") or path.startswith(f + ".")
            )
    return used


def _read_paths(e: ir.Expr) -> list[str]:
    checked = e.compiled.checked
    paths = (expr_ast.path_of(n) for n in expr_ast.walk(checked.root) if n.id in checked.inputs)
    return [".".join(p) for p in paths if p is not None]
