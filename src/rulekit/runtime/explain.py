"""Why a case is where it is: the causal chain in its history (``rulekit explain``).

A question is asked of a case's history: why is it in its state (``state``), why did
effect X happen (``effect:X``), why was a step refused (``refusal``, with the refusal
the caller saw: a refused step changes nothing, so no history records it). The answer
is the chain of records that led there, each with what triggered it (the event and
its sender, the deadline, the clock that ran out, the update that had conditions
judged again), the conditions with the values they saw, and the clauses cited; the
records that did not matter are left out (``everything`` keeps them).

Only what the history recorded is used, with the policy for names and texts. A
condition is shown by evaluating it again on the values its record kept
(:attr:`rulekit.runtime.Cause.reads`) at the record's time, never on the case's facts
as they are now: conditions are pure, so this is what they saw then. What the
history does not keep (the values of the facts a deadline was counted from, the
conditions that did *not* hold before a transition was taken) is not shown.

The chain of a record: the records that entered each state on the way to it (back
to the opening), and for each fact a condition (or an effect's arguments, or a
deadline) read, the record that last set it before (an update, an assignment, the
opening), and for a deadline the records that counted it again, for a clock's
expiry what happened to the clock.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from rulekit.expr import stdlib
from rulekit.expr.convert import to_data
from rulekit.expr.interpreter import Clause
from rulekit.policy import ir
from rulekit.runtime.engine import MOMENT, reads_of
from rulekit.runtime.model import Record
from rulekit.runtime.timeline import describe, flat, outcome_lines, show_time


class QuestionError(ValueError):
    """A question that cannot be asked of this case (an undeclared effect, a refusal of a
    stored case): the caller's mistake, not a failed answer."""


@dataclass(frozen=True)
class Condition:
    """A guard as it was judged: its value and each clause with the values it saw."""

    text: str
    value: Any
    error: str | None
    clauses: tuple[Clause, ...]


@dataclass(frozen=True)
class Refusal:
    """A step the engine refused, as the caller saw it when it happened.

    ``history``: the case's history then (with the deadlines the step fired before it
    was refused; none for a refused opening, whose ``step`` is ``open``); ``state``:
    where the case was ("" before it was opened); ``conditions``: for ``guard_failed``,
    each condition of the event's transitions the sender may take, judged then.
    """

    at: datetime
    step: str
    event: str | None
    code: str
    message: str
    state: str
    history: tuple[Record, ...]
    conditions: tuple[Condition, ...] = ()
    #: where it was asked for: a scenario's step number (1-based), or None
    number: int | None = None

    @property
    def title(self) -> str:
        """``step 5, send submit_evidence by merchant``; ``the opening``."""
        if self.step == "open":
            return "the opening"
        return (f"step {self.number}, " if self.number is not None else "") + self.step


@dataclass(frozen=True)
class Step:
    """One record of the chain: what it did, what triggered it and why it matters."""

    record: Record
    #: why it is in the chain ("entered `refunded`", "set order.amount, read by #3")
    why: tuple[str, ...]
    transition: ir.Transition | None
    #: the condition that decided it, judged on the values it read
    condition: Condition | None
    #: the facts of an `open` or `update` record a later step read: (path, value)
    facts: tuple[tuple[str, Any], ...] = ()
    #: a deadline's: as written, the constants it names and what it was counted from
    deadline: str | None = None


@dataclass(frozen=True)
class CaseExplanation:
    """The answer to one question about a case."""

    question: str
    workflow: str
    #: None: the case was never opened (its opening was refused)
    state: str | None
    final: bool
    outcome: str | None
    #: whether what was asked about happened (False: the effect was never emitted, the
    #: scenario refused no step)
    found: bool
    #: the answer in one line
    answer: str
    steps: tuple[Step, ...]
    #: records of the history not shown
    left_out: int
    refusal: Refusal | None = None
    #: a refusal question's: every step refused in the run, the one explained too
    refused: tuple[Refusal, ...] = ()
    everything: bool = False
    #: the policy's zone: where times are shown
    tz: tzinfo | None = field(default=None, compare=False)


