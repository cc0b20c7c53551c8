"""``python -m benchmarks.stores``: the durable stores against raw SQL doing the same writes.

Measured in one run and printed as one table (see benchmarks/README.md, "The stores"):

1. steps per second: cases of the Kuaishou after-sales policy
   (rules/kuaishou_after_sales.rk, workflow ``return_refund``) each taken
   through ``approve``, ``submit_waybill`` and ``confirm_receipt`` (the last
   emits ``refund``: an outbox row) with ``SqlStore.send``, one transaction a
   step; and opening them (``SqlStore.open``). The baseline is raw SQL on the
   same driver and the same durability settings, one transaction a step too,
   writing the very rows the store wrote for a template case (lock and read
   the case row, guarded update, history, outbox, deadline rows). SQLite with
   one process, PostgreSQL with one and with two;
2. deadlines fired per second: cases whose 48-hour deadline is due, fired by
   ``SqlStore.fire_due(limit=100)`` against a raw batch of 100 in one
   transaction (claim, ``SKIP LOCKED`` on PostgreSQL; lock the case, mark the
   deadline, guarded case update, history, outbox);
3. claim-rate flatness: the rate of claiming a batch of 100 due deadlines,
   and of firing them with the store, with 0, 10k, 100k and 1,000,000 fired
   deadlines in ``rk_deadlines`` (100k at most with ``--quick``), each as a
   ratio to the empty table's; and, at the largest, the claim with a plain
   index on ``due`` instead of the partial one, for contrast.

Every ratio compares figures of this run: store and raw passes alternate, and
each figure is the best of its passes. Targets are printed, never asserted.
PostgreSQL is measured when ``--postgres DSN`` (or ``RULEKIT_BENCH_POSTGRES``)
names a database: the benchmark works in a schema of its own
(``rk_bench_<pid>``), dropped at the end.

Exit status: 0 when every step ended in the expected state and every guarded
write touched its row; 1 otherwise; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import rulekit
from benchmarks.report import exit_status, load, machine_facts, rate, ratio
from rulekit.stores import SqlStore, open_store
from rulekit.stores.base import CASE_COLUMNS
from rulekit.stores.sqlite import SQLiteStore

POLICY = Path(__file__).resolve().parent.parent / "rules" / "kuaishou_after_sales.rk"
#: Every case opens at this time; each step is an hour after the one before.
T = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
FACTS = {
    "order": {"amount": Decimal("500"), "paid_at": T - timedelta(days=9), "shipped": True},
    "shop.fast_refund_enabled": True,
}
#: (event, actor, data, the state it leads to): return_refund from awaiting_merchant to refunded
STEPS: tuple[tuple[str, str, dict[str, Any] | None, str], ...] = (
    ("approve", "merchant", None, "awaiting_return"),
    (
        "submit_waybill",
        "consumer",
        {"waybill_no": "SF1234567890", "carrier": "SF"},
        "awaiting_receipt",
    ),
    ("confirm_receipt", "merchant", None, "refunded"),
)
#: deadline cases: refund_only, whose 48h review deadline refunds; fired at this time
FIRE_AT = T + timedelta(hours=49)
FIRE_LIMIT = 100
FILLER_CASE = "rk-bench-filler"

#: the least x base each figure should reach (issue 14): steps and deadlines on SQLite, steps
#: on PostgreSQL; the rest (opens, PostgreSQL's fire_due) as before
TARGET_X_RAW = 0.7
TARGETS = {("SQLite", "steps"): 0.8, ("SQLite", "fire"): 0.8, ("PostgreSQL", "steps"): 0.9}
TARGET_FLAT = 0.2  # the claim rate within 20% of the empty table's
#: threads of one process stepping cases at once (SQLite's group commit)
THREADS = 8
#: processes against one PostgreSQL database (scale-out)
PG_PROCESSES = (1, 2, 4)
#: measured before this benchmark existed (issue 7), for orientation only
EARLIER = {
    "pg raw fire x2": "raw claim+update+outbox ~9,900 rows/s with 2 processes",
    "pg raw create": "create, one transaction each ~1,400/s",
}

Row_ = tuple[str, str, str, str, str, str]


def _progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


# -- the databases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """Where to measure: ``kind`` is ``sqlite`` (``where`` a file) or ``postgresql`` (a DSN)."""

    kind: str
    where: str

    @property
    def label(self) -> str:
        return "SQLite" if self.kind == "sqlite" else "PostgreSQL"

    def store(self, *, migrate: bool = False) -> SqlStore:
        return open_store(self.where, migrate=migrate)


class Raw:
    """Plain DB-API on the store's driver, with the store's connection settings and ``?`` SQL."""

    def __init__(self, backend: Backend) -> None:
        self.kind = backend.kind
        if backend.kind == "sqlite":
            # as SQLiteDialect._connect: WAL, synchronous=FULL, foreign keys. A thread of
            # Threads opens its own and the process closes them all at the end, from its
            # main thread: each is used by one thread only, so that is safe.
            self.conn: Any = sqlite3.connect(
                backend.where, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
        else:
            import psycopg

            self.conn = psycopg.connect(backend.where, autocommit=True)

    @contextmanager
    def tx(self, write: bool = True) -> Iterator[RawCursor]:
        if self.kind == "sqlite":
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        else:
            self.conn.execute("BEGIN")
            cur = self.conn.cursor()
        try:
            yield RawCursor(cur, self.kind == "postgresql")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            cur.close()

    def close(self) -> None:
        self.conn.close()


class RawCursor:
    def __init__(self, cur: Any, pg: bool) -> None:
        self.cur = cur
        self.pg = pg

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self.pg:  # as the store's PostgreSQL cursor: %s placeholders, prepared statements
            return self.cur.execute(sql.replace("?", "%s"), params, prepare=True)
        return self.cur.execute(sql, params)

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any:
        return self.cur.executemany(sql.replace("?", "%s") if self.pg else sql, params)

    def fetchone(self) -> Any:
        return self.cur.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self.cur.fetchall())

    @property
    def rowcount(self) -> int:
        return int(self.cur.rowcount)


# -- the raw baseline: the store's SQL shapes, with the rows the store wrote -------------------

INSERT_CASE = (
    f"INSERT INTO rk_cases ({CASE_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(CASE_COLUMNS.split(',')))})"
)
UPDATE_CASE = (
    "UPDATE rk_cases SET state = ?, final = ?, outcome = ?, facts = ?, deadlines = ?, "
    "case_time = ?, records = ?, version = ?, updated_at = ?, next_due = ?, clocks = ?, "
    "entered_at = ? WHERE id = ? AND version = ?"
)
INSERT_HISTORY = "INSERT INTO rk_history (case_id, seq, at, kind, record) VALUES (?, ?, ?, ?, ?)"
INSERT_EFFECT = (
    "INSERT INTO rk_effects (key, case_id, seq, name, args, at, status, attempts, "
    "available_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?)"
)
DONE_BY_CASE = "UPDATE rk_deadlines SET done_at = ? WHERE case_id = ? AND done_at IS NULL"
DONE_BY_ID = "UPDATE rk_deadlines SET done_at = ? WHERE id = ?"
INSERT_DEADLINE = "INSERT INTO rk_deadlines (case_id, due) VALUES (?, ?)"
CLAIM = "SELECT id, case_id, due FROM rk_deadlines WHERE done_at IS NULL AND due < ? ORDER BY due LIMIT ?"


def lock_sql(pg: bool, skip_locked: bool = False) -> str:
    sql = f"SELECT {CASE_COLUMNS} FROM rk_cases WHERE id = ?"
    if pg:
        sql += " FOR UPDATE" + (" SKIP LOCKED" if skip_locked else "")
    return sql


def claim_sql(pg: bool) -> str:
    return CLAIM + (" FOR UPDATE SKIP LOCKED" if pg else "")


@dataclass(frozen=True)
class Write:
    """What one store operation wrote for a template case: its rows, to write again raw."""

    row: tuple[Any, ...]  # the case row after it (CASE_COLUMNS)
    history: tuple[tuple[Any, ...], ...]  # (seq, at, kind, record)
    effects: tuple[tuple[Any, ...], ...]  # (index in its record, seq, name, args, at, available_at)
    due_before: Any
    due_after: Any


def capture(raw: Raw, case_id: str, before: tuple[Any, ...] | None) -> Write:
    """The rows the store wrote for ``case_id`` since its row was ``before``."""
    start = int(before[9]) if before is not None else 0
    with raw.tx(write=False) as cur:
        cur.execute(f"SELECT {CASE_COLUMNS} FROM rk_cases WHERE id = ?", (case_id,))
        row = tuple(cur.fetchone())
        cur.execute(
            "SELECT seq, at, kind, record FROM rk_history WHERE case_id = ? AND seq >= ? ORDER BY seq",
            (case_id, start),
        )
        history = tuple(tuple(r) for r in cur.fetchall())
        cur.execute(
            "SELECT key, seq, name, args, at, available_at FROM rk_effects "
            "WHERE case_id = ? AND seq >= ? ORDER BY id",
            (case_id, start),
        )
        effects = tuple((int(r[0].rsplit("/", 1)[1]), *tuple(r)[1:]) for r in cur.fetchall())
    return Write(row, history, effects, before[14] if before is not None else None, row[14])


def _history_and_outbox(cur: RawCursor, case_id: str, w: Write) -> None:
    cur.executemany(INSERT_HISTORY, [(case_id, *h) for h in w.history])
    if w.effects:
        cur.executemany(
            INSERT_EFFECT,
            [
                (f"{case_id}/{seq}/{i}", case_id, seq, name, args, at, avail)
                for i, seq, name, args, at, avail in w.effects
            ],
        )


def raw_open(cur: RawCursor, case_id: str, w: Write, *, deadline: bool = True) -> None:
    cur.execute("SELECT 1 FROM rk_cases WHERE id = ?", (case_id,))
    if cur.fetchone() is not None:
        raise RuntimeError(f"case {case_id} exists")
    cur.execute(INSERT_CASE, (case_id, *w.row[1:]))
    _history_and_outbox(cur, case_id, w)
    if deadline and w.due_after is not None:
        cur.execute(INSERT_DEADLINE, (case_id, w.due_after))


def _update_case(cur: RawCursor, case_id: str, version: int, w: Write) -> bool:
    r = w.row  # CASE_COLUMNS: what the store's UPDATE sets, in its order
    cur.execute(UPDATE_CASE, (*r[3:10], version + 1, r[13], r[14], r[15], r[16], case_id, version))
    return cur.rowcount == 1


def raw_step(cur: RawCursor, case_id: str, w: Write) -> bool:
    cur.execute(lock_sql(cur.pg), (case_id,))
    row = cur.fetchone()
    if row is None or not _update_case(cur, case_id, int(row[10]), w):
        return False
    _history_and_outbox(cur, case_id, w)
    if w.due_after != w.due_before:
        if w.due_before is not None:
            cur.execute(DONE_BY_CASE, (w.row[13], case_id))
        if w.due_after is not None:
            cur.execute(INSERT_DEADLINE, (case_id, w.due_after))
    return True


def raw_fire_batch(cur: RawCursor, now: Any, w: Write) -> tuple[int, int]:
    """One batch: (deadlines claimed, cases updated)."""
    cur.execute(claim_sql(cur.pg), (now, FIRE_LIMIT))
    claimed = cur.fetchall()
    fired = 0
    for deadline_id, case_id, _due in claimed:
        cur.execute(lock_sql(cur.pg, skip_locked=True), (case_id,))
        row = cur.fetchone()
        if row is None:
            continue
        cur.execute(DONE_BY_ID, (now, deadline_id))
        if _update_case(cur, case_id, int(row[10]), w):
            _history_and_outbox(cur, case_id, w)
            fired += 1
    return len(claimed), fired


# -- templates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Templates:
    open_steps: Write  # opening a return_refund case
    steps: tuple[Write, ...]  # each of STEPS
    open_due: Write  # opening a refund_only case (its deadline due at FIRE_AT)
    fire: Write  # firing that deadline


def make_templates(backend: Backend, store: SqlStore) -> Templates:
    raw = Raw(backend)
    try:
        store.open("return_refund", FACTS, id="rk-bench-template-steps", at=T)
        open_steps = capture(raw, "rk-bench-template-steps", None)
        steps, before = [], open_steps.row
        for i, (event, by, data, state) in enumerate(STEPS):
            _, result = store.send(
                "rk-bench-template-steps", event, by, data, at=T + timedelta(hours=i + 1)
            )
            assert result.state == state, (result.state, state)
            w = capture(raw, "rk-bench-template-steps", before)
            steps.append(w)
            before = w.row
        store.open("refund_only", FACTS, id="rk-bench-template-due", at=T)
        open_due = capture(raw, "rk-bench-template-due", None)
        fired = store.fire_due(limit=FIRE_LIMIT, now=FIRE_AT)
        assert [f.case_id for f in fired] == ["rk-bench-template-due"], fired
        fire = capture(raw, "rk-bench-template-due", open_due.row)
        with raw.tx() as cur:  # the filler case that fired deadlines belong to
            raw_open(cur, FILLER_CASE, open_due, deadline=False)
    finally:
        raw.close()
    return Templates(open_steps, tuple(steps), open_due, fire)


# -- workers: one process each, driven through a pipe, in step by a barrier --------------------


def _open_one(store: SqlStore | None, raw: Raw, case_id: str, templates: Templates) -> None:
    """Open a return_refund case: with ``store``, or raw SQL (``store`` None)."""
    if store is not None:
        store.open("return_refund", FACTS, id=case_id, at=T)
    else:
        with raw.tx() as cur:
            raw_open(cur, case_id, templates.open_steps)


def _step_one(
    store: SqlStore | None, raw: Raw, i: int, case_id: str, templates: Templates
) -> str | None:
    """Send a case ``STEPS[i]``: with ``store``, or raw SQL; what went wrong, if anything."""
    event, by, data, state = STEPS[i]
    if store is not None:
        got = store.send(case_id, event, by, data, at=T + timedelta(hours=i + 1))[1].state
        return None if got == state else f"{case_id}: {event} -> {got}, expected {state}"
    with raw.tx() as cur:
        return None if raw_step(cur, case_id, templates.steps[i]) else f"{case_id}: raw {event}"


class Threads:
    """THREADS threads of a worker process, sharing its store (SQLite: group commit) or a
    store of their own without group commit (``nogroup``); raw SQL: a connection each, and
    the writes of the process queued on one lock, as the store's are without group commit."""

    def __init__(self, backend: Backend, store: SqlStore) -> None:
        self.pool = ThreadPoolExecutor(THREADS)
        self.stores: dict[str, SqlStore | None] = {"store": store, "raw": None}
        if backend.kind == "sqlite":
            nogroup = SQLiteStore(backend.where, group_commit=False)
            nogroup.register(rulekit.load(POLICY))
            self.stores["nogroup"] = nogroup
        self.backend = backend
        self.local = threading.local()
        self.lock = threading.Lock()
        self.raws: list[Raw] = []

    def _raw(self) -> Raw:
        raw: Raw | None = getattr(self.local, "raw", None)
        if raw is None:
            raw = self.local.raw = Raw(self.backend)
            self.raws.append(raw)
        return raw

    def run(self, kind: str, phase: int | None, ids: list[str], templates: Templates) -> list[str]:
        """Open (``phase`` None) or step ``ids``, spread over the threads; what went wrong."""
        store = self.stores[kind]

        def part(ids: list[str]) -> list[str]:
            raw = self._raw()
            out = []
            for case_id in ids:
                if store is None:
                    with self.lock:
                        problem = self._one(None, raw, phase, case_id, templates)
                else:
                    problem = self._one(store, raw, phase, case_id, templates)
                if problem:
                    out.append(problem)
            return out

        parts = [self.pool.submit(part, ids[t::THREADS]) for t in range(THREADS)]
        return [p for f in parts for p in f.result()]

    @staticmethod
    def _one(
        store: SqlStore | None, raw: Raw, phase: int | None, case_id: str, templates: Templates
    ) -> str | None:
        if phase is None:
            _open_one(store, raw, case_id, templates)
            return None
        return _step_one(store, raw, phase, case_id, templates)

    def close(self) -> None:
        self.pool.shutdown()
        for raw in self.raws:
            raw.close()
        nogroup = self.stores.get("nogroup")
        if nogroup is not None:
            nogroup.close()


