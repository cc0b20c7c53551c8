"""The engine: runs cases of a compiled policy, one atomic step at a time.

Semantics (../shared/contracts/scenarios.md, the time rules):

- a step (open, send, update, advance) runs to completion or changes nothing:
  a refused step raises :class:`StepRefused` and the case is as it was;
- deadlines due *before* a step's time fire first, in due order, each
  recorded at its due time (a deadline due exactly at an event's time fires
  after it, at the first moment later); then the event's transition; then
  automatic transitions chain until none holds; entering a state schedules
  its deadlines, counted from the entry time;
- time always comes from the caller (``at=`` or the engine's clock); the
  engine never reads the wall clock.

The engine keeps no per-case state of its own: a store can persist a
:class:`Case` between steps without changing what a step does.
"""

from __future__ import annotations

import builtins
import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from rulekit.core import calendar
from rulekit.core.errors import EvaluationError, StepRefused
from rulekit.expr import ast as expr_ast
from rulekit.expr.checker import CheckedExpr
from rulekit.expr.convert import ConversionError, convert
from rulekit.expr.expression import Evaluator
from rulekit.expr.stdlib import format_duration
from rulekit.policy import ir
from rulekit.runtime.model import Case, Cause, ClockState, Effect, Record, StepResult

#: Automatic transitions taken in one step before the engine calls it a loop.
MAX_CHAIN = 64
#: the latest time a case can reach: a deadline after it cannot be represented
_LATEST = datetime.max.replace(tzinfo=UTC)
_EMPTY: Mapping[str, Any] = {}
_NO_CAUSE = Cause(None)
_NO_DEADLINES: list[tuple[datetime, int, ir.Transition, datetime]] = []
_ZERO = timedelta(0)
#: the first moment after an instant: when an `as soon as` condition is judged at its instant
MOMENT = timedelta(microseconds=1)


def clock_due(start: datetime, length: timedelta | calendar.BoundPeriod) -> datetime:
    """When a clock of ``length`` counted from ``start`` runs out, and where an extension
    ends: the one place a clock's length becomes an instant. A calendar period counts on
    the calendar from ``start`` (docs/time.md); a paused clock keeps its remaining time
    as an exact length (docs/time.md, "Clocks").

    Raises OverflowError past the latest time rulekit represents (a calendar's own
    errors included: the caller refuses the step)."""
    if isinstance(length, calendar.BoundPeriod):
        try:
            return length.after(start)
        except calendar.CalendarError as e:
            raise OverflowError(str(e)) from None
    return start + length


class Clock(Protocol):
    def now(self) -> datetime: ...


#: told of each guard a step evaluates: the transition, and whether its guard held
GuardSeen = Callable[[ir.Transition, bool], None]


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A transition prepared for running: compiled functions and lookups resolved."""

    tr: ir.Transition
    index: int
    guard: Evaluator | None
    guard_reads_event: bool
    #: any of its expressions (guard, assignments, effect arguments) reads `event` or `actor`
    reads_event: bool
    reads: tuple[tuple[str, tuple[str, ...]], ...]
    actors: frozenset[str]
    target: ir.State | None
    #: the target state schedules no deadline on entry (entering it cannot fail)
    target_waits_for_nothing: bool
    assigns: tuple[tuple[tuple[str, ...], Evaluator], ...]
    emits: tuple[tuple[str, tuple[tuple[str, Evaluator], ...]], ...]
    rule: str
    #: a deadline transition's `after`/`at` value, and what an `after` counts from
    deadline: Evaluator | None
    start: Evaluator | None
    #: what it does to clocks: (verb, clock, the length of an `extend`), and the clocks
    #: its event starts (`starts on`) that it does not name itself
    clocks: tuple[tuple[str, str, Evaluator | None], ...] = ()
    starts: tuple[str, ...] = ()
    #: a `stay ... reschedule`: its state's deadlines are counted again after it
    reschedule: bool = False


@dataclass(frozen=True, slots=True)
class _PreparedState:
    """A state's transitions, indexed for the engine."""

    by_event: Mapping[str, tuple[_Prepared, ...]]
    #: event -> actor -> the transitions that actor's event may take, in order
    by_actor: Mapping[str, Mapping[str, tuple[_Prepared, ...]]]
    automatic: tuple[_Prepared, ...]
    deadlines: tuple[_Prepared, ...]
    #: it has `as soon as` transitions (their instants move when facts change)
    soon: bool = False


@dataclass(frozen=True, slots=True)
class _PreparedClock:
    """A clock prepared for running (see :class:`rulekit.policy.ir.Clock`)."""

    name: str
    length: Evaluator
    counting: Evaluator | None
    paused: frozenset[str]
    #: the states its expiry applies in (None: every non-final one)
    expiry_in: frozenset[str] | None
    expiry: _Prepared
    clock: ir.Clock


