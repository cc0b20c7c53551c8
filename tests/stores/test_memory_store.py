"""What only MemoryStore has beside the store contract (test_store.py runs that on it):
its clock, ``advance`` (every due deadline, no limit), ``len``, iteration and ``remove``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rulekit.policy import Policy
from rulekit.runtime import Engine, MemoryStore, SimulatedClock
from rulekit.stores import StoreError

from .helpers import REVIEW, H, S, T, fast_refund, slow_refund


def test_a_time_left_out_is_the_clock_the_store_was_given(kuaishou: Policy) -> None:
    clock = SimulatedClock(T)
    store = MemoryStore(Engine(kuaishou), clock=clock.now)
    case, _ = store.open("refund_only", slow_refund(), id="c1")
    store.open("refund_only", fast_refund(), id="c2")
    assert (case.opened_at, case.next_deadline) == (T, T + REVIEW)
    clock.advance(H)
    assert store.send("c1", "reject", "merchant", {"reason": "r"})[1].records[0].at == T + H
    assert store.get("c1").updated_at == T + H
    clock.advance(8 * 24 * H)  # the rejection's grace has passed
    [fired] = store.fire_due()
    assert (fired.case_id, fired.result is not None) == ("c1", True)
    assert store.get("c1").final
    [refund] = store.claim(lease=H)  # the fast refund of c2, due since it opened
    assert refund.case_id == "c2"
    assert store.claim(lease=H) == []  # leased until the clock moves past it
    clock.advance(H + S)
    assert [e.key for e in store.claim()] == [refund.key]


def test_the_default_clock_is_the_wall_clock(kuaishou: Policy) -> None:
    store = MemoryStore(Engine(kuaishou))
    before = datetime.now(UTC)
    case, _ = store.open("refund_only", slow_refund())
    assert before <= case.opened_at <= datetime.now(UTC)
    assert len(case.id) == 32  # a random id, as a durable store gives


def test_advance_fires_every_due_deadline_whatever_their_number(kuaishou: Policy) -> None:
    store = MemoryStore(Engine(kuaishou))
    n = 150  # more than fire_due's default limit
    for i in range(n):
        store.open("refund_only", slow_refund(), id=f"c{i:03d}", at=T + i * S)
    moved = store.advance(T + REVIEW + n * S)
    assert [(case_id, r.state) for case_id, r in moved] == [
        (f"c{i:03d}", "refunded") for i in range(n)
    ]
    assert store.advance(T + 30 * 24 * H) == []
    assert len(store) == n and all(c.final for c in store)


def test_a_removed_case_is_gone_and_its_deadline_with_it(kuaishou: Policy) -> None:
    store = MemoryStore(Engine(kuaishou))
    store.open("refund_only", slow_refund(), id="c1", at=T)
    assert store.remove("c1").id == "c1"
    assert len(store) == 0 and store.fire_due(now=T + 2 * REVIEW) == []
    keyed, _ = store.open("refund_only", slow_refund(), key="o1", at=T)
    store.remove(keyed.id)
    for call in (
        lambda: store.get("c1"),
        lambda: store.remove("c1"),
        lambda: store.open("refund_only", slow_refund(), key="o1", at=T),  # its case is gone
    ):
        with pytest.raises(StoreError) as missing:
            call()
        assert missing.value.code == "case_not_found"


def test_a_store_without_a_policy_says_so(kuaishou: Policy) -> None:
    store = MemoryStore()
    with pytest.raises(StoreError) as none:
        store.open("refund_only", slow_refund(), at=T)
    assert none.value.code == "unknown_policy"
    assert store.register(kuaishou) == kuaishou.hash
    assert store.open("refund_only", slow_refund(), at=T)[0].policy == kuaishou.hash
    with pytest.raises(StoreError) as unknown:
        store.engine("nope")
    assert unknown.value.code == "unknown_policy"


def test_the_clock_is_the_callers_to_move_not_the_engines(kuaishou: Policy) -> None:
    clock = SimulatedClock(T)
    store = MemoryStore(Engine(kuaishou), clock=clock.now)
    store.open("refund_only", slow_refund(), id="c1", at=T + H)  # ahead of the clock
    # a step left to the clock is timed no earlier than the case (as on a database)
    assert store.send("c1", "approve", "merchant")[1].records[0].at == T + H
    assert store.allowed("c1") == {}
    assert store.fire_due(now=T + timedelta(days=30)) == []
