"""The engine's semantics, as ../shared/contracts/scenarios.md (time rules, refusals)
and ../shared/contracts/api.md state them.

Each group below runs small inline policies (``rulekit.loads``) through
``rulekit.runtime.Engine`` and checks one rule of the contract, mostly as tables:

- deadlines: the boundary (due at T+D, fires after it, recorded at T+D), chains
  counted from due times, several due before a step, due exactly at an event,
  ``after D from FACT`` and ``at TIME``, guarded deadlines dropped, ``stay`` vs
  re-entry, and the outcome not depending on when a worker fires them;
- automatic transitions: on entry, after an update, after an event or a
  deadline, chaining, and the chain limit (EvaluationError, case unchanged);
- refusals: every code, their order of precedence, and the case left exactly as it
  was (deep copies compared), also when deadlines were due before the refused step;
- facts on open (invalid_fact table), money read exactly, payload validation;
- idempotency keys, ``allowed``, history records (cause, cite, rule, effects);
- replay: a hypothesis property over random step sequences on a policy with every
  transition kind; time never goes back; the wall clock is never read.

The bugs this file found are kept as regression tests at the end.
"""

from __future__ import annotations

import copy
import itertools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import rulekit
from rulekit.runtime import Engine, SimulatedClock
from rulekit.runtime.engine import MAX_CHAIN

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=CST)
US = timedelta(microseconds=1)
S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)
FILE = "inline.rk"


# =====================================================================================
# Helpers
# =====================================================================================
@cache
def engine_for(text: str) -> Engine:
    return Engine(rulekit.loads(text, "rk", filename=FILE))


def position(text: str, snippet: str) -> str:
    """`inline.rk:LINE:COL` of the first line containing ``snippet`` (its first non-blank)."""
    for n, line in enumerate(text.splitlines(), 1):
        if snippet in line:
            return f"{FILE}:{n}:{len(line) - len(line.lstrip()) + 1}"
    raise AssertionError(f"{snippet!r} not in the policy")


def snapshot(case: Any) -> tuple[Any, ...]:
    """Everything a step may change, as deep copies."""
    return (
        case.state.name,
        case.final,
        copy.deepcopy(case.facts),
        # (due, order, transition, ...): the transition by identity, the rest by value
        [tuple(x if isinstance(x, datetime | int) else id(x) for x in d) for d in case.deadlines],
        copy.deepcopy(case.effects),
        copy.deepcopy(case.history),
        case.now,
        dict(case.keys or {}),
    )


@contextmanager
def refused(code: str) -> Iterator[pytest.ExceptionInfo[rulekit.StepRefused]]:
    with pytest.raises(rulekit.StepRefused) as info:
        yield info
    assert info.value.code == code, f"refused with {info.value.code}, expected {code}: {info.value}"


def names(effects: Any) -> list[str]:
    return [e.name for e in effects]


def kinds(case: Any) -> list[str]:
    return [r.kind for r in case.history]


# =====================================================================================
# Deadlines
# =====================================================================================
TIMERS = """
policy t.timers
facts {
  n: int
}
actors consumer, merchant
event approve by merchant
event note by consumer
event remind by consumer
effect timeout
effect noted
effect e1
effect e1b
effect e2
effect e3
workflow review {
  initial state waiting {
    after 48h -> timed_out emit timeout
    on approve -> approved
    on note stay set n = n + 1 emit noted
    on remind -> waiting
  }
  final state timed_out
  final state approved
}
workflow chain {
  initial state s1 { after 1h -> s2 }
  state s2 { after 1h -> s3 }
  state s3 { after 1h -> done }
  final state done
}
workflow many {
  initial state a {
    after 3h stay emit e3
    after 1h stay emit e1
    after 2h stay emit e2
    after 1h stay emit e1b
    on note stay set n = n + 1 emit noted
  }
}
"""


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


# =====================================================================================
# Automatic transitions
# =====================================================================================
AUTO = """
policy t.auto
facts {
  x: bool
  y: bool
  n: int
}
actors consumer
event bump by consumer
event go by consumer
effect passed_a
effect passed_b
workflow w {
  initial state a {
    when x -> b emit passed_a
    on bump stay set n = n + 1
    on go -> d
  }
  state b {
    when y -> c emit passed_b
    when n >= 2 -> c
  }
  state d {
    after 1h -> b
  }
  final state c
}
"""


@pytest.mark.parametrize(
    ("facts", "state", "autos"),
    [
        ({"x": False, "y": False, "n": 0}, "a", []),
        ({"x": True, "y": False, "n": 0}, "b", [("a", "b")]),
        ({"x": True, "y": True, "n": 0}, "c", [("a", "b"), ("b", "c")]),
        ({"x": True, "y": False, "n": 5}, "c", [("a", "b"), ("b", "c")]),
    ],
)
def test_automatic_transitions_on_entry_chain(
    facts: dict[str, Any], state: str, autos: list[tuple[str, str]]
) -> None:
    case = engine_for(AUTO).open("w", facts, at=T0)
    assert case.state.name == state
    assert kinds(case) == ["open"] + ["auto"] * len(autos)
    assert [(r.source, r.target) for r in case.history[1:]] == autos
    assert all(r.at == T0 for r in case.history)
    guards = [r.cause.guard for r in case.history[1:]]
    assert guards == ["x", "y" if facts["y"] else "n >= 2"][: len(autos)]


@pytest.mark.parametrize(
    ("changes", "state", "after_update"),
    [
        ({"y": True}, "a", []),
        ({"x": True}, "b", ["auto"]),
        ({"x": True, "y": True}, "c", ["auto", "auto"]),
        ({"n": 2, "x": True}, "c", ["auto", "auto"]),
    ],
)
def test_automatic_transitions_after_update(
    changes: dict[str, Any], state: str, after_update: list[str]
) -> None:
    engine = engine_for(AUTO)
    case = engine.open("w", {"x": False, "y": False, "n": 0}, at=T0)
    result = engine.update(case, changes, at=T0 + H)
    assert case.state.name == state
    assert kinds(case) == ["open", "update", *after_update]
    assert [r.kind for r in result.records] == ["update", *after_update]
    assert result.state == state and result.final is (state == "c")


def test_automatic_transitions_after_an_event_and_a_deadline() -> None:
    engine = engine_for(AUTO)
    case = engine.open("w", {"x": False, "y": False, "n": 0}, at=T0)
    engine.send(case, "bump", "consumer", at=T0)
    engine.send(case, "bump", "consumer", at=T0)  # n = 2, but a has no `when n >= 2`
    assert case.state.name == "a"
    engine.send(case, "go", "consumer", at=T0 + M)
    engine.advance(case, T0 + M + H + US)  # d -> b at its due time, then b -> c at once
    assert case.state.name == "c"
    assert [(r.kind, r.source, r.target, r.at) for r in case.history[-3:]] == [
        ("deadline", "d", "b", T0 + M + H),
        ("auto", "b", "c", T0 + M + H),
        ("advance", "c", None, T0 + M + H + US),
    ]


def test_automatic_transition_after_a_stay_event() -> None:
    text = AUTO.replace("on bump stay set n = n + 1", "on bump stay set n = n + 1, x = n >= 1")
    engine = engine_for(text)
    case = engine.open("w", {"x": False, "y": False, "n": 0}, at=T0)
    engine.send(case, "bump", "consumer", at=T0)  # x = (0 >= 1) = false
    assert case.state.name == "a"
    result = engine.send(case, "bump", "consumer", at=T0)  # x = true: a -> b; n = 2: b -> c
    assert [r.kind for r in result.records] == ["event", "auto", "auto"]
    assert case.state.name == "c" and names(case.effects) == ["passed_a"]