class Engine:
    """Runs cases of ``policy``. ``clock`` gives the time when a call passes no ``at=``.

    >>> engine = Engine(rulekit.load("rules/kuaishou_after_sales.rk"), clock)  # doctest: +SKIP
    >>> case = engine.open("refund_only", facts)                               # doctest: +SKIP
    >>> engine.send(case, "approve", by="merchant")                            # doctest: +SKIP
    """

    def __init__(self, policy: ir.Policy, clock: Clock | None = None) -> None:
        self.policy = policy
        self.clock = clock
        #: when set, told of every guard a step (not a query such as :meth:`allowed`)
        #: evaluates, and its outcome: what scenario coverage counts (tools/coverage.py)
        self.guard_seen: GuardSeen | None = None
        self._time_rules = policy.time_rules  # the zone and calendars deadlines count in
        self._events = policy.events
        self._states: dict[int, _PreparedState] = {}
        #: per workflow (by id), its clocks in declaration order
        self._clocks: dict[int, dict[str, _PreparedClock]] = {}
        for wf in policy.workflows.values():
            for state in wf.states.values():
                self._states[id(state)] = self._prepare(wf, state)
            self._clocks[id(wf)] = {
                name: _PreparedClock(
                    name,
                    c.length.compiled.function,
                    c.counting_from.compiled.function if c.counting_from is not None else None,
                    frozenset(c.paused_in),
                    frozenset(c.expiry_in) or None,
                    _prepared(wf, c.expiry, -1),
                    c,
                )
                for name, c in wf.clocks.items()
            }
        self._simple = self._simple_transitions()
        self._fact_types = {path: f.type for path, f in policy.facts.items()}
        self._required = [path for path, f in policy.facts.items() if not f.optional]
        #: facts declared with a default: set to it whenever they would be unset (at
        #: opening without them, cleared by an update or a `set` to null)
        self._defaults = {p: f.default for p, f in policy.facts.items() if f.default is not None}
        self._tree = _fact_tree(policy.facts)
        #: the declared fact groups (``order`` of ``order.amount``) as a tree of empty maps,
        #: shared by every case (facts are replaced, never changed in place)
        self._groups = _groups(self._tree)

    # -- preparing the compiled workflow -----------------------------------------------
    def _simple_transitions(self) -> set[int]:
        """Event transitions after which nothing can fail: no assignment or effect to
        evaluate, no automatic transition to settle, no deadline that could be overdue
        on entry. Such a step needs no snapshot to undo."""
        simple: set[int] = set()
        clocked = {
            id(st)
            for wf in self.policy.workflows.values()
            if wf.clocks
            for st in wf.states.values()
        }
        for key, s in self._states.items():
            if key in clocked:
                continue  # every step may start, pause or resume a clock
            for plist in s.by_event.values():
                for p in plist:
                    if p.assigns or p.emits or p.reschedule:
                        continue
                    dest = self._states[id(p.target)] if p.target is not None else s
                    if dest.automatic:
                        continue
                    if p.target is not None and any(
                        d.tr.kind in ("at", "soon") or d.tr.start is not None
                        for d in dest.deadlines
                    ):
                        continue
                    simple.add(id(p))
        return simple

    def _prepare(self, wf: ir.Workflow, state: ir.State) -> _PreparedState:
        prepared = [_prepared(wf, t, i) for i, t in enumerate(state.transitions)]
        by_event: dict[str, list[_Prepared]] = {}
        for p in prepared:
            if p.tr.kind == "event" and p.tr.event is not None:
                by_event.setdefault(p.tr.event, []).append(p)
        return _PreparedState(
            by_event={k: tuple(v) for k, v in by_event.items()},
            by_actor={
                event: {
                    actor: tuple(p for p in plist if actor in p.actors)
                    for actor in sorted({a for p in plist for a in p.actors})
                }
                for event, plist in by_event.items()
            },
            automatic=tuple(p for p in prepared if p.tr.kind in ("auto", "soon")),
            deadlines=tuple(p for p in prepared if p.tr.kind in ("after", "at", "soon")),
            soon=any(p.tr.kind == "soon" for p in prepared),
        )

    # -- time ------------------------------------------------------------------------------
    def _time(self, at: datetime | None, case: Case | None) -> datetime:
        if at.__class__ is datetime and at.tzinfo is not None and (case is None or at >= case.now):
            return at  # the common case, checked first
        if at is None:
            if self.clock is None:
                raise ValueError("no time given: pass at= or give the engine a clock")
            at = self.clock.now()
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise ValueError("times must be timezone-aware datetimes")
        if case is not None and at < case.now:
            raise ValueError(
                f"time cannot go back: the case is at {case.now.isoformat()}, "
                f"the step at {at.isoformat()}"
            )
        return at

    # -- opening ---------------------------------------------------------------------------
    def open(
        self,
        workflow: str,
        facts: Mapping[str, Any],
        *,
        at: datetime | None = None,
        id: str | None = None,
        by: str | None = None,
    ) -> Case:
        """Open a case of ``workflow`` with its initial facts (nested maps or dotted keys).

        ``by`` is the actor supplying the facts, when it is not the integration: it may
        supply only the facts the policy declares ``by`` it (``fact_not_allowed``).
        Raises :class:`StepRefused` ``invalid_fact`` for a missing required fact, an
        undeclared one, or a value of the wrong type; ``unknown_workflow`` for a workflow the
        policy does not have.
        """
        wf = self.policy.workflows.get(workflow)
        if wf is None:
            known = ", ".join(self.policy.workflows)
            raise StepRefused(
                "unknown_workflow",
                f"no workflow {workflow!r} in policy {self.policy.name} (workflows: {known})",
            )
        t = self._time(at, None)
        values = self._facts(facts, by)
        for path, default in self._defaults.items():
            if values.get(path) is None:
                values[path] = default
        missing = [p for p in (*self._required, *wf.requires) if values.get(p) is None]
        if missing:
            raise StepRefused("invalid_fact", f"required fact `{missing[0]}` is missing")
        tree: dict[str, Any] = {}
        for path, value in values.items():
            _set(tree, tuple(path.split(".")), value)
        # Every declared group is there, empty or not: `has(offer.service)` is false (and
        # `!has(...)` true) while no fact of `offer` is set, rather than an error.
        _fill(tree, self._groups)
        case = Case(wf, wf.states[wf.initial], tree, t, id)
        with _Step(case, self.guard_seen) as step:
            step.add(
                case,
                # The facts as opened: shared with the case (facts are replaced, never changed in place).
                Record(0, t, "open", target=wf.initial, data=tree, workflow=wf.name),
            )
            self._enter(case, case.state, t)
            for c in self._clocks[builtins.id(wf)].values():
                if c.clock.starts == "open":
                    self._start_clock(case, c, t, step, "started")
            self._settle(case, t, step)
            self._fire_due(case, t, step)  # a deadline overdue on entry does not wait
        return case

    def _facts(self, given: Mapping[str, Any], by: str | None) -> dict[str, Any]:
        """Flatten and convert facts to their declared types (invalid_fact otherwise).

        ``by``, an actor rather than the integration, must be allowed to supply each
        declared fact it gives (fact_not_allowed, before any value is looked at).
        """
        if not isinstance(given, Mapping):
            raise StepRefused("invalid_fact", "facts must be a map of fact paths to values")
        items = list(_flatten(given, self._tree))
        if by is not None:
            for path, _ in items:
                fact = self.policy.facts.get(path)
                if fact is not None and by not in fact.by:
                    may = [f.path for f in self.policy.facts.values() if by in f.by]
                    raise StepRefused(
                        "fact_not_allowed",
                        f"a {by} may not supply `{path}`: "
                        + (
                            "only the integration may"
                            if not fact.by
                            else f"only the integration and {', '.join(fact.by)} may"
                        )
                        + (f" (a {by} may supply {', '.join(may)})" if may else ""),
                    )
        out: dict[str, Any] = {}
        for path, value in items:
            t = self._fact_types.get(path)
            if t is None:
                raise StepRefused("invalid_fact", f"`{path}` is not a declared fact")
            if value is None and self.policy.facts[path].optional:
                out[path] = None
                continue
            try:
                out[path] = convert(value, t, path)
            except ConversionError as e:
                raise StepRefused("invalid_fact", str(e)) from None
        return out

    # -- steps -----------------------------------------------------------------------------
    def send(
        self,
        case: Case,
        event: str,
        by: str,
        data: Mapping[str, Any] | None = None,
        *,
        at: datetime | None = None,
        key: str | None = None,
    ) -> StepResult:
        """Deliver ``event`` from actor ``by`` with payload ``data`` at time ``at``."""
        if key is not None and case.keys and key in case.keys:
            return replace(case.keys[key], repeated=True)
        # The common time (aware, not before the case's) is taken as it is; _time
        # reads the clock or says what is wrong with the others.
        t = (
            at
            if at.__class__ is datetime and at.tzinfo is not None and at >= case.now
            else self._time(at, case)
        )
        decl = self._events.get(event)
        if decl is None:
            raise StepRefused("unknown_event", f"the policy declares no event `{event}`")
        if (case.deadlines and case.deadlines[0][0] < t) or (case.clocks and _clock_due(case, t)):
            return self._send_step(case, decl, by, data, t, key, None)
        chosen, payload, variables = self._choose(case, decl, by, data, t)
        if id(chosen) not in self._simple:
            return self._send_step(case, decl, by, data, t, key, (chosen, payload, variables))
        # The common case, with nothing that could fail once the case changes (no
        # assignments or effects to evaluate, nothing to settle or fire after it):
        # the record is the step's only allocation.
        tr, target = chosen.tr, chosen.target
        record = Record(
            case.base + len(case.history),
            t,
            "event",
            case.state.name,
            target.name if target is not None else None,
            decl.name,
            by,
            payload or None,
            key,
            tr.cite,
            Cause(tr.guard.text, chosen.reads, variables) if tr.guard is not None else _NO_CAUSE,
            (),
            chosen.rule,
        )
        if target is None:
            target = case.state
        elif chosen.target_waits_for_nothing:
            case.state = target
            case.entered = t
            case.deadlines = _NO_DEADLINES  # as _enter does for a state without deadlines
        else:
            self._enter(case, target, t)  # first: it fails (a deadline past 9999) or not
        case.history.append(record)
        case.now = t
        result = StepResult((record,), target.name, target.final, ())
        if key is not None:
            if case.keys is None:
                case.keys = {}
            case.keys[key] = result
        return result

    def _choose(
        self, case: Case, decl: ir.Event, by: str, data: Mapping[str, Any] | None, t: datetime
    ) -> tuple[_Prepared, Mapping[str, Any], Mapping[str, Any]]:
        """The transition the event takes now, or the refusal (the case is not changed)."""
        event = decl.name
        state = case.state
        if state.final:
            raise StepRefused("case_closed", f"the case is closed (in final state `{state.name}`)")
        prepared = self._states[id(state)]
        mine = prepared.by_actor.get(event, _EMPTY).get(by)
        if not mine:
            candidates = prepared.by_event.get(event)
            if not candidates:
                raise StepRefused(
                    "event_not_allowed", f"`{event}` is not taken in state `{state.name}`"
                )
            senders = sorted({a for c in candidates for a in c.actors})
            raise StepRefused(
                "actor_not_allowed",
                f"`{by}` may not send `{event}` in state `{state.name}` (it may come from {', '.join(senders)})",
            )
        payload = self._payload(decl, data, t) if (data or decl.payload) else _EMPTY
        facts = case.facts
        variables: Mapping[str, Any] = facts
        for c in mine:
            guard = c.guard
            if guard is not None:
                if c.guard_reads_event and variables is facts:
                    variables = self._variables(case, payload, by)
                try:  # as _holds, inline: an error counts as not holding
                    held = guard(variables, t) is True
                except EvaluationError:
                    held = False
                if self.guard_seen is not None:
                    self.guard_seen(c.tr, held)
                if not held:
                    continue
            if c.reads_event and variables is facts:
                variables = self._variables(case, payload, by)
            return c, payload, variables
        guards = "; ".join(c.tr.guard.text for c in mine if c.tr.guard is not None)
        raise StepRefused("guard_failed", f"no condition for `{event}` holds now ({guards})")

    def _send_step(
        self,
        case: Case,
        decl: ir.Event,
        by: str,
        data: Mapping[str, Any] | None,
        t: datetime,
        key: str | None,
        chosen: tuple[_Prepared, Mapping[str, Any], Mapping[str, Any]] | None,
    ) -> StepResult:
        """The general step: deadlines due first, then the event, settling and firing, undone on failure."""
        with _Step(case, self.guard_seen) as step:
            if chosen is None:
                self._fire_due(case, t, step)
                chosen = self._choose(case, decl, by, data, t)
            p, payload, variables = chosen
            self._take(
                case,
                p,
                t,
                "event",
                step,
                variables,
                event=decl.name,
                actor=by,
                data=payload or None,
                key=key,
            )
            if self._states[id(case.state)].automatic:
                self._settle(case, t, step)
            if (case.deadlines and case.deadlines[0][0] < t) or (
                case.clocks and _clock_due(case, t)
            ):
                self._fire_due(case, t, step)  # a deadline overdue on entry does not wait
            case.now = t
            result = step.result(case)
        if key is not None:
            if case.keys is None:
                case.keys = {}
            case.keys[key] = result
        return result

    def update(
        self,
        case: Case,
        changes: Mapping[str, Any],
        *,
        at: datetime | None = None,
        by: str | None = None,
    ) -> StepResult:
        """Change facts from outside (``{"order.shipped": True}``); automatic transitions re-run.

        ``by``: as for :meth:`open`, the actor supplying the facts (None: the integration).
        """
        t = self._time(at, case)
        with _Step(case, self.guard_seen) as step:
            self._fire_due(case, t, step)
            if case.state.final:
                raise StepRefused(
                    "case_closed", f"the case is closed (in final state `{case.state.name}`)"
                )
            values = self._facts(changes, by)
            for path, value in values.items():
                if value is None and (path in self._required or path in case.workflow.requires):
                    raise StepRefused(
                        "invalid_fact", f"`{path}` is required: an update cannot remove it"
                    )
            for path, value in values.items():
                if value is None:  # cleared: back to its default, if it has one
                    value = self._defaults.get(path)
                _set_fact(case, tuple(path.split(".")), value)
            if self._states[id(case.state)].soon:
                self._reschedule(case, t)
            step.add(
                case,
                Record(
                    case.base + len(case.history),
                    t,
                    "update",
                    source=case.state.name,
                    data=_nested(values),
                ),
            )
            if self._states[id(case.state)].automatic:
                self._settle(case, t, step)
            if (case.deadlines and case.deadlines[0][0] < t) or (
                case.clocks and _clock_due(case, t)
            ):
                self._fire_due(case, t, step)  # a deadline overdue on entry does not wait
            case.now = t
            return step.result(case)

    def advance(self, case: Case, to: datetime | None = None) -> StepResult:
        """Move the case's time to ``to``: every deadline due before it fires, in order."""
        t = self._time(to, case)
        with _Step(case, self.guard_seen) as step:
            fired = self._fire_due(case, t, step)
            if fired:
                # An input record, so that replaying the history fires them again.
                step.add(
                    case,
                    Record(case.base + len(case.history), t, "advance", source=case.state.name),
                )
            case.now = t
            return step.result(case)

    # -- the pieces of a step -------------------------------------------------------------
    def _variables(
        self, case: Case, payload: Mapping[str, Any] | None, actor: str | None
    ) -> Mapping[str, Any]:
        if payload is None and actor is None:
            return case.facts
        v = dict(case.facts)
        v["event"] = payload if payload is not None else {}
        v["actor"] = actor
        return v

    def _payload(
        self, decl: ir.Event, data: Mapping[str, Any] | None, t: datetime
    ) -> dict[str, Any]:
        """The payload converted to its declared types (invalid_payload otherwise).

        A duration sent in a payload is a length of time someone is given (evidence within
        3 days): it must be positive and end within the engine's time range from now, or a
        deadline counted with it would be overdue at once or could never be represented.
        """
        data = {} if data is None else data
        if not isinstance(data, Mapping):
            raise StepRefused(
                "invalid_payload", "the payload must be a map of field names to values"
            )
        fields = {f.name: f.type for f in decl.payload}
        for name in data:
            if name not in fields:
                raise StepRefused(
                    "invalid_payload",
                    f"`{decl.name}` has no payload field `{name}`"
                    + (f" (fields: {', '.join(fields)})" if fields else ""),
                )
        out = {}
        for name, kind in fields.items():
            if name not in data:
                raise StepRefused("invalid_payload", f"`{decl.name}` needs payload field `{name}`")
            try:
                value = out[name] = convert(data[name], kind, f"{decl.name}.{name}")
            except ConversionError as e:
                raise StepRefused("invalid_payload", str(e)) from None
            if kind.kind == "duration" and not timedelta(0) < value <= _LATEST - t:
                raise StepRefused(
                    "invalid_payload",
                    f"`{decl.name}.{name}`: a duration in a payload must be positive and end "
                    f"by {_LATEST.date().isoformat()}, not {format_duration(value)}",
                )
        return out

    def _fire_due(self, case: Case, t: datetime, step: _Step) -> bool:
        """Fire every deadline and clock due strictly before ``t``, in due order (a state's
        deadlines before clocks due at the same time, clocks in declaration order), each
        at its due time."""
        fired = False
        while not case.state.final:
            first = case.deadlines[0] if case.deadlines and case.deadlines[0][0] < t else None
            clock = _clock_due(case, t) if case.clocks else None
            if first is None and clock is None:
                break
            if first is None or (clock is not None and clock[0] < first[0]):
                assert clock is not None
                self._expire(case, clock[1], step)
                fired = True
                continue
            due, _order, transition, entered = first
            case.deadlines = case.deadlines[1:]  # replaced, never changed in place (see _Step)
            p = self._prepared(case.state, transition)
            at = max(due, entered)  # overdue when its state was entered: fires at the entry
            variables = case.facts
            # `as soon as` is judged at the first moment after its instant (`now > x` is
            # true just after x), and taken at the instant itself, like any deadline.
            judged = at + MOMENT if transition.kind == "soon" else at
            if p.guard is not None:
                held = _holds(p.guard, variables, judged)
                if step.guard_seen is not None:
                    step.guard_seen(transition, held)
                if not held:
                    continue
            kind = "auto" if transition.kind == "soon" else "deadline"
            self._take(case, p, at, kind, step, variables)
            self._settle(case, at, step)
            case.now = at
            fired = True
        return fired

    # -- clocks ----------------------------------------------------------------------------
    def _expire(self, case: Case, name: str, step: _Step) -> None:
        """Clock ``name`` runs out: at its due time (or when it last started, if it was
        overdue then), its expiry is taken where it applies."""
        c = self._clocks[id(case.workflow)][name]
        state = case.clocks[name]
        assert state.due is not None
        at = max(state.due, state.since)
        _set_clock(case, name, ClockState("expired", None, None, at))
        if c.expiry_in is None or case.state.name in c.expiry_in:
            self._take(case, c.expiry, at, "expiry", step, case.facts, data={"clock": name})
            self._settle(case, at, step)
        else:
            self._clock_record(case, step, at, name, "expired")
        case.now = at

    def _start_clock(
        self, case: Case, c: _PreparedClock, at: datetime, step: _Step, action: str
    ) -> None:
        """Start (or restart) ``c`` at ``at``: its length, evaluated now, counted from
        ``counting from`` (default: now); paused at once in a state it is paused in.

        A length or start that cannot be computed (an optional fact not set) starts
        nothing, as a deadline that cannot be computed is not scheduled."""
        try:
            length = c.length(case.facts, at)
            origin = c.counting(case.facts, at) if c.counting is not None else at
            due = clock_due(origin, length)
        except EvaluationError:
            return
        except OverflowError:
            raise EvaluationError(
                f"clock `{c.name}` runs out after {_LATEST.date().isoformat()}, the latest "
                "time rulekit can represent"
            ) from None
        if case.state.name in c.paused:
            state = ClockState("paused", None, max(due - at, _ZERO), at)
        else:
            state = ClockState("running", due, None, at)
        _set_clock(case, c.name, state)
        self._clock_record(case, step, at, c.name, action)

    def _clocks_of(self, case: Case, p: _Prepared, at: datetime, step: _Step) -> None:
        """What transition ``p`` does to clocks: those its event starts, then its clauses."""
        clocks = self._clocks[id(case.workflow)]
        for name in p.starts:
            if name not in case.clocks:
                self._start_clock(case, clocks[name], at, step, "started")
        for verb, name, by in p.clocks:
            c, state = clocks[name], case.clocks.get(name)
            live = state is not None and state.status in ("running", "paused")
            if verb == "restart" or (verb == "start" and not live):
                self._start_clock(case, c, at, step, "restarted" if live else "started")
            elif verb == "stop" and live:
                _set_clock(case, name, ClockState("stopped", None, None, at))
                self._clock_record(case, step, at, name, "stopped")
            elif verb == "extend" and live and state is not None and by is not None:
                length = _evaluate(by, case.facts, at, f"extend {name}")
                try:
                    if state.due is not None:
                        extended = ClockState("running", clock_due(state.due, length), None, at)
                    else:
                        assert state.remaining is not None
                        # as if extended when it paused: the extension's end, from then
                        end = clock_due(state.since + state.remaining, length)
                        extended = ClockState("paused", None, end - state.since, state.since)
                except OverflowError:
                    raise EvaluationError(
                        f"extend {name}: it would run out after {_LATEST.date().isoformat()}"
                    ) from None
                _set_clock(case, name, extended)
                # a period is recorded as written (`2 months`): its length depends on when
                self._clock_record(
                    case,
                    step,
                    at,
                    name,
                    "extended",
                    length.text if isinstance(length, calendar.BoundPeriod) else length,
                )

    def _clocks_on_entry(self, case: Case, state: ir.State, at: datetime, step: _Step) -> None:
        """Entering ``state`` pauses the running clocks it is paused in, and resumes the
        paused ones it is not: with the time they had left, due that long after ``at``."""
        if state.final:
            return
        for name, c in self._clocks[id(case.workflow)].items():
            current = case.clocks.get(name)
            if current is None:
                continue
            if current.status == "running" and state.name in c.paused:
                assert current.due is not None
                left = max(current.due - at, _ZERO)
                _set_clock(case, name, ClockState("paused", None, left, at))
                self._clock_record(case, step, at, name, "paused")
            elif current.status == "paused" and state.name not in c.paused:
                assert current.remaining is not None
                try:
                    due = at + current.remaining
                except OverflowError:
                    raise EvaluationError(
                        f"clock `{name}` would run out after {_LATEST.date().isoformat()}"
                    ) from None
                _set_clock(case, name, ClockState("running", due, None, at))
                self._clock_record(case, step, at, name, "resumed")

    def _clock_record(
        self,
        case: Case,
        step: _Step,
        at: datetime,
        name: str,
        action: str,
        by: timedelta | str | None = None,
    ) -> None:
        """The `clock` record of what happened to clock ``name``, with where it stands now
        (``by``: an extension's duration, or a calendar period's text)."""
        state = case.clocks[name]
        data: dict[str, Any] = {"clock": name, "action": action}
        if by is not None:
            data["by"] = by
        if state.due is not None:
            data["due"] = state.due
        if state.remaining is not None:
            data["remaining"] = state.remaining
        step.add(
            case,
            Record(case.base + len(case.history), at, "clock", source=case.state.name, data=data),
        )

    def _reschedule(self, case: Case, at: datetime) -> None:
        """The facts changed: the instants of the state's `as soon as` transitions again."""
        kept = [d for d in case.deadlines if d[2].kind != "soon"]
        for order, p in enumerate(self._states[id(case.state)].deadlines):
            if p.tr.kind == "soon":
                due = self._due(p, case.facts, at)
                if due is not None:
                    kept.append((due, order, p.tr, at))
        kept.sort(key=lambda d: (d[0], d[1]))
        case.deadlines = kept

    def _prepared(self, state: ir.State, transition: ir.Transition) -> _Prepared:
        s = self._states[id(state)]
        for p in s.deadlines:
            if p.tr is transition:
                return p
        raise AssertionError("deadline of another state")  # pragma: no cover

    def _take(
        self,
        case: Case,
        p: _Prepared,
        at: datetime,
        kind: str,
        step: _Step,
        variables: Mapping[str, Any],
        event: str | None = None,
        actor: str | None = None,
        data: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> None:
        """Apply one transition: assignments, effects, the record, then the target's entry."""
        seen = variables  # what the guard read, before the assignments (copy-on-write keeps it)
        sets: tuple[tuple[str, Any], ...] = ()
        if p.assigns:
            values = [
                (path, _evaluate(expr, variables, at, f"set {'.'.join(path)}"))
                for path, expr in p.assigns
            ]
            for path, value in values:
                if value is None:  # `set x = null`: back to its default, if it has one
                    value = self._defaults.get(".".join(path))
                _set_fact(case, path, value)
            sets = tuple((".".join(path), value) for path, value in values)
            variables = self._variables(case, data, actor) if event is not None else case.facts
        seq = case.base + len(case.history)
        effects = tuple(
            Effect(
                name,
                {k: _evaluate(expr, variables, at, f"{name}({k})") for k, expr in args},
                at,
                seq,
            )
            for name, args in p.emits
        )
        t = p.tr
        step.add(
            case,
            Record(
                seq,
                at,
                kind,
                source=case.state.name,
                target=p.target.name if p.target is not None else None,
                event=event,
                actor=actor,
                data=data,
                key=key,
                cite=t.cite,
                cause=Cause(t.guard.text, p.reads, seen) if t.guard is not None else _NO_CAUSE,
                effects=effects,
                rule=p.rule,
                sets=sets,
            ),
        )
        case.effects.extend(effects)
        step.effects.extend(effects)
        if p.clocks or p.starts:
            self._clocks_of(case, p, at, step)
        if p.target is not None:
            self._enter(case, p.target, at)
            if case.clocks:
                self._clocks_on_entry(case, p.target, at, step)
        elif p.reschedule:
            self._recount(case, at, step)
        elif sets and self._states[id(case.state)].soon:
            self._reschedule(case, at)

    def _enter(self, case: Case, state: ir.State, at: datetime) -> None:
        """Enter ``state`` at ``at``: its deadlines replace the previous state's.

        Raises (and changes nothing) when a deadline cannot be scheduled.
        """
        deadlines = self._states[id(state)].deadlines
        if not deadlines:
            case.state = state
            case.entered = at
            case.deadlines = (
                _NO_DEADLINES  # shared: deadline lists are replaced, never changed in place
            )
            return
        pending = []
        for order, p in enumerate(deadlines):
            due = self._due(p, case.facts, at)
            if due is not None:
                pending.append((due, order, p.tr, at))
        pending.sort(key=lambda d: (d[0], d[1]))
        case.state = state
        case.entered = at
        case.deadlines = pending

    def _recount(self, case: Case, at: datetime, step: _Step) -> None:
        """`stay ... reschedule` at ``at``: the state's deadlines counted again from the facts
        as they are now, each from when the case entered the state (docs/time.md, "In
        deadlines"), with a `reschedule` record of where each now falls.

        A deadline that cannot be counted now (its fact is unset) is no longer pending; one
        that could not be counted at entry and now can is scheduled. A `stay` deadline that
        is not pending (it fired, or was never counted) is left out: it does not fire twice.
        One that now falls before ``at`` fires at the end of the step, recorded at ``at``
        (as a deadline overdue at entry fires at the entry)."""
        pending = {d[1] for d in case.deadlines}
        kept: list[tuple[datetime, int, ir.Transition, datetime]] = []
        counted: list[list[Any]] = []
        for order, p in enumerate(self._states[id(case.state)].deadlines):
            if p.tr.kind == "soon":
                due = self._due(p, case.facts, at)  # as _reschedule: from the facts, at any time
            elif p.target is None and order not in pending:
                continue
            else:
                due = self._due(p, case.facts, case.entered)
                counted.append([p.tr.written, due])
            if due is not None:
                kept.append((due, order, p.tr, at))
        kept.sort(key=lambda d: (d[0], d[1]))
        case.deadlines = kept
        step.add(
            case,
            Record(
                case.base + len(case.history),
                at,
                "reschedule",
                source=case.state.name,
                data={"deadlines": counted},
            ),
        )

    def _due(self, p: _Prepared, facts: Mapping[str, Any], at: datetime) -> datetime | None:
        t = p.tr
        assert t.deadline is not None and p.deadline is not None
        try:
            due: datetime = self._instant(p, facts, at)
            if t.kind == "soon":
                # Its time part holds from the instant on, and the rest reads only facts,
                # which change only in a step (that schedules it again): judged now as it
                # will be at the instant, it is scheduled only if it will then hold.
                assert p.guard is not None
                return due if _holds(p.guard, facts, max(due, at) + MOMENT) else None
            if t.rolled is not None or t.end_of_day:
                rules = self._time_rules
                rolled = rules.calendar(t.rolled) if t.rolled is not None else None
                due = calendar.adjust(due, rules.tz, rolled, t.end_of_day)
            return due
        except EvaluationError:
            return None  # e.g. an optional fact it counts from is not set: no deadline
        except (OverflowError, calendar.CalendarError):
            # Not "no deadline": a case would wait forever unseen. The step is refused.
            raise EvaluationError(
                f"the deadline `{t.deadline.text}` (line {t.deadline.at.line}) falls after "
                f"{_LATEST.date().isoformat()}, the latest time rulekit can represent"
            ) from None

    def _instant(self, p: _Prepared, facts: Mapping[str, Any], at: datetime) -> datetime:
        """When a deadline falls, before its modifiers (``rolled to a working day``, ...)."""
        assert p.deadline is not None
        value = p.deadline(facts, at)
        if p.tr.kind in ("at", "soon"):
            return value  # type: ignore[no-any-return]
        start = p.start(facts, at) if p.start is not None else at
        if isinstance(value, calendar.BoundPeriod):
            # A calendar period: the same local time on the day it leads to, in the
            # policy's zone (and on its calendar), by rulekit.core.calendar's rules.
            return value.after(start)
        return start + value  # type: ignore[no-any-return]

    def _settle(self, case: Case, at: datetime, step: _Step) -> None:
        """Take automatic transitions until none holds."""
        route = [case.state.name]
        for _ in range(MAX_CHAIN):
            if case.state.final:
                return
            autos = self._states[id(case.state)].automatic
            seen = step.guard_seen
            chosen = next(
                (
                    p
                    for p in autos
                    if p.guard is not None and _seen(seen, p.tr, _holds(p.guard, case.facts, at))
                ),
                None,
            )
            if chosen is None:
                return
            self._take(case, chosen, at, "auto", step, case.facts)
            route.append(case.state.name)
        raise _ChainError(
            f"automatic transitions did not settle after {MAX_CHAIN} steps: "
            + " -> ".join(route[:8])
            + (" -> ..." if len(route) > 8 else "")
        )

    # -- reading ---------------------------------------------------------------------------
    def allowed(self, case: Case, at: datetime | None = None) -> dict[str, tuple[str, ...]]:
        """The events that would be accepted now, each with the actors that may send it.

        A condition that reads the event's payload counts as holding.
        """
        due = case.next_deadline
        if at is not None and due is not None and due < at:
            # What would be allowed then: after the deadlines due before it (on a scratch copy).
            scratch = Case(case.workflow, case.state, case.facts, case.now, case.id)
            scratch.deadlines = list(case.deadlines)
            scratch.entered = case.entered
            scratch.clocks = case.clocks
            self._fire_due(scratch, at, _Step(scratch, None))  # a query: no guard is "seen"
            case = scratch
        if case.state.final:
            return {}
        t = at if at is not None else case.now
        out: dict[str, tuple[str, ...]] = {}
        for event, candidates in self._states[id(case.state)].by_event.items():
            actors: set[str] = set()
            for c in candidates:
                if c.guard is None:
                    actors |= c.actors
                    continue
                reads_payload = "event" in c.tr.guard.compiled.variables  # type: ignore[union-attr]
                for a in c.actors:
                    if reads_payload or _holds(c.guard, self._variables(case, {}, a), t):
                        actors.add(a)
            if actors:
                out[event] = tuple(sorted(actors))
        return out

    def replay(
        self,
        history: Iterable[Record],
        workflow: str | None = None,
        id: str | None = None,
        *,
        versions: Callable[[str], Engine] | None = None,
    ) -> Case:
        """Rebuild a case from the inputs recorded in its history.

        A `migrated` record switches to the engine of the policy it names (its ``data``'s
        ``policy`` hash, looked up with ``versions``) and migrates the case there again,
        so a migrated case replays on the versions it lived on, each for its stretch."""
        records = list(history)
        if not records or records[0].kind != "open":
            raise ValueError("a history starts with its `open` record")
        first = records[0]
        wf = workflow or first.workflow
        if wf is None:
            raise ValueError("cannot tell the workflow from the history: pass workflow=")
        engine = self
        case = engine.open(wf, first.data or {}, at=first.at, id=id)
        for r in records[1:]:
            if r.kind == "event":
                assert r.event is not None and r.actor is not None
                engine.send(case, r.event, r.actor, r.data, at=r.at, key=r.key)
            elif r.kind == "update":
                engine.update(case, r.data or {}, at=r.at)
            elif r.kind == "advance":
                engine.advance(case, r.at)
            elif r.kind == "migrated":
                if versions is None:
                    raise ValueError("the history was migrated: pass versions= to replay it")
                data = r.data or {}
                engine = versions(str(data["policy"]))
                case = engine.migrate(case, str(data["from"]), r.at)
        return case

    def migrate(self, old: Case, from_version: str, at: datetime) -> Case:
        """``old``, a case of version ``from_version``, as a case of this policy at ``at``:
        as its `migrate from` block says (docs/live-changes.md, "Migrations"), with a
        `migrated` record of what changed. ``old`` is left as it was.

        Its state is mapped (or kept by name), the block's facts are computed over the
        facts as they were, and its deadlines are recomputed from this version's rules,
        counted from when it entered its state, or kept (``deadlines keep``: a pending
        deadline whose expression is written the same in the new state keeps its time;
        the others are counted). Raises :class:`StepRefused` (``cannot_migrate``) when
        the policy has no block for ``from_version`` or the case does not fit it."""
        m = self.policy.migrations.get(from_version)
        wf = self.policy.workflows.get(old.workflow.name)
        if m is None or wf is None:
            what = "no `migrate from` block" if m is None else "no such workflow"
            raise StepRefused(
                "cannot_migrate",
                f"version {self.policy.version} has {what} for case of version {from_version}"
                f" (workflow {old.workflow.name})",
            )
        target = m.states.get(wf.name, {}).get(old.state.name, old.state.name)
        if target not in wf.states:
            raise StepRefused(
                "cannot_migrate",
                f"state `{old.state.name}` has no place in version {self.policy.version}",
            )
        values = [
            (tuple(a.fact.split(".")), _evaluate(a.value.compiled.function, old.facts, at, a.fact))
            for a in m.assigns
        ]
        tree = copy.deepcopy(old.facts)
        _fill(tree, self._groups)
        case = Case(wf, wf.states[target], tree, at, old.id)
        for path, value in values:
            _set_fact(case, path, value)
        case.entered = old.entered
        same = {
            d[2].deadline.text: d[0]
            for d in old.deadlines
            if m.deadlines == "keep" and d[2].deadline is not None
        }
        pending = []
        for order, p in enumerate(self._states[builtins.id(case.state)].deadlines):
            assert p.tr.deadline is not None
            kept = same.get(p.tr.deadline.text)
            due = kept if kept is not None else self._due(p, case.facts, case.entered)
            if due is not None:
                pending.append((due, order, p.tr, case.entered))
        pending.sort(key=lambda d: (d[0], d[1]))
        case.deadlines = pending
        clocks = {k: v for k, v in old.clocks.items() if k in wf.clocks}
        if clocks:
            case.clocks = clocks
        case.now = max(at, old.now)
        case.base = old.base
        case.history = list(old.history)
        case.history.append(
            Record(
                old.base + len(old.history),
                at,
                "migrated",
                source=old.state.name,
                target=target,
                data={
                    "from": from_version,
                    "to": self.policy.version,
                    "policy": self.policy.hash,
                    "state": [old.state.name, target],
                    "facts": {".".join(path): value for path, value in values},
                    "deadlines": m.deadlines,
                },
            )
        )
        return case

    # -- storing ---------------------------------------------------------------------------
    @staticmethod
    def pending(case: Case) -> list[tuple[datetime, int, datetime]]:
        """The case's pending deadlines as plain data: (due, order in its state, state entered)."""
        return [(due, order, entered) for due, order, _tr, entered in case.deadlines]

    def resume(
        self,
        workflow: str,
        state: str,
        facts: dict[str, Any],
        pending: Iterable[tuple[datetime, int, datetime]],
        now: datetime,
        *,
        id: str | None = None,
        base: int = 0,
        clocks: Mapping[str, ClockState] | None = None,
        entered: datetime | None = None,
    ) -> Case:
        """Rebuild a case from what a durable store kept of it (see :meth:`pending`;
        ``clocks``: :attr:`Case.clocks`, as :meth:`ClockState.to_data` keeps them;
        ``entered``: :attr:`Case.entered`; None, from a store that did not keep it: the
        earliest its pending deadlines may fire at, or ``now`` without any).

        The case holds no history (``base`` counts the records kept elsewhere), so its
        next step's records are numbered after them.
        """
        wf = self.policy.workflows[workflow]
        s = wf.states[state]
        case = Case(wf, s, facts, now, id)
        deadlines = self._states[builtins.id(s)].deadlines
        case.deadlines = [
            (due, order, deadlines[order].tr, entered) for due, order, entered in pending
        ]
        case.entered = (
            entered if entered is not None else min((d[3] for d in case.deadlines), default=now)
        )
        case.base = base
        if clocks:
            case.clocks = dict(clocks)
        return case


class _ChainError(Exception):
    pass


def _prepared(wf: ir.Workflow, t: ir.Transition, i: int) -> _Prepared:
    """A transition of ``wf`` prepared for running (``i``: its place in its state)."""
    guard = t.guard.compiled if t.guard is not None else None
    # The compiled functions themselves (Expression.function), generated now: a
    # running engine wants the fast path from the first step, without a method call.
    named = {a.clock for a in t.clocks}
    return _Prepared(
        tr=t,
        index=i,
        guard=guard.function if guard is not None else None,
        guard_reads_event=guard is not None and bool({"event", "actor"} & guard.variables),
        reads_event=any({"event", "actor"} & e.variables for e in _expressions(t)),
        reads=reads_of(t.guard),
        actors=frozenset(t.actors),
        target=wf.states[t.target] if t.target is not None else None,
        target_waits_for_nothing=t.target is not None
        and not any(d.kind in ("after", "at", "soon") for d in wf.states[t.target].transitions),
        assigns=tuple((tuple(a.fact.split(".")), a.value.compiled.function) for a in t.assigns),
        emits=tuple(
            (e.effect, tuple((k, v.compiled.function) for k, v in e.args)) for e in t.emits
        ),
        rule=str(t.at) if t.at is not None else "",
        deadline=t.deadline.compiled.function if t.deadline is not None else None,
        start=t.start.compiled.function if t.start is not None else None,
        clocks=tuple(
            (a.verb, a.clock, a.by.compiled.function if a.by is not None else None)
            for a in t.clocks
        ),
        starts=tuple(
            name
            for name, c in wf.clocks.items()
            if t.kind == "event" and c.start_event == t.event and name not in named
        ),
        reschedule=t.reschedule,
    )


class _Step:
    """One step's bookkeeping: what it added, and how to undo it if it is refused."""

    __slots__ = ("case", "effects", "guard_seen", "records", "saved")

    def __init__(self, case: Case, guard_seen: GuardSeen | None) -> None:
        self.case = case
        self.guard_seen = guard_seen
        # Facts and the deadline list are replaced, never changed in place (see
        # _set_fact, _enter, _fire_due): keeping the references is the snapshot.
        self.saved = (
            case.state,
            case.entered,
            case.facts,
            case.deadlines,
            case.clocks,
            len(case.effects),
            len(case.history),
            case.now,
        )
        self.records: list[Record] = []
        self.effects: list[Effect] = []

    def add(self, case: Case, record: Record) -> None:
        case.history.append(record)
        self.records.append(record)

    def result(self, case: Case) -> StepResult:
        return StepResult(
            tuple(self.records), case.state.name, case.state.final, tuple(self.effects)
        )

    def __enter__(self) -> _Step:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        if error is None:
            return
        c = self.case
        state, entered, facts, deadlines, clocks, n_effects, n_history, now = self.saved
        c.state, c.entered, c.facts, c.deadlines = state, entered, facts, deadlines
        c.clocks, c.now = clocks, now
        del c.effects[n_effects:]
        del c.history[n_history:]
        if isinstance(error, _ChainError):
            raise EvaluationError(str(error)) from None


def _set_clock(case: Case, name: str, state: ClockState) -> None:
    """Set a clock copy-on-write: the map is replaced, never changed in place (see _Step)."""
    clocks = dict(case.clocks)
    clocks[name] = state
    case.clocks = clocks


def _clock_due(case: Case, t: datetime) -> tuple[datetime, str] | None:
    """The running clock due first strictly before ``t`` (ties: declared first), or None."""
    if case.state.final:
        return None
    first: tuple[datetime, str] | None = None
    order = case.workflow.clocks
    for name in order:
        c = case.clocks.get(name)
        if (
            c is not None
            and c.due is not None
            and c.due < t
            and (first is None or c.due < first[0])
        ):
            first = (c.due, name)
    return first


def _seen(seen: GuardSeen | None, transition: ir.Transition, held: bool) -> bool:
    """``held``, after telling ``seen`` (when there is one) of it."""
    if seen is not None:
        seen(transition, held)
    return held


def _holds(guard: Evaluator, variables: Mapping[str, Any], at: datetime) -> bool:
    """A condition holds when it evaluates to true; an error counts as not holding."""
    try:
        return guard(variables, at) is True
    except EvaluationError:
        return False


def _evaluate(function: Evaluator, variables: Mapping[str, Any], at: datetime, what: str) -> Any:
    try:
        return function(variables, at)
    except EvaluationError as e:
        raise EvaluationError(
            f"{what}: {e.message}", expression=e.expression, values=e.values, source=e.source
        ) from None


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    if value is None:
        return  # an optional fact given as null is simply not set
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


def _set_fact(case: Case, path: tuple[str, ...], value: Any) -> None:
    """Set a fact copy-on-write: every dict on the path is replaced, never changed in place.

    ``path`` is a declared fact's, so each group on it is there (:func:`_fill` at open)."""

    def rebuilt(node: Mapping[str, Any], rest: tuple[str, ...]) -> dict[str, Any]:
        out = dict(node)
        if len(rest) == 1:
            if value is None:
                out.pop(rest[0], None)
            else:
                out[rest[0]] = value
        else:
            out[rest[0]] = rebuilt(node[rest[0]], rest[1:])
        return out

    case.facts = rebuilt(case.facts, path)


def _expressions(t: ir.Transition) -> list[Any]:
    exprs = [e for e in (t.guard, t.deadline, t.start) if e is not None]
    exprs += [a.value for a in t.assigns] + [v for e in t.emits for _, v in e.args]
    exprs += [a.by for a in t.clocks if a.by is not None]
    return [e.compiled for e in exprs]


def _groups(tree: Mapping[str, Any]) -> dict[str, Any]:
    """The declared tree without its leaves: the groups, nested."""
    return {name: _groups(node) for name, node in tree.items() if isinstance(node, dict)}


def _fill(facts: dict[str, Any], groups: Mapping[str, Any]) -> None:
    """Add the groups ``facts`` lacks (shared empty ones: never changed in place)."""
    for name, sub in groups.items():
        node = facts.get(name)
        if node is None:
            facts[name] = sub
        elif sub:
            _fill(node, sub)


def _fact_tree(facts: Mapping[str, ir.Fact]) -> dict[str, Any]:
    """Declared paths as a tree: leaves are True, objects are dicts."""
    tree: dict[str, Any] = {}
    for path in facts:
        node = tree
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = True
    return tree


def _flatten(
    given: Mapping[str, Any], tree: Mapping[str, Any], prefix: str = ""
) -> list[tuple[str, Any]]:
    """Nested maps and dotted keys -> (declared path, value), following the declared tree."""
    out: list[tuple[str, Any]] = []
    for key, value in given.items():
        path = f"{prefix}{key}"
        node: Any = tree
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping) and isinstance(value, Mapping):
            out.extend(_flatten(value, tree, path + "."))
        else:
            out.append((path, value))
    return out


def _nested(values: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in values.items():
        node = tree
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return tree


def reads_of(guard: ir.Expr | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The fact paths (and event fields) a guard reads, outermost first: what explain shows."""
    if guard is None:
        return ()
    out: list[tuple[str, tuple[str, ...]]] = []
    seen = set()
    # A named condition's reads are the guard's too: its tree is walked where it is named.
    stack: list[tuple[CheckedExpr, expr_ast.Expr]] = [
        (guard.compiled.checked, guard.compiled.checked.root)
    ]
    while stack:
        checked, node = stack.pop()
        path = expr_ast.path_of(node) if node.id in checked.inputs else None
        if path is not None:
            label = ".".join(path)
            if label not in seen:
                seen.add(label)
                out.append((label, path))
            continue
        named = checked.named.get(node.id)
        if named is not None:
            stack.append((named.checked, named.checked.root))
            continue
        stack.extend((checked, c) for c in reversed(expr_ast.children(node)))
    return tuple(out)
