"""``allowed``: the events each actor may send now, by state, facts and time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

import rulekit

from .helpers import T0, H, engine_for

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
