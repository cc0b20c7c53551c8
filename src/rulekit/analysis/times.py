"""How long a case can stay open if nobody acts: the worst case, per workflow and per state.

If nobody acts, no event arrives and no fact changes: a case moves only by its
deadlines and automatic transitions, as the engine runs them
(src/rulekit/runtime/engine.py):

- entering a state checks its automatic transitions at once (the first whose
  condition holds is taken, at the entry time), then schedules its deadlines,
  counted from the entry;
- deadlines fire in due order (declaration order breaks ties), each at its due
  time. One whose condition does not hold is dropped and the next one waits
  its turn. One that stays (``stay``) leaves the others running, and the
  automatic transitions are checked again after it;
- a state with no deadline left and no automatic transition that holds keeps
  the case until someone acts.

The analysis does not know the facts, so a figure is an upper bound over every
case: a condition that reads facts or ``now`` may hold or not (a constant one
is evaluated). A deadline that counts from a fact (``after 10d from
return.waybill_at``), reads one (``after evidence.within``) or names a time
(``at ...``) can be due at any time: the fact may lie in the past (the deadline
then fires as the case enters) or arbitrarily far ahead. Such a deadline is
bounded only by a fixed, unconditional deadline of its state that would leave
first; otherwise the figure is unbounded and names the deadline. A cycle of
deadlines is unbounded too, and so is a state that waits for someone.

A state marked ``waits unbounded "..."`` waits on a party with no deadline by
design. Its figures say so; for ``check --max-open`` (:func:`max_open`) the
time a case spends there is left out: the case stops being measured when it
enters such a state, so the bound applies to the rest of the workflow, and
each such state is reported (RK0730) as excluded.

>>> for wf in worst_case_times(rulekit.load("rules/kuaishou_after_sales.rk")):  # doctest: +SKIP
...     print(wf.workflow, wf.opened)
refund_only closes within 2d: awaiting_merchant --after 2d (REVIEW_WINDOW)--> refunded
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from rulekit.analysis.lint import constant, reachable
from rulekit.core import calendar
from rulekit.core.diagnostics import Diagnostic, Severity
from rulekit.expr import stdlib
from rulekit.policy import ir

_ZERO = timedelta(0)

# Why a figure is unbounded, most telling first: when several paths are
# unbounded, the one that shows a case that certainly never closes is shown.
_WAITS, _STUCK, _CYCLE, _FACTS, _GUARDED = range(5)


@dataclass(frozen=True)
class Step:
    """One move of a case nobody acts on: ``source --trigger--> target``.

    ``delay`` is the time spent in ``source`` before the move (None: a time the
    facts set, any time). A deadline that stays has ``target == source``.
    """

    source: str
    target: str
    trigger: str
    delay: timedelta | None
    cite: str | None
    at: ir.Position | None

    def __str__(self) -> str:
        return f"{self.source} --{self.trigger}--> {self.target}"

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "target": self.target,
            "trigger": self.trigger,
            "delay": show(self.delay) if self.delay is not None else None,
            "cite": self.cite,
            "at": str(self.at) if self.at is not None else None,
        }


@dataclass(frozen=True)
class Figure:
    """The worst case from entering ``state`` (or from any moment in it) if nobody acts.

    ``bound`` None means unbounded, and ``reason`` says why. ``path`` is a way
    the case can take to that figure: to a final state when bounded; to where
    it waits, loops or depends on facts when unbounded.
    """

    state: str
    bound: timedelta | None
    path: tuple[Step, ...]
    reason: str | None = None

    def __str__(self) -> str:
        route = _route(self.path)
        if self.bound is None:
            return f"unbounded: {route}; {self.reason}" if route else f"unbounded: {self.reason}"
        if self.reason is not None:  # up to a state left out of --max-open
            return f"within {show(self.bound)}: {route}; {self.reason}" if route else self.reason
        if not route:
            return "already closed"
        when = f"within {show(self.bound)}" if self.bound else "at once"
        return f"closes {when}: {route}"

    def to_dict(self) -> dict[str, object]:
        return {
            "state": self.state,
            "bound": show(self.bound) if self.bound is not None else None,
            "bound_seconds": self.bound.total_seconds() if self.bound is not None else None,
            "path": [s.to_dict() for s in self.path],
            "reason": self.reason,
        }


@dataclass(frozen=True)
class WorkflowTimes:
    """A workflow's figures: for a case opened and left alone (``opened``), the
    worst over every state a case can reach (``worst``), and per open state."""

    workflow: str
    at: ir.Position
    opened: Figure
    worst: Figure
    states: tuple[Figure, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "workflow": self.workflow,
            "opened": self.opened.to_dict(),
            "worst": self.worst.to_dict(),
            "states": [f.to_dict() for f in self.states],
        }


def worst_case_times(policy: ir.Policy, by_design: bool = False) -> list[WorkflowTimes]:
    """The figures of every workflow of ``policy``, in declaration order.

    ``by_design``: a case that reaches a state marked ``waits unbounded`` stops being
    measured there (what ``check --max-open`` bounds)."""
    out = []
    for wf in policy.workflows.values():
        analysis = _Analysis(policy, wf, by_design)
        reached = reachable(wf)
        names = [n for n, s in wf.states.items() if n in reached and not s.final]
        worst: tuple[str, _Worst] | None = None
        for name in names:
            w = analysis.worst(name)
            if worst is None or _worse(w, worst[1]):
                worst = (name, w)
        opened = analysis.figure(wf.initial)
        out.append(
            WorkflowTimes(
                wf.name,
                wf.at,
                opened,
                analysis.figure(worst[0]) if worst is not None else opened,
                tuple(analysis.figure(n) for n in names),
            )
        )
    return out


def too_long(times: Iterable[WorkflowTimes], limit: timedelta) -> list[Diagnostic]:
    """RK0710 for each workflow whose worst case is longer than ``limit`` or unbounded."""
    out = []
    for wf in times:
        w = wf.worst
        if w.bound is not None and w.bound <= limit:
            continue
        how_long = "unbounded" if w.bound is None else f"up to {show(w.bound)}"
        out.append(
            _at(
                wf.at,
                "RK0710",
                "error",
                f"a case of workflow {wf.workflow} may stay open longer than {show(limit)} "
                f"if nobody acts ({how_long}, from state `{w.state}`)",
                (f"from `{w.state}`: {w}",),
                "add a deadline where the case waits, or raise --max-open"
                if w.bound is None
                else "shorten the deadlines on this path, or raise --max-open",
            )
        )
    return out


def max_open(policy: ir.Policy, limit: timedelta) -> list[Diagnostic]:
    """What ``rulekit check --max-open LIMIT`` adds: RK0710 where a case may stay open longer
    than ``limit`` if nobody acts, not counting the time spent in states that wait with no
    deadline by design (``waits unbounded``), and an RK0730 note for each of those."""
    out = too_long(worst_case_times(policy, by_design=True), limit)
    for wf in policy.workflows.values():
        reached = reachable(wf)
        for state in wf.states.values():
            if state.unbounded and state.name in reached:
                out.append(
                    _at(
                        state.at,
                        "RK0730",
                        "info",
                        f"state `{state.name}` of workflow {wf.name} is left out of "
                        f"--max-open: it waits with no deadline by design",
                        (f'waits unbounded "{state.waits}"',),
                    )
                )
    return out


def _at(
    at: ir.Position,
    code: str,
    severity: Severity,
    message: str,
    notes: tuple[str, ...],
    help: str | None = None,
) -> Diagnostic:
    """A diagnostic placed where a workflow or state was written."""
    return Diagnostic(
        code=code,
        severity=severity,
        message=message,
        file=at.file,
        line=at.line,
        column=at.column,
        end_line=at.end_line,
        end_column=at.end_column,
        help=help,
        notes=notes,
    )


@dataclass(frozen=True)
class Named:
    """A named value or condition as ``check --explain-times`` shows it (and as an editor
    shows a name on hover): its kind, type and definition."""

    kind: str
    name: str
    type: str
    text: str
    at: ir.Position

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.type} = {' '.join(self.text.split())}"

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "name": self.name,
            "type": self.type,
            "text": self.text,
            "at": str(self.at),
        }


def named(policy: ir.Policy) -> list[Named]:
    """The policy's named values and conditions, each after those it names."""
    return [
        Named(c.kind, c.name, str(c.expr.type), c.expr.text, c.at)
        for c in policy.conditions.values()
    ]


