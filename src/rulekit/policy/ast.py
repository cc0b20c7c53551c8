"""The policy AST: what an author wrote, in either form (.rk or .yaml).

Both front ends build these same frozen nodes; every node carries the
:class:`~rulekit.core.source.Source` and span it came from, so the checker points
into the file the author edits. Expressions are the condition language's own
AST (:mod:`rulekit.expr.ast`), each with its source (:class:`ExprRef`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rulekit.core.source import Source, Span
from rulekit.expr import ast as expr_ast


@dataclass(frozen=True)
class Located:
    source: Source
    span: Span


@dataclass(frozen=True)
class Name(Located):
    text: str


@dataclass(frozen=True)
class ExprRef(Located):
    """An expression with the source its spans refer to."""

    root: expr_ast.Expr

    @property
    def text(self) -> str:
        return self.source.snippet(self.root.span)


@dataclass(frozen=True)
class TypeRef(Located):
    name: str
    args: tuple[TypeRef, ...] = ()

    def __str__(self) -> str:
        if self.args:
            return f"{self.name}({', '.join(str(a) for a in self.args)})"
        return self.name

    def nesting(self) -> int:
        """How many levels deep the type is (``int`` 1, ``list(int)`` 2), without recursion."""
        depth, level = 0, [self]
        while level:
            depth += 1
            level = [a for t in level for a in t.args]
        return depth


@dataclass(frozen=True)
class FactDecl(Located):
    path: Name
    type: TypeRef
    optional: bool
    #: actors that may supply the fact from outside (besides the integration)
    by: tuple[Name, ...] = ()
    #: why the fact is kept though no rule reads it (`record "..."`): no RK0704
    record: str | None = None
    #: `= EXPR`: the value it reads as while it is not set
    default: ExprRef | None = None


@dataclass(frozen=True)
class EnumDecl(Located):
    name: Name
    members: tuple[Name, ...]


@dataclass(frozen=True)
class ConstDecl(Located):
    name: Name
    expr: ExprRef
    #: ("assumption" | "note", text): why the value is what it is.
    note: tuple[str, str] | None


@dataclass(frozen=True)
class ConditionDecl(Located):
    """``condition NAME = EXPR``: a named condition over facts and constants; with
    ``value``, ``value NAME = EXPR``: a named value of any type."""

    name: Name
    expr: ExprRef
    value: bool = False


@dataclass(frozen=True)
class CalendarDecl(Located):
    """``calendar cn from "calendars/cn.yaml"``: ``file`` is the path as written
    (relative to the policy's file)."""

    name: Name
    file: Name


@dataclass(frozen=True)
class FieldDecl(Located):
    name: Name
    type: TypeRef


@dataclass(frozen=True)
class EventDecl(Located):
    name: Name
    payload: tuple[FieldDecl, ...]
    actors: tuple[Name, ...]


@dataclass(frozen=True)
class EffectDecl(Located):
    name: Name
    params: tuple[FieldDecl, ...]


@dataclass(frozen=True)
class Emit(Located):
    effect: Name
    args: tuple[tuple[Name, ExprRef], ...]


@dataclass(frozen=True)
class Assign(Located):
    fact: Name
    expr: ExprRef


@dataclass(frozen=True)
class ClockAction(Located):
    """A transition's ``start C``, ``restart C``, ``stop C`` or ``extend C by D``."""

    verb: str
    clock: Name
    by: ExprRef | None = None


@dataclass(frozen=True)
class Adjust(Located):
    """A deadline modifier: ``kind`` ``rolled`` (``rolled to a working day [in NAME]``,
    ``calendar`` the name given) or ``end_of_day`` (``end of day``)."""

    kind: str
    calendar: Name | None = None


@dataclass(frozen=True)
class Transition(Located):
    """``kind``: ``event`` (on E), ``auto`` (when C), ``soon`` (as soon as C), ``after``
    (after D [from T]), ``at`` (at T); ``expiry`` (a clock's ``on expiry``)."""

    kind: str
    event: Name | None
    actors: tuple[Name, ...] | None
    condition: ExprRef | None  # the condition of an automatic transition
    deadline: ExprRef | None  # after: the duration; at: the time
    start: ExprRef | None  # after ... from: the time it counts from
    guard: ExprRef | None
    target: Name | None  # None: stay (an internal transition)
    emits: tuple[Emit, ...]
    assigns: tuple[Assign, ...]
    cite: str | None
    #: `assumption "..."`: what the rule assumes where the source is silent
    assumption: str | None = None
    #: what it does to the workflow's clocks, as written
    clocks: tuple[ClockAction, ...] = ()
    #: an `after`'s or an `at`'s modifiers, as written
    adjust: tuple[Adjust, ...] = ()
    #: the `reschedule` clause, where written (None: not given)
    reschedule: Located | None = None


@dataclass(frozen=True)
class State(Located):
    name: Name
    initial: bool
    final: bool
    outcome: Name | None
    waits: str | None
    cite: str | None
    transitions: tuple[Transition, ...]
    #: `waits unbounded "..."`: no deadline by design (left out of `check --max-open`)
    unbounded: bool = False
    assumption: str | None = None


@dataclass(frozen=True)
class EveryBlock(Located):
    """Transitions for many states: ``mode`` is ``all``, ``except`` or ``in``."""

    mode: str
    states: tuple[Name, ...]
    transitions: tuple[Transition, ...]


@dataclass(frozen=True)
class Use(Located):
    fragment: Name


@dataclass(frozen=True)
class ClockDecl(Located):
    """``clock NAME = LENGTH [starts at open | starts on EVENT] [counting from T]
    [paused in S, ...] on expiry [in S, ...] -> TARGET ...``."""

    name: Name
    length: ExprRef
    #: ``open``, ``event`` (``starts on``), or ``transition`` (only a ``start`` clause starts it)
    starts: str
    start_event: Name | None
    counting_from: ExprRef | None
    paused_in: tuple[Name, ...]
    #: the states the expiry moves the case from (empty: every non-final state)
    expiry_in: tuple[Name, ...]
    #: the expiry as a transition of kind ``expiry`` (its target, clauses and citation)
    expiry: Transition


@dataclass(frozen=True)
class StateMap(Located):
    """``state WORKFLOW.OLD -> NEW`` in a ``migrate from`` block."""

    workflow: Name
    old: Name
    new: Name


@dataclass(frozen=True)
class Migration(Located):
    """``migrate from "VERSION" { ... }``: how a case of an earlier version moves over.

    ``options`` are the ``NAME VALUE`` clauses as written (only ``deadlines keep`` or
    ``deadlines recompute`` is valid: the checker says so, RK0342), so that a typo is a
    diagnostic with a caret rather than a syntax error."""

    from_version: Name
    states: tuple[StateMap, ...]
    assigns: tuple[Assign, ...]
    options: tuple[tuple[Name, Name], ...]


Part = State | EveryBlock | Use | ClockDecl


@dataclass(frozen=True)
class Workflow(Located):
    name: Name
    parts: tuple[Part, ...]
    is_fragment: bool = False
    #: optional facts a case of this workflow must be opened with
    requires: tuple[Name, ...] = ()


@dataclass(frozen=True)
class Policy(Located):
    name: Name
    version: str | None
    source_doc: str | None
    timezone: Name | None
    #: the header's `cost_limit`, as written (checked into an int: RK0319)
    cost_limit: Name | None
    facts: tuple[FactDecl, ...]
    enums: tuple[EnumDecl, ...]
    constants: tuple[ConstDecl, ...]
    actors: tuple[Name, ...]
    events: tuple[EventDecl, ...]
    effects: tuple[EffectDecl, ...]
    fragments: tuple[Workflow, ...]
    workflows: tuple[Workflow, ...]
    conditions: tuple[ConditionDecl, ...] = ()
    #: working-day calendars: `calendar NAME from "FILE"`
    calendars: tuple[CalendarDecl, ...] = ()
    #: `migrate from "VERSION" { ... }` blocks
    migrations: tuple[Migration, ...] = ()