def _worker(backend: Backend, templates: Templates, pipe: Any, barrier: Any) -> None:
    """Run commands from ``pipe``; each timed one between two waits on ``barrier``."""
    store = backend.store()
    store.register(rulekit.load(POLICY))
    raw = Raw(backend)
    fire_now = store.dialect.time_param(FIRE_AT)
    threads: Threads | None = None
    try:
        while True:
            command = pipe.recv()
            if command[0] == "stop":
                return
            problems: list[str] = []
            done = 0
            if command[0] == "open_due":  # untimed: cases whose deadline is due
                _, prefix, n = command
                with raw.tx() as cur:
                    for i in range(n):
                        raw_open(cur, f"{prefix}{i}", templates.open_due)
                pipe.send((n, problems))
                continue
            if command[0] == "commits":  # untimed: the group commit's (commits, writes)
                d = store.dialect
                pipe.send(((getattr(d, "commits", 0), getattr(d, "writes", 0)), problems))
                continue
            if command[0] == "threads" and threads is None:
                threads = Threads(backend, store)
            barrier.wait()
            if command[0] == "open":
                _, kind, ids = command
                for case_id in ids:
                    _open_one(store if kind == "store" else None, raw, case_id, templates)
                done = len(ids)
            elif command[0] == "step":
                _, kind, i, ids = command
                for case_id in ids:
                    problem = _step_one(
                        store if kind == "store" else None, raw, i, case_id, templates
                    )
                    if problem:
                        problems.append(problem)
                done = len(ids)
            elif command[0] == "threads":
                _, kind, phase, ids = command
                assert threads is not None
                problems.extend(threads.run(kind, phase, ids, templates))
                done = len(ids)
            elif command[0] == "fire":  # one batch, one transaction
                if command[1] == "store":
                    batch = store.fire_due(limit=FIRE_LIMIT, now=FIRE_AT)
                    for f in batch:
                        if f.result is None or f.result.state != "refunded":
                            problems.append(f"{f.case_id}: fired {f.result}")
                    done = len(batch)
                else:
                    with raw.tx() as cur:
                        claimed, done = raw_fire_batch(cur, fire_now, templates.fire)
                    if done != claimed:
                        problems.append(f"raw fire: {claimed} claimed, {done} updated")
            barrier.wait()
            pipe.send((done, problems))
    finally:
        if threads is not None:
            threads.close()
        raw.close()
        store.close()


