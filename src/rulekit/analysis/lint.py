"""Structural analyses of a checked policy: warnings about what it does, not how it is written.

Run by the checker on every policy that has no errors. Each finding is a
warning with a stable code (docs/diagnostics.md):

- RK0701 a state no case can reach from the initial state;
- RK0702 a non-final state with no way out at all;
- RK0703 a non-final state where a case can wait forever (no deadline, no
  automatic transition) unless it is marked ``waits "reason"``;
- RK0704 a fact no condition, deadline, assignment or effect uses;
- RK0705 an event no transition takes;
- RK0706 an `after` deadline a shorter one always beats;
- RK0707 two transitions of a state on one event (or two automatic ones)
  whose conditions can both hold: the first written is taken;
- RK0708 a transition that can never be taken: its condition never holds,
  or earlier transitions on the same event always take it first;
- RK0709 (info) two such conditions the guard analysis cannot decide on
  (:mod:`rulekit.analysis.guards` says which conditions it decides);
- RK0711 a plain `when` that time alone would make true, in a state where cases
  rest: `as soon as` takes it at that instant;
- RK0712 a `stay` that sets a fact a deadline of its state counts from, without
  `reschedule`: the deadline keeps the value it was counted from.
- RK0713 a fallback written by hand (`has(x) ? x : D`) where the fact has a default,
  or where the fact could declare ``D`` as its default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from rulekit.analysis import guards
from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.errors import EvaluationError
from rulekit.core.source import Source, Span
from rulekit.expr import ast as expr_ast
from rulekit.expr import stdlib
from rulekit.expr.interpreter import Interpreter
from rulekit.policy import ast, ir, soon


def lint(tree: ast.Policy, policy: ir.Policy) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    states = _state_nodes(tree)
    for wf in policy.workflows.values():
        reached = reachable(wf)
        for name, state in wf.states.items():
            node = states.get((wf.name, name))
            if node is None:
                continue
            where = f"workflow {wf.name}"
            if name not in reached:
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
            elif (
                not state.deadlines
                and not state.automatic
                and state.waits is None
                and not _clocked(wf, state)
            ):
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
        out.extend(_competing(policy, wf, states))
        out.extend(_waiting_for_time(wf, states, _defaulted(policy)))
        out.extend(_kept_deadlines(wf, states))
    used_facts = _used_facts(policy)
    for decl in tree.facts:
        if (
            decl.path.text in policy.facts
            and decl.path.text not in used_facts
            and decl.record is None
        ):
            out.append(
                diag.make(
                    "RK0704",
                    f"fact `{decl.path.text}` is declared but nothing uses it",
                    decl.source,
                    decl.path.span,
                    help='read it in a condition, set it, remove it, or keep it on purpose: record "why"',
                    severity="warning",
                )
            )
    out.extend(_fallbacks(policy))
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


def constant(e: ir.Expr) -> tuple[Any] | None:
    """The value of an expression that reads no facts and not `now` (in a 1-tuple, since
    the value may be null), or None when it depends on them or fails.

    Computed by the reference interpreter: one evaluation does not pay for generating
    and compiling Python code."""
    checked = e.compiled.checked
    if checked.variables or checked.uses_now:
        return None
    try:
        return (Interpreter(checked).evaluate({}, None),)
    except EvaluationError:
        return None


def fixed_delay(t: ir.Transition) -> timedelta | None:
    """The delay of an `after` deadline that counts from entry, needs no facts and is
    not moved by a modifier (`rolled to a working day`, `end of day`)."""
    if t.kind != "after" or t.start is not None or t.deadline is None:
        return None
    if t.rolled is not None or t.end_of_day:
        return None
    value = constant(t.deadline)
    return value[0] if value is not None and isinstance(value[0], timedelta) else None


def _dead_deadlines(wf: ir.Workflow, states: dict[tuple[str, str], ast.State]) -> list[Diagnostic]:
    """`after` deadlines that a shorter, unguarded one leaving the same state always beats."""
    out = []
    for name, state in wf.states.items():
        fixed = [(d, fixed_delay(d)) for d in state.deadlines]
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


def _waiting_for_time(
    wf: ir.Workflow, states: dict[tuple[str, str], ast.State], defaulted: frozenset[str]
) -> list[Diagnostic]:
    """RK0711: a plain `when` that time alone would make true, in a state where cases rest.

    A `when` is judged as the case enters the state and when its facts change, never
    because time passed; one that `as soon as` could schedule (it becomes true at an
    instant :mod:`rulekit.policy.soon` computes) is pointed at. A state the case always
    leaves as it enters (its `when` conditions cannot all be false) is not a resting
    place: there the plain `when` is right. A condition time only makes false (a fast
    refund `since(order.paid_at) <= 6h`) gets no advice."""
    out = []
    seen: set[object] = set()
    for name, state in wf.states.items():
        node = states.get((wf.name, name))
        plain = [t for t in state.automatic if t.kind == "auto" and t.guard is not None]
        timed = [t for t in plain if t.guard is not None and t.guard.compiled.checked.uses_now]
        if node is None or state.final or not timed:
            continue
        conditions = [
            (guards.Condition(t.guard.compiled if t.guard else None, defaulted), False)
            for t in state.automatic
        ]
        if guards.satisfiable(conditions).answer == "no":
            continue  # the case never rests here
        for t in timed:
            assert t.guard is not None
            checked = t.guard.compiled.checked
            if t.at in seen or not isinstance(soon.solve(checked), soon.Solved):
                continue
            seen.add(t.at)
            out.append(
                diag.make(
                    "RK0711",
                    f"this `when` waits for time in state `{name}` of workflow {wf.name}, but "
                    "time passing alone never takes it: it is judged only when the case "
                    "enters the state or its facts change",
                    *_place(t, node),
                    help="to take it at the instant it becomes true, write `as soon as` "
                    "instead of `when` (docs/language.md, As soon as)",
                    severity="warning",
                )
            )
    return out


def _kept_deadlines(wf: ir.Workflow, states: dict[tuple[str, str], ast.State]) -> list[Diagnostic]:
    """RK0712: a `stay` without `reschedule` sets a fact an `after`/`at` deadline of its
    state counts from: the deadline stays where the old value put it (docs/time.md, "In
    deadlines"). An `assumption` on the stay says that is meant, and silences it."""
    out = []
    seen: set[object] = set()
    for name, state in wf.states.items():
        node = states.get((wf.name, name))
        if node is None or state.final:
            continue
        counts = [
            (d, path)
            for d in state.deadlines
            if d.kind in ("after", "at")
            for e in (d.deadline, d.start)
            if e is not None
            for path in _read_paths(e)
        ]
        for t in state.transitions:
            if t.target is not None or t.reschedule or t.assumption is not None or t.at in seen:
                continue
            hit = next(
                ((a.fact, d) for a in t.assigns for d, path in counts if _overlaps(a.fact, path)),
                None,
            )
            if hit is None:
                continue
            seen.add(t.at)
            fact, d = hit
            out.append(
                diag.make(
                    "RK0712",
                    f"this `stay` sets `{fact}`, which the deadline `{d.written}` of state `{name}` of workflow {wf.name} counts "
                    "from, but the deadline keeps the time it was counted with",
                    *_place(t, node),
                    help="to count the state's deadlines again from the new value, add "
                    '`reschedule`; if keeping them is meant, say so: assumption "..." '
                    "(docs/time.md, In deadlines)",
                    severity="warning",
                )
            )
    return out


def _overlaps(fact: str, path: str) -> bool:
    """A fact set and a path read are the same fact, or one is an object of the other."""
    return fact == path or fact.startswith(path + ".") or path.startswith(fact + ".")


def _span_at(node: ast.State, at: ir.Position) -> Span:
    """The span of the line and column a compiled position names (in the state's source)."""
    lines = node.source.text.split("\n")
    offset = sum(len(line) + 1 for line in lines[: at.line - 1]) + at.column - 1
    return Span(offset, offset + 5)


@dataclass
class _Finding:
    """A guard finding, once for every state it holds in (a block applies to many)."""

    code: str
    #: the message, with {where} for the states
    message: str
    source: Source
    span: Span
    notes: list[str]
    help: str
    states: list[str] = field(default_factory=list)

    def diagnostic(self, workflow: str) -> Diagnostic:
        names = ", ".join(f"`{s}`" for s in self.states)
        where = f"state{'s' * (len(self.states) > 1)} {names} of workflow {workflow}"
        return diag.make(
            self.code,
            self.message.format(where=where),
            self.source,
            self.span,
            help=self.help,
            notes=self.notes,
            severity="info" if self.code == "RK0709" else "warning",
        )


def _competing(
    policy: ir.Policy, wf: ir.Workflow, states: dict[tuple[str, str], ast.State]
) -> list[Diagnostic]:
    """RK0707-RK0709: what the conditions of a state's transitions allow.

    The engine tries the transitions on an event that the sender may take, and
    the automatic ones, in the order of ``State.transitions`` (the state's own,
    then those of `every state` blocks and fragments): the first whose condition
    holds is taken. A deadline is not chosen among others (each fires when it
    is due): only a condition that never holds is reported for one.
    """
    found: dict[tuple[object, ...], _Finding] = {}
    actor = guards.actor_var(policy.actors)
    defaulted = _defaulted(policy)

    def report(key: tuple[object, ...], state: str, make: _Finding) -> None:
        found.setdefault(key, make).states.append(state)

    for name, state in wf.states.items():
        node = states.get((wf.name, name))
        if node is None:
            continue
        for group in (*state.by_event.values(), state.automatic):
            conditions = [
                guards.Condition(t.guard.compiled if t.guard else None, defaulted) for t in group
            ]
            for i in range(len(group)):
                for key, finding in _judge(group, conditions, i, actor, node):
                    report(key, name, finding)
        for d in state.deadlines:
            if (
                d.guard is not None
                and guards.satisfiable(
                    [(guards.Condition(d.guard.compiled, defaulted), True)]
                ).answer
                == "no"
            ):
                report(("RK0708", d.at), name, _never(d, node))
    return [f.diagnostic(wf.name) for f in found.values()]


def _judge(
    group: Sequence[ir.Transition],
    conditions: Sequence[guards.Condition],
    i: int,
    actor: guards.Var,
    node: ast.State,
) -> list[tuple[tuple[object, ...], _Finding]]:
    """Findings about ``group[i]`` against the transitions before it."""
    t, condition = group[i], conditions[i]
    event = t.kind == "event"
    given = {actor: t.actors} if event else None
    if t.guard is not None and guards.satisfiable([(condition, True)], given).answer == "no":
        return [(("RK0708", t.at), _never(t, node))]
    # For each sender, the earlier transitions it may take.
    senders = t.actors if event else ("",)
    earlier = {a: [j for j in range(i) if not event or a in group[j].actors] for a in senders}
    competing = sorted({j for js in earlier.values() for j in js})
    if not competing:
        return []
    taken = [
        guards.satisfiable(
            [(condition, True), *((conditions[j], False) for j in js)],
            {actor: (a,)} if event else None,
        )
        for a, js in earlier.items()
    ]
    if all(v.answer == "no" for v in taken):
        return [(("RK0708", t.at), _shadowed(t, [group[j] for j in competing], node))]
    if t.guard is None:
        return []  # a transition without a condition after others is their fallback
    out: list[tuple[tuple[object, ...], _Finding]] = []
    for j in competing:
        e = group[j]
        shared = tuple(a for a in t.actors if a in e.actors)
        both = guards.satisfiable(
            [(conditions[j], True), (condition, True)], {actor: shared} if event else None
        )
        if both.answer == "yes":
            reads_actor = any(
                "actor" in c.expr.variables for c in (condition, conditions[j]) if c.expr
            )
            shown = [
                f"{k} = {stdlib.render(v)}" for k, v in both.witness if k != "actor" or reads_actor
            ]
            out.append(
                (
                    ("RK0707", t.at, e.at),
                    _Finding(
                        "RK0707",
                        f"the conditions of two {_what(t)} transitions in {{where}} can both hold; the first written is taken",
                        *_place(t, node),
                        [
                            f"the earlier one: {_shown(e)}",
                            "both hold when " + (", ".join(shown) or "anything"),
                        ],
                        "make the conditions exclusive, or merge the transitions",
                    ),
                )
            )
        elif both.answer == "unknown":
            out.append(
                (
                    ("RK0709", t.at, e.at),
                    _Finding(
                        "RK0709",
                        f"cannot tell whether the conditions of two {_what(t)} transitions in {{where}} can both hold",
                        *_place(t, node),
                        [
                            f"the earlier one: {_shown(e)}",
                            "beyond the analysis: " + ", ".join(f"`{u}`" for u in both.unknown),
                        ],
                        "check by hand that they exclude each other (docs/diagnostics.md, RK0709)",
                    ),
                )
            )
    return out


def _never(t: ir.Transition, node: ast.State) -> _Finding:
    verb = "fire" if t.kind in ("after", "at") else "be taken"
    return _Finding(
        "RK0708",
        f"the {_what(t)} transition in {{where}} can never {verb}: its condition never holds",
        *_place(t, node),
        [],
        "fix the condition, or remove the transition",
    )


def _shadowed(t: ir.Transition, earlier: list[ir.Transition], node: ast.State) -> _Finding:
    return _Finding(
        "RK0708",
        f"the {_what(t)} transition in {{where}} can never be taken: whenever its condition holds, "
        f"an earlier one is taken first",
        *_place(t, node),
        [f"earlier: {_shown(e)}" for e in earlier],
        "narrow the earlier conditions, move this transition before them, or remove it",
    )


def _what(t: ir.Transition) -> str:
    if t.kind == "event":
        return f"`on {t.event}`"
    if t.kind == "auto":
        return "automatic"
    return f"`{t.kind} {t.deadline.text if t.deadline else ''}`"


def _shown(t: ir.Transition) -> str:
    """A transition in a note: its line, condition and target."""
    line = f"line {t.at.line}: " if t.at is not None else ""
    cond = f"when {t.guard.text} " if t.guard is not None else ""
    return f"{line}{cond}-> {t.target or 'stay'}"


def _place(t: ir.Transition, node: ast.State) -> tuple[Source, Span]:
    """Where to point for ``t``: its condition, or where it was written."""
    if t.guard is not None:
        checked = t.guard.compiled.checked
        return checked.source, checked.root.span
    assert t.at is not None
    return node.source, _span_at(node, t.at)


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


def _defaulted(policy: ir.Policy) -> frozenset[str]:
    """The facts with a default: never unset, so `has()` of one always holds."""
    return frozenset(f.path for f in policy.facts.values() if f.default is not None)


def _clocked(wf: ir.Workflow, state: ir.State) -> bool:
    """Whether a clock may move a case out of ``state``: its expiry applies there and it
    is not paused there."""
    return any(
        (not c.expiry_in or state.name in c.expiry_in)
        and state.name not in c.paused_in
        and c.expiry.target is not None
        for c in wf.clocks.values()
    )


def reachable(wf: ir.Workflow) -> set[str]:
    """The states a case can reach, by transitions and by the expiry of clocks."""
    seen = {wf.initial}
    todo = [wf.initial]
    while todo:
        state = wf.states[todo.pop()]
        expiries = [
            c.expiry
            for c in wf.clocks.values()
            if not state.final and (not c.expiry_in or state.name in c.expiry_in)
        ]
        for t in (*state.transitions, *expiries):
            if t.target is not None and t.target not in seen:
                seen.add(t.target)
                todo.append(t.target)
    return seen


def _expressions(policy: ir.Policy) -> list[ir.Expr]:
    """Every expression of the policy: named conditions and values, and those of each
    workflow's transitions and clocks (one written in a fragment, once per use)."""
    exprs: list[ir.Expr] = [c.expr for c in policy.conditions.values()]
    for wf in policy.workflows.values():
        transitions = [t for s in wf.states.values() for t in s.transitions]
        for c in wf.clocks.values():
            exprs += [e for e in (c.length, c.counting_from) if e is not None]
            transitions.append(c.expiry)
        for t in transitions:
            exprs += [e for e in (t.guard, t.deadline, t.start) if e is not None]
            exprs += [a.value for a in t.assigns] + [v for e in t.emits for _, v in e.args]
            exprs += [a.by for a in t.clocks if a.by is not None]
    return exprs


def _used_facts(policy: ir.Policy) -> set[str]:
    """Fact paths some expression reads (or a parent object of them), or some transition sets."""
    used: set[str] = set()
    exprs = _expressions(policy)
    for wf in policy.workflows.values():
        used.update(wf.requires)
        transitions = [t for s in wf.states.values() for t in s.transitions]
        transitions += [c.expiry for c in wf.clocks.values()]
        used.update(a.fact for t in transitions for a in t.assigns)
    # A path reads the fact it names, the facts under it and the facts above it: looked
    # up by prefix, so the work grows with the paths, not with paths times facts.
    below: dict[str, list[str]] = {}
    for f in policy.facts:
        parts = f.split(".")
        for i in range(1, len(parts)):
            below.setdefault(".".join(parts[:i]), []).append(f)
    for path in {path for e in exprs for path in _read_paths(e)}:
        parts = path.split(".")
        used.update(
            p for i in range(1, len(parts) + 1) if (p := ".".join(parts[:i])) in policy.facts
        )
        used.update(below.get(path, ()))
    return used


@dataclass(frozen=True)
class _Fallback:
    """`has(x) ? x : D`, `!has(x) ? D : x` or `a.?f.orValue(D)` on the fact ``path``."""

    expr: ir.Expr
    node: expr_ast.Expr
    path: str
    fallback: expr_ast.Expr
    #: the reads of the fact the pattern is made of (the `has`, the read, the `.?`)
    reads: frozenset[int]


def _fallback(e: ir.Expr, node: expr_ast.Expr) -> _Fallback | None:
    checked = e.compiled.checked
    if isinstance(node, expr_ast.Conditional):
        cond, then, otherwise = node.cond, node.then, node.otherwise
        if isinstance(cond, expr_ast.Unary) and cond.op == "!":
            cond, then, otherwise = cond.operand, otherwise, then
        if not isinstance(cond, expr_ast.Has) or cond.operand.id not in checked.inputs:
            return None
        base = expr_ast.path_of(cond.operand)
        if base is None or then.id not in checked.inputs:
            return None
        path = (*base, cond.field)
        if expr_ast.path_of(then) != path:
            return None
        return _Fallback(e, node, ".".join(path), otherwise, frozenset({cond.id, then.id}))
    if (
        isinstance(node, expr_ast.Call)
        and node.function == "orValue"
        and node.target is not None
        and len(node.args) == 1
        and node.target.id in checked.inputs
        and (sel := _optional_field(node.target)) is not None
        and (base := expr_ast.path_of(sel[0])) is not None
    ):
        at = ".".join((*base, sel[1]))
        return _Fallback(e, node, at, node.args[0], frozenset({node.target.id}))
    return None


def _fallbacks(policy: ir.Policy) -> list[Diagnostic]:
    """RK0713: a fact read with a fallback written by hand (`has(x) ? x : D`,
    `a.?x.orValue(D)`). Where the fact has a default, `has()` of it is always true and
    the fallback is never used. Where it is optional without one, and every read of it
    in the policy falls back to the same constant, it can declare that constant as its
    default (`x: T = D`) and be read as itself: once, and seen by the guard analysis."""
    found: list[_Fallback] = []
    plain: set[str] = set()  # paths read otherwise than through a fallback
    seen: set[ir.Position] = set()
    for e in _expressions(policy):
        checked = e.compiled.checked
        if e.at in seen:
            continue  # a fragment's or a block's expression, written once
        seen.add(e.at)
        here = [f for n in expr_ast.walk(checked.root) if (f := _fallback(e, n)) is not None]
        covered = {i for f in here for i in f.reads}
        plain.update(path for n, path in _reads(e) if n.id not in covered)
        found += here
    out: list[Diagnostic] = []
    by_fact: dict[str, list[_Fallback]] = {}
    for f in found:
        fact = policy.facts.get(f.path)
        if fact is None or not fact.optional:
            continue
        if fact.default is not None:
            out.append(_fallback_diagnostic(f, fact, None))
        else:
            by_fact.setdefault(f.path, []).append(f)
    for path, uses in by_fact.items():
        if any(p == path or p.startswith(path + ".") or path.startswith(p + ".") for p in plain):
            continue  # read without the fallback too: a default would change that read
        values = [_constant_of(f) for f in uses]
        first = values[0]
        if first is None or any(v is None or v[0] != first[0] for v in values):
            continue  # not one constant: no single default says it
        out.extend(_fallback_diagnostic(f, policy.facts[path], first[0]) for f in uses)
    return out


def _constant_of(f: _Fallback) -> tuple[Any] | None:
    """The fallback's value when it is a constant a default could be (no fact, no `now`,
    no named value), in a 1-tuple; else None."""
    checked = f.expr.compiled.checked
    if any(n.id in checked.named for n in expr_ast.walk(f.fallback)):
        return None
    try:
        return (Interpreter(checked).constant(f.fallback),)
    except EvaluationError:
        return None


def _fallback_diagnostic(f: _Fallback, fact: ir.Fact, value: Any) -> Diagnostic:
    checked = f.expr.compiled.checked
    written = " ".join(checked.source.snippet(f.node.span).split())
    fallback = " ".join(checked.source.snippet(f.fallback.span).split())
    if value is None:  # the fact has a default
        message = (
            f"`{written}`: `{fact.path}` has a default, so it is always set and the "
            "fallback is never used"
        )
        help_ = f"write `{fact.path}` (docs/language.md, Fact defaults)"
    else:
        message = (
            f"`{written}` falls back to a constant wherever `{fact.path}` is read: "
            "it can be the fact's default"
        )
        help_ = (
            f"declare `{fact.path}: {fact.type} = {fallback}` (in YAML `default: {fallback}`) "
            f"and write `{fact.path}` (docs/language.md, Fact defaults)"
        )
    return diag.make("RK0713", message, checked.source, f.node.span, help=help_, severity="warning")


def _optional_field(n: expr_ast.Expr) -> tuple[expr_ast.Expr, str] | None:
    """What `a.?f` (a call of `_?._`) selects from: (`a`, "f"); None for any other node."""
    if isinstance(n, expr_ast.Call) and n.function == expr_ast.OPTIONAL_SELECT:
        operand, field = n.args
        if isinstance(field, expr_ast.Literal) and isinstance(field.value, str):
            return operand, field.value
    return None


def _read_paths(e: ir.Expr) -> list[str]:
    """The fact paths ``e`` reads, each as far as it is spelt: `order.amount` reads that
    leaf only, not every fact of `order`; `has(qux.a)` reads `qux.a`. A whole object read
    on its own (`size(order.items)`, `order == ...`) reads all its facts."""
    return [path for _, path in _reads(e)]


def _reads(e: ir.Expr) -> list[tuple[expr_ast.Expr, str]]:
    """The reads of :func:`_read_paths`, each with the node that reads it."""
    checked = e.compiled.checked
    nodes = expr_ast.walk(checked.root)
    reads = [
        n
        for n in nodes
        if n.id in checked.inputs
        or (isinstance(n, expr_ast.Has) and n.operand.id in checked.inputs)
    ]
    # `order` in `order.amount` (or `order.?coupon`) is read only to reach the field
    reached = {n.operand.id for n in reads if isinstance(n, expr_ast.Select | expr_ast.Has)}
    reached.update(sel[0].id for n in reads if (sel := _optional_field(n)) is not None)
    paths: list[tuple[expr_ast.Expr, str]] = []
    for n in reads:
        if n.id in reached:
            continue
        if isinstance(n, expr_ast.Has):
            inner = expr_ast.path_of(n.operand)
            path = None if inner is None else (*inner, n.field)
        elif (sel := _optional_field(n)) is not None:
            inner = expr_ast.path_of(sel[0])
            path = None if inner is None else (*inner, sel[1])
        else:
            path = expr_ast.path_of(n)
        if path is not None:
            paths.append((n, ".".join(path)))
    return paths