LOOP = """
policy t.loop
facts {
  n: int
  go: bool
}
actors consumer
event poke by consumer
workflow w {
  initial state a {
    when go -> b set n = n + 1
    on poke stay set go = true
  }
  state b {
    when go -> a set n = n + 1
  }
}
"""


@pytest.mark.parametrize("how", ["update", "send"])
def test_a_chain_that_never_ends_is_an_evaluation_error_and_changes_nothing(how: str) -> None:
    engine = engine_for(LOOP)
    case = engine.open("w", {"n": 0, "go": False}, at=T0)
    before = snapshot(case)
    with pytest.raises(rulekit.EvaluationError, match="did not settle"):
        if how == "update":
            engine.update(case, {"go": True}, at=T0 + H)
        else:
            engine.send(case, "poke", "consumer", at=T0 + H)
    assert snapshot(case) == before
    # and the case goes on: a later step that does not start the loop is accepted
    engine.update(case, {"n": 5}, at=T0 + 2 * H)
    assert case.facts == {"n": 5, "go": False}


def test_a_chain_that_never_ends_refuses_the_opening() -> None:
    with pytest.raises(rulekit.EvaluationError, match="did not settle"):
        engine_for(LOOP).open("w", {"n": 0, "go": True}, at=T0)


def test_a_long_chain_that_ends_settles() -> None:
    text = f"""
policy t.long
facts {{
  n: int
}}
actors consumer
event poke by consumer
workflow w {{
  initial state a {{
    when n < {MAX_CHAIN - 1} stay set n = n + 1
    on poke -> b
  }}
  final state b
}}
"""
    case = engine_for(text).open("w", {"n": 0}, at=T0)
    assert case.facts["n"] == MAX_CHAIN - 1
    assert kinds(case) == ["open"] + ["auto"] * (MAX_CHAIN - 1)


# =====================================================================================
# Refusals: codes, precedence, and the case left as it was
# =====================================================================================
REFUSE = """
policy t.refuse
facts {
  amount: money
  reason.text: string?
  paid_at: time
}
enum Kind { goods, service }
actors consumer, merchant, platform
event approve by merchant
event reject(reason: string, kind: Kind) by merchant
event cancel by consumer
event escalate by consumer
event decide(amount: money, at: time, wait: duration) by platform
effect refund(amount: money)
workflow w {
  initial state open {
    on approve when amount < 100 -> done emit refund(amount: amount)
    on reject when event.reason != "" -> done set reason.text = event.reason
    on cancel by consumer -> done
    on decide when event.amount <= amount -> done emit refund(amount: event.amount)
    after 2h stay emit refund(amount: 1)
  }
  final state done
}
"""
OK_REJECT = {"reason": "broken", "kind": "goods"}
OK_DECIDE = {"amount": "10", "at": "2026-03-01T12:00:00+08:00", "wait": "24h"}

SEND_REFUSALS = [
    # (id, closed first?, amount, event, by, data, code)
    ("unknown", False, 10, "nope", "merchant", None, "unknown_event"),
    ("unknown-on-closed", True, 10, "nope", "merchant", None, "unknown_event"),
    ("unknown-by-system", False, 10, "nope", "system", {"x": 1}, "unknown_event"),
    ("closed", True, 10, "approve", "merchant", None, "case_closed"),
    ("closed-before-not-taken", True, 10, "escalate", "consumer", None, "case_closed"),
    ("closed-before-actor", True, 10, "approve", "consumer", None, "case_closed"),
    ("closed-before-system", True, 10, "approve", "system", None, "case_closed"),
    ("closed-before-payload", True, 10, "reject", "merchant", {"x": 1}, "case_closed"),
    ("not-taken", False, 10, "escalate", "consumer", None, "event_not_allowed"),
    ("not-taken-before-actor", False, 10, "escalate", "merchant", None, "event_not_allowed"),
    ("not-taken-before-system", False, 10, "escalate", "system", None, "event_not_allowed"),
    ("actor", False, 10, "approve", "consumer", None, "actor_not_allowed"),
    ("actor-undeclared", False, 10, "approve", "stranger", None, "actor_not_allowed"),
    ("system", False, 10, "approve", "system", None, "actor_not_allowed"),
    ("system-no-guard", False, 10, "cancel", "system", None, "actor_not_allowed"),
    ("actor-before-payload", False, 10, "reject", "consumer", {"x": 1}, "actor_not_allowed"),
    ("actor-before-guard", False, 500, "approve", "platform", None, "actor_not_allowed"),
    ("payload-missing", False, 10, "reject", "merchant", {"reason": "x"}, "invalid_payload"),
    ("payload-none", False, 10, "reject", "merchant", None, "invalid_payload"),
    ("payload-extra", False, 10, "reject", "merchant", {**OK_REJECT, "x": 1}, "invalid_payload"),
    ("payload-on-no-payload", False, 10, "approve", "merchant", {"x": 1}, "invalid_payload"),
    ("payload-type", False, 10, "reject", "merchant", {**OK_REJECT, "reason": 5}, "invalid_payload"),
    ("payload-enum", False, 10, "reject", "merchant", {**OK_REJECT, "kind": "food"}, "invalid_payload"),
    ("payload-enum-case", False, 10, "reject", "merchant", {**OK_REJECT, "kind": "Goods"}, "invalid_payload"),
    ("payload-not-a-map", False, 10, "reject", "merchant", ["broken", "goods"], "invalid_payload"),
    ("payload-money-bool", False, 10, "decide", "platform", {**OK_DECIDE, "amount": True}, "invalid_payload"),
    ("payload-time-no-offset", False, 10, "decide", "platform", {**OK_DECIDE, "at": "2026-03-01T12:00:00"}, "invalid_payload"),
    ("payload-duration-number", False, 10, "decide", "platform", {**OK_DECIDE, "wait": 24}, "invalid_payload"),
    ("payload-before-guard", False, 10, "reject", "merchant", {"reason": "", "kind": "x"}, "invalid_payload"),
    ("guard", False, 500, "approve", "merchant", None, "guard_failed"),
    ("guard-payload", False, 10, "reject", "merchant", {"reason": "", "kind": "goods"}, "guard_failed"),
    ("guard-money", False, 10, "decide", "platform", {**OK_DECIDE, "amount": "10.01"}, "guard_failed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("closed", "amount", "event", "by", "data", "code"),
    [pytest.param(*row[1:], id=row[0]) for row in SEND_REFUSALS],
)
def test_send_refusal_codes_and_precedence(
    closed: bool, amount: int, event: str, by: str, data: Any, code: str
) -> None:
    engine = engine_for(REFUSE)
    case = engine.open("w", {"amount": amount, "paid_at": T0}, at=T0)
    if closed:
        engine.send(case, "cancel", "consumer", at=T0 + M)
    before = snapshot(case)
    with refused(code):
        engine.send(case, event, by, data, at=T0 + 5 * M, key="k")
    assert snapshot(case) == before


@pytest.mark.parametrize(
    ("event", "by", "data", "state"),
    [
        ("approve", "merchant", None, "done"),
        ("reject", "merchant", OK_REJECT, "done"),
        ("cancel", "consumer", {}, "done"),
        ("decide", "platform", OK_DECIDE, "done"),
        ("decide", "platform", {**OK_DECIDE, "amount": 10.0, "wait": "PT24H"}, "done"),
    ],
)
def test_accepted_counterparts_of_the_refusals(event: str, by: str, data: Any, state: str) -> None:
    engine = engine_for(REFUSE)
    case = engine.open("w", {"amount": 10, "paid_at": T0}, at=T0)
    engine.send(case, event, by, data, at=T0 + M)
    assert case.state.name == state


UPDATE_REFUSALS = [
    ("closed", True, {"amount": 5}, "case_closed"),
    ("closed-before-undeclared", True, {"nope": 5}, "case_closed"),
    ("closed-before-type", True, {"amount": "abc"}, "case_closed"),
    ("undeclared", False, {"nope": 5}, "invalid_fact"),
    ("undeclared-nested", False, {"reason": {"code": 5}}, "invalid_fact"),
    ("object-as-value", False, {"reason": "x"}, "invalid_fact"),
    ("money-as-bool", False, {"amount": True}, "invalid_fact"),
    ("money-as-text", False, {"amount": "ten"}, "invalid_fact"),
    ("time-without-offset", False, {"paid_at": "2026-03-01T12:00:00"}, "invalid_fact"),
    ("naive-datetime", False, {"paid_at": datetime(2026, 3, 1, 12)}, "invalid_fact"),
    ("required-to-null", False, {"amount": None}, "invalid_fact"),
    ("one-bad-of-two", False, {"reason.text": "ok", "amount": False}, "invalid_fact"),
]


@pytest.mark.parametrize(
    ("closed", "changes", "code"), [pytest.param(*row[1:], id=row[0]) for row in UPDATE_REFUSALS]
)
def test_update_refusal_codes_and_precedence(
    closed: bool, changes: dict[str, Any], code: str
) -> None:
    engine = engine_for(REFUSE)
    case = engine.open("w", {"amount": 10, "paid_at": T0}, at=T0)
    if closed:
        engine.send(case, "cancel", "consumer", at=T0 + M)
    before = snapshot(case)
    with refused(code):
        engine.update(case, changes, at=T0 + 5 * M)
    assert snapshot(case) == before


@pytest.mark.parametrize(
    ("changes", "facts"),
    [
        ({"reason.text": "late"}, {"amount": Decimal(10), "reason": {"text": "late"}}),
        ({"reason": {"text": "late"}}, {"amount": Decimal(10), "reason": {"text": "late"}}),
        ({"amount": "12.50"}, {"amount": Decimal("12.50"), "reason": {"text": "first"}}),
        ({"reason.text": None}, {"amount": Decimal(10)}),  # an optional fact may be cleared
    ],
)
def test_accepted_updates(changes: dict[str, Any], facts: dict[str, Any]) -> None:
    engine = engine_for(REFUSE)
    case = engine.open("w", {"amount": 10, "paid_at": T0, "reason.text": "first"}, at=T0)
    engine.update(case, changes, at=T0 + M)
    found = {k: v for k, v in case.facts.items() if k != "paid_at"}
    if found.get("reason") == {}:  # a cleared field may leave its (empty) object behind
        del found["reason"]
    assert found == facts
    assert case.history[-1].kind == "update" and case.history[-1].at == T0 + M


def test_a_fact_an_event_stores_may_be_updated() -> None:
    engine = engine_for(REFUSE)
    case = engine.open("w", {"amount": 10, "paid_at": T0, "reason.text": "a"}, at=T0)
    engine.update(case, {"reason.text": "b"}, at=T0)
    assert case.facts["reason"] == {"text": "b"}


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(lambda e, c, t: e.send(c, "approve", "consumer", at=t), id="actor"),
        pytest.param(lambda e, c, t: e.send(c, "approve", "merchant", at=t), id="guard"),
        pytest.param(lambda e, c, t: e.send(c, "reject", "merchant", {"x": 1}, at=t), id="payload"),
        pytest.param(lambda e, c, t: e.update(c, {"amount": True}, at=t), id="update"),
        pytest.param(lambda e, c, t: e.send(c, "approve", "system", at=t), id="system"),
    ],
)
def test_a_refused_step_after_due_deadlines_leaves_them_unfired(step: Any) -> None:
    """The 2h `stay` deadline is due before the step: the refusal undoes its firing too."""
    engine = engine_for(REFUSE)
    case = engine.open("w", {"amount": 500, "paid_at": T0}, at=T0)
    before = snapshot(case)
    with pytest.raises(rulekit.StepRefused):
        step(engine, case, T0 + 5 * H)
    assert snapshot(case) == before
    assert case.next_deadline == T0 + 2 * H and case.effects == []
    # the next accepted step fires it, at its due time
    engine.update(case, {"amount": 50}, at=T0 + 6 * H)
    assert [(e.name, e.args, e.at) for e in case.effects] == [
        ("refund", {"amount": Decimal(1)}, T0 + 2 * H)
    ]