class Workers:
    def __init__(self, backend: Backend, templates: Templates, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.barrier = ctx.Barrier(count + 1, timeout=900)
        self.pipes = []
        self.procs = []
        for _ in range(count):
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(backend, templates, theirs, self.barrier))
            p.start()
            self.pipes.append(mine)
            self.procs.append(p)

    def send(self, make: Callable[[int], tuple[Any, ...]]) -> None:
        for i, pipe in enumerate(self.pipes):
            pipe.send(make(i))

    def results(self, problems: list[str]) -> int:
        total = 0
        for pipe in self.pipes:
            count, found = pipe.recv()
            total += count
            problems.extend(found)
        return total

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(("stop",))
        for p in self.procs:
            p.join(timeout=60)


# -- measurements ------------------------------------------------------------------------------


@dataclass
class Pair:
    """The store's and raw SQL's work and time, summed over alternated chunks."""

    store_n: int = 0
    store_s: float = 0.0
    raw_n: int = 0
    raw_s: float = 0.0
    chunks: int = 0

    @property
    def store(self) -> float:
        return self.store_n / self.store_s if self.store_s else 0.0

    @property
    def raw(self) -> float:
        return self.raw_n / self.raw_s if self.raw_s else 0.0

    @property
    def x(self) -> float:
        return self.store / self.raw if self.raw else 0.0

    def add(self, kind: str, n: int, elapsed: float) -> None:
        if kind == "store":
            self.store_n += n
            self.store_s += elapsed
            self.chunks += 1
        else:
            self.raw_n += n
            self.raw_s += elapsed