def check_question(question: str, policy: ir.Policy) -> None:
    """Raise :class:`QuestionError` for a question this policy cannot answer."""
    kind, _, name = question.partition(":")
    if kind == "state" and not name:
        return
    if kind == "effect" and name:
        if name not in policy.effects:
            known = ", ".join(policy.effects) or "none"
            raise QuestionError(f"the policy declares no effect `{name}` (effects: {known})")
        return
    if kind == "refusal":
        if name and not name.isdigit() and name not in policy.events:
            known = ", ".join(policy.events) or "none"
            raise QuestionError(f"the policy declares no event `{name}` (events: {known})")
        return
    raise QuestionError(
        f"cannot answer {question!r}: ask state, effect:NAME, refusal, refusal:EVENT "
        "or refusal:STEP (a scenario's step number)"
    )


def explain(
    policy: ir.Policy,
    workflow: str,
    history: Sequence[Record],
    question: str = "state",
    *,
    refusals: Iterable[Refusal] = (),
    everything: bool = False,
) -> CaseExplanation:
    """Answer ``question`` about the case of ``workflow`` whose history is ``history``.

    ``refusals``: the steps refused while the case ran, in order (a scenario knows them;
    a store does not keep them). Raises :class:`QuestionError` for a question the
    policy cannot answer.
    """
    check_question(question, policy)
    wf = policy.workflows[workflow]
    tz = stdlib.time_zone(policy.timezone) if policy.timezone else None
    records = list(history)
    kind, _, name = question.partition(":")
    refusal: Refusal | None = None
    refused = list(refusals)
    if kind == "refusal":
        refusal = next(
            (
                r
                for r in reversed(refused)
                if not name or r.event == name or (name.isdigit() and r.number == int(name))
            ),
            None,
        )
        if refusal is not None:
            records = list(refusal.history)
    if not records:
        return _never_opened(question, workflow, refused, kind, tz)
    if records[0].kind != "open":
        raise QuestionError("a history starts with its `open` record")
    chain = _Chain(wf, records, policy.constants)
    last = next((i for i in range(len(records) - 1, -1, -1) if records[i].target), 0)
    state = records[last].target or wf.initial
    final = wf.states[state].final if state in wf.states else False
    outcome = wf.states[state].outcome if final and state in wf.states else None
    found = True
    if kind == "state":
        chain.add(last, f"entered `{state}`")
        chain.follow(last)
        answer = _because(chain, last, f"`{state}`", tz)
    elif kind == "effect":
        emitted = [i for i, r in enumerate(records) if any(e.name == name for e in r.effects)]
        for i in emitted:
            chain.add(i, f"emitted {name}")
            chain.follow(i, effects=True)
        found = bool(emitted)
        answer = (
            "; ".join(_because(chain, i, _emitted(records[i], name), tz) for i in emitted)
            if emitted
            else f"no {name} was emitted: the case is in `{state}`"
        )
    else:
        found = refusal is not None
        if refusal is None:
            what = f" {name}" if name.isdigit() else f" of `{name}`" if name else ""
            answer = f"no step{what} was refused"
        else:
            state = refusal.state
            entered = next(
                (i for i in range(len(records) - 1, -1, -1) if records[i].target == state), 0
            )
            chain.add(entered, f"entered `{state}`, where the step was refused")
            chain.follow(entered)
            for condition in refusal.conditions:
                for label in _labels(condition.clauses):
                    chain.source_of(label, len(records), "the refused step")
            answer = f"{refusal.title} was refused: {refusal.code}: {refusal.message}"
    if everything:
        for i in range(len(records)):
            chain.add(i, None)
    steps = tuple(chain.step(i) for i in sorted(chain.why))
    return CaseExplanation(
        question,
        workflow,
        state,
        final,
        outcome,
        found,
        answer,
        steps,
        len(records) - len(steps),
        refusal,
        tuple(refused) if kind == "refusal" else (),
        everything,
        tz,
    )


