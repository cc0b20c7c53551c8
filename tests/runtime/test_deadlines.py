"""Deadlines: the boundary (due at T+D, fires after it, recorded at T+D), chains counted
from due times, several due before a step, due exactly at an event, ``after D from FACT``
and ``at TIME``, guarded deadlines dropped, ``stay`` vs re-entry, and the outcome not
depending on when a worker fires them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from .helpers import CST, T0, TIMERS, US, D, H, M, S, engine_for, kinds, names, refused, snapshot


@pytest.mark.parametrize(
    ("advance", "state", "effects"),
    [
        (0 * H, "waiting", []),
        (47 * H + 59 * M + 59 * S, "waiting", []),
        (48 * H, "waiting", []),  # within 48h includes the 48th hour
        (48 * H + US, "timed_out", ["timeout"]),  # the first moment after it
        (48 * H + S, "timed_out", ["timeout"]),
        (30 * D, "timed_out", ["timeout"]),
    ],
)
def test_deadline_fires_only_after_its_due_time(
    advance: timedelta, state: str, effects: list[str]
) -> None:
    engine = engine_for(TIMERS)
    case = engine.open("review", {"n": 0}, at=T0)
    assert case.next_deadline == T0 + 48 * H
    engine.advance(case, T0 + advance)
    assert case.state.name == state
    assert names(case.effects) == effects
    if effects:
        # recorded at its due time, not at the time the clock was moved to
        fired = [r for r in case.history if r.kind == "deadline"]
        assert [(r.at, r.source, r.target) for r in fired] == [
            (T0 + 48 * H, "waiting", "timed_out")
        ]
        assert case.effects[0].at == T0 + 48 * H
        assert case.final and case.outcome == "timed_out" and case.next_deadline is None
    else:
        assert case.next_deadline == T0 + 48 * H


@pytest.mark.parametrize(
    ("to", "state", "next_deadline", "entered"),
    [
        (T0 + H, "s1", T0 + H, []),
        (T0 + H + US, "s2", T0 + 2 * H, [T0 + H]),
        (T0 + 2 * H, "s2", T0 + 2 * H, [T0 + H]),
        (T0 + 2 * H + US, "s3", T0 + 3 * H, [T0 + H, T0 + 2 * H]),
        (T0 + 3 * H, "s3", T0 + 3 * H, [T0 + H, T0 + 2 * H]),
        (T0 + 10 * H, "done", None, [T0 + H, T0 + 2 * H, T0 + 3 * H]),
    ],
)
def test_next_states_deadlines_count_from_the_due_time(
    to: datetime, state: str, next_deadline: datetime | None, entered: list[datetime]
) -> None:
    engine = engine_for(TIMERS)
    case = engine.open("chain", {"n": 0}, at=T0)
    engine.advance(case, to)
    assert case.state.name == state
    assert case.next_deadline == next_deadline
    assert [r.at for r in case.history if r.kind == "deadline"] == entered


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([10 * H], id="one jump"),
        pytest.param([H + US, 2 * H + US, 3 * H + US, 10 * H], id="each just after due"),
        pytest.param([H, 2 * H, 3 * H, 10 * H], id="each exactly at due"),
        pytest.param([m * 7 * M for m in range(1, 86)], id="every 7 minutes"),
    ],
)
def test_outcome_does_not_depend_on_how_often_time_is_advanced(steps: list[timedelta]) -> None:
    engine = engine_for(TIMERS)
    case = engine.open("chain", {"n": 0}, at=T0)
    for s in steps:
        engine.advance(case, T0 + s)
    assert case.state.name == "done"
    assert [(r.at, r.source, r.target) for r in case.history if r.kind == "deadline"] == [
        (T0 + H, "s1", "s2"),
        (T0 + 2 * H, "s2", "s3"),
        (T0 + 3 * H, "s3", "done"),
    ]


@pytest.mark.parametrize(
    ("step", "last_kind"),
    [
        pytest.param(("send", "note", "consumer"), "event", id="send"),
        pytest.param(("update", {"n": 7}), "update", id="update"),
        pytest.param(("advance",), "advance", id="advance"),
    ],
)
def test_deadlines_due_before_a_step_fire_first_in_due_order(
    step: tuple[Any, ...], last_kind: str
) -> None:
    engine = engine_for(TIMERS)
    case = engine.open("many", {"n": 0}, at=T0)
    at = T0 + 5 * H
    if step[0] == "send":
        engine.send(case, step[1], step[2], at=at)
    elif step[0] == "update":
        engine.update(case, step[1], at=at)
    else:
        engine.advance(case, at)
    # due order; equal due times in declaration order; each at its due time
    fired = [(e.name, e.at) for e in case.effects if e.name != "noted"]
    assert fired == [
        ("e1", T0 + H),
        ("e1b", T0 + H),
        ("e2", T0 + 2 * H),
        ("e3", T0 + 3 * H),
    ]
    assert kinds(case) == ["open", "deadline", "deadline", "deadline", "deadline", last_kind]
    assert case.history[-1].at == at
    assert [r.seq for r in case.history] == list(range(len(case.history)))
    if step[0] == "send":
        assert names(case.effects)[-1] == "noted" and case.effects[-1].at == at


def test_deadline_due_exactly_at_an_events_time_fires_after_the_event() -> None:
    engine = engine_for(TIMERS)
    case = engine.open("many", {"n": 0}, at=T0)
    engine.send(case, "note", "consumer", at=T0 + H)
    assert names(case.effects) == ["noted"]  # the event first; e1/e1b not yet
    assert case.next_deadline == T0 + H
    engine.advance(case, T0 + H + US)
    assert [(e.name, e.at) for e in case.effects] == [
        ("noted", T0 + H),
        ("e1", T0 + H),
        ("e1b", T0 + H),
    ]
    assert kinds(case) == ["open", "event", "deadline", "deadline", "advance"]


@pytest.mark.parametrize(
    ("at", "outcome"),
    [
        (T0 + 48 * H - US, "approved"),
        (T0 + 48 * H, "approved"),  # due exactly at the event: the event is handled first
    ],
)
def test_an_event_at_the_due_time_beats_the_deadline(at: datetime, outcome: str) -> None:
    engine = engine_for(TIMERS)
    case = engine.open("review", {"n": 0}, at=T0)
    engine.send(case, "approve", "merchant", at=at)
    assert case.outcome == outcome
    assert case.effects == [] and kinds(case) == ["open", "event"]


@pytest.mark.parametrize("late", [US, S, 5 * D])
def test_an_event_after_an_unfired_deadline_meets_the_fired_deadline(late: timedelta) -> None:
    """No worker fired the deadline; the event arriving after it is handled after it."""
    engine = engine_for(TIMERS)
    case = engine.open("review", {"n": 0}, at=T0)
    before = snapshot(case)
    with refused("case_closed"):
        engine.send(case, "approve", "merchant", at=T0 + 48 * H + late)
    assert snapshot(case) == before  # a refused step fires nothing either
    # a step the timed-out case still accepts: the advance, which fires it at T+48h
    engine.advance(case, T0 + 48 * H + late)
    assert case.outcome == "timed_out"
    assert case.history[1].at == T0 + 48 * H


FROM_AT = """
policy t.from_at
facts {
  order.paid_at: time
  parcel.sent_at: time?
}
actors consumer
event poke by consumer
effect late
effect expired
workflow w {
  initial state in_transit {
    after 10d from parcel.sent_at -> late emit late
    at order.paid_at + 30d -> expired emit expired
    on poke stay
  }
  final state late
  final state expired
}
"""


@pytest.mark.parametrize(
    ("facts", "due", "target"),
    [
        pytest.param(
            {"order.paid_at": T0 - 5 * D, "parcel.sent_at": T0 - 2 * D},
            T0 + 8 * D,
            "late",
            id="after-from-fact",
        ),
        pytest.param(
            {"order.paid_at": T0 - 29 * D, "parcel.sent_at": T0 - 2 * D},
            T0 + D,
            "expired",
            id="at-time-first",
        ),
        pytest.param(
            {"order.paid_at": T0 - 5 * D},
            T0 + 25 * D,
            "expired",
            id="optional-from-fact-missing-no-deadline",
        ),
        pytest.param(
            {"order.paid_at": T0, "parcel.sent_at": T0 + 25 * D},
            T0 + 30 * D,
            "expired",
            id="from-a-future-time",
        ),
        pytest.param(
            {"order.paid_at": T0, "parcel.sent_at": T0 + 20 * D},
            T0 + 30 * D,
            "late",
            id="same-due-time-declaration-order",
        ),
        pytest.param(
            {
                "order.paid_at": "2026-03-01T04:00:00Z",
                "parcel.sent_at": "2026-03-02T12:00:00+08:00",
            },
            datetime(2026, 3, 12, 12, tzinfo=CST),
            "late",
            id="facts-as-rfc3339-text",
        ),
    ],
)
def test_after_from_a_time_fact_and_at_a_time(
    facts: dict[str, Any], due: datetime, target: str
) -> None:
    engine = engine_for(FROM_AT)
    case = engine.open("w", facts, at=T0)
    assert case.next_deadline == due
    engine.send(case, "poke", "consumer", at=due)  # at the due time: not yet
    assert case.state.name == "in_transit"
    engine.advance(case, due + US)
    assert case.state.name == target
    assert [(e.name, e.at) for e in case.effects] == [(target, due)]
    assert case.history[-2].kind == "deadline" and case.history[-2].at == due


def test_a_deadline_is_computed_once_on_entry() -> None:
    """docs/runtime.md: a later `update` of a fact it counts from does not move it, and one
    whose optional fact is not set is not scheduled."""
    engine = engine_for(FROM_AT)
    case = engine.open("w", {"order.paid_at": T0}, at=T0)
    assert [d[0] for d in case.deadlines] == [T0 + 30 * D]  # no parcel.sent_at: no `after`
    engine.update(case, {"parcel.sent_at": T0, "order.paid_at": T0 - 29 * D}, at=T0 + H)
    assert [d[0] for d in case.deadlines] == [T0 + 30 * D]
    engine.advance(case, T0 + 30 * D + US)
    assert case.outcome == "expired" and case.history[-2].at == T0 + 30 * D


GUARDED = """
policy t.guarded
facts {
  flag: bool
}
actors consumer
event poke by consumer
effect x
effect y
workflow w {
  initial state a {
    after 1h when flag -> gx emit x
    after 2h -> gy emit y
    on poke stay
  }
  final state gx
  final state gy
}
"""


@pytest.mark.parametrize(
    ("flag", "update_at", "outcome", "due"),
    [
        (True, None, "gx", T0 + H),
        (False, None, "gy", T0 + 2 * H),
        # the guard is read when the deadline fires, not when it is scheduled
        (False, T0 + 30 * M, "gx", T0 + H),
        (False, T0 + H, "gx", T0 + H),  # updated exactly at the due time: still before it fires
        (False, T0 + H + US, "gy", T0 + 2 * H),  # too late: dropped at T+1h
        (True, T0 + 30 * M, "gy", T0 + 2 * H),  # flag turned off before it fires
    ],
)
def test_guarded_deadline_that_does_not_hold_is_dropped(
    flag: bool, update_at: datetime | None, outcome: str, due: datetime
) -> None:
    engine = engine_for(GUARDED)
    case = engine.open("w", {"flag": flag}, at=T0)
    if update_at is not None:
        engine.update(case, {"flag": not flag}, at=update_at)
    engine.advance(case, T0 + 5 * H)
    assert case.outcome == outcome
    deadlines = [r for r in case.history if r.kind == "deadline"]
    assert [(r.at, r.target) for r in deadlines] == [(due, outcome)]  # nothing for the dropped one
    assert [(e.name, e.at) for e in case.effects] == [(outcome[1], due)]


def test_a_dropped_deadline_does_not_come_back() -> None:
    engine = engine_for(GUARDED)
    case = engine.open("w", {"flag": False}, at=T0)
    engine.send(case, "poke", "consumer", at=T0 + 90 * M)  # drops the 1h deadline
    assert case.state.name == "a" and case.next_deadline == T0 + 2 * H
    engine.update(case, {"flag": True}, at=T0 + 100 * M)
    engine.advance(case, T0 + 5 * H)
    assert case.outcome == "gy"


@pytest.mark.parametrize(
    ("event", "next_deadline", "fires_at"),
    [
        ("note", T0 + 48 * H, T0 + 48 * H),  # stay: the deadline keeps running
        ("remind", T0 + 58 * H, T0 + 58 * H),  # re-entry: it starts over
    ],
)
def test_stay_keeps_deadlines_and_reentry_restarts_them(
    event: str, next_deadline: datetime, fires_at: datetime
) -> None:
    engine = engine_for(TIMERS)
    case = engine.open("review", {"n": 0}, at=T0)
    engine.send(case, event, "consumer", at=T0 + 10 * H)
    assert case.state.name == "waiting"
    assert case.next_deadline == next_deadline
    record = case.history[-1]
    assert (record.source, record.target) == (
        ("waiting", None) if event == "note" else ("waiting", "waiting")
    )
    engine.advance(case, T0 + 48 * H + US)
    assert case.final is (fires_at == T0 + 48 * H)
    engine.advance(case, fires_at + US)
    assert case.outcome == "timed_out"
    assert case.history[-2].at == fires_at