@dataclass
class StepFigures:
    label: str
    procs: int
    steps: Pair = field(default_factory=Pair)
    opens: Pair = field(default_factory=Pair)
    fire: Pair = field(default_factory=Pair)


_passes = iter(range(10**9))


def _timed(
    w: Workers, make: Callable[[int], tuple[Any, ...]], problems: list[str]
) -> tuple[int, float]:
    """Every worker runs its command between two barriers: (work done, wall seconds)."""
    w.send(make)
    w.barrier.wait()
    start = time.perf_counter()
    w.barrier.wait()
    elapsed = time.perf_counter() - start
    return w.results(problems), elapsed


def _orders(j: int) -> tuple[str, str]:
    # the first of a pair may find the disk (or the other process) in another mood: take turns
    return ("raw", "store") if j % 2 == 0 else ("store", "raw")


def measure_steps(
    w: Workers, n: int, chunk: int, reps: int, figures: StepFigures, problems: list[str]
) -> None:
    """Open ``n`` cases a worker and take them through STEPS, store and raw alternating every
    ``chunk`` cases (each worker its own cases, every chunk between barriers)."""
    for _ in range(reps):
        tag = next(_passes)
        chunks = [range(i, min(i + chunk, n)) for i in range(0, n, chunk)]

        def ids(kind: str, worker: int, part: range, tag: int = tag) -> list[str]:
            return [f"{kind}{tag}-{worker}-{i}" for i in part]

        for phase in (None, *range(len(STEPS))):
            pair = figures.opens if phase is None else figures.steps
            for j, part in enumerate(chunks):
                for kind in _orders(j):
                    if phase is None:
                        make = lambda i, k=kind, p=part: ("open", k, ids(k, i, p))  # noqa: E731
                    else:
                        make = lambda i, k=kind, p=part, s=phase: ("step", k, s, ids(k, i, p))  # noqa: E731
                    pair.add(kind, *_timed(w, make, problems))