def _never_opened(
    question: str, workflow: str, refused: list[Refusal], kind: str, tz: tzinfo | None
) -> CaseExplanation:
    """The answer for a case whose opening was refused (the one refusal, without history):
    a refusal question is answered with it; any other finds nothing."""
    opening = refused[-1] if refused else None
    why = f"{opening.code}: {opening.message}" if opening is not None else "no history"
    found = kind == "refusal" and opening is not None and opening.event is None
    answer = (
        f"opening the case was refused: {why}" if found else f"the case was never opened ({why})"
    )
    return CaseExplanation(
        question,
        workflow,
        None,
        False,
        None,
        found,
        answer,
        (),
        0,
        opening if found else None,
        tuple(refused) if kind == "refusal" else (),
        False,
        tz,
    )


class _Chain:
    """The records of a history that matter to an answer, and why each does."""

    def __init__(
        self, wf: ir.Workflow, records: list[Record], constants: Mapping[str, ir.Constant]
    ) -> None:
        self.wf = wf
        self.constants = constants
        self.records = records
        self.why: dict[int, list[str]] = {}
        #: facts of an open or update record that a later step read
        self.facts: dict[int, dict[str, Any]] = {}
        self.followed: set[tuple[int, bool]] = set()
        self.pending: list[tuple[int, bool]] = []
        self.following = False
        #: record -> a fact it set -> what read it ("#3", "the refused step"), in order (a
        #: dict as an ordered set: a fact set at the opening may be read by every record)
        self.read_by: dict[int, dict[str, dict[str, None]]] = {}
        # Indexes, in history order, so that a long history is walked once, not once for
        # each fact read: the records that entered each state, that set each fact path
        # (``exact``) or a path under it (``under``: a path and each of its prefixes), and
        # that say what happened to each clock.
        self.entries: dict[str, list[int]] = {}
        self.exact: dict[str, list[int]] = {}
        self.under: dict[str, list[int]] = {}
        self.clock_records: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            if r.target is not None:
                self.entries.setdefault(r.target, []).append(i)
            if r.kind == "clock":
                self.clock_records.setdefault(str((r.data or {}).get("clock")), []).append(i)
            paths = (
                [p for p, _ in flat(r.data or {})]
                if r.kind in ("open", "update")
                else [p for p, _ in r.sets]
            )
            prefixes: set[str] = set()
            for path in paths:
                self.exact.setdefault(path, []).append(i)
                parts = path.split(".")
                prefixes.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
            for prefix in prefixes:
                self.under.setdefault(prefix, []).append(i)

    def add(self, i: int, why: str | None) -> None:
        reasons = self.why.setdefault(i, [])
        if why is not None and not any(r.startswith(why) for r in reasons):
            reasons.append(why)

    def transition(self, r: Record) -> ir.Transition | None:
        """The transition a record took, in its state: the one that does what the record
        says (its event, target, citation and condition), and if several do, the one
        written where the record says (positions alone are not enough: a policy of the
        same content hash may have been laid out differently)."""
        if r.kind == "expiry":
            clock = self.wf.clocks.get(str((r.data or {}).get("clock")))
            return clock.expiry if clock is not None else None
        state = self.wf.states.get(r.source or "")
        kinds = _KINDS.get(r.kind)
        if state is None or kinds is None:
            return None
        guard = r.cause.guard if r.cause is not None else None
        found = [
            t
            for t in state.transitions
            if t.kind in kinds
            and t.event == r.event
            and t.target == r.target
            and t.cite == r.cite
            and (t.guard.text if t.guard is not None else None) == guard
        ]
        if len(found) > 1 and r.rule:
            place = _place(r.rule)
            found = [t for t in found if t.at is not None and _place(str(t.at)) == place] or found
        return found[0] if found else None

    def entry(self, i: int, state: str) -> int | None:
        """The record before ``i`` that last entered ``state``."""
        return _last_before(self.entries.get(state, ()), i)

    def follow(self, i: int, effects: bool = False) -> None:
        """Add what led to record ``i``: the way into its state, and where what it read
        came from (with ``effects``, what its effects' arguments read too).

        A work list, not recursion: a chain may be as long as the history."""
        self.pending.append((i, effects))
        if self.following:
            return
        self.following = True
        try:
            while self.pending:
                item = self.pending.pop()
                if item not in self.followed:
                    self.followed.add(item)
                    self.visit(*item)
        finally:
            self.following = False

    def visit(self, i: int, effects: bool) -> None:
        """What :meth:`follow` adds for record ``i`` itself."""
        r = self.records[i]
        t = self.transition(r)
        if r.kind != "open" and r.source is not None:
            j = self.entry(i, r.source)
            if j is not None:
                self.add(j, f"entered `{r.source}`")
                self.follow(j)
        if t is None:
            return
        if r.cause is not None and r.cause.guard is not None:
            for label, _ in r.cause.reads:
                self.source_of(label, i, i)
        if effects:
            for emit in t.emits:
                for _, arg in emit.args:
                    for label, _ in reads_of(arg):
                        self.source_of(label, i, i)
        if r.kind == "auto" and i > 0:
            before = self.records[i - 1]
            if before.at == r.at and (
                before.kind == "update" or (before.kind == "event" and before.target is None)
            ):
                self.add(i - 1, "had the automatic transitions judged again")
        if r.kind == "deadline" and t.deadline is not None:
            entered = self.entry(i, r.source or "")
            counted = entered if entered is not None else i
            for expr in (t.deadline, t.start):
                for label, _ in reads_of(expr):
                    self.source_of(label, counted + 1, i)
            for k in range(counted + 1, i):
                if self.records[k].kind == "reschedule" and self.records[k].source == r.source:
                    self.add(k, f"counted the deadline again that fired at #{r.seq}")
        if r.kind == "expiry":
            name = str((r.data or {}).get("clock"))
            clocked = self.clock_records.get(name, [])
            for k in reversed(clocked[: bisect.bisect_left(clocked, i)]):
                action = (self.records[k].data or {}).get("action")
                self.add(k, f"clock `{name}` {action}")
                if action in ("started", "restarted"):
                    break

    def source_of(self, label: str, before: int, reader: int | str) -> None:
        """Add the record that last set fact ``label`` before record ``before`` (read by
        record ``reader``, or what ``reader`` names); the event's payload and sender are
        the reader's own."""
        if isinstance(reader, int):
            reader = f"#{self.records[reader].seq}"
        if label.split(".")[0] in ("event", "actor", "now"):
            return
        parts = label.split(".")
        found = [_last_before(self.under.get(label, ()), before)] + [
            _last_before(self.exact.get(".".join(parts[:n]), ()), before)
            for n in range(1, len(parts))
        ]
        j = max((f for f in found if f is not None), default=None)
        if j is None:
            return
        r = self.records[j]
        if r.kind in ("open", "update"):
            value = _lookup(r.data or {}, label)
            self.facts.setdefault(j, {})[label] = None if value is _MISSING else value
            self.set_read(j, reader, label)
            return
        for path, _ in r.sets:
            if path == label or label.startswith(path + ".") or path.startswith(label + "."):
                self.set_read(j, reader, path)
                self.follow(j)
                return

    def set_read(self, j: int, reader: str, path: str) -> None:
        """Record ``j`` set ``path``, which record ``reader`` read."""
        self.add(j, None)
        self.read_by.setdefault(j, {}).setdefault(path, {})[reader] = None

    def step(self, i: int) -> Step:
        r = self.records[i]
        t = self.transition(r)
        facts = self.facts.get(i, {})
        why = list(self.why[i])
        groups: dict[tuple[str, ...], list[str]] = {}
        for path, readers in self.read_by.get(i, {}).items():
            groups.setdefault(tuple(sorted(readers, key=_reader_order)), []).append(path)
        # in the order of their first readers: what the earliest record read first
        ordered = sorted(groups.items(), key=lambda g: _reader_order(g[0][0]))
        if ordered:
            why.append(
                "set "
                + "; ".join(f"{', '.join(paths)} (read by {_and(rs)})" for rs, paths in ordered)
            )
        shown = [p for _, paths in ordered for p in paths if p in facts]
        return Step(
            r,
            tuple(why),
            t,
            _judged(r, t),
            tuple((p, facts[p]) for p in shown),
            self.deadline(i, t),
        )

    def deadline(self, i: int, t: ir.Transition | None) -> str | None:
        """A deadline record's deadline in words: ``after REVIEW_WINDOW (REVIEW_WINDOW =
        48h), counted from entering `awaiting_merchant` (#0)``."""
        r = self.records[i]
        if r.kind != "deadline" or t is None or t.deadline is None:
            return None
        named = [
            f"{c.name} = {c.text}"
            for c in self.constants.values()
            if re.search(rf"\b{re.escape(c.name)}\b", t.written)
        ]
        text = t.written + (f" ({', '.join(named)})" if named else "")
        entered = self.entry(i, r.source or "")
        if t.kind == "after" and t.start is None and entered is not None:
            text += f", counted from entering `{r.source}` (#{self.records[entered].seq})"
        return text


