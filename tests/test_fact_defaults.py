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
