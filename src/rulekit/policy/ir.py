"""The compiled policy: plain data the runtime runs and the artifact stores.

Produced by the checker from either front end, or loaded from a compiled JSON
artifact. Nothing here refers back to source text except positions (for
messages) and each expression's own text. Per workflow, transitions are
indexed by state and event so the runtime never scans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rulekit.core import calendar as cal
from rulekit.expr import stdlib
from rulekit.expr.cost import DEFAULT_COST_LIMIT
from rulekit.expr.expression import Expression
from rulekit.expr.types import Type


@dataclass(frozen=True)
class Position:
    """Where an element was written (1-based; the end is one past the last character, as in SARIF)."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Expr:
    """An expression of the policy: its text, where it was written, and its compiled form."""

    text: str
    at: Position
    compiled: Expression

    @property
    def type(self) -> Type:
        return self.compiled.type


@dataclass(frozen=True)
class Fact:
    path: str
    type: Type
    optional: bool
    at: Position
    #: actors that may supply the fact when they open or update a case; the integration
    #: (an admin caller of the service) always may, and by default only it
    by: tuple[str, ...] = ()
    #: `= EXPR`: the value it reads as while it is not set (None: no default); a fact
    #: with a default is optional
    default: Any = None


@dataclass(frozen=True)
class Field:
    name: str
    type: Type


@dataclass(frozen=True)
class Event:
    name: str
    actors: tuple[str, ...]
    payload: tuple[Field, ...]
    at: Position


@dataclass(frozen=True)
class EffectDecl:
    name: str
    params: tuple[Field, ...]
    at: Position


@dataclass(frozen=True)
class Constant:
    name: str
    type: Type
    value: Any
    text: str
    note: tuple[str, str] | None
    at: Position


@dataclass(frozen=True)
class Condition:
    """``condition NAME = EXPR`` (a bool), or ``value NAME = EXPR`` (``value``: of any
    type): checked once; every expression that names it evaluates this one's compiled
    function (``expr.compiled``)."""

    name: str
    expr: Expr
    at: Position
    value: bool = False

    @property
    def kind(self) -> str:
        """``condition`` or ``value``, as declared."""
        return "value" if self.value else "condition"


@dataclass(frozen=True)
class Emit:
    effect: str
    args: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class Assign:
    fact: str
    value: Expr


@dataclass(frozen=True)
class ClockAction:
    """What a transition does to a clock: ``start``, ``restart``, ``stop``, or ``extend``
    it ``by`` a length."""

    verb: str
    clock: str
    by: Expr | None = None


@dataclass(frozen=True)
class Transition:
    """One way out of (or within) a state.

    ``kind``: ``event``, ``auto``, ``soon`` (as soon as: an automatic transition that is
    also scheduled, its ``deadline`` the instant time makes its condition true),
    ``after``, ``at``, or ``expiry`` (a clock's). ``target`` None means an internal
    transition (stay: no exit, no entry, deadlines kept).
    """

    kind: str
    source: str
    target: str | None
    event: str | None = None
    #: Actors that may send the event through this transition.
    actors: tuple[str, ...] = ()
    guard: Expr | None = None
    deadline: Expr | None = None
    start: Expr | None = None
    emits: tuple[Emit, ...] = ()
    assigns: tuple[Assign, ...] = ()
    cite: str | None = None
    #: Where it was written: the state itself, an ``every state`` block, or a fragment.
    origin: str = "state"
    at: Position | None = None
    #: `assumption "..."`: what the rule assumes where its source is silent
    assumption: str | None = None
    #: what it does to the workflow's clocks, in the order the clocks are declared
    clocks: tuple[ClockAction, ...] = ()
    #: an ``after``/``at`` deadline's modifiers: the calendar it is ``rolled to a working
    #: day`` on, and whether it lasts to the ``end of day`` (docs/time.md)
    rolled: str | None = None
    end_of_day: bool = False
    #: `reschedule` (on a `stay` only): after its assignments, the state's deadlines are
    #: counted again from the facts as they are then (docs/time.md, "In deadlines")
    reschedule: bool = False

    @property
    def adjusted(self) -> str:
        """The modifiers as written after the deadline (``, end of day``), or ""."""
        rolled = f", rolled to a working day in {self.rolled}" if self.rolled else ""
        return rolled + (", end of day" if self.end_of_day else "")

    @property
    def written(self) -> str:
        """An ``after``/``at`` deadline as written: ``after 14d from appeal.filed_at``."""
        assert self.deadline is not None
        start = f" from {self.start.text}" if self.start is not None else ""
        return f"{self.kind} {self.deadline.text}{start}{self.adjusted}"


