"""Replay: a hypothesis property over random step sequences on a policy with every
transition kind rebuilds an equal case.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import rulekit

from .helpers import T0, US, D, H, M, S, compare_with_replay, engine_for, kinds, snapshot

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