DIV = """
policy t.div
facts {
  n: int
  d: int
}
actors consumer
event split by consumer
effect share(x: int)
workflow w {
  initial state a {
    on split -> b set n = n + 1 emit share(x: n / d)
    after 1h stay set n = n + 100
  }
  final state b
}
"""


def test_an_evaluation_error_in_a_step_changes_nothing() -> None:
    engine = engine_for(DIV)
    case = engine.open("w", {"n": 1, "d": 0}, at=T0)
    before = snapshot(case)
    with pytest.raises(rulekit.EvaluationError):
        engine.send(case, "split", "consumer", at=T0 + 2 * H)  # after the 1h deadline
    assert snapshot(case) == before
    engine.update(case, {"d": 2}, at=T0 + 2 * H)
    engine.send(case, "split", "consumer", at=T0 + 2 * H)
    assert case.facts["n"] == 102 and case.effects[0].args == {"x": 51}


# =====================================================================================
# Facts on open, money read exactly
# =====================================================================================
FACTS = """
policy t.facts
facts {
  order.amount: money
  order.paid_at: time
  order.window: duration
  order.kind: Kind
  order.count: int
  order.tags: list(string)
  note: string?
}
enum Kind { goods, service }
actors consumer
event poke by consumer
effect refund(amount: money)
workflow w {
  initial state a {
    on poke when order.amount < 300 -> b emit refund(amount: order.amount)
  }
  final state b
}
"""
GOOD_FACTS: dict[str, Any] = {
    "order": {
        "amount": "128.00",
        "paid_at": "2026-03-01T10:00:00+08:00",
        "window": "24h",
        "kind": "goods",
        "count": 1,
        "tags": ["a"],
    }
}


_DROP = object()