@dataclass
class ThreadFigures:
    """THREADS threads of one process: the store with and without group commit, each against
    raw SQL in the same threads (one transaction a step, queued on the process's lock)."""

    group: Pair = field(default_factory=Pair)
    nogroup: Pair = field(default_factory=Pair)
    #: the group commit's transactions and the writes they held, over the timed steps
    commits: int = 0
    writes: int = 0


def _same(command: tuple[Any, ...]) -> Callable[[int], tuple[Any, ...]]:
    """The same command for every worker."""
    return lambda _: command


def measure_threads(
    w: Workers, n: int, chunk: int, reps: int, figures: ThreadFigures, problems: list[str]
) -> None:
    """As :func:`measure_steps`, with every chunk spread over THREADS threads of one process
    and three sides taking turns: raw SQL, the store, the store without group commit."""
    kinds = ("raw", "store", "nogroup")

    def commits() -> tuple[int, int]:
        w.send(lambda i: ("commits",))
        pipe_said: tuple[int, int] = w.pipes[0].recv()[0]
        return pipe_said

    for _ in range(reps):
        tag = next(_passes)
        chunks = [range(i, min(i + chunk, n)) for i in range(0, n, chunk)]
        for phase in (None, *range(len(STEPS))):
            before = commits()
            for j, part in enumerate(chunks):
                for kind in kinds[j % 3 :] + kinds[: j % 3]:
                    command = ("threads", kind, phase, [f"t{kind}{tag}-{i}" for i in part])
                    done, elapsed = _timed(w, _same(command), problems)
                    if phase is None:
                        continue  # the cases opened: not what is measured here
                    if kind != "nogroup":
                        figures.group.add(kind, done, elapsed)
                    if kind != "store":
                        figures.nogroup.add("store" if kind == "nogroup" else "raw", done, elapsed)
            if phase is not None:
                after = commits()
                figures.commits += after[0] - before[0]
                figures.writes += after[1] - before[1]
    for name, pair in (("group commit", figures.group), ("no group commit", figures.nogroup)):
        if not (pair.store_n and pair.raw_n):  # a figure of 0 would read as a result
            problems.append(f"8 threads, {name}: no steps were counted (a benchmark bug)")


def measure_fire(w: Workers, m: int, reps: int, figures: StepFigures, problems: list[str]) -> None:
    """``m`` due deadlines for each of the store and raw SQL, fired a batch (a transaction) of
    each in turn by every worker, until none is due. Both drain the same due deadlines; raw SQL
    writes for a case what the store would."""
    per = m * 2 // len(w.pipes)
    for _ in range(reps):
        tag = next(_passes)
        w.send(lambda i, tag=tag: ("open_due", f"due{tag}-{i}-", per))
        w.results(problems)
        j, empty = 0, set()
        while len(empty) < 2:
            for kind in _orders(j):
                fired, elapsed = _timed(w, lambda i, k=kind: ("fire", k), problems)
                if fired == 0:
                    empty.add(kind)
                else:
                    figures.fire.add(kind, fired, elapsed)
            j += 1
        if figures.fire.store_n + figures.fire.raw_n != per * len(w.pipes) * (_ + 1):
            problems.append(
                f"fire: {figures.fire.store_n + figures.fire.raw_n:,} fired after {_ + 1} passes,"
                f" expected {per * len(w.pipes) * (_ + 1):,}"
            )


@dataclass
class Level:
    done_rows: int
    claims: float = 0.0  # claims of FIRE_LIMIT due deadlines per second
    fired: float = 0.0  # deadlines fired per second by fire_due
    plain_claims: float | None = None  # the same claim with a plain index on due


def _add_filler(raw: Raw, start: int, stop: int) -> None:
    """Fired deadlines ``start`` .. ``stop`` of the filler case, due (and done) before T."""
    with raw.tx() as cur:
        if cur.pg:
            cur.execute(
                "INSERT INTO rk_deadlines (case_id, due, done_at) "
                "SELECT ?, ts, ts FROM (SELECT ?::timestamptz - g * interval '1 second' AS ts "
                "FROM generate_series(?::bigint, ?::bigint) AS g) s",
                (FILLER_CASE, T, start + 1, stop),
            )
        else:
            base = int(T.timestamp())
            cur.execute(
                "WITH RECURSIVE g(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM g WHERE i < ?) "
                "INSERT INTO rk_deadlines (case_id, due, done_at) "
                "SELECT ?, ts, ts FROM (SELECT strftime('%Y-%m-%dT%H:%M:%S.000000+00:00', "
                "? - i, 'unixepoch') AS ts FROM g)",
                (start + 1, stop, FILLER_CASE, base),
            )
    # the statistics autovacuum (or the store's next ANALYZE) would have
    raw.conn.execute("ANALYZE rk_deadlines" if raw.kind == "postgresql" else "ANALYZE")


def _time_claims(cur: RawCursor, now: Any, count: int) -> float:
    """Seconds per claim of FIRE_LIMIT due deadlines (best of ``count``), in ``cur``'s transaction."""
    best = float("inf")
    sql = claim_sql(cur.pg)
    for _ in range(count):
        start = time.perf_counter()
        cur.execute(sql, (now, FIRE_LIMIT))
        got = len(cur.fetchall())
        best = min(best, time.perf_counter() - start)
        if got != FIRE_LIMIT:
            raise RuntimeError(f"a claim got {got} deadlines, expected {FIRE_LIMIT}")
    return best


