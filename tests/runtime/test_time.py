"""Time: it never goes back, an open needs an aware time, a simulated clock gives the
time when ``at`` is not passed, and the engine never reads the wall clock.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

import rulekit
from rulekit.runtime import Engine, SimulatedClock

from .helpers import FILE, T0, TIMERS, US, D, H, engine_for, refused, snapshot


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