def with_fact(path: str, value: Any) -> dict[str, Any]:
    """GOOD_FACTS with ``path`` (dotted) set to ``value``, or removed when it is _DROP."""
    facts = copy.deepcopy(GOOD_FACTS)
    head, _, field = path.partition(".")
    if head == "order" and field:
        facts["order"].pop(field, None)
    else:
        facts.pop(head, None)
    if value is not _DROP:
        facts[path] = value  # a dotted key next to the nested map
    return facts


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("order.amount", _DROP, id="required-missing"),
        pytest.param("order.paid_at", _DROP, id="required-time-missing"),
        pytest.param("order.amount", None, id="required-null"),
        pytest.param("order.colour", "red", id="undeclared"),
        pytest.param("customer", {"name": "x"}, id="undeclared-object"),
        pytest.param("order.amount", True, id="money-as-bool"),
        pytest.param("order.amount", False, id="money-as-false"),
        pytest.param("order.amount", "12,50", id="money-bad-text"),
        pytest.param("order.amount", [1], id="money-as-list"),
        pytest.param("order.paid_at", "2026-03-01T10:00:00", id="time-text-without-offset"),
        pytest.param("order.paid_at", "2026-03-01", id="time-date-only"),
        pytest.param("order.paid_at", datetime(2026, 3, 1, 10), id="time-naive-datetime"),
        pytest.param("order.paid_at", 1772330400, id="time-as-number"),
        pytest.param("order.window", 24, id="duration-as-int"),
        pytest.param("order.window", 86400.0, id="duration-as-float"),
        pytest.param("order.window", "a day", id="duration-bad-text"),
        pytest.param("order.kind", "food", id="enum-not-in-enum"),
        pytest.param("order.kind", "Goods", id="enum-case-sensitive"),
        pytest.param("order.kind", 0, id="enum-as-number"),
        pytest.param("order.count", "1", id="int-as-text"),
        pytest.param("order.count", 1.5, id="int-as-float"),
        pytest.param("order.count", True, id="int-as-bool"),
        pytest.param("order.tags", "a", id="list-as-scalar"),
        pytest.param("order.tags", ["a", 1], id="list-wrong-item"),
        pytest.param("note", 5, id="optional-wrong-type"),
        pytest.param("order", 5, id="object-as-value"),
    ],
)
def test_open_refuses_invalid_facts(path: str, value: Any) -> None:
    with refused("invalid_fact") as info:
        engine_for(FACTS).open("w", with_fact(path, value), at=T0)
    assert path in str(info.value)  # refused for this fact, not another


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(GOOD_FACTS, {}, id="nested"),
        pytest.param(
            {f"order.{k}": v for k, v in GOOD_FACTS["order"].items()}, {}, id="dotted-keys"
        ),
        pytest.param({**GOOD_FACTS, "note": None}, {}, id="optional-null"),
        pytest.param({**GOOD_FACTS, "note": "hi"}, {"note": "hi"}, id="optional-given"),
        pytest.param(with_fact("order.window", "PT24H"), {}, id="duration-iso"),
        pytest.param(with_fact("order.window", timedelta(days=1)), {}, id="duration-timedelta"),
        pytest.param(
            with_fact("order.paid_at", datetime(2026, 3, 1, 2, tzinfo=UTC)),
            {},
            id="time-aware-datetime",
        ),
        pytest.param(with_fact("order.count", Decimal(1)), {}, id="int-as-integral-decimal"),
    ],
)
def test_open_accepts_valid_facts(facts: dict[str, Any], expected: dict[str, Any]) -> None:
    case = engine_for(FACTS).open("w", facts, at=T0)
    order = case.facts["order"]
    assert order["amount"] == Decimal("128.00") and type(order["amount"]) is Decimal
    assert order["paid_at"] == datetime(2026, 3, 1, 10, tzinfo=CST)
    assert order["window"] == timedelta(days=1)
    assert order["kind"] == "goods" and order["count"] == 1 and order["tags"] == ["a"]
    assert {k: v for k, v in case.facts.items() if k != "order"} == expected


@pytest.mark.parametrize("depth", [101, 5000])
def test_facts_nested_too_deep_are_refused_not_a_recursion_error(depth: int) -> None:
    deep: list[Any] = []
    for _ in range(depth - 1):
        deep = [deep]
    with pytest.raises(rulekit.StepRefused) as refusal:
        engine_for(FACTS).open("w", with_fact("order.tags", deep), at=T0)
    assert str(refusal.value) == "invalid_fact: order.tags: nested more than 100 levels deep"


def test_open_an_unknown_workflow_is_refused_with_the_workflows_listed() -> None:
    with pytest.raises(
        rulekit.StepRefused,
        match=r"^unknown_workflow: no workflow 'nope' in policy \S+ \(workflows: \w+",
    ):
        engine_for(FACTS).open("nope", GOOD_FACTS, at=T0)


@pytest.mark.parametrize(
    ("given", "exact", "holds"),
    [
        ("299.99", Decimal("299.99"), True),
        (299.99, Decimal("299.99"), True),  # a float, read as written: never binary 299.99
        (Decimal("299.99"), Decimal("299.99"), True),
        (" 299.99 ", Decimal("299.99"), True),
        (300, Decimal(300), False),
        (300.0, Decimal(300), False),
        ("300.00", Decimal(300), False),
        ("300", Decimal(300), False),
        (299.999999999999, Decimal("299.999999999999"), True),
        (0.1, Decimal("0.1"), True),
    ],
)
def test_money_is_read_exactly(given: Any, exact: Decimal, holds: bool) -> None:
    engine = engine_for(FACTS)
    case = engine.open("w", with_fact("order.amount", given), at=T0)
    amount = case.facts["order"]["amount"]
    assert type(amount) is Decimal and amount == exact
    if holds:
        engine.send(case, "poke", "consumer", at=T0)
        assert case.effects[0].args["amount"] == exact
    else:
        with refused("guard_failed"):
            engine.send(case, "poke", "consumer", at=T0)


MONEY_SUM = """
policy t.sum
facts {
  a: money
  b: money
}
actors merchant
event pay(extra: money) by merchant
effect refund(amount: money)
workflow w {
  initial state s {
    on pay when a + b + event.extra == money("0.6") -> done emit refund(amount: a + b + event.extra)
  }
  final state done
}
"""


@pytest.mark.parametrize(
    ("a", "b", "extra"),
    [(0.1, 0.2, 0.3), ("0.1", "0.2", "0.3"), (Decimal("0.1"), 0.2, "0.30")],
)
def test_money_arithmetic_is_decimal_in_guards_payloads_and_effects(
    a: Any, b: Any, extra: Any
) -> None:
    engine = engine_for(MONEY_SUM)
    case = engine.open("w", {"a": a, "b": b}, at=T0)
    engine.send(case, "pay", "merchant", {"extra": extra}, at=T0)
    assert case.effects[0].args == {"amount": Decimal("0.6")}
    assert type(case.history[-1].data["extra"]) is Decimal


# =====================================================================================
# Idempotency keys
# =====================================================================================
def test_same_key_same_result_nothing_appended() -> None:
    engine = engine_for(TIMERS)
    case = engine.open("review", {"n": 0}, at=T0)
    first = engine.send(case, "note", "consumer", at=T0 + H, key="k1")
    assert first.repeated is False and case.history[-1].key == "k1"
    before = snapshot(case)
    for again in [
        lambda: engine.send(case, "note", "consumer", at=T0 + H, key="k1"),
        lambda: engine.send(case, "note", "consumer", at=T0 + 2 * H, key="k1"),
        lambda: engine.send(case, "approve", "merchant", at=T0 + 3 * H, key="k1"),
    ]:
        second = again()
        assert second.repeated is True
        assert (second.records, second.state, second.final, second.effects) == (
            first.records,
            first.state,
            first.final,
            first.effects,
        )
        assert snapshot(case) == before
    assert case.facts["n"] == 1
    # another key is another step
    third = engine.send(case, "note", "consumer", at=T0 + H, key="k2")
    assert third.repeated is False and case.facts["n"] == 2


@pytest.mark.parametrize(
    ("bad", "good"),
    [
        (("reject", "merchant", {"reason": "x"}), ("reject", "merchant", OK_REJECT)),
        (("approve", "consumer", None), ("cancel", "consumer", None)),
        (("escalate", "consumer", None), ("cancel", "consumer", None)),
    ],
)
def test_a_refused_step_with_a_key_can_be_retried(
    bad: tuple[Any, ...], good: tuple[Any, ...]
) -> None:
    engine = engine_for(REFUSE)
    case = engine.open("w", {"amount": 10, "paid_at": T0}, at=T0)
    with pytest.raises(rulekit.StepRefused):
        engine.send(case, *bad, at=T0 + M, key="k")
    result = engine.send(case, *good, at=T0 + M, key="k")
    assert result.repeated is False and case.state.name == "done"
    assert engine.send(case, *good, at=T0 + 2 * M, key="k").repeated is True


def test_keys_survive_replay() -> None:
    engine = engine_for(TIMERS)
    case = engine.open("review", {"n": 0}, at=T0)
    engine.send(case, "note", "consumer", at=T0 + H, key="k1")
    rebuilt = engine.replay(case.history)
    assert engine.send(rebuilt, "note", "consumer", at=T0 + 2 * H, key="k1").repeated
    assert rebuilt.facts["n"] == 1


