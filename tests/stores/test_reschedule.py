"""`stay ... reschedule` in every store: the deadlines counted again from when the case
entered its state, which a store keeps (rk_cases.entered_at) even when no deadline is
pending; and a store written before it (migration 0004) gets it from each open case's
history."""

from __future__ import annotations

from datetime import timedelta

import pytest

import rulekit
from rulekit.policy import Policy
from rulekit.runtime import Engine
from rulekit.stores import StoreError, open_store
from support import TESTS

from .backends import Backend
from .helpers import D, S, T, views


@pytest.fixture(scope="module")
def policy() -> Policy:
    return rulekit.load(TESTS / "policies" / "reschedule.rk")


def test_a_deadline_not_counted_at_entry_counts_from_the_entry_the_store_kept(
    backend: Backend, policy: Policy
) -> None:
    store = backend.open(register=policy)
    store.open("hearing", {}, id="h1", at=T)
    assert store.get("h1").next_deadline is None  # nothing pending remembers the entry
    case, _ = store.send("h1", "give_notice", "reviewer", {"notice": "5d"}, at=T + 2 * D)
    assert case.next_deadline == T + 5 * D  # from the entry, not from the notice
    assert store.fire_due(now=T + 5 * D) == []
    (fired,) = store.fire_due(now=T + 5 * D + S)
    assert fired.due == T + 5 * D and store.get("h1").state == "heard"

    # The same steps on an engine: the store wrote the same history.
    engine = Engine(policy)
    direct = engine.open("hearing", {}, at=T)
    engine.send(direct, "give_notice", "reviewer", {"notice": "5d"}, at=T + 2 * D)
    engine.advance(direct, T + 5 * D + S)
    assert views(store.history("h1")) == views(direct.history)
    assert [r.kind for r in direct.history] == [
        "open",
        "event",
        "reschedule",
        "deadline",
        "advance",
    ]


def test_a_deadline_moved_into_the_past_fires_at_the_end_of_the_step(
    backend: Backend, policy: Policy
) -> None:
    store = backend.open(register=policy)
    store.open("review", {"review": {"until": T + 20 * D}}, id="r1", at=T)
    case, result = store.send("r1", "extend_review", "reviewer", {"until": T + 3 * D}, at=T + 5 * D)
    assert case.state == "lapsed" and case.next_deadline is None
    # the reminder fired at T+1d, before the event; the moved end fires after it, at its time
    assert [(r.kind, r.at) for r in result.records] == [
        ("deadline", T + D),
        ("event", T + 5 * D),
        ("reschedule", T + 5 * D),
        ("deadline", T + 5 * D),
    ]
    reschedule = result.records[2]
    assert reschedule.data == {
        "deadlines": [["at review.until", T + 3 * D], ["after 30d", T + 30 * D]]
    }
    assert [r.kind for r in store.history("r1")][-2:] == ["reschedule", "deadline"]


def test_a_store_from_before_reschedule_upgrades_and_keeps_each_entry(
    sql_backend: Backend, policy: Policy
) -> None:
    with sql_backend.empty() as url:
        with open_store(url, migrate=True) as store:
            store.register(policy)
            store.open("hearing", {}, id="h1", at=T)
            store.send("h1", "give_notice", "reviewer", {"notice": "1d"}, at=T + 3 * D)
            store.open("hearing", {}, id="h2", at=T + D)
            # What rulekit wrote before: schema 3, without the column.
            with store.dialect.transaction(True) as cur:  # type: ignore[attr-defined]
                cur.execute("ALTER TABLE rk_cases DROP COLUMN entered_at")
                cur.execute("DROP INDEX rk_effects_status")  # 0005, after it
                cur.execute("ALTER TABLE rk_effects DROP COLUMN policy")
                cur.execute("DELETE FROM rk_schema WHERE version >= 4")
        with pytest.raises(StoreError) as behind:
            open_store(url)
        assert behind.value.code == "schema_behind"
        with open_store(url, migrate=True) as store:
            assert store.get("h1").state == "heard"  # final: it takes no more steps
            case, _ = store.send(
                "h2", "give_notice", "reviewer", {"notice": timedelta(days=4)}, at=T + 2 * D
            )
            assert case.next_deadline == T + 5 * D  # from its opening, read from its history
