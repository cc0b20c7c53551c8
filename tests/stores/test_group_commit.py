"""SQLite's group commit (issue 14): the writes of concurrent threads share one transaction
and one fsync, each in a savepoint of its own, and each caller is answered only once the
group is committed.

A group is made deterministic here by holding its first step inside its transaction (its
``only_if`` test waits) until the others have queued behind it. The kill -9 test runs
threads in a worker process (tests/stores/worker.py) on each database, and kills it while
its threads' steps are committing.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from typing import Any

import pytest

from rulekit.core.errors import StepRefused
from rulekit.policy import Policy
from rulekit.stores import SqlStore, StoreError
from rulekit.stores.sqlite import SQLiteDialect, SQLiteStore

from .backends import Backend
from .helpers import H, T, record_view, slow_refund, views
from .test_reliability import (
    _lifecycle,
    each_lifecycle_applied_once,
    refunds_once_per_record,
    workers,
)

WAIT = 60.0


@pytest.fixture
def backend(sql_backend: Backend) -> Backend:
    """SQL only: threads and processes sharing one database."""
    return sql_backend


@pytest.fixture
def sqlite_store(sqlite_backend: Backend, kuaishou: Policy) -> SQLiteStore:
    store = sqlite_backend.sql()
    store.register(kuaishou)
    assert isinstance(store, SQLiteStore)
    return store


def _kept(store: SqlStore, case_id: str) -> tuple[Any, ...]:
    """All a store keeps of one case."""
    return (
        store.get(case_id),
        [record_view(r) for r in store.history(case_id)],
        store.effects(case_id=case_id),
    )


def _dialect(store: SqlStore) -> SQLiteDialect:
    assert isinstance(store.dialect, SQLiteDialect)
    return store.dialect


def _until(test: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not test():
        if time.monotonic() > deadline:
            pytest.fail("the writes never queued")
        time.sleep(0.005)


def _outcome(f: Future[Any]) -> Any:
    """A call's result, or the error it raised."""
    try:
        return f.result(WAIT)
    except Exception as e:
        return e


def test_a_group_commits_once_and_undoes_a_refused_step_alone(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    for case_id in ("c1", "c2", "c3", "c4"):
        store.open("refund_only", slow_refund(), id=case_id, at=T)
    untouched = {case_id: _kept(store, case_id) for case_id in ("c2", "c4")}
    dialect = _dialect(store)
    commits, writes = dialect.commits, dialect.writes
    inside, release = threading.Event(), threading.Event()

    def hold(parties: Mapping[str, str]) -> bool:
        inside.set()
        return release.wait(WAIT)

    with ThreadPoolExecutor(5) as pool:
        first = pool.submit(
            store.send, "c1", "approve", "merchant", key="k1", at=T + H, only_if=hold
        )
        assert inside.wait(WAIT)  # the group's first step holds its transaction open
        queued = [
            # refused by the policy: the consumer may not approve
            pool.submit(store.send, "c2", "approve", "consumer", at=T + H),
            # the first step again, with its key: answered from it, in the same transaction
            pool.submit(store.send, "c1", "approve", "merchant", key="k1", at=T + H),
            pool.submit(store.send, "c3", "approve", "merchant", at=T + H),
            # refused by the store after a read
            pool.submit(store.open, "refund_only", slow_refund(), id="c4", key="o"),
        ]
        _until(lambda: dialect.waiting == len(queued))
        release.set()
        applied, refused, repeated, other, exists = [_outcome(f) for f in [first, *queued]]
    # a step answers (the stored case, the step's result); the checks read the result
    applied, repeated, other = applied[1], repeated[1], other[1]

    assert (dialect.commits, dialect.writes) == (commits + 1, writes + 5)  # one group
    assert isinstance(refused, StepRefused)
    assert isinstance(exists, StoreError) and exists.code == "case_exists"
    assert not applied.repeated and repeated.repeated
    assert views(repeated.records) == views(applied.records)
    assert other.state == applied.state == "refunded"
    for case_id in ("c1", "c3"):
        assert [r.kind for r in store.history(case_id)] == ["open", "event"]
        assert [e.name for e in store.effects(case_id=case_id)] == ["refund"]
        assert store.get(case_id).version == 2
    for case_id, before in untouched.items():
        assert _kept(store, case_id) == before
    # and every write's rows are there for another connection (committed, not cached)
    with closing(sqlite3.connect(dialect.path)) as db:
        assert db.execute("SELECT COUNT(*) FROM rk_history WHERE case_id = 'c3'").fetchone() == (2,)


def test_a_write_that_ends_the_transaction_fails_its_whole_group(
    sqlite_store: SQLiteStore,
) -> None:
    """When SQLite rolls a transaction back under a write (an I/O error, a full disk), the
    writes before it in the group are gone too: each caller gets the error, none a result."""
    dialect = _dialect(sqlite_store)
    inside, release = threading.Event(), threading.Event()

    def first(cur: Any) -> str:
        cur.execute("INSERT INTO rk_policies VALUES ('h1', 'p', '1', '{}', '2021-03-01')")
        inside.set()
        release.wait(WAIT)
        return "first"

    def second(cur: Any) -> str:
        cur.execute("INSERT INTO rk_policies VALUES ('h2', 'p', '1', '{}', '2021-03-01')")
        return "second"

    def breaks(cur: Any) -> str:
        cur.execute("ROLLBACK")  # as SQLite does on its own after some errors
        raise sqlite3.OperationalError("disk I/O error")

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(dialect.write, first)]
        assert inside.wait(WAIT)
        futures += [pool.submit(dialect.write, second), pool.submit(dialect.write, breaks)]
        _until(lambda: dialect.waiting == 2)
        release.set()
        outcomes = [_outcome(f) for f in futures]
    assert [str(o) for o in outcomes] == ["disk I/O error"] * 3
    with closing(sqlite3.connect(dialect.path)) as db:
        assert db.execute("SELECT hash FROM rk_policies WHERE name = 'p'").fetchall() == []
    # the next write begins a group of its own, as usual
    assert dialect.write(second) == "second"


