"""Clocks in every store: kept between steps, fired by the deadline worker under the same
claim as deadlines (once), with the records the engine writes; and a store written
before clocks existed upgrades and runs its cases as before (migration 0003)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

import rulekit
from rulekit.policy import Policy
from rulekit.runtime import Engine
from rulekit.runtime.model import ClockState
from rulekit.stores import StoreError, open_store
from support import TESTS

from .backends import Backend
from .helpers import D, H, S, T, slow_refund, views

FACTS = {"request": {"received_at": T, "complex": True}}


@pytest.fixture(scope="module")
def clocks() -> Policy:
    return rulekit.load(TESTS / "policies" / "clocks.rk")


def test_a_paused_clock_is_kept_and_the_worker_fires_its_expiry_once(
    backend: Backend, clocks: Policy
) -> None:
    store = backend.open(register=clocks)
    store.open("request", FACTS, id="r1", at=T)
    store.send("r1", "ask", "office", at=T + 5 * D)  # 15 days left
    assert store.get("r1").next_deadline is None
    store.send("r1", "extend", "office", at=T + 6 * D)  # 25 days left
    case, _ = store.send("r1", "clarify", "requester", at=T + 10 * D)
    assert case.next_deadline == T + 35 * D
    assert store.fire_due(now=T + 35 * D) == []  # due at T+35d: not before it
    (fired,) = store.fire_due(now=T + 35 * D + S)
    assert fired.due == T + 35 * D and fired.result is not None
    assert store.fire_due(now=T + 40 * D) == []  # once
    assert store.get("r1").state == "deemed_refused"

    # The same steps on an engine: the store wrote the same history.
    engine = Engine(clocks)
    direct = engine.open("request", FACTS, at=T)
    engine.send(direct, "ask", "office", at=T + 5 * D)
    engine.send(direct, "extend", "office", at=T + 6 * D)
    engine.send(direct, "clarify", "requester", at=T + 10 * D)
    engine.advance(direct, T + 35 * D + S)
    assert views(store.history("r1")) == views(direct.history)
    kinds = [(r.kind, (r.data or {}).get("action")) for r in direct.history]
    assert kinds == [
        ("open", None),
        ("clock", "started"),
        ("event", None),
        ("clock", "paused"),
        ("event", None),
        ("clock", "extended"),
        ("event", None),
        ("clock", "resumed"),
        ("expiry", None),
        ("advance", None),
    ]


def test_a_step_after_the_expiry_fires_it_first(backend: Backend, clocks: Policy) -> None:
    store = backend.open(register=clocks)
    store.open("request", FACTS, id="r2", at=T)
    with pytest.raises(rulekit.StepRefused) as refused:
        store.send("r2", "answer", "office", at=T + 20 * D + S)
    assert refused.value.code == "case_closed"
    assert store.get("r2").state == "handling"  # a refused step writes nothing
    (fired,) = store.fire_due(now=T + 20 * D + S)
    assert fired.result is not None and store.get("r2").state == "deemed_refused"
    assert [r.at for r in fired.result.records if r.kind == "expiry"] == [T + 20 * D]


def test_a_store_from_before_clocks_upgrades_and_runs_its_cases(
    tmp_path: Path, kuaishou: Policy, clocks: Policy
) -> None:
    path = tmp_path / "old.db"
    with open_store(path, migrate=True) as store:
        store.register(kuaishou)
        store.open("refund_only", slow_refund(), id="k1", at=T)
    # What rulekit wrote before clocks: schema 2, without the column.
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE rk_cases DROP COLUMN clocks")
    db.execute("ALTER TABLE rk_cases DROP COLUMN entered_at")  # 0004, after clocks
    db.execute("DROP INDEX rk_effects_status")  # 0005
    db.execute("ALTER TABLE rk_effects DROP COLUMN policy")
    db.execute("DELETE FROM rk_schema WHERE version >= 3")
    db.commit()
    db.close()
    with pytest.raises(StoreError) as behind:
        open_store(path)
    assert behind.value.code == "schema_behind"
    with open_store(path, migrate=True) as store:
        assert store.get("k1").next_deadline == T + 48 * H
        (fired,) = store.fire_due(now=T + 48 * H + S)
        assert fired.result is not None and store.get("k1").state == "refunded"
        store.register(clocks)
        store.open("request", FACTS, id="r3", at=T)
        store.send("r3", "ask", "office", at=T + D)
        loaded = store.engine(store.get("r3").policy)
        assert loaded.policy.hash == clocks.hash


def test_clock_states_are_plain_data() -> None:
    state = ClockState("paused", None, 15 * D, T)
    assert ClockState.from_data(state.to_data()) == state


def test_a_clock_counted_in_calendar_periods_keeps_its_records_in_the_store(
    backend: Backend,
) -> None:
    """A clock of `1 month` extended by `2 months` while paused: the store keeps the
    extension as written (a period has no fixed length), and its history is the engine's."""
    periods = rulekit.load(TESTS / "policies" / "clock_periods.rk")
    received = datetime(2027, 1, 31, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
    facts = {"request": {"received_at": received}}
    store = backend.open(register=periods)
    store.open("monthly", facts, id="p1", at=received)
    store.send("p1", "ask", "office", at=received + 18 * D)  # 10 days left
    store.send("p1", "extend", "office", at=received + 18 * D)  # + 2 months from 28 Feb
    case, _ = store.send("p1", "clarify", "requester", at=received + 58 * D)
    # 28 Feb + 2 months = 28 Apr: 69 days left at the pause, from the resume 58 days in
    assert case.next_deadline == received + (58 + 69) * D
    (extended,) = [r for r in store.history("p1") if (r.data or {}).get("action") == "extended"]
    assert extended.data is not None and extended.data["by"] == "2 months"

    engine = Engine(periods)
    direct = engine.open("monthly", facts, at=received)
    engine.send(direct, "ask", "office", at=received + 18 * D)
    engine.send(direct, "extend", "office", at=received + 18 * D)
    engine.send(direct, "clarify", "requester", at=received + 58 * D)
    assert views(store.history("p1")) == views(direct.history)