def _last_before(indexes: Sequence[int], i: int) -> int | None:
    """The greatest of the ascending ``indexes`` below ``i``, or None."""
    k = bisect.bisect_left(indexes, i)
    return indexes[k - 1] if k else None


def _reader_order(reader: str) -> tuple[int, str]:
    """Records (``#3``) in order, then what is not a record."""
    return (int(reader[1:]), "") if reader[1:].isdigit() else (1 << 62, reader)


def _and(items: Sequence[str]) -> str:
    """``#1, #2 and the refused step``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _labels(clauses: Iterable[Clause]) -> list[str]:
    """The facts (and payload fields) the clauses read, named conditions' included."""
    out: list[str] = []
    for c in clauses:
        out.extend(label for label, _ in c.reads)
        out.extend(_labels(c.parts))
    return out


_MISSING = object()
#: the kinds of transition a record of each kind may have taken
_KINDS = {"event": ("event",), "auto": ("auto", "soon"), "deadline": ("after", "at")}


def _lookup(data: Mapping[str, Any], label: str) -> Any:
    node: Any = data
    for part in label.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _place(rule: str) -> str:
    """``line:col`` of a ``file:line:col`` position (the file part depends on how the
    policy was loaded)."""
    return ":".join(rule.rsplit(":", 2)[-2:])