@dataclass(frozen=True)
class State:
    name: str
    initial: bool
    final: bool
    outcome: str | None
    waits: str | None
    cite: str | None
    transitions: tuple[Transition, ...]
    at: Position
    #: event name -> transitions taking it, in order.
    by_event: Mapping[str, tuple[Transition, ...]] = field(default_factory=dict, compare=False)
    automatic: tuple[Transition, ...] = field(default=(), compare=False)
    deadlines: tuple[Transition, ...] = field(default=(), compare=False)
    #: `waits unbounded`: the state waits on a party with no deadline by design, and
    #: `rulekit check --max-open` bounds the rest of the workflow without it
    unbounded: bool = False
    #: `assumption "..."` on the state
    assumption: str | None = None

    @staticmethod
    def build(
        name: str,
        initial: bool,
        final: bool,
        outcome: str | None,
        waits: str | None,
        cite: str | None,
        transitions: tuple[Transition, ...],
        at: Position,
        unbounded: bool = False,
        assumption: str | None = None,
    ) -> State:
        by_event: dict[str, list[Transition]] = {}
        for t in transitions:
            if t.kind == "event" and t.event is not None:
                by_event.setdefault(t.event, []).append(t)
        return State(
            name,
            initial,
            final,
            outcome,
            waits,
            cite,
            transitions,
            at,
            by_event={k: tuple(v) for k, v in by_event.items()},
            automatic=tuple(t for t in transitions if t.kind in ("auto", "soon")),
            deadlines=tuple(t for t in transitions if t.kind in ("after", "at", "soon")),
            unbounded=unbounded,
            assumption=assumption,
        )


@dataclass(frozen=True)
class Clock:
    """A deadline of the whole case (docs/language.md, "Clocks").

    ``length`` is evaluated when the clock starts (at opening, ``starts``
    ``open``; on an event, ``event``; or by a transition's ``start``,
    ``transition``), counted from ``counting_from`` (default: the time it starts).
    It does not run while the case is in a state of ``paused_in``. When it runs
    out, ``expiry`` (a transition of kind ``expiry``) is taken if the case is in
    one of ``expiry_in`` (empty: any non-final state).
    """

    name: str
    length: Expr
    starts: str
    start_event: str | None
    counting_from: Expr | None
    paused_in: tuple[str, ...]
    expiry_in: tuple[str, ...]
    expiry: Transition
    at: Position


@dataclass(frozen=True)
class Workflow:
    name: str
    initial: str
    states: Mapping[str, State]
    at: Position
    #: optional facts that a case of this workflow must be opened with
    requires: tuple[str, ...] = ()
    #: the workflow's clocks, in the order they are declared
    clocks: Mapping[str, Clock] = field(default_factory=dict)


@dataclass(frozen=True)
class Migration:
    """How a case of version ``from_version`` moves over to this policy's version.

    ``states``: workflow -> old state -> new state (a state not named keeps its name);
    ``assigns``: facts added, computed over the case's facts as they were;
    ``deadlines``: ``keep`` the waiting deadlines or ``recompute`` them from this
    version's rules, counted from the time the case entered its state."""

    from_version: str
    states: Mapping[str, Mapping[str, str]]
    assigns: tuple[Assign, ...]
    deadlines: str
    at: Position


@dataclass(frozen=True)
class Policy:
    """A checked, compiled policy: what ``rulekit.load`` returns."""

    name: str
    version: str | None
    source_doc: str | None
    timezone: str | None
    facts: Mapping[str, Fact]
    enums: Mapping[str, tuple[str, ...]]
    constants: Mapping[str, Constant]
    actors: tuple[str, ...]
    events: Mapping[str, Event]
    effects: Mapping[str, EffectDecl]
    workflows: Mapping[str, Workflow]
    file: str
    #: sha256 of the artifact's content without source positions.
    hash: str = ""
    #: the most an expression of the policy may cost to evaluate (docs/expressions.md, "Cost")
    cost_limit: int = DEFAULT_COST_LIMIT
    #: named conditions and values, in an order where each comes after those it names
    conditions: Mapping[str, Condition] = field(default_factory=dict)
    #: working-day calendars, as declared (the first is the default); their content,
    #: read when the policy was compiled
    calendars: tuple[cal.WorkCalendar, ...] = ()
    #: `migrate from` blocks: the earlier version each applies to -> the migration
    migrations: Mapping[str, Migration] = field(default_factory=dict)

    def workflow(self, name: str) -> Workflow:
        return self.workflows[name]

    @property
    def time_rules(self) -> cal.TimeRules:
        """The zone and calendars its calendar periods count in (UTC without a zone)."""
        if self.timezone is None:
            return cal.TimeRules("UTC", stdlib.DEFAULT_TIME_RULES.tz, self.calendars)
        return cal.TimeRules(self.timezone, stdlib.time_zone(self.timezone), self.calendars)