def test_without_group_commit_each_write_commits_alone(
    sqlite_backend: Backend, kuaishou: Policy
) -> None:
    store = SQLiteStore(sqlite_backend.url, group_commit=False)
    try:
        store.register(kuaishou)
        ids = [f"c{i}" for i in range(8)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda c: store.open("refund_only", slow_refund(), id=c, at=T), ids))
            results = list(
                pool.map(lambda c: store.send(c, "approve", "merchant", at=T + H)[1], ids)
            )
        assert {r.state for r in results} == {"refunded"}
        assert _dialect(store).commits == 0  # no group was ever formed
        refunds_once_per_record(store, ids)
    finally:
        store.close()


@pytest.mark.parametrize("seed", [3, 4])
def test_a_process_killed_while_its_threads_commit_loses_no_acknowledged_step(
    store: SqlStore, backend: Backend, seed: int
) -> None:
    """Eight threads of one process step their own cases (keyed: a client may send them
    again); the process is killed by SIGKILL at a random point, in the middle of groups.
    Every step a thread was answered for is kept, none twice; sent again to the end, every
    case has each step once."""
    rng = random.Random(seed)
    threads = 8
    ids = [f"c{i:02d}" for i in range(4 * threads)]
    plans = [
        [s for case_id in ids[t::threads] for s in _lifecycle(case_id)] for t in range(threads)
    ]
    total = sum(len(p) for p in plans)
    spec = {"do": "steps", "url": backend.url, "threads": plans}
    with workers([spec]) as [w]:
        for _ in range(rng.randrange(total // 4, total * 3 // 4)):
            if w.next() is None:
                break
        w.kill()
        acked = list(w.said)
    assert acked and not any("refused" in a for a in acked)
    for a in acked:  # what was acknowledged is there, once
        if a["id"].startswith("open "):
            assert store.get(a["case"]).id == a["case"]
            continue
        history = store.history(a["case"])
        assert [history[s].key for s in a["seqs"]] == [a["id"]]
        assert [r.key for r in history].count(a["id"]) == 1
    if backend.name == "sqlite":  # the kill fell among groups of several writes
        commits, writes = acked[-1]["group"]
        assert writes > commits, acked[-1]
    # a client sends everything again, to the end: each step applied once
    with workers([spec]) as [w]:
        w.finish()
    each_lifecycle_applied_once(store, ids)