def measure_flatness(
    backend: Backend,
    store: SqlStore,
    templates: Templates,
    levels: Sequence[int],
    m: int,
    claims: int,
    problems: list[str],
) -> list[Level]:
    raw = Raw(backend)
    now = store.dialect.time_param(FIRE_AT)
    out = []
    have = 0
    try:
        with raw.tx() as cur:  # a warm-up: first-use costs out of the first level's figure
            for i in range(FIRE_LIMIT):
                raw_open(cur, f"warm-{i}", templates.open_due)
        while store.fire_due(limit=FIRE_LIMIT, now=FIRE_AT):
            pass
        for level in levels:
            _progress(f"{backend.label}: {level:,} fired deadlines in rk_deadlines")
            _add_filler(raw, have, level)
            have = level
            tag = next(_passes)
            with raw.tx() as cur:
                for i in range(m):
                    raw_open(cur, f"flat{tag}-{i}", templates.open_due)
            lv = Level(level)
            # the claim alone: the transaction rolled back after each claim (the first few
            # untimed: psycopg prepares a statement on its fifth run)
            best = float("inf")
            for k in range(claims + 10):
                try:
                    with raw.tx() as cur:
                        once = _time_claims(cur, now, 1)
                        if k >= 10:
                            best = min(best, once)
                        raise _Rollback
                except _Rollback:
                    pass
            lv.claims = 1 / best
            if level == levels[-1] and level > 0:
                try:
                    with raw.tx() as cur:
                        cur.execute("DROP INDEX rk_deadlines_pending")
                        cur.execute("CREATE INDEX rk_bench_plain ON rk_deadlines (due)")
                        if cur.pg:
                            cur.execute("ANALYZE rk_deadlines")
                        lv.plain_claims = 1 / _time_claims(cur, now, max(3, claims // 10))
                        raise _Rollback
                except _Rollback:
                    pass
            fired, best = 0, float("inf")
            while True:  # the best batch: one commit's fsync swings too much to sum a few
                start = time.perf_counter()
                batch = store.fire_due(limit=FIRE_LIMIT, now=FIRE_AT)
                elapsed = time.perf_counter() - start
                if not batch:
                    break
                fired += len(batch)
                if len(batch) == FIRE_LIMIT:
                    best = min(best, elapsed)
            lv.fired = FIRE_LIMIT / best
            if fired != m:
                problems.append(f"{level:,} done rows: fire_due fired {fired:,}, expected {m:,}")
            out.append(lv)
    finally:
        raw.close()
    return out


class _Rollback(Exception):
    pass


# -- the table ---------------------------------------------------------------------------------

HEADER: Row_ = ("what", "figure", "baseline", "x base", "target", "turns")


def render(rows: Sequence[Row_ | str]) -> str:
    plain = [r for r in rows if not isinstance(r, str)]
    widths = [max(len(r[i]) for r in [HEADER, *plain]) for i in range(len(HEADER))]
    right = {1, 2, 3, 5}

    def line(r: Row_) -> str:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(HEADER), rule]
    for r in rows:
        if isinstance(r, str):
            if len(out) > 2:
                out.append(rule)
            out.append(r)
        else:
            out.append(line(r))
    return "\n".join(out)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def pair_row(what: str, p: Pair, unit: str, target: float | None = TARGET_X_RAW) -> Row_:
    goal = f">= {target:g}x raw: {verdict(p.x >= target)}" if target is not None else ""
    return (
        what,
        f"{rate(p.store)} {unit}",
        f"{rate(p.raw)} {unit}",
        ratio(p.x),
        goal,
        str(p.chunks),
    )


def scale_rows(results: Sequence[StepFigures]) -> list[Row_]:
    """Each process count's rates against one process's, and where adding processes stops
    paying (less than 10% more than the count before)."""
    rows: list[Row_] = []
    one = results[0]
    figures: list[tuple[str, str, Callable[[StepFigures], float]]] = [
        ("store.send", "steps/s", lambda f: f.steps.store),
        ("raw steps", "steps/s", lambda f: f.steps.raw),
        ("fire_due", "fired/s", lambda f: f.fire.store),
        ("raw fire", "fired/s", lambda f: f.fire.raw),
    ]
    for what, unit, get in figures:
        before: float | None = None
        for f in results:
            figure = get(f)
            stop = before is not None and figure < before * 1.1
            rows.append(
                (
                    f"{f.label}: {what}",
                    f"{rate(figure)} {unit}",
                    f"{rate(get(one))} {unit}",
                    ratio(figure / get(one)) if get(one) else "-",
                    "stops scaling here" if stop else "",
                    "",
                )
            )
            before = figure
    return rows


def flat_rows(label: str, levels: Sequence[Level]) -> list[Row_]:
    rows: list[Row_] = []
    zero = levels[0]
    for lv in levels:
        claim_x = lv.claims / zero.claims
        fire_x = lv.fired / zero.fired
        last = lv is levels[-1] and lv is not zero
        goal = (
            f"flat within {TARGET_FLAT:.0%}: {verdict(abs(1 - claim_x) <= TARGET_FLAT)}"
            if last
            else ""
        )
        rows.append(
            (
                f"{label}: {lv.done_rows:,} fired: claim {FIRE_LIMIT}",
                f"{rate(lv.claims)} claims/s",
                f"{rate(zero.claims)} claims/s",
                ratio(claim_x),
                goal,
                "",
            )
        )
        rows.append(
            (
                f"{label}: {lv.done_rows:,} fired: fire_due",
                f"{rate(lv.fired)} fired/s",
                f"{rate(zero.fired)} fired/s",
                ratio(fire_x),
                f"flat within {TARGET_FLAT:.0%}: {verdict(abs(1 - fire_x) <= TARGET_FLAT)}"
                if last
                else "",
                "",
            )
        )
        if lv.plain_claims is not None:
            rows.append(
                (
                    f"{label}: {lv.done_rows:,} fired: claim, plain index on due",
                    f"{rate(lv.plain_claims)} claims/s",
                    f"{rate(lv.claims)} claims/s",
                    ratio(lv.plain_claims / lv.claims),
                    "contrast: baseline is the partial index",
                    "",
                )
            )
    return rows


# -- main --------------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.stores",
        description="The durable stores (SQLite, PostgreSQL) against raw SQL doing the same writes.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 200 cases a pass, 500 deadlines, claim levels up to 100,000, 2 repetitions",
    )
    p.add_argument(
        "--postgres",
        metavar="DSN",
        default=os.environ.get("RULEKIT_BENCH_POSTGRES"),
        help="also measure PostgreSQL there (default: $RULEKIT_BENCH_POSTGRES; a schema of the"
        " benchmark's own is created and dropped)",
    )
    p.add_argument(
        "--cases", type=int, help="cases a process takes through the steps a pass (default 1,000)"
    )
    p.add_argument("--deadlines", type=int, help="due deadlines fired a pass (default 2,000)")
    p.add_argument(
        "--levels",
        help="fired deadlines in the table, comma-separated (default 0,10000,100000,1000000)",
    )
    p.add_argument("--reps", type=int, help="passes, each alternating store and raw (default 3)")
    p.add_argument(
        "--chunk",
        type=int,
        default=25,
        help="cases a process opens or steps before the other side takes its turn (default 25)",
    )
    p.add_argument(
        "--sqlite-dir", help="where the SQLite file goes (default: a temporary directory)"
    )
    # `./dev bench ARGS` passes the same arguments to every benchmark module: the options of
    # the others are accepted here and ignored.
    for other in (
        "--records",
        "--conditions",
        "--min-time",
        "--budget",
        "--seed",
        "--events",
        "--sizes",
        "--k",
    ):
        p.add_argument(other, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick
    args.cases = args.cases if args.cases is not None else (200 if quick else 1000)
    args.deadlines = args.deadlines if args.deadlines is not None else (500 if quick else 2000)
    args.reps = args.reps if args.reps is not None else (2 if quick else 3)
    if args.levels is None:
        args.levels = "0,10000,100000" if quick else "0,10000,100000,1000000"
    try:
        args.levels = sorted({int(x) for x in args.levels.split(",")} | {0})
    except ValueError:
        p.error("--levels takes numbers separated by commas")
    if min(args.cases, args.deadlines, args.reps) < 1 or args.deadlines < 2 * FIRE_LIMIT:
        p.error("--cases and --reps must be positive, --deadlines at least 200")
    return args


@contextmanager
def pg_schema(dsn: str) -> Iterator[str]:
    """A DSN whose search_path is a fresh schema of the benchmark's own, dropped at the end."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    schema = f"rk_bench_{os.getpid()}"
    options = conninfo_to_dict(dsn).get("options", "")
    ours = make_conninfo(dsn, options=f"{options} -csearch_path={schema}".strip())
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield ours
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def measure_backend(
    backend: Backend, args: argparse.Namespace, problems: list[str], rows: list[Row_ | str]
) -> None:
    policy = rulekit.load(POLICY)
    store = backend.store(migrate=True)
    try:
        store.register(policy)
        templates = make_templates(backend, store)
        process_counts = PG_PROCESSES if backend.kind == "postgresql" else (1,)
        results = []
        threaded: ThreadFigures | None = None
        if backend.kind == "sqlite":
            threaded = ThreadFigures()
            workers = Workers(backend, templates, 1)
            try:
                _progress(f"{backend.label}: steps from {THREADS} threads, group commit or not")
                chunk = args.chunk * 4  # a few cases a thread a turn
                measure_threads(workers, args.cases, chunk, args.reps, threaded, problems)
            finally:
                workers.close()
        for procs in process_counts:
            label = f"{backend.label}" + (f", {procs} processes" if procs > 1 else "")
            figures = StepFigures(label, procs)
            workers = Workers(backend, templates, procs)
            try:
                _progress(f"{label}: steps, {args.cases:,} cases a process a pass")
                measure_steps(workers, args.cases, args.chunk, args.reps, figures, problems)
                _progress(f"{label}: firing {args.deadlines:,} due deadlines a pass, each way")
                measure_fire(workers, args.deadlines, args.reps, figures, problems)
            finally:
                workers.close()
            results.append(figures)
        levels = measure_flatness(
            backend,
            store,
            templates,
            args.levels,
            args.deadlines,
            100 if args.quick else 300,
            problems,
        )
    finally:
        store.close()
    rows.append(
        f"1. steps/s: return_refund cases through {len(STEPS)} events, one transaction a step"
    )
    steps_target = TARGETS.get((backend.label, "steps"), TARGET_X_RAW)
    for f in results:
        rows.append(pair_row(f"{f.label}: store.send", f.steps, "steps/s", steps_target))
    for f in results:
        rows.append(pair_row(f"{f.label}: store.open", f.opens, "cases/s", target=None))
    if threaded is not None:
        per = threaded.writes / threaded.commits if threaded.commits else 0.0
        rows.append(
            f"1b. steps/s from {THREADS} threads of one process (raw SQL: a transaction a step,"
            f" queued on one lock); group commit: {per:.1f} steps a commit"
        )
        rows.append(
            pair_row(f"{backend.label}, {THREADS} threads: group commit", threaded.group, "steps/s")
        )
        rows.append(
            pair_row(
                f"{backend.label}, {THREADS} threads: no group commit",
                threaded.nogroup,
                "steps/s",
                target=None,
            )
        )
        rows.append(
            (
                f"{backend.label}, {THREADS} threads: group commit vs none",
                f"{rate(threaded.group.store)} steps/s",
                f"{rate(threaded.nogroup.store)} steps/s",
                ratio(threaded.group.store / threaded.nogroup.store)
                if threaded.nogroup.store
                else "-",
                "baseline: the store without group commit",
                "",
            )
        )
    rows.append(
        f"2. deadlines fired/s: {args.deadlines:,} due, fire_due(limit={FIRE_LIMIT}) vs raw batches"
    )
    fire_target = TARGETS.get((backend.label, "fire"), TARGET_X_RAW)
    for f in results:
        rows.append(pair_row(f"{f.label}: fire_due", f.fire, "fired/s", fire_target))
    rows.append(
        f"3. claim-rate flatness: claims of {FIRE_LIMIT} due deadlines (of {args.deadlines:,})"
        " and fire_due, by fired deadlines in rk_deadlines"
    )
    rows.extend(flat_rows(backend.label, levels))
    if len(results) > 1:
        rows.append(
            f"4. scale-out: {', '.join(str(f.procs) for f in results)} processes on one database"
            f" ({os.cpu_count()} CPUs), each figure against the same figure with 1 process"
        )
        rows.extend(scale_rows(results))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    print("rulekit store benchmark: steps and deadlines on SQLite and PostgreSQL against raw SQL")
    print(f"machine: {machine_facts()}")
    print(
        f"figures: {args.reps} passes, store and raw SQL taking turns every {args.chunk} cases"
        f" (or batch); {args.cases:,} cases a process a pass, {args.deadlines:,} due deadlines"
        " a pass for each"
    )
    print(flush=True)
    problems: list[str] = []
    rows: list[Row_ | str] = []
    with tempfile.TemporaryDirectory(dir=args.sqlite_dir) as tmp:
        measure_backend(Backend("sqlite", str(Path(tmp) / "bench.db")), args, problems, rows)
    if args.postgres:
        with pg_schema(args.postgres) as dsn:
            measure_backend(Backend("postgresql", dsn), args, problems, rows)
    print(render(rows))
    print(f"(at the end: {load()}; compare with the machine line above)")
    print()
    notes = [
        "How to read: x base is the store's rate over the baseline's, both from this run. In 1"
        f" and 2 the store and raw SQL take turns, {args.chunk} cases (or one batch of deadlines)"
        " at a time in every process, so both see the same disk and the same load (a commit's"
        " fsync swings tenfold here); a figure is all its work over all its turns' wall time"
        " (turns: how many the store had). In 1 and 2 the"
        " baseline is raw SQL on the same driver, connection settings and transaction count,"
        " writing the rows the store wrote for a template case: what the store adds is the"
        " engine, encoding and its own bookkeeping. In 3 it is the same figure with no fired"
        " deadlines in the table: near 1.00x all the way down means the claim does not slow as"
        " fired deadlines pile up. Targets are printed, never asserted.",
        "steps: each case is opened (store.open, or a raw insert of the case, history and"
        " deadline rows) and then sent approve, submit_waybill and confirm_receipt (the last"
        " emits refund: an outbox row), all at fixed times (at=...), step by step over all the"
        " cases of a process. A raw step: lock and read the case row (FOR UPDATE on PostgreSQL;"
        " BEGIN IMMEDIATE on SQLite), UPDATE ... WHERE id = ? AND version = ?, INSERT the"
        " history and outbox rows, mark the old deadline done and insert the new one. With"
        " several processes, each has its own cases and the rate is all their steps over the"
        " wall time from the first start to the last finish.",
        "deadlines: refund_only cases whose 48h review has passed (inserted raw, untimed);"
        f" store: fire_due(limit={FIRE_LIMIT}) until nothing is due; raw: a transaction per"
        f" batch of {FIRE_LIMIT} claimed (FOR UPDATE SKIP LOCKED on PostgreSQL), each case"
        " locked (SKIP LOCKED), its deadline marked done, the guarded case update, history"
        " and outbox rows.",
        "flatness: the fired deadlines are inserted already done (generate_series on"
        " PostgreSQL, a recursive CTE on SQLite) with due times before the pending ones, then"
        " ANALYZE; a claim is the store's claim query alone in a transaction rolled back (best"
        " of its runs); fire_due fires the pending ones, and its figure is its best batch of"
        f" {FIRE_LIMIT}. The plain-index row drops the partial"
        " index and indexes due for every row, inside a transaction that is rolled back.",
    ]
    if not args.postgres:
        notes.append(
            "PostgreSQL: not measured; pass --postgres DSN (or set RULEKIT_BENCH_POSTGRES)"
        )
    notes.append("HTTP requests per second (rulekit serve): python -m benchmarks.http.")
    print("Notes:")
    for text in notes:
        print(textwrap.fill(text, width=100, initial_indent="- ", subsequent_indent="  "))
    return exit_status(problems)


if __name__ == "__main__":
    sys.exit(main())