def render(times: Iterable[WorkflowTimes]) -> str:
    """The figures as text: per workflow, opened and left alone, at worst, then per state."""
    lines = []
    for wf in times:
        lines.append(f"{wf.workflow}: opened and left alone, {wf.opened}")
        lines.append(f"{wf.workflow}: at worst, from `{wf.worst.state}`, {wf.worst}")
        lines.extend(f"  {f.state}: {f}" for f in wf.states)
    return "\n".join(lines)


def show(d: timedelta) -> str:
    """A duration as a rulekit literal (``2d``, ``1h30m``)."""
    return stdlib.format_duration_literal(d) if d else "0s"


def _route(path: tuple[Step, ...]) -> str:
    if not path:
        return ""
    return path[0].source + "".join(f" --{s.trigger}--> {s.target}" for s in path)


@dataclass(frozen=True)
class _Worst:
    bound: timedelta | None
    path: tuple[Step, ...]
    reason: str | None = None
    #: for an unbounded figure, how telling its reason is (_WAITS first)
    rank: int = 0

    def behind(self, steps: tuple[Step, ...], offset: timedelta | None) -> _Worst:
        """The figure of ``steps`` taking ``offset`` (None: a time facts set), then this one."""
        path = steps + self.path
        if offset is not None:
            bound = None if self.bound is None else offset + self.bound
            return _Worst(bound, path, self.reason, self.rank)
        if self.bound is None and self.rank < _FACTS:
            return _Worst(None, path, self.reason, self.rank)
        unknown = next(s for s in steps if s.delay is None)
        return _Worst(
            None,
            path,
            f"`{unknown.trigger}` in `{unknown.source}` is due at a time the facts set, "
            "which can be any time",
            _FACTS,
        )