# =====================================================================================
# allowed
# =====================================================================================
ALLOWED = """
policy t.allowed
facts {
  amount: money
  paid_at: time
  shipped: bool
}
actors consumer, merchant, platform
event approve by merchant
event reject(reason: string) by merchant
event escalate by consumer, merchant
event cancel by consumer
event late by consumer, platform
event ship by merchant
event close by platform
workflow w {
  initial state open {
    on approve when amount < 300 -> done
    on reject when event.reason != "" -> done
    on escalate when actor == "consumer" or amount > 1000 -> review
    on cancel when not shipped -> done
    on late by platform when since(paid_at) > 48h -> done
    on late by consumer when since(paid_at) > 72h -> done
    on ship stay set shipped = true
  }
  state review {
    on close -> done
  }
  final state done
}
"""


@pytest.mark.parametrize(
    ("facts", "at", "expected"),
    [
        pytest.param(
            {"amount": 10, "shipped": False},
            T0,
            {
                "approve": ("merchant",),
                "reject": ("merchant",),  # reads the payload: counts as holding
                "escalate": ("consumer",),  # per actor: `actor == "consumer"`
                "cancel": ("consumer",),
                "ship": ("merchant",),
            },
            id="small",
        ),
        pytest.param(
            {"amount": 2000, "shipped": True},
            T0,
            {
                "reject": ("merchant",),
                "escalate": ("consumer", "merchant"),
                "ship": ("merchant",),
            },
            id="large-shipped",
        ),
        pytest.param(
            {"amount": 10, "shipped": True},
            T0 + 60 * H,
            {
                "approve": ("merchant",),
                "reject": ("merchant",),
                "escalate": ("consumer",),
                "late": ("platform",),  # `now` is the time asked about
                "ship": ("merchant",),
            },
            id="platform-late",
        ),
        pytest.param(
            {"amount": 10, "shipped": True},
            T0 + 80 * H,
            {
                "approve": ("merchant",),
                "reject": ("merchant",),
                "escalate": ("consumer",),
                "late": ("consumer", "platform"),
                "ship": ("merchant",),
            },
            id="both-late",
        ),
    ],
)
def test_allowed(facts: dict[str, Any], at: datetime, expected: dict[str, tuple[str, ...]]) -> None:
    engine = engine_for(ALLOWED)
    case = engine.open("w", {**facts, "paid_at": T0}, at=T0)
    engine.advance(case, at)
    assert engine.allowed(case) == expected
    assert engine.allowed(case, at) == expected
    # every event/actor allowed is accepted (given a payload its guard accepts), and
    # every other (event, actor) is refused
    for event in engine.policy.events:
        for actor in ["consumer", "merchant", "platform", "system"]:
            trial = engine.replay(case.history)
            data = {"reason": "x"} if event == "reject" else None
            try:
                engine.send(trial, event, actor, data, at=at)
                accepted = True
            except rulekit.StepRefused:
                accepted = False
            assert accepted is (actor in expected.get(event, ())), (event, actor)


def test_allowed_other_states_and_closed() -> None:
    engine = engine_for(ALLOWED)
    case = engine.open("w", {"amount": 2000, "shipped": False, "paid_at": T0}, at=T0)
    engine.send(case, "escalate", "merchant", at=T0)
    assert engine.allowed(case) == {"close": ("platform",)}
    engine.send(case, "close", "platform", at=T0)
    assert engine.allowed(case) == {}


# =====================================================================================
# History records
# =====================================================================================
HISTORY = """
policy t.history
facts {
  order.amount: money
  order.fee: money
  refund.reason: string?
}
actors consumer, merchant
event reject(reason: string) by merchant
event approve by merchant
effect refund(amount: money, note: string)
effect close
workflow w {
  initial state awaiting cite "1" {
    on approve when order.amount - order.fee > 0 and order.amount < 300 -> refunded emit refund(amount: order.amount - order.fee, note: "ok") emit close cite "3.1"
    on reject when event.reason != "" stay set refund.reason = event.reason cite "3.2"
    after 48h -> refunded emit refund(amount: order.amount, note: "timeout") cite "3.3"
    when order.amount == 0 -> nothing cite "3.4"
  }
  final state refunded
  final state nothing
}
"""


def test_history_records_cause_cite_rule_and_effects() -> None:
    engine = engine_for(HISTORY)
    case = engine.open("w", {"order": {"amount": "128.50", "fee": "0.50"}}, at=T0)
    engine.send(case, "reject", "merchant", {"reason": "no"}, at=T0 + H, key="r1")
    engine.send(case, "approve", "merchant", at=T0 + 2 * H)
    opened, rejected, approved = case.history
    assert (opened.seq, opened.kind, opened.at, opened.target, opened.workflow) == (
        0,
        "open",
        T0,
        "awaiting",
        "w",
    )
    # every declared group is there, the ones with no fact set yet empty
    assert opened.data == {
        "order": {"amount": Decimal("128.50"), "fee": Decimal("0.50")},
        "refund": {},
    }

    assert (rejected.seq, rejected.kind, rejected.at) == (1, "event", T0 + H)
    assert (rejected.event, rejected.actor, rejected.data, rejected.key) == (
        "reject",
        "merchant",
        {"reason": "no"},
        "r1",
    )
    assert (rejected.source, rejected.target, rejected.cite) == ("awaiting", None, "3.2")
    assert rejected.cause.guard == 'event.reason != ""'
    assert rejected.cause.reads == (("event.reason", "no"),)
    assert rejected.rule == position(HISTORY, "on reject")
    assert rejected.effects == ()

    assert (approved.source, approved.target, approved.cite) == ("awaiting", "refunded", "3.1")
    assert approved.cause.guard == "order.amount - order.fee > 0 and order.amount < 300"
    assert approved.cause.reads == (
        ("order.amount", Decimal("128.50")),
        ("order.fee", Decimal("0.50")),
    )
    assert approved.rule == position(HISTORY, "on approve")
    assert [(e.name, dict(e.args), e.at, e.seq) for e in approved.effects] == [
        ("refund", {"amount": Decimal("128.00"), "note": "ok"}, T0 + 2 * H, 2),
        ("close", {}, T0 + 2 * H, 2),
    ]
    assert case.effects == list(approved.effects)
    assert case.facts["refund"] == {"reason": "no"}


@pytest.mark.parametrize(
    ("facts", "to", "record"),
    [
        pytest.param(
            {"order": {"amount": 500, "fee": 0}},
            T0 + 49 * H,
            ("deadline", T0 + 48 * H, "3.3", None, (), "after 48h",
             [("refund", {"amount": Decimal(500), "note": "timeout"})]),
            id="deadline",
        ),
        pytest.param(
            {"order": {"amount": 0, "fee": 0}},
            T0,
            ("auto", T0, "3.4", "order.amount == 0", (("order.amount", Decimal(0)),),
             "when order.amount == 0", []),
            id="auto",
        ),
    ],
)  # fmt: skip
def test_history_records_of_deadlines_and_automatic_transitions(
    facts: dict[str, Any], to: datetime, record: tuple[Any, ...]
) -> None:
    kind, at, cite, guard, reads, snippet, effects = record
    engine = engine_for(HISTORY)
    case = engine.open("w", facts, at=T0)
    engine.advance(case, to)
    r = case.history[1]
    assert (r.kind, r.at, r.cite, r.actor, r.event) == (kind, at, cite, None, None)
    assert (r.cause.guard, r.cause.reads) == (guard, reads)
    assert r.rule == position(HISTORY, snippet)
    assert [(e.name, dict(e.args)) for e in r.effects] == effects


CAUSE = """
policy t.cause
facts {
  n: int
}
actors consumer
event bump by consumer
workflow w {
  initial state a {
    on bump when n < 1 stay set n = n + 1
    when n >= 1 -> b set n = n + 10
  }
  final state b
}
"""


