"""Fact defaults (`order.after_sales_period: duration = 7d`, issue 15): kept in the
artifact, validated when it is loaded (tests/scenarios/fact_defaults.yaml runs the engine)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

import rulekit
from rulekit import CompileError
from rulekit.policy import artifact
from support import TESTS

POLICY = TESTS / "policies" / "fact_defaults.rk"


def _artifact() -> dict[str, Any]:
    return artifact.to_json(rulekit.load(POLICY))


def test_a_default_makes_the_fact_optional_and_is_kept_in_the_artifact() -> None:
    policy = rulekit.load(POLICY)
    fact = policy.facts["order.after_sales_period"]
    assert fact.optional and fact.default == timedelta(days=7)
    assert policy.facts["order.amount"].default is None
    data = _artifact()
    (period,) = [f for f in data["facts"] if f["path"] == "order.after_sales_period"]
    assert period["default"] == "604800s"  # a duration as a constant's value is written
    loaded = rulekit.loads(json.dumps(data), "json", "defaults.json")
    assert loaded.hash == data["hash"]
    assert loaded.facts["order.after_sales_period"].default == timedelta(days=7)
    # policies without defaults keep their artifacts (and hashes) as they were
    plain = artifact.to_json(rulekit.load(TESTS / "policies" / "refunds.rk"))
    assert all("default" not in f for f in plain["facts"])


@pytest.mark.parametrize(
    ("path", "edit", "message"),
    [
        ("order.after_sales_period", {"default": "seven days"}, "fact default"),
        ("order.after_sales_period", {"default": None}, "fact default"),
        ("order.amount", {"default": "100"}, "a default on a fact that is not optional"),
    ],
)
def test_hand_edited_defaults_are_refused(path: str, edit: dict[str, Any], message: str) -> None:
    data = _artifact()
    (fact,) = [f for f in data["facts"] if f["path"] == path]
    fact.update(edit)
    data["hash"] = artifact.content_hash(data)
    with pytest.raises(CompileError) as info:
        rulekit.loads(json.dumps(data), "json", "edited.json")
    assert message in str(info.value)
    assert {d.code for d in info.value.diagnostics} == {"RK0501"}


# -- what the analyses see: RK0713, and has() of a defaulted fact in the guard analysis ----

LINTED = """
policy t.linted
facts {
  order.amount: money
  order.window: duration = 7d
  order.period: FACT
}
const WEEK = 7d
actors merchant
event close by merchant
event widen by merchant
workflow w {
  initial state open {
    on close when GUARD -> closed
    on widen -> closed
    after DELAY -> closed
  }
  final state closed
}
"""


def _lines(fact: str, guard: str, delay: str) -> list[tuple[str, int]]:
    from rulekit.analysis import check_source

    source = LINTED.replace("FACT", fact).replace("GUARD", guard).replace("DELAY", delay)
    result = check_source(source, "rk", "linted.rk")
    assert result.ok, result.render()
    return [
        (d.code, d.line) for d in result.diagnostics if d.code in ("RK0707", "RK0708", "RK0713")
    ]


@pytest.mark.parametrize(
    ("fact", "guard", "delay", "found"),
    [
        # the one read of an optional fact falls back to a constant
        ("duration?", "true", "has(order.period) ? order.period : 7d", [("RK0713", 16)]),
        ("duration?", "true", "!has(order.period) ? WEEK : order.period", [("RK0713", 16)]),
        ("duration?", "true", "order.?period.orValue(7d)", [("RK0713", 16)]),
        # every read falls back to the same value (7d is WEEK)
        (
            "duration?",
            "(has(order.period) ? order.period : WEEK) > 1d",
            "has(order.period) ? order.period : 7d",
            [("RK0713", 14), ("RK0713", 16)],
        ),
        # two fallbacks: no one default says both
        (
            "duration?",
            "(has(order.period) ? order.period : 1d) > 1d",
            "has(order.period) ? order.period : 7d",
            [],
        ),
        # read without the fallback too: a default would change that read
        ("duration?", "has(order.period)", "has(order.period) ? order.period : 7d", []),
        ("duration?", "order.period > 1d", "has(order.period) ? order.period : 7d", []),
        # a fallback that reads a fact is no default
        (
            "duration?",
            "true",
            "has(order.period) ? order.period : order.window",
            [],
        ),
        # a defaulted fact: has() is always true, the fallback is never used
        ("duration = 1d", "true", "has(order.period) ? order.period : 7d", [("RK0713", 16)]),
        ("duration = 1d", "true", "order.?period.orValue(7d)", [("RK0713", 16)]),
        (
            "duration = 1d",
            "has(order.period)",
            "has(order.period) ? order.period : 7d",
            [("RK0713", 16)],
        ),
        # the guard analysis: has() of a defaulted fact always holds
        ("duration?", "!has(order.window)", "order.window", [("RK0708", 14)]),
        ("duration?", "has(order.window) || order.amount > 5", "order.window", []),
    ],
)
def test_what_the_analyses_say_about_fallbacks_and_defaults(
    fact: str, guard: str, delay: str, found: list[tuple[str, int]]
) -> None:
    assert _lines(fact, guard, delay) == found


def test_a_defaulted_has_takes_every_case_first() -> None:
    from rulekit.analysis import check_source

    source = LINTED.replace("FACT", "duration?").replace("DELAY", "order.window")
    source = source.replace(
        "on close when GUARD -> closed",
        "on close when has(order.window) -> closed\n    on close when order.amount > 5 -> open",
    )
    codes = ("RK0707", "RK0708")
    result = check_source(source, "rk", "linted.rk")
    # has(order.window) always holds: the second transition is never taken
    assert [(d.code, d.line) for d in result.diagnostics if d.code in codes] == [("RK0708", 15)]
    # without the default, has() may be false: the two merely overlap
    plain = source.replace("order.window: duration = 7d", "order.window: duration?")
    result = check_source(plain, "rk", "linted.rk")
    assert [(d.code, d.line) for d in result.diagnostics if d.code in codes] == [("RK0707", 15)]