def _worse(a: _Worst, b: _Worst) -> bool:
    """Whether ``a`` is a worse case than ``b`` (ties keep ``b``, found first)."""
    if a.bound is None or b.bound is None:
        return b.bound is not None or (a.bound is None and a.rank < b.rank)
    return a.bound > b.bound


@dataclass(frozen=True)
class _Follow:
    """A way out of a state: ``steps``, taking ``offset``, then whatever ``target`` leads to."""

    steps: tuple[Step, ...]
    offset: timedelta | None
    target: str


@dataclass
class _Frame:
    """A state the search is in: its remaining ways out, the worst so far, and the way out
    whose target it is waiting for."""

    name: str
    candidates: Iterator[_Worst | _Follow]
    result: _Worst | None = None
    pending: _Follow | None = None

    def offer(self, candidate: _Worst) -> None:
        if self.result is None or _worse(candidate, self.result):
            self.result = candidate


def _period(t: ir.Transition) -> calendar.BoundPeriod | None:
    """The calendar period of an `after` deadline that counts from entry and needs no facts."""
    if t.kind != "after" or t.start is not None or t.deadline is None:
        return None
    value = constant(t.deadline)
    return value[0] if value is not None and isinstance(value[0], calendar.BoundPeriod) else None


def _delay(t: ir.Transition) -> timedelta | None:
    """The fixed delay of an `after` deadline counted from entry, its modifiers aside."""
    if t.kind != "after" or t.start is not None or t.deadline is None:
        return None
    value = constant(t.deadline)
    return value[0] if value is not None and isinstance(value[0], timedelta) else None


def _at_most(t: ir.Transition, rules: calendar.TimeRules) -> timedelta | None:
    """The longest an `after` deadline counted from entry can take: its delay, or for a
    calendar period the most it can last (a month 31 days, N working days what the
    calendar's longest stretch makes them, plus the zone's clock changes); and what its
    modifiers may add (the calendar's longest run of days off, a day for the end of day)."""
    period = _period(t)
    base = period.longest() if period is not None else _delay(t)
    if base is None:
        return None
    rolled = rules.calendar(t.rolled) if t.rolled is not None else None
    return base + calendar.adjust_slack(rules.tz, rolled, t.end_of_day)