def test_cause_reads_are_the_values_the_guard_read_before_the_transitions_own_set() -> None:
    engine = engine_for(CAUSE)
    case = engine.open("w", {"n": 0}, at=T0)
    engine.send(case, "bump", "consumer", at=T0)
    assert [(r.kind, r.cause.guard, r.cause.reads) for r in case.history[1:]] == [
        ("event", "n < 1", (("n", 0),)),  # not n = 1: that is what its `set` wrote
        ("auto", "n >= 1", (("n", 1),)),
    ]
    assert case.facts == {"n": 11}


# =====================================================================================
# Replay: random step sequences rebuild an equal case
# =====================================================================================
REPLAY = """
policy t.replay
facts {
  n: int
  flag: bool
  amount: money
  paid_at: time
  sent_at: time?
  note: string?
  kind: Kind?
}
enum Kind { goods, service }
actors consumer, merchant
event approve by merchant
event reject(reason: string) by merchant
event bump by consumer, merchant
event restart by consumer
event ship(sent_at: time) by consumer
event offer(kind: Kind, amount: money) by merchant
effect refund(amount: money)
effect ping(n: int)
workflow w {
  initial state waiting {
    when flag and n >= 3 -> review
    on approve when amount < 300 -> done emit refund(amount: amount)
    on reject when event.reason != "" stay set note = event.reason
    on bump when actor == "consumer" or n < 5 stay set n = n + 1 emit ping(n: n)
    on restart -> waiting
    on ship -> in_transit set sent_at = event.sent_at
    on offer when event.amount <= amount stay set kind = event.kind, amount = event.amount
    after 6h when not flag stay set n = n + 1 emit ping(n: n)
    after 2d -> review
    at paid_at + 5d -> done emit refund(amount: amount)
  }
  state in_transit {
    after 3d from sent_at -> done emit refund(amount: amount)
    on bump stay set n = n + 1
    on restart -> waiting
    when n >= 10 -> review
  }
  state review {
    on approve -> done emit refund(amount: amount)
    on reject -> closed
    on restart by consumer -> waiting set flag = false
    after 1d when n < 8 -> done
    when n >= 20 -> closed
  }
  final state done
  final state closed outcome refused
}
"""

_TIMES = [T0 - 3 * D, T0 - 20 * H, T0, T0 + 7 * H, T0 + 2 * D, "2026-03-02T08:00:00+08:00"]
_GAPS = st.one_of(
    st.sampled_from([0 * S, 0 * S, US, H, 6 * H, 2 * D, 3 * D, D]),
    st.integers(0, 12 * 60).map(lambda m: m * M),
)
#: valid payloads of each event, and a few invalid ones for any of them
_PAYLOADS: dict[str, list[Any]] = {
    "approve": [None],
    "reject": [{"reason": "why"}, {"reason": ""}],
    "bump": [None],
    "restart": [None],
    "ship": [{"sent_at": T0 + H}, {"sent_at": "2026-03-01T08:00:00+08:00"}],
    "offer": [{"kind": "goods", "amount": "99.90"}, {"kind": "service", "amount": 150}],
    "nope": [None],
}
_BAD_PAYLOADS = [
    {"bad": 1},
    {"sent_at": "2026-03-01T08:00:00"},
    {"kind": "food", "amount": 1},
    {"reason": 5},
]
_SEND = st.sampled_from(sorted(_PAYLOADS)).flatmap(
    lambda event: st.tuples(
        st.just("send"),
        st.just(event),
        st.sampled_from(["consumer", "merchant", "consumer", "merchant", "system"]),
        st.sampled_from(_PAYLOADS[event] * 4 + _BAD_PAYLOADS),
        st.sampled_from([None, None, None, "k1", "k2"]),
    )
)
#: valid values of each fact, and a few invalid changes
_CHANGES = [
    *({"n": v} for v in (0, 3, 9, 25)),
    *({"flag": v} for v in (True, False)),
    *({"amount": v} for v in ("12.5", 250, 999.99)),
    *({"sent_at": v} for v in (None, T0 + D, "2026-03-01T00:00:00Z")),
    *({"note": v} for v in (None, "x")),
    *({"kind": v} for v in (None, "goods")),
]
_BAD_CHANGES = [{"bogus": 1}, {"n": "x"}, {"amount": True}, {"flag": None}, {"kind": "food"}]
_UPDATE = st.tuples(
    st.just("update"),
    st.lists(st.sampled_from(_CHANGES * 3 + _BAD_CHANGES), min_size=1, max_size=3).map(
        lambda changes: {k: v for c in changes for k, v in c.items()}
    ),
)
_ADVANCE = st.tuples(st.just("advance"))
_STEP = st.tuples(_GAPS, st.one_of(_SEND, _SEND, _UPDATE, _ADVANCE))
_OPEN = st.fixed_dictionaries(
    {
        "n": st.sampled_from([0, 2, 4, 12]),
        "flag": st.booleans(),
        "amount": st.sampled_from(["100", 299.99, 500]),
        "paid_at": st.sampled_from(_TIMES[:3]),
    },
    optional={"sent_at": st.sampled_from(_TIMES), "kind": st.sampled_from(["goods", "service"])},
)


def going_back(history: list[Any]) -> list[tuple[str, str]]:
    """(kind, kind) of each pair of consecutive records whose time goes back."""
    return [(a.kind, b.kind) for a, b in itertools.pairwise(history) if b.at < a.at]


def compare_with_replay(engine: Engine, case: Any) -> None:
    rebuilt = engine.replay(case.history)
    if rebuilt.now < case.now:  # an advance that fired nothing is not recorded
        engine.advance(rebuilt, case.now)
    assert rebuilt.state.name == case.state.name
    assert (rebuilt.final, rebuilt.outcome) == (case.final, case.outcome)
    assert rebuilt.facts == case.facts
    assert rebuilt.effects == case.effects
    assert rebuilt.history == case.history
    assert rebuilt.deadlines == case.deadlines
    assert rebuilt.next_deadline == case.next_deadline


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(facts=_OPEN, steps=st.lists(_STEP, max_size=25))
def test_replay_rebuilds_an_equal_case(facts: dict[str, Any], steps: list[Any]) -> None:
    engine = engine_for(REPLAY)
    case = engine.open("w", facts, at=T0)
    at = T0
    for gap, step in steps:
        at += gap
        before = snapshot(case)
        try:
            if step[0] == "send":
                _, event, by, data, key = step
                note(f"{at}: send {event} by {by} {data} key={key}")
                engine.send(case, event, by, data, at=at, key=key)
            elif step[0] == "update":
                note(f"{at}: update {step[1]}")
                engine.update(case, step[1], at=at)
            else:
                note(f"{at}: advance")
                engine.advance(case, at)
        except (rulekit.StepRefused, rulekit.EvaluationError):
            assert snapshot(case) == before
        # invariants of every case
        assert [r.seq for r in case.history] == list(range(len(case.history)))
        assert going_back(case.history) == []  # time never goes back in a history
        assert case.effects == [e for r in case.history for e in r.effects]
        assert case.deadlines == sorted(case.deadlines, key=lambda d: (d[0], d[1]))
        assert not (case.final and case.deadlines)
    compare_with_replay(engine, case)


