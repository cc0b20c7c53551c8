"""What a running case is: small, slotted records the engine updates.

Records, causes and effects are written once and never changed (plain
slotted dataclasses rather than frozen ones: a frozen dataclass pays for
every field it sets, on every step).

A :class:`Case` holds only what differs between cases (state, facts, pending
deadlines, effects, history); the compiled workflow is shared. History is an
append-only list of :class:`Record`: replaying its inputs (open, send,
update, advance) against the same policy rebuilds the same case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rulekit.policy import ir


@dataclass(slots=True)
class Effect:
    """An effect a transition emitted: its name and evaluated arguments."""

    name: str
    args: Mapping[str, Any]
    at: datetime
    #: sequence number of the history record that emitted it
    seq: int


class Cause:
    """Why a transition was taken: the guard that decided it and the values it read.

    Facts change copy-on-write, so keeping the variables the guard saw costs
    nothing on the step; ``reads`` looks the values up when someone asks.
    """

    __slots__ = ("_paths", "_variables", "guard")

    def __init__(
        self,
        guard: str | None,
        paths: tuple[tuple[str, tuple[str, ...]], ...] = (),
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        self.guard = guard
        self._paths = paths
        self._variables = variables

    @classmethod
    def of(cls, guard: str | None, reads: tuple[tuple[str, Any], ...]) -> Cause:
        """A cause from values already read (a record a store kept)."""
        return cls(guard, tuple((label, (label,)) for label, _ in reads), dict(reads))

    @property
    def reads(self) -> tuple[tuple[str, Any], ...]:
        """(path as written, value) of each fact or payload field the guard read."""
        out = []
        for label, path in self._paths:
            node: Any = self._variables
            for part in path:
                try:
                    node = node[part]
                except (KeyError, TypeError, IndexError):
                    node = None
                    break
            out.append((label, node))
        return tuple(out)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cause) and (self.guard, self.reads) == (other.guard, other.reads)

    def __hash__(self) -> int:
        return hash(self.guard)

    def __repr__(self) -> str:
        return f"Cause(guard={self.guard!r}, reads={self.reads!r})"


@dataclass(slots=True)
class Record:
    """One entry of a case's history.

    ``kind``: ``open``, ``event``, ``update``, ``advance`` (inputs), and
    ``deadline``, ``auto``, ``expiry`` (a clock ran out and its expiry was taken),
    ``reschedule`` (a `stay` with ``reschedule`` counted its state's deadlines again:
    ``data`` ``{"deadlines": [[deadline as written, new due or None], ...]}``) and
    ``clock`` (a clock started, paused, resumed, was extended, restarted, stopped, or ran
    out where its expiry does not apply): what the engine did by itself. Transition
    records carry ``source``/``target`` (target None: stayed), the transition's
    citation and its :class:`Cause`; ``expiry`` and ``clock`` records name the clock in
    ``data`` (``{"clock": "response", "action": "paused", "remaining": ...}``).
    """

    seq: int
    at: datetime
    kind: str
    source: str | None = None
    target: str | None = None
    event: str | None = None
    actor: str | None = None
    data: Mapping[str, Any] | None = None
    key: str | None = None
    cite: str | None = None
    cause: Cause | None = None
    effects: tuple[Effect, ...] = ()
    #: where the transition was written (file:line:col)
    rule: str | None = None
    #: the workflow, on the `open` record
    workflow: str | None = None
    #: facts the transition set: (path, value)
    sets: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ClockState:
    """Where one of a case's clocks stands (docs/runtime.md, "Clocks").

    ``status``: ``running`` (it runs out at ``due``), ``paused`` (with ``remaining``
    left, an exact length of time), ``stopped`` or ``expired``. ``since``: when it
    last changed (started, paused, resumed, extended, stopped or ran out).
    """

    status: str
    due: datetime | None
    remaining: timedelta | None
    since: datetime

    def to_data(self) -> list[Any]:
        """The state as plain data (a store keeps it): [status, due, remaining, since]."""
        return [self.status, self.due, self.remaining, self.since]

    @classmethod
    def from_data(cls, data: Any) -> ClockState:
        status, due, remaining, since = data
        return cls(status, due, remaining, since)


#: no clocks: shared by every case without any (clock maps are replaced, never changed in place)
NO_CLOCKS: Mapping[str, ClockState] = {}


class Case:
    """A live case of a workflow. Read it; change it only through the engine."""

    __slots__ = (
        "base",
        "clocks",
        "deadlines",
        "effects",
        "entered",
        "facts",
        "history",
        "id",
        "keys",
        "now",
        "state",
        "workflow",
    )

    def __init__(
        self,
        workflow: ir.Workflow,
        state: ir.State,
        facts: dict[str, Any],
        now: datetime,
        id: str | None = None,
    ) -> None:
        self.workflow = workflow
        self.state = state
        self.facts = facts
        #: pending deadlines: (due, order, transition, the earliest it may fire at: when its
        #: state was entered, or when a `reschedule` counted it), sorted by due
        self.deadlines: list[tuple[datetime, int, ir.Transition, datetime]] = []
        #: when the case entered its state: what a `reschedule` counts its deadlines from
        #: again (docs/time.md, "In deadlines")
        self.entered = now
        #: the workflow's clocks that have started, by name (replaced, never changed in place)
        self.clocks: Mapping[str, ClockState] = NO_CLOCKS
        self.effects: list[Effect] = []
        self.history: list[Record] = []
        #: how many earlier records of the history are not held in ``history`` (a case a
        #: durable store loaded holds only the records of the step it runs)
        self.base = 0
        #: idempotency keys seen -> the result of their step
        self.keys: dict[str, StepResult] | None = None
        #: the time of the last step
        self.now = now
        self.id = id

    @property
    def final(self) -> bool:
        return self.state.final

    @property
    def outcome(self) -> str | None:
        return self.state.outcome if self.state.final else None

    @property
    def next_deadline(self) -> datetime | None:
        """When the next deadline of the state, or the next running clock, is due."""
        due = self.deadlines[0][0] if self.deadlines else None
        if self.clocks and not self.state.final:
            for c in self.clocks.values():
                if c.due is not None and c.status == "running" and (due is None or c.due < due):
                    due = c.due
        return due

    def __repr__(self) -> str:
        return f"<Case {self.workflow.name}:{self.id or ''} in {self.state.name}>"


@dataclass(slots=True)
class StepResult:
    """What one step did: the records it appended and the effects they emitted."""

    records: tuple[Record, ...]
    state: str
    final: bool
    effects: tuple[Effect, ...] = field(default=())
    #: True when an idempotency key was seen before: nothing was done again
    repeated: bool = False


class SimulatedClock:
    """A clock the caller moves: the engine asks it for the time, never the wall clock."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock needs a timezone-aware start time")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> datetime:
        self._now += by
        return self._now

    def set(self, to: datetime) -> datetime:
        if to < self._now:
            raise ValueError(
                f"the clock cannot go back (from {self._now.isoformat()} to {to.isoformat()})"
            )
        self._now = to
        return self._now