def _truth(guard: ir.Expr | None) -> bool | None:
    """True or False when a condition is constant (or absent: true), None when facts decide."""
    if guard is None:
        return True
    value = constant(guard)
    return None if value is None else value[0] is True


class _Analysis:
    """Longest paths over a workflow's deadlines and automatic transitions, memoised per state."""

    def __init__(self, policy: ir.Policy, wf: ir.Workflow, by_design: bool = False) -> None:
        self.by_design = by_design
        self.actors = policy.actors
        self.constants = policy.constants
        self.rules = policy.time_rules
        self.wf = wf
        self.done: dict[str, _Worst] = {}
        self.active: set[str] = set()

    def figure(self, name: str) -> Figure:
        w = self.worst(name)
        return Figure(name, w.bound, w.path, w.reason)

    def worst(self, name: str) -> _Worst:
        """The worst case from entering ``name``: a depth-first search over the states it
        can move to, run on a stack of its own (a chain of thousands of states is fine)."""
        if self.wf.states[name].final:
            return _Worst(_ZERO, ())
        known = self.done.get(name)
        if known is not None:
            return known
        stack = [self._enter(name)]
        while True:
            frame = stack[-1]
            item = next(frame.candidates, None)
            if item is None:  # every way out of this state is known: it is done
                stack.pop()
                self.active.discard(frame.name)
                assert frame.result is not None  # a state with no way out waits: a candidate
                self.done[frame.name] = frame.result
                if not stack:
                    return frame.result
                parent = stack[-1]
                assert parent.pending is not None
                parent.offer(frame.result.behind(parent.pending.steps, parent.pending.offset))
                parent.pending = None
                continue
            if isinstance(item, _Worst):
                frame.offer(item)
                continue
            target = item.target
            if self.wf.states[target].final:
                tail = _Worst(_ZERO, ())
            elif target in self.active:
                tail = _Worst(
                    None,
                    (),
                    f"back in `{target}`: the case can go round this cycle forever",
                    _CYCLE,
                )
            elif target in self.done:
                tail = self.done[target]
            else:  # not known yet: work it out first, then come back to this frame
                frame.pending = item
                stack.append(self._enter(target))
                continue
            frame.offer(tail.behind(item.steps, item.offset))

    def _enter(self, name: str) -> _Frame:
        self.active.add(name)
        return _Frame(name, self._candidates(self.wf.states[name]))

    def _follow(self, steps: tuple[Step, ...], offset: timedelta | None, target: str) -> _Follow:
        return _Follow(steps, offset, target)

    def _candidates(self, state: ir.State) -> Iterator[_Worst | _Follow]:
        """Every way the case can leave ``state`` (or stay in it) if nobody acts: a figure,
        or the steps to a state whose figure then follows."""
        may_hold: list[tuple[ir.Transition, str]] = []
        for t in state.automatic:
            truth = _truth(t.guard)
            if truth is False or t.target is None:
                continue  # one that stays sets facts, but does not move the case
            yield self._follow((self._step(state, t, _ZERO),), _ZERO, t.target)
            if truth:
                return  # the case always leaves as it enters
            may_hold.append((t, t.target))
        fixed = sorted(
            (max(delay, _ZERO), i, d)
            for i, d in enumerate(state.deadlines)
            if (delay := _at_most(d, self.rules)) is not None
        )
        cutoff: timedelta | None = None  # when an unconditional deadline certainly leaves
        for delay, _, d in fixed:
            truth = _truth(d.guard)
            if truth is False:
                continue
            yield from self._fires(state, d, delay, may_hold)
            if truth and d.target is not None:
                cutoff = delay
                break
        for d in state.deadlines:
            if _at_most(d, self.rules) is None and _truth(d.guard) is not False:
                yield from self._fires(state, d, cutoff, may_hold)
        # A clock that runs here may run out at any moment before the state is left: its
        # expiry is one more way out, no later than the state's own fixed deadline.
        for c in self.wf.clocks.values():
            if (
                c.expiry.target is not None
                and state.name not in c.paused_in
                and (not c.expiry_in or state.name in c.expiry_in)
            ):
                delay = cutoff if cutoff is not None else _ZERO
                assumed = c.expiry.assumption
                step = Step(
                    state.name,
                    c.expiry.target,
                    f"clock {c.name} runs out"
                    + (f' (assumption: "{assumed}")' if assumed is not None else ""),
                    delay,
                    c.expiry.cite,
                    c.at,
                )
                yield self._follow((step,), delay, c.expiry.target)
        if cutoff is None:
            yield self._stays(state)

    def _fires(
        self,
        state: ir.State,
        d: ir.Transition,
        delay: timedelta | None,
        may_hold: list[tuple[ir.Transition, str]],
    ) -> Iterator[_Follow]:
        """Deadline ``d`` fires ``delay`` after entry: it leaves, or it stays and an
        automatic transition may then hold."""
        step = self._step(state, d, delay)
        if d.target is not None:
            yield self._follow((step,), delay, d.target)
            return
        for t, target in may_hold:
            yield self._follow((step, self._step(state, t, _ZERO)), delay, target)

    def _stays(self, state: ir.State) -> _Worst:
        """The case stays in ``state`` for good: nothing moves it without someone acting."""
        leaving = [t for t in state.transitions if t.kind == "event" and t.target is not None]
        actors = [a for a in self.actors if any(a in t.actors for t in leaving)]
        events = list(dict.fromkeys(t.event for t in leaving if t.event is not None))
        who = (
            f"{' or '.join(actors)} ({', '.join(events)})"
            if actors
            else "someone, but no event leaves it"
        )
        if state.unbounded and self.by_design:
            return _Worst(
                _ZERO, (), f"`{state.name}` waits unbounded by design: left out of --max-open"
            )
        if state.waits is not None:
            unbounded = " (unbounded by design)" if state.unbounded else ""
            assumed = f' (assumption: "{state.assumption}")' if state.assumption else ""
            return _Worst(
                None,
                (),
                f'`{state.name}` waits for {who}: "{state.waits}"{unbounded}{assumed}',
                _WAITS,
            )
        if not state.automatic and not state.deadlines:
            return _Worst(
                None,
                (),
                f"`{state.name}` waits for {who}: no deadline or automatic transition moves it",
                _STUCK,
            )
        return _Worst(
            None,
            (),
            f"`{state.name}` waits for {who} if none of its conditions holds and no deadline applies",
            _GUARDED,
        )

    def _written(self, text: str, fixed: timedelta | None) -> str:
        """A fixed delay (or a period) as written, with its value when a name or an
        expression gives it: ``48h``, ``48h (REVIEW_WINDOW)``, ``2d1h (REVIEW_WINDOW + 1h)``,
        ``1 month (RESPONSE)``."""
        named = self.constants.get(text)
        if fixed is None:
            if named is not None and named.type.kind == "period":
                return f"{named.value} ({text})"
            return text
        if named is not None:
            return f"{named.text} ({text})"
        try:
            literal = stdlib.parse_duration(text) == fixed
        except stdlib.CelError:
            literal = False
        return text if literal else f"{show(fixed)} ({text})"

    def _step(self, state: ir.State, t: ir.Transition, delay: timedelta | None) -> Step:
        if t.kind in ("auto", "soon"):
            assert t.guard is not None
            word = "when " if t.kind == "auto" else "as soon as "
            trigger = word + " ".join(t.guard.text.split())
        else:
            assert t.deadline is not None
            fixed = _delay(t)
            trigger = f"{t.kind} {self._written(t.deadline.text, fixed)}"
            if t.start is not None:
                trigger += f" from {t.start.text}"
            trigger += t.adjusted
            if t.guard is not None:
                trigger += " when " + " ".join(t.guard.text.split())
            at_most = _at_most(t, self.rules)
            if at_most is not None and at_most != fixed:  # a period, or a modifier
                trigger += f" (at most {show(at_most)})"
            elif at_most is None and delay is not None:
                trigger += f" (at most {show(delay)}: a fixed deadline leaves first)"
            if t.target is None:
                trigger += " (stays)"
        if t.assumption is not None:
            trigger += f' (assumption: "{t.assumption}")'
        return Step(state.name, t.target or state.name, trigger, delay, t.cite, t.at)