def test_replay_of_a_fixed_sequence_with_every_kind_of_record() -> None:
    """One fixed sequence with every kind of record, as a readable example of the property."""
    engine = engine_for(REPLAY)
    case = engine.open("w", {"n": 0, "flag": False, "amount": 500, "paid_at": T0}, at=T0)
    engine.send(case, "bump", "consumer", at=T0 + H, key="b1")
    engine.send(case, "bump", "consumer", at=T0 + H, key="b1")  # repeated
    engine.advance(case, T0 + 7 * H)  # the 6h deadline
    engine.update(case, {"flag": True}, at=T0 + 8 * H)  # n = 2: not yet
    engine.send(case, "bump", "merchant", at=T0 + 9 * H)  # n = 3: -> review
    engine.send(case, "restart", "consumer", at=T0 + 10 * H)
    engine.send(case, "ship", "consumer", {"sent_at": T0 + 10 * H}, at=T0 + 11 * H)
    engine.advance(case, T0 + 14 * D)
    assert case.outcome == "done"
    assert kinds(case) == [
        "open", "event", "deadline", "advance", "update", "event", "auto", "event",
        "event", "deadline", "advance",
    ]  # fmt: skip
    compare_with_replay(engine, case)


def test_replay_needs_an_open_record() -> None:
    engine = engine_for(REPLAY)
    case = engine.open("w", {"n": 0, "flag": False, "amount": 500, "paid_at": T0}, at=T0)
    with pytest.raises(ValueError):
        engine.replay(case.history[1:])
    with pytest.raises(ValueError):
        engine.replay([])


# =====================================================================================
# Time
# =====================================================================================
@pytest.mark.parametrize(
    "step",
    [
        pytest.param(lambda e, c, t: e.send(c, "note", "consumer", at=t), id="send"),
        pytest.param(lambda e, c, t: e.update(c, {"n": 3}, at=t), id="update"),
        pytest.param(lambda e, c, t: e.advance(c, t), id="advance"),
    ],
)
@pytest.mark.parametrize(
    "when",
    [
        pytest.param(T0 + 2 * H - US, id="before-the-last-step"),
        pytest.param(T0 - D, id="before-the-opening"),
        pytest.param(datetime(2026, 3, 1, 14), id="naive"),
    ],
)
def test_time_never_goes_back(step: Any, when: datetime) -> None:
    engine = engine_for(TIMERS)
    case = engine.open("review", {"n": 0}, at=T0)
    engine.advance(case, T0 + 2 * H)  # fires nothing, but the case is now at T+2h
    before = snapshot(case)
    with pytest.raises(ValueError):
        step(engine, case, when)
    assert snapshot(case) == before
    step(engine, case, T0 + 2 * H)  # the same time is fine


def test_the_same_instant_in_another_offset_is_not_going_back() -> None:
    engine = engine_for(TIMERS)
    case = engine.open("review", {"n": 0}, at=T0)
    engine.send(case, "note", "consumer", at=datetime(2026, 3, 1, 4, tzinfo=UTC))
    engine.advance(case, datetime(2026, 3, 3, 4, tzinfo=UTC) + US)
    assert case.outcome == "timed_out"


def test_open_needs_an_aware_time_and_an_engine_without_clock_needs_at() -> None:
    engine = engine_for(TIMERS)
    with pytest.raises(ValueError):
        engine.open("review", {"n": 0}, at=datetime(2026, 3, 1, 12))
    with pytest.raises(ValueError):
        engine.open("review", {"n": 0})  # no clock: never the wall clock
    case = engine.open("review", {"n": 0}, at=T0)
    with pytest.raises(ValueError):
        engine.send(case, "note", "consumer")


def test_a_simulated_clock_gives_the_time_when_at_is_not_passed() -> None:
    clock = SimulatedClock(T0)
    engine = Engine(rulekit.loads(TIMERS, "rk", filename=FILE), clock)
    case = engine.open("review", {"n": 0})
    assert case.history[0].at == T0
    clock.advance(48 * H)
    engine.advance(case)
    assert case.state.name == "waiting"
    clock.advance(US)
    engine.advance(case)
    assert case.outcome == "timed_out" and case.history[1].at == T0 + 48 * H
    with pytest.raises(ValueError):
        clock.set(T0)
    with pytest.raises(ValueError):
        SimulatedClock(datetime(2026, 3, 1))


CLOCK = """
policy t.clock
facts {
  paid_at: time
}
actors consumer
event ask by consumer
effect stamp(at: time, age: duration)
workflow w {
  initial state a {
    when since(paid_at) <= 6h -> fast emit stamp(at: now, age: since(paid_at))
    on ask when now < paid_at + 30d stay emit stamp(at: now, age: since(paid_at))
    after 1h when since(paid_at) > 1h stay emit stamp(at: now, age: since(paid_at))
    at paid_at + 40d -> old emit stamp(at: now, age: since(paid_at))
  }
  final state fast
  final state old
}
"""
_WALL_CLOCK = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "localtime"),
    ("time", "gmtime"),
    ("time", "ctime"),
    ("time", "asctime"),
    ("time", "strftime"),
}


@contextmanager
def wall_clock_reads() -> Iterator[list[str]]:
    """Collects every call of a wall-clock function made while the block runs."""
    seen: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call":
            owner = getattr(arg, "__self__", None)
            owner_name = getattr(owner, "__name__", None)
            if (owner_name, getattr(arg, "__name__", None)) in _WALL_CLOCK:
                seen.append(f"{owner_name}.{arg.__name__}")

    old = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(old)


def test_the_wall_clock_detector_sees_wall_clock_reads() -> None:
    import time

    with wall_clock_reads() as seen:
        datetime.now(UTC)
        time.time()
    assert seen == ["datetime.now", "time.time"]


@pytest.mark.parametrize("year", [1990, 2026, 2100])
def test_the_engine_never_reads_the_wall_clock(year: int) -> None:
    engine = engine_for(CLOCK)
    start = T0.replace(year=year)
    with wall_clock_reads() as seen:
        fast = engine.open("w", {"paid_at": start - 5 * H}, at=start)
        slow = engine.open("w", {"paid_at": start - 7 * H}, at=start)
        engine.send(slow, "ask", "consumer", at=start + 2 * H)
        engine.advance(slow, start + 41 * D)
        allowed = engine.allowed(slow)
        rebuilt = engine.replay(slow.history)
        with refused("case_closed"):
            engine.send(slow, "ask", "consumer", at=start + 42 * D)
    assert seen == []
    assert fast.outcome == "fast"
    assert fast.effects[0].args == {"at": start, "age": 5 * H}
    assert [(e.at, dict(e.args)) for e in slow.effects] == [
        # the 1h deadline, fired before the event, at its due time
        (start + H, {"at": start + H, "age": 8 * H}),
        # the event, at its time
        (start + 2 * H, {"at": start + 2 * H, "age": 9 * H}),
        # the `at` deadline
        (start - 7 * H + 40 * D, {"at": start - 7 * H + 40 * D, "age": 40 * D}),
    ]
    assert slow.outcome == "old"
    assert allowed == {} and rebuilt.effects == slow.effects


# =====================================================================================
# Regression tests of the bugs this file found (in 7a0467b and 08bf2df; fixed since)
# =====================================================================================
OVERDUE = """
policy t.overdue
facts {
  order.paid_at: time
  parcel.sent_at: time?
}
actors consumer
event ship(sent_at: time) by consumer
workflow w {
  initial state awaiting {
    at order.paid_at + 30d -> expired
    on ship -> in_transit set parcel.sent_at = event.sent_at
  }
  state in_transit {
    after 10d from parcel.sent_at -> late
  }
  final state late
  final state expired
}
workflow by_update {
  initial state awaiting {
    when has(parcel.sent_at) -> in_transit
  }
  state in_transit {
    after 10d from parcel.sent_at -> late
  }
  final state late
}
"""


