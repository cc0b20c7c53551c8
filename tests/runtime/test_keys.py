"""Idempotency keys: the same key gives the same result and appends nothing, a refused
step's key can be retried, keys survive replay.
"""

from __future__ import annotations

from typing import Any

import pytest

import rulekit

from .helpers import OK_REJECT, REFUSE, T0, TIMERS, H, M, engine_for, snapshot


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