def _judged(r: Record, t: ir.Transition | None) -> Condition | None:
    """The transition's condition judged again on the values its record kept, at its time."""
    if t is None or t.guard is None or r.cause is None or r.cause.guard is None:
        return None
    variables: dict[str, Any] = {}
    for label, value in r.cause.reads:
        if value is None:
            continue  # not set then (an optional fact): left out, as it was
        node = variables
        parts = label.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    at = r.at + MOMENT if t.kind == "soon" else r.at
    return judge(t.guard, variables, at)


def judge(guard: ir.Expr, variables: Mapping[str, Any], at: datetime) -> Condition:
    """A condition evaluated with explain: its value and its clauses."""
    e = guard.compiled.explain(variables, now=at)
    return Condition(
        guard.text,
        e.value,
        str(e.error) if e.error is not None else None,
        e.clauses,
    )


def _because(chain: _Chain, i: int, what: str, tz: tzinfo | None) -> str:
    """One line: ``what`` because of record ``i``'s clause and trigger."""
    r = chain.records[i]
    t = chain.transition(r)
    if r.kind == "open":
        return f"{what} because the case was opened there ({show_time(r.at, tz)})"
    head = f'clause "{r.cite}"' if r.cite else (f"the rule at {r.rule}" if r.rule else "a rule")
    reasons = [_trigger(r, t, tz, chain.deadline(i, t))]
    condition = _judged(r, t)
    if condition is not None:
        reasons.extend(_clause_line(c, tz) for c in condition.clauses)
    return f"{what} because of {head}: " + ", ".join(reasons)


def _emitted(r: Record, name: str) -> str:
    """``refund(amount: 460) was emitted``."""
    effects = [
        f"{e.name}({', '.join(f'{k}: {stdlib.render(v)}' for k, v in e.args.items())})"
        for e in r.effects
        if e.name == name
    ]
    return f"{' and '.join(effects)} was emitted"