def overdue_case(how: str) -> Any:
    """A case whose step at ``case.now`` entered a state with a deadline already due."""
    engine = engine_for(OVERDUE)
    if how == "open":
        # `at order.paid_at + 30d` was due a day before the case was opened
        return engine.open("w", {"order.paid_at": T0 - 31 * D}, at=T0)
    if how == "event":
        case = engine.open("w", {"order.paid_at": T0}, at=T0)
        # sent 11 days ago: `after 10d from parcel.sent_at` is overdue when entered
        engine.send(case, "ship", "consumer", {"sent_at": T0 - 11 * D}, at=T0 + H)
        return case
    case = engine.open("by_update", {"order.paid_at": T0}, at=T0)
    engine.update(case, {"parcel.sent_at": T0 - 11 * D}, at=T0 + H)  # -> in_transit, overdue
    return case


@pytest.mark.parametrize("how", ["open", "event", "update"])
def test_bug_a_deadline_overdue_on_entry_fires_in_the_same_step(how: str) -> None:
    """Was (7a0467b): the deadline stayed pending (next_deadline in the past) until some
    later step, so the state at T depended on whether a zero-length advance(case, T) was
    called."""
    engine = engine_for(OVERDUE)
    case = overdue_case(how)
    assert case.state.name == ("expired" if how == "open" else "late")
    assert case.history[-1].kind == "deadline"
    assert case.next_deadline is None
    before = snapshot(case)
    engine.advance(case, case.now)  # zero-length: nothing changes
    assert snapshot(case) == before
    compare_with_replay(engine, case)


@pytest.mark.parametrize("how", ["event", "update"])
def test_bug_an_overdue_deadline_fired_in_a_step_is_recorded_at_the_steps_time(
    how: str,
) -> None:
    """Was (08bf2df): recorded at max(due, the previous step's time), before the event or
    update that entered its state: the history's times went back."""
    case = overdue_case(how)
    entered, fired = case.history[-2], case.history[-1]
    assert (entered.at, entered.target) == (T0 + H, "in_transit")
    assert (fired.kind, fired.source, fired.target) == ("deadline", "in_transit", "late")
    assert fired.at == T0 + H  # was T0, an hour before the state was entered


NOTED = """
policy t.noted
facts {
  parcel.sent_at: time?
  late.noted_at: time?
}
actors consumer
event ship(sent_at: time) by consumer
workflow w {
  initial state awaiting {
    on ship -> in_transit set parcel.sent_at = event.sent_at
  }
  state in_transit {
    after 10d from parcel.sent_at -> late set late.noted_at = now
  }
  final state late
}
"""


@pytest.mark.parametrize(
    ("sent", "advance_to", "recorded"),
    [
        # due in the future: fires when the clock passes it, recorded at its due time
        (T0, T0 + 12 * D, T0 + 10 * D),
        # already due when its state is entered (at T0 + H): recorded at the entry, not before
        (T0 - 11 * D, T0 + H, T0 + H),
    ],
    ids=["due-later", "overdue-on-entry"],
)
def test_a_fired_deadline_is_recorded_and_sees_now_at_its_due_time_or_its_states_entry(
    sent: datetime, advance_to: datetime, recorded: datetime
) -> None:
    """runtime.md, steps 1 and 5: both sides of the one rule (never before the entry)."""
    engine = engine_for(NOTED)
    case = engine.open("w", {}, at=T0)
    engine.send(case, "ship", "consumer", {"sent_at": sent}, at=T0 + H)
    engine.advance(case, advance_to)
    fired = [r for r in case.history if r.kind == "deadline"]
    assert [(r.target, r.at) for r in fired] == [("late", recorded)]
    assert case.facts["late"]["noted_at"] == recorded  # `now` in its transition


TIME_ONLY = """
policy t.time_only
facts {
  order.paid_at: time
  order.note: string?
}
actors consumer
event poke by consumer
workflow w {
  initial state waiting {
    when since(order.paid_at) > 6h -> late
    on poke stay
  }
  final state late
}
"""


@pytest.mark.parametrize("step", ["advance", "update", "stay event"])
def test_automatic_transitions_are_checked_at_steps_never_because_time_passes(step: str) -> None:
    """language.md, "When automatic transitions are checked": time alone is not a step."""
    engine = engine_for(TIME_ONLY)
    case = engine.open("w", {"order.paid_at": T0}, at=T0)
    later = T0 + 7 * H
    if step == "advance":
        engine.advance(case, later)
        assert case.state.name == "waiting"  # seven hours passed, nothing checked it
        return
    if step == "update":
        engine.update(case, {"order.note": "any change"}, at=later)
    else:
        engine.send(case, "poke", "consumer", at=later)
    assert case.state.name == "late"


def test_bug_replay_of_an_overdue_deadline_fired_in_a_step() -> None:
    """Was (08bf2df), same cause: recorded at max(due, case.now), where case.now may come
    from an advance that fired nothing (not in the history): the replay differed."""
    engine = engine_for(OVERDUE)
    case = engine.open("w", {"order.paid_at": T0}, at=T0)
    engine.advance(case, T0 + 30 * M)  # fires nothing: not recorded
    engine.send(case, "ship", "consumer", {"sent_at": T0 - 11 * D}, at=T0 + 30 * M)
    assert case.history[-1].at == T0 + 30 * M
    rebuilt = engine.replay(case.history)
    assert rebuilt.history[-1].at == T0 + 30 * M  # was T0
    compare_with_replay(engine, case)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", ["open", "update", "payload"])
def test_bug_non_finite_float_money_is_refused(value: float, where: str) -> None:
    """Was: a float NaN/infinity was read as Decimal('NaN')/Decimal('Infinity')."""
    engine = engine_for(MONEY_SUM)
    if where == "open":
        with refused("invalid_fact"):
            engine.open("w", {"a": value, "b": 0}, at=T0)
        return
    case = engine.open("w", {"a": 0, "b": 0}, at=T0)
    if where == "update":
        with refused("invalid_fact"):
            engine.update(case, {"a": value}, at=T0)
    else:
        with refused("invalid_payload"):
            engine.send(case, "pay", "merchant", {"extra": value}, at=T0)


def test_bug_allowed_at_a_later_time_sees_the_deadlines_due_before_it() -> None:
    """Was: allowed(case, at) listed the events of the state before the deadline."""
    engine = engine_for(TIMERS)
    case = engine.open("review", {"n": 0}, at=T0)
    later = T0 + 49 * H  # the 48h deadline is due before it
    with refused("case_closed"):
        engine.send(case, "approve", "merchant", at=later)
    assert engine.allowed(case, later) == {}
    assert engine.allowed(case, T0 + 48 * H) == {
        "approve": ("merchant",),
        "note": ("consumer",),
        "remind": ("consumer",),
    }
    assert engine.allowed(case) == engine.allowed(case, T0 + 48 * H)
    assert case.state.name == "waiting" and case.history[-1].kind == "open"  # untouched


HAS_POLICY = """\
policy has version "1"
facts {
  order.amount: money
  offer.service: string?
  offer.note.text: string?
}
actors a
event go by a
workflow w {
  initial state s {
    on go when !has(offer.service) && !has(offer.note.text) -> unset
    on go when has(offer.service) -> set
  }
  final state unset
  final state set
}
"""


@pytest.mark.parametrize(
    ("facts", "state"),
    [
        ({"order.amount": 1}, "unset"),  # no fact of `offer` at all: has() is false, not an error
        ({"order.amount": 1, "offer.note.text": "x"}, "set_none"),
        ({"order.amount": 1, "offer.service": "repair"}, "set"),
    ],
)
def test_has_is_false_for_a_declared_fact_whose_group_has_nothing_set(
    facts: dict[str, object], state: str
) -> None:
    engine = Engine(rulekit.loads(HAS_POLICY))
    case = engine.open("w", facts, at=T0)
    if state == "set_none":
        with pytest.raises(rulekit.StepRefused) as refused:
            engine.send(case, "go", "a", at=T0)
        assert refused.value.code == "guard_failed"
        return
    assert engine.send(case, "go", "a", at=T0).state == state
