"""Migrating stored cases to a later version (docs/live-changes.md, "Migrations"), on
every store (races: SQLite and PostgreSQL): one transaction per case, idempotent,
resumable, and never half of a step."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

import rulekit
from rulekit import StepRefused
from rulekit.runtime import Store
from rulekit.stores.live_migration import migrate, version_hash
from support import TESTS

from .backends import Backend

V1, V2 = (rulekit.load(TESTS / "migrate" / f"{n}.rk") for n in ("v1", "v2"))


def _cases(store: Store, n: int, asked: bool = True) -> list[str]:
    ids = []
    for i in range(n):
        case, _ = store.open(
            "refund", {"order": {"amount": Decimal(50 + 50 * i)}}, policy=V1.hash, id=f"C-{i:03d}"
        )
        if asked:
            store.send(case.id, "ask", "buyer")
        ids.append(case.id)
    return ids


def _both(store: Store) -> tuple[str, str]:
    return store.register(V1), store.register(V2)


def test_every_open_case_moves_with_a_record_and_a_second_run_is_a_no_op(
    backend: Backend,
) -> None:
    store = backend.open()
    old, new = _both(store)
    ids = _cases(store, 5)
    assert version_hash(store, "2") == new
    dry = migrate(store, new, dry_run=True, batch=2)
    assert [(c, a, b) for c, a, b in dry.moved] == [(i, "review", "reviewing") for i in ids]
    assert all(store.get(i).policy == old for i in ids)  # a dry run changes nothing
    done = migrate(store, new, batch=2)
    assert [c for c, _, _ in done.moved] == ids and done.refused == []
    for i in ids:
        case = store.get(i)
        assert (case.policy, case.state) == (new, "reviewing")
        last = store.history(i)[-1]
        assert (last.kind, last.data["from"], last.data["to"]) == ("migrated", "1", "2")
    again = migrate(store, new, batch=2)
    assert (again.moved, again.skipped) == ([], 5)
    assert [len(store.history(i)) for i in ids] == [3] * 5


def test_a_run_stopped_half_way_is_resumed_by_running_it_again(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backend.open()
    _, new = _both(store)
    ids = _cases(store, 6)
    kind = type(store)
    real = kind.migrate_case
    calls = 0

    def crashing(self: Store, case_id: str, to: str) -> object:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise RuntimeError("the process died here")
        return real(self, case_id, to)

    monkeypatch.setattr(kind, "migrate_case", crashing)
    with pytest.raises(RuntimeError):
        migrate(store, new, batch=4)
    monkeypatch.setattr(kind, "migrate_case", real)
    moved = [i for i in ids if store.get(i).policy == new]
    assert moved == ids[:3]  # each case whole or not at all
    rest = migrate(store, new, batch=4)
    assert [c for c, _, _ in rest.moved] == ids[3:] and rest.skipped == 3
    assert all(store.get(i).state == "reviewing" for i in ids)


def test_steps_racing_a_migration_are_never_lost_nor_see_half_a_case(
    sql_backend: Backend,
) -> None:
    store = sql_backend.sql()
    _, new = _both(store)
    ids = _cases(store, 20)
    other = sql_backend.sql()
    errors: list[BaseException] = []

    def approve() -> None:
        for i in ids:
            try:
                other.send(i, "approve", "merchant")
            except BaseException as e:  # every failure is reported below
                errors.append(e)

    racer = threading.Thread(target=approve)
    racer.start()
    migrate(store, new, batch=5)
    racer.join()
    assert errors == []
    for i in ids:
        case, history = store.get(i), store.history(i)
        # Approved on version 1 before the migration (closed: not migrated), or migrated
        # first and approved on version 2: both steps are kept either way.
        assert case.final and case.state == "refunded"
        kinds = [r.kind for r in history]
        assert kinds.count("event") == 2
        if "migrated" in kinds:
            assert case.policy == new and kinds.index("migrated") == 2
        assert [r.seq for r in history] == list(range(len(history)))


def test_a_migrated_case_replays_to_itself(backend: Backend) -> None:
    store = backend.open()
    old, new = _both(store)
    (case_id,) = _cases(store, 1)
    store.migrate_case(case_id, new)
    case = store.get(case_id)
    store.send(case_id, "approve", "merchant", at=case.updated_at + timedelta(hours=1))
    history = store.history(case_id)
    rebuilt = store.engine(old).replay(history, versions=store.engine)
    assert (rebuilt.state.name, rebuilt.facts) == (
        store.get(case_id).state,
        store.get(case_id).facts,
    )

    def steps(records: list[Any]) -> list[tuple[Any, ...]]:
        return [(r.seq, r.at, r.kind, r.source, r.target, r.data) for r in records]

    assert steps(rebuilt.history) == steps(history)


def test_a_version_without_a_block_for_the_case_refuses_it(backend: Backend) -> None:
    store = backend.open()
    old, new = _both(store)
    (case_id,) = _cases(store, 1)
    store.migrate_case(case_id, new)
    with pytest.raises(StepRefused):
        store.migrate_case(case_id, old)  # version 1 has no block for version 2
    assert store.get(case_id).policy == new