def _trigger(
    r: Record, t: ir.Transition | None, tz: tzinfo | None, deadline: str | None = None
) -> str:
    """What made a record happen, in words (``deadline``: a deadline's, in words)."""
    if r.kind == "event":
        payload = ", ".join(f"{k}: {stdlib.render(v)}" for k, v in (r.data or {}).items())
        return f"{r.event} by {r.actor}" + (f" ({payload})" if payload else "")
    if r.kind == "deadline":
        written = deadline or (t.written if t is not None and t.deadline is not None else "")
        return f"the deadline {written} passed ({show_time(r.at, tz)})"
    if r.kind == "expiry":
        return f"clock `{(r.data or {}).get('clock')}` ran out ({show_time(r.at, tz)})"
    if r.kind == "auto":
        if t is not None and t.kind == "soon":
            return f"as soon as it held ({show_time(r.at, tz)})"
        return f"automatically in `{r.source}`"
    return r.kind


def _clause_line(c: Clause, tz: tzinfo | None) -> str:
    """A clause with what it saw: ``order.amount < FAST_REFUND_LIMIT (120 < 300)``."""
    text = " ".join(c.text.split())
    seen = _clause_values(c, tz)
    if c.error is None and not isinstance(c.value, bool):
        return f"{text} = {_shown(c.value, tz)}"
    mark = "" if c.value is True and c.error is None else "NOT "
    return f"{mark}{text}" + (f" ({seen})" if seen else "")


def _clause_values(c: Clause, tz: tzinfo | None) -> str:
    """The values a clause saw, written as briefly as they read."""
    if c.error is not None:
        return f"error: {c.error}"
    text = " ".join(c.text.split())
    if len(c.operands) == 2:
        (left, lv), (right, rv) = c.operands
        left, right = " ".join(left.split()), " ".join(right.split())
        if text.startswith(left) and text.endswith(right) and len(left) + len(right) < len(text):
            middle = text[len(left) : len(text) - len(right)]
            return f"{_shown(lv, tz)}{middle}{_shown(rv, tz)}"
    if len(c.reads) == 1 and c.reads[0][0] == text:
        return _shown(c.reads[0][1], tz)
    if c.reads:
        reads = dict(c.reads)  # a fact read twice is shown once
        return ", ".join(f"{k} = {_shown(v, tz)}" for k, v in reads.items())
    return "" if c.parts else _shown(c.value, tz)


def _shown(v: Any, tz: tzinfo | None) -> str:
    """A value as a reader wants it: a time in the policy's zone, as timelines show it."""
    if isinstance(v, datetime):
        return show_time(v, tz)
    return stdlib.render(v)


# -- text ----------------------------------------------------------------------------------


def render_text(e: CaseExplanation) -> str:
    """The explanation as a policy reviewer reads it: the answer, then the chain."""
    tz = e.tz
    status = f" (final, outcome {e.outcome})" if e.final and e.outcome else ""
    when = " when the step was refused" if e.refusal is not None and e.state is not None else ""
    where = f"in `{e.state}`" if e.state is not None else "never opened"
    lines = [f"case of {e.workflow} {where}{status}{when}", e.answer]
    others = [r for r in e.refused if r is not e.refusal]
    if others:
        also = "also refused" if e.refusal is not None else "refused"
        lines.append(f"({also}: " + "; ".join(f"{r.title}: {r.code}" for r in others) + ")")
    if e.refusal is not None:
        lines.extend(_refusal_lines(e.refusal, tz))
    if e.steps:
        shown = "every record" if e.everything else "the chain"
        left = (
            f"; {e.left_out} other record{'s' * (e.left_out != 1)} left out" if e.left_out else ""
        )
        lines.append("")
        lines.append(f"{shown} ({len(e.steps)} record{'s' * (len(e.steps) != 1)}{left}):")
        for s in e.steps:
            lines.extend(_step_lines(s, tz))
    return "\n".join(lines)


def _step_lines(s: Step, tz: tzinfo | None) -> list[str]:
    r = s.record
    head = describe(r, tz).split("\n")[0]
    out = [f"  #{r.seq} {head}"]
    pad = "       "
    for why in s.why:
        out.append(f"{pad}why: {why}")
    if s.facts:
        out.append(f"{pad}with " + ", ".join(f"{k} = {_shown(v, tz)}" for k, v in s.facts))
    if s.deadline is not None:
        out.append(f"{pad}deadline: {s.deadline}")
    if s.condition is not None:
        out.append(f"{pad}when {' '.join(s.condition.text.split())}:")
        out.extend(_clause_lines(s.condition.clauses, pad + "  ", tz))
    if r.cite:
        out.append(f'{pad}cite "{r.cite}"')
    if s.transition is not None and s.transition.assumption:
        out.append(f'{pad}assumption "{s.transition.assumption}"')
    out.extend(pad + line for line in outcome_lines(r))
    return out


