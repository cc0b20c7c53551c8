"""Migrating a case to a later version (docs/live-changes.md, "Migrations"): the engine's
part, on cases in memory. The stores' part is in tests/stores/test_migrate_store.py."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rulekit import StepRefused, load, loads
from rulekit.policy import artifact
from rulekit.runtime.engine import Engine
from rulekit.runtime.model import Case
from support import TESTS

V1, V2, V1_1 = (load(TESTS / "migrate" / f"{n}.rk") for n in ("v1", "v2", "v1_1"))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _case_in_review(amount: str) -> tuple[Engine, Case]:
    old = Engine(V1)
    case = old.open("refund", {"order": {"amount": Decimal(amount)}}, at=T0)
    old.send(case, "ask", "buyer", at=T0 + timedelta(hours=1))
    return old, case


def test_the_block_maps_the_state_adds_facts_and_recounts_deadlines_from_the_entry() -> None:
    _, case = _case_in_review("150.00")
    moved = Engine(V2).migrate(case, "1", T0 + timedelta(hours=5))
    assert moved.state.name == "reviewing"
    assert moved.facts["order"] == {"amount": Decimal("150.00"), "channel": "large"}
    # 24h in version 2, counted from when the case entered `review` (an hour after opening)
    assert [d[0] for d in moved.deadlines] == [T0 + timedelta(hours=25)]
    record = moved.history[-1]
    assert (record.kind, record.source, record.target) == ("migrated", "review", "reviewing")
    assert record.data == {
        "from": "1",
        "to": "2",
        "policy": V2.hash,
        "state": ["review", "reviewing"],
        "facts": {"order.channel": "large"},
        "deadlines": "recompute",
    }
    assert case.state.name == "review"  # the old case is left as it was


def test_a_version_without_a_block_for_the_case_refuses_it() -> None:
    _, case = _case_in_review("10.00")
    with pytest.raises(StepRefused) as info:
        Engine(V1_1).migrate(case, "0.9", T0)
    assert info.value.code == "cannot_migrate"


def test_replay_switches_policy_at_the_migrated_record() -> None:
    _, case = _case_in_review("10.00")
    new = Engine(V2)
    moved = new.migrate(case, "1", T0 + timedelta(hours=5))
    new.send(moved, "approve", "merchant", at=T0 + timedelta(hours=6))
    engines = {V2.hash: new}
    rebuilt = Engine(V1).replay(moved.history, versions=engines.__getitem__)
    assert (rebuilt.state.name, rebuilt.facts, rebuilt.history) == (
        moved.state.name,
        moved.facts,
        moved.history,
    )


def test_the_artifact_keeps_the_block() -> None:
    data = artifact.to_json(V2)
    again = loads(json.dumps(data), "json")
    block = again.migrations["1"]
    assert list(again.migrations) == ["1"] and block.states == V2.migrations["1"].states
    assert [(a.fact, a.value.text) for a in block.assigns] == [
        ("order.channel", 'order.amount > 100.00 ? "large" : "small"')
    ]
    assert block.deadlines == "recompute"


STEPS = st.lists(
    st.tuples(st.sampled_from(["ask", "approve", "wait"]), st.integers(1, 60)), max_size=6
)


@settings(max_examples=40, deadline=None)
@given(STEPS, st.integers(0, 72))
def test_an_identity_migration_changes_only_the_version(
    steps: list[tuple[str, int]], later: int
) -> None:
    """Version 1.1 is version 1 with a block that maps nothing and keeps deadlines."""
    old = Engine(V1)
    case = old.open("refund", {"order": {"amount": Decimal("20.00")}}, at=T0)
    t = T0
    for what, hours in steps:
        t += timedelta(hours=hours)
        if what == "wait":
            old.advance(case, t)
        else:
            actor = "buyer" if what == "ask" else "merchant"
            with contextlib.suppress(StepRefused):  # not taken in every state
                old.send(case, what, actor, at=t)
    at = t + timedelta(hours=later)
    moved = Engine(V1_1).migrate(case, "1", at)
    assert moved.state.name == case.state.name
    assert moved.facts == case.facts
    assert moved.entered == case.entered
    assert [(d[0], d[1], d[3]) for d in moved.deadlines] == [
        (d[0], d[1], d[3]) for d in case.deadlines
    ]
    assert moved.history[:-1] == case.history
    assert moved.history[-1].kind == "migrated" and moved.history[-1].data["facts"] == {}


def test_the_yaml_form_writes_the_same_block() -> None:
    """`migrate:` in YAML is `migrate from` in .rk: the same policy, to the content hash."""
    assert load(TESTS / "migrate" / "v2.yaml").hash == V2.hash
