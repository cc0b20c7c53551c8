"""Clocks and `as soon as` in the engine: what the scenario files cannot see (records,
the clock states, refused steps, replay), and a replay property over random steps on
tests/policies/clocks.rk, the policy tests/scenarios/clocks.yaml runs at every boundary.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import rulekit
from rulekit.runtime import Engine
from rulekit.runtime.model import ClockState
from rulekit.runtime.timeline import render
from support import TESTS

from .helpers import T0, US, D, H, S, compare_with_replay, engine_for, snapshot

FACTS = {"request": {"received_at": T0, "complex": True}}

RESTART = """
policy t.restart
facts {
  n: int
  span: duration
}
actors office
event again by office
event halt by office
event grow by office
workflow w {
  clock c = 10d starts at open
    on expiry stay set n = n + 1 start c
  clock d = span
    on expiry -> done
  initial state a {
    on again stay restart c start d
    on halt stay stop c
    on grow stay extend c by 1d
  }
  final state done
}
"""


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(rulekit.load(TESTS / "policies" / "clocks.rk"))


def actions(case: Any) -> list[tuple[str, str | None]]:
    return [
        (r.kind, (r.data or {}).get("action"))
        for r in case.history
        if r.kind in ("clock", "expiry")
    ]


def test_a_pause_keeps_an_exact_length_and_the_records_say_so(engine: Engine) -> None:
    case = engine.open("request", FACTS, at=T0)
    assert case.clocks == {"response": ClockState("running", T0 + 20 * D, None, T0)}
    engine.send(case, "ask", "office", at=T0 + 5 * D + 3 * H)
    assert case.clocks["response"] == ClockState("paused", None, 15 * D - 3 * H, T0 + 5 * D + 3 * H)
    paused = case.history[-1]
    assert (paused.kind, paused.source, paused.data) == (
        "clock",
        "awaiting_clarification",
        {"clock": "response", "action": "paused", "remaining": 15 * D - 3 * H},
    )
    assert case.next_deadline is None
    engine.send(case, "clarify", "requester", at=T0 + 9 * D)
    assert case.next_deadline == T0 + 24 * D - 3 * H
    text = render(case.history)
    assert "clock `response` paused in `awaiting_clarification`: 14d21h left" in text
    assert "clock `response` resumed in `handling`: runs out at" in text


def test_a_refused_step_leaves_the_clocks_as_they_were(engine: Engine) -> None:
    case = engine.open("request", {"request": {"received_at": T0, "complex": False}}, at=T0)
    before = snapshot(case)
    with pytest.raises(rulekit.StepRefused):
        engine.send(case, "extend", "office", at=T0 + D)  # not complex: guard_failed
    with pytest.raises(rulekit.StepRefused):
        engine.send(case, "answer", "office", at=T0 + 21 * D)  # after the expiry: case_closed
    assert snapshot(case) == before


def test_allowed_later_sees_the_clock_run_out(engine: Engine) -> None:
    case = engine.open("request", FACTS, at=T0)
    assert "answer" in engine.allowed(case, T0 + 20 * D)
    assert engine.allowed(case, T0 + 20 * D + US) == {}
    assert case.state.name == "handling"


def test_restart_stop_extend_and_an_expiry_that_starts_its_own_clock_again() -> None:
    engine = engine_for(RESTART)
    case = engine.open("w", {"n": 3, "span": "4d"}, at=T0)
    engine.advance(case, T0 + 10 * D + S)  # c ran out: n = 4, c started again
    assert case.facts["n"] == 4 and case.clocks["c"].due == T0 + 20 * D
    engine.send(case, "grow", "office", at=T0 + 11 * D)
    assert case.clocks["c"].due == T0 + 21 * D
    engine.send(case, "again", "office", at=T0 + 12 * D)  # restart c, start d (4 days)
    assert case.clocks["c"].due == T0 + 22 * D and case.clocks["d"].due == T0 + 16 * D
    engine.send(case, "halt", "office", at=T0 + 13 * D)
    engine.send(case, "grow", "office", at=T0 + 14 * D)  # a stopped clock is not extended
    assert case.clocks["c"] == ClockState("stopped", None, None, T0 + 13 * D)
    engine.advance(case, T0 + 30 * D)
    assert case.state.name == "done" and case.history[-2].at == T0 + 16 * D
    assert actions(case) == [
        ("clock", "started"),
        ("expiry", None),
        ("clock", "started"),
        ("clock", "extended"),
        ("clock", "restarted"),
        ("clock", "started"),
        ("clock", "stopped"),
        ("expiry", None),
    ]
    compare_with_replay(engine, case)


def test_a_clock_that_cannot_be_computed_does_not_start() -> None:
    engine = engine_for(
        "policy t.opt\nfacts { due_in: duration? }\nactors a\nevent e by a\n"
        "workflow w {\n  clock c = due_in starts at open on expiry -> z\n"
        "  initial state s { on e -> z }\n  final state z\n}\n"
    )
    case = engine.open("w", {}, at=T0)
    assert case.clocks == {} and case.next_deadline is None


_EVENTS = [
    ("ask", "office"),
    ("clarify", "requester"),
    ("bill", "office"),
    ("pay", "requester"),
    ("extend", "office"),
    ("answer", "office"),
    ("hold", "office"),
    ("resume", "office"),
    ("appeal", "requester"),
    ("decide", "office"),
    ("decide", "requester"),
]
_GAPS = st.sampled_from([0 * S, 0 * S, US, S, H, D, 5 * D, 10 * D, 15 * D, 20 * D, 45 * D])
_STEP = st.tuples(
    _GAPS,
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from(_EVENTS)),
        st.tuples(st.just("send"), st.sampled_from(_EVENTS)),
        st.tuples(
            st.just("update"),
            st.sampled_from(
                [
                    {"request.complex": False},
                    {"request.complex": True},
                    {"request.received_at": T0 + 3 * D},
                    {"request.received_at": T0 - 70 * D},
                ]
            ),
        ),
        st.tuples(st.just("advance")),
    ),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    received=st.sampled_from([T0, T0 - 10 * D, T0 - 59 * D, T0 - 25 * D]),
    complex_=st.booleans(),
    steps=st.lists(_STEP, max_size=20),
)
def test_replay_rebuilds_a_case_with_clocks(
    engine: Engine, received: datetime, complex_: bool, steps: list[Any]
) -> None:
    case = engine.open(
        "request", {"request": {"received_at": received, "complex": complex_}}, at=T0
    )
    at = T0
    for gap, step in steps:
        at += gap
        before = snapshot(case)
        try:
            if step[0] == "send":
                note(f"{at}: send {step[1]}")
                engine.send(case, step[1][0], step[1][1], at=at)
            elif step[0] == "update":
                note(f"{at}: update {step[1]}")
                engine.update(case, step[1], at=at)
            else:
                note(f"{at}: advance")
                engine.advance(case, at)
        except (rulekit.StepRefused, rulekit.EvaluationError):
            assert snapshot(case) == before
        assert [r.seq for r in case.history] == list(range(len(case.history)))
        assert all(b.at >= a.at for a, b in itertools.pairwise(case.history))
        due = case.next_deadline
        assert due is None or due >= case.now  # what is due before the step has fired
        for state in case.clocks.values():
            assert (state.due is not None) == (state.status == "running")
            assert (state.remaining is not None) == (state.status == "paused")
    compare_with_replay(engine, case)