def _clause_lines(clauses: Iterable[Clause], pad: str, tz: tzinfo | None) -> list[str]:
    out = []
    for c in clauses:
        text = " ".join(c.text.split())
        seen = _clause_values(c, tz)
        if c.error is None and not isinstance(c.value, bool):
            # a named value, not a condition: what it came to
            value = f" = {_shown(c.value, tz)}"
            line = f"{pad}· {text}{value}" + (f"   ({seen})" if seen and seen != value[3:] else "")
        else:
            mark = "✓" if c.value is True and c.error is None else "✗"
            line = f"{pad}{mark} {text}" + (f"   ({seen})" if seen else "")
        out.append(line)
        out.extend(_clause_lines(c.parts, pad + "    ", tz))
    return out


def _refusal_lines(f: Refusal, tz: tzinfo | None) -> list[str]:
    where = f" in `{f.state}`" if f.state else ""
    out = [f"  refused at {show_time(f.at, tz)}{where}"]
    for c in f.conditions:
        value = f"error: {c.error}" if c.error is not None else stdlib.render(c.value)
        out.append(f"  when {' '.join(c.text.split())} -> {value}:")
        out.extend(_clause_lines(c.clauses, "    ", tz))
    return out


# -- JSON ----------------------------------------------------------------------------------


def explanation_data(e: CaseExplanation) -> dict[str, Any]:
    """The explanation as JSON data (``rulekit explain --format json``; docs/runtime.md)."""
    return {
        "question": e.question,
        "workflow": e.workflow,
        "state": e.state,
        "final": e.final,
        "outcome": e.outcome,
        "found": e.found,
        "answer": e.answer,
        "refusal": _refusal_data(e.refusal) if e.refusal is not None else None,
        "refused": [
            {"number": r.number, "step": r.step, "code": r.code, "message": r.message}
            for r in e.refused
        ],
        "steps": [_step_data(s) for s in e.steps],
        "left_out": e.left_out,
    }


def _step_data(s: Step) -> dict[str, Any]:
    r = s.record
    return {
        "seq": r.seq,
        "at": r.at.isoformat(),
        "kind": r.kind,
        "source": r.source,
        "target": r.target,
        "event": r.event,
        "actor": r.actor,
        "data": to_data(dict(r.data))
        if r.data and r.kind in ("event", "expiry", "clock")
        else None,
        "why": list(s.why),
        "facts": {k: to_data(v) for k, v in s.facts},
        "deadline": s.deadline,
        "condition": _condition_data(s.condition) if s.condition is not None else None,
        "cite": r.cite,
        "assumption": s.transition.assumption if s.transition is not None else None,
        "sets": {k: to_data(v) for k, v in r.sets},
        "effects": [{"name": x.name, "args": to_data(dict(x.args))} for x in r.effects],
        "rule": r.rule,
    }


def _condition_data(c: Condition) -> dict[str, Any]:
    return {
        "text": c.text,
        "value": to_data(c.value),
        "error": c.error,
        "clauses": [_clause_data(x) for x in c.clauses],
    }


def _clause_data(c: Clause) -> dict[str, Any]:
    return {
        "text": c.text,
        "value": to_data(c.value),
        "error": c.error,
        "reads": {k: to_data(v) for k, v in c.reads},
        "operands": [[k, to_data(v)] for k, v in c.operands],
        "line": c.line,
        "column": c.column,
        "parts": [_clause_data(p) for p in c.parts],
    }


def _refusal_data(f: Refusal) -> dict[str, Any]:
    return {
        "at": f.at.isoformat(),
        "step": f.step,
        "number": f.number,
        "event": f.event,
        "code": f.code,
        "message": f.message,
        "state": f.state,
        "conditions": [_condition_data(c) for c in f.conditions],
    }
