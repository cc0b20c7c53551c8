"""Durable stores: cases, their history, deadlines and effects in a database.

One implementation of every rule (:class:`SqlStore`); the SQLite and
PostgreSQL stores only say how to talk to their database (a :class:`Dialect`).
Each step runs in one transaction:

1. lock the case (PostgreSQL: its row, ``FOR UPDATE``; SQLite: the database,
   ``BEGIN IMMEDIATE``), so concurrent steps on a case are serialized;
2. a repeated idempotency key (of the same caller) returns the first step's result and
   changes nothing; the same caller's key with another request is ``idempotency_key_reused``;
3. rebuild the case from its stored snapshot (state, facts, pending deadlines, when it entered its state)
   and run the step with the engine of the policy version the case is pinned to;
4. write the new snapshot, the step's history records, its next deadline and
   the effects it emitted (the outbox) -- and commit them together.

A refused step rolls back: nothing of it is written. Times default to the
database's clock, never a worker's.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, Self, TypeVar

import orjson

from rulekit.core.errors import EvaluationError, StepRefused
from rulekit.core.source import Source
from rulekit.policy import ir
from rulekit.policy.artifact import content_hash, from_json, to_json
from rulekit.runtime.engine import Engine
from rulekit.runtime.model import Case, Cause, ClockState, Effect, Record, StepResult

# The contract's values and errors, also importable from here as they were before it existed.
from rulekit.runtime.store import CaseNotFound as CaseNotFound
from rulekit.runtime.store import Fired as Fired
from rulekit.runtime.store import Key, StepsOnCases, Store, current_version, effect_not_found
from rulekit.runtime.store import OutboxEffect as OutboxEffect
from rulekit.runtime.store import StoredCase as StoredCase
from rulekit.runtime.store import StoreError as StoreError
from rulekit.stores import codec

log = logging.getLogger("rulekit.stores")
T = TypeVar("T")


def damaged(error: Exception) -> StoreError:
    """The error a damaged database is reported as (and logged: an operator must act)."""
    log.error("the store is damaged: %s", error)
    return StoreError(
        "store_damaged",
        "the store's database is damaged and cannot be read: restore it from a backup "
        "(the log says what the database reported)",
    )


@contextmanager
def reporting_damage(dialect: Dialect) -> Iterator[None]:
    """Errors that say the database is damaged, as :func:`damaged` (outside :meth:`SqlStore._run`:
    opening and migrating a store)."""
    try:
        yield
    except Exception as e:
        if dialect.damaged(e):
            raise damaged(e) from e
        raise


class Cursor(Protocol):
    """The slice of a DB-API cursor a store uses (SQL written with ``?`` placeholders)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class CommitUnknown(Exception):
    """The connection broke while committing: the transaction may or may not have committed."""


class Dialect(Protocol):
    """What differs between databases."""

    name: str

    def transaction(self, write: bool) -> AbstractContextManager[Cursor]:
        """One transaction (``write``: one that will write; SQLite takes its lock up front).

        Raises :class:`CommitUnknown` when the commit itself failed on a broken connection.
        """
        ...

    def write(self, work: Callable[[Cursor], T]) -> T:
        """``work`` in a write transaction, committed: its result. SQLite commits the writes
        of concurrent threads together (group commit), each in a savepoint of its own.

        Raises as :meth:`transaction` does, and what ``work`` raised (nothing of it kept).
        """
        ...

    def retryable(self, error: Exception) -> bool:
        """Whether running the whole transaction again may succeed (a deadlock, a lost connection)."""
        ...

    def damaged(self, error: Exception) -> bool:
        """Whether ``error`` says the database's files are damaged (reported as ``store_damaged``)."""
        ...

    #: what locks the rows a write transaction reads: " FOR UPDATE" (PostgreSQL); "" where
    #: the write transaction holds the whole database already (SQLite)
    locking: str
    #: what lets several workers claim at once: " SKIP LOCKED" (PostgreSQL), or ""
    skip_locked: str

    def now(self, cur: Cursor) -> datetime: ...
    def time_param(self, t: datetime) -> Any: ...
    def time_value(self, v: Any) -> datetime: ...
    def close(self) -> None: ...


#: the columns of rk_cases, in the order a case row is read
CASE_COLUMNS = (
    "id, policy_hash, workflow, state, final, outcome, facts, deadlines, case_time, records, "
    "version, parties, opened_at, updated_at, next_due, clocks, entered_at"
)
EFFECT_COLUMNS = "id, key, case_id, seq, name, args, at, status, attempts, last_error, policy"


@dataclass
class _Loaded:
    """A case read for a step: the engine's case and what its row said."""

    case: Case
    engine: Engine
    #: the hash of the policy version the case is pinned to
    policy: str
    version: int
    next_due: datetime | None
    #: the facts as read, and their stored text: facts change copy-on-write, so while
    #: ``case.facts`` is still this object the text is still theirs (not encoded again)
    facts: Any = None
    facts_text: str = ""
    #: the same for the pending deadlines (a list replaced, never changed in place)
    deadlines: Any = None
    deadlines_text: str = ""
    #: the same for the clocks (a map replaced, never changed in place; text None: none)
    clocks: Any = None
    clocks_text: str | None = None


@dataclass
class _Writes:
    """The rows one or more steps write, flushed together: one statement per kind of row
    (a worker's batch of deadlines costs a handful of round trips, not a handful per case)."""

    cases: list[tuple[Any, ...]] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)
    effects: list[tuple[Any, ...]] = field(default_factory=list)
    keys: list[tuple[Any, ...]] = field(default_factory=list)
    #: (time, case id): every pending deadline of the case is done (it moved on)
    moved: list[tuple[Any, ...]] = field(default_factory=list)
    #: (time, error, deadline id): one claimed deadline is done
    done: list[tuple[Any, ...]] = field(default_factory=list)
    #: (case id, due): the case's next deadline
    deadlines: list[tuple[Any, ...]] = field(default_factory=list)
    #: times as the database takes them, each formatted once for all the rows
    times: dict[datetime, Any] = field(default_factory=dict)

    def time(self, t: datetime, param: Callable[[datetime], Any]) -> Any:
        """``param(t)``, the dialect's :meth:`Dialect.time_param`, once per time (equal times
        are the same instant, which the database is given alike)."""
        value = self.times.get(t)
        if value is None:
            value = self.times[t] = param(t)
        return value

    def flush(self, cur: Cursor) -> None:
        for sql, rows in (
            (
                "UPDATE rk_cases SET state = ?, final = ?, outcome = ?, facts = ?, deadlines = ?, "
                "case_time = ?, records = ?, version = ?, updated_at = ?, next_due = ?, clocks = ?, "
                "entered_at = ? WHERE id = ? AND version = ?",
                self.cases,
            ),
            (
                "INSERT INTO rk_history (case_id, seq, at, kind, record) VALUES (?, ?, ?, ?, ?)",
                self.history,
            ),
            (
                "INSERT INTO rk_effects (key, case_id, seq, name, args, at, status, attempts, "
                "available_at, policy) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                self.effects,
            ),
            (
                "INSERT INTO rk_keys (case_id, caller, key, fingerprint, first_seq, last_seq, "
                "state, final) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self.keys,
            ),
            ("UPDATE rk_deadlines SET done_at = ?, error = ? WHERE id = ?", self.done),
            (
                "UPDATE rk_deadlines SET done_at = ? WHERE case_id = ? AND done_at IS NULL",
                self.moved,
            ),
            ("INSERT INTO rk_deadlines (case_id, due) VALUES (?, ?)", self.deadlines),
        ):
            if len(rows) == 1:
                cur.execute(sql, rows[0])
            elif rows:
                cur.executemany(sql, rows)


class SqlStore(StepsOnCases):
    """Cases of any number of policy versions, kept in a database (see the module docstring):
    a :class:`rulekit.runtime.store.Store`."""

    #: deliveries of an effect before it moves to the dead letters
    max_attempts = 10
    #: times a transaction is run again after a deadlock or a lost connection
    retries = 5

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._engines: dict[str, Engine] = {}
        self._latest: dict[str, str] = {}  # policy name -> hash registered last in this process
        self._lock = threading.Lock()

    # -- life cycle ------------------------------------------------------------------------
    def close(self) -> None:
        self.dialect.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, work: Callable[[Cursor], T], *, write: bool = False, safe: bool = True) -> T:
        """Run ``work`` in one transaction, again after a deadlock or a lost connection.

        ``safe``: running it twice cannot apply it twice (a read, or a step with an
        idempotency key). A commit whose outcome is unknown is retried only then.
        """
        attempt = 0
        while True:
            try:
                if write:
                    return self.dialect.write(work)
                with self.dialect.transaction(False) as cur:
                    return work(cur)
            except CommitUnknown as e:
                if not safe or attempt >= self.retries:
                    raise StoreError(
                        "commit_unknown",
                        "the database connection broke while the step was committing: it may or "
                        "may not have been applied (send it again with an idempotency key to be sure)",
                    ) from e
            except Exception as e:
                if self.dialect.damaged(e):
                    raise damaged(e) from e
                if not self.dialect.retryable(e):
                    raise
                if attempt >= self.retries:
                    # still locked or unreachable after the retries: the store's own error,
                    # so no caller needs to know the database driver's exceptions
                    log.warning("store unavailable: %s", e)
                    raise StoreError(
                        "store_unavailable", "the store is unavailable: try again later"
                    ) from e
            attempt += 1
            time.sleep(min(0.05 * 2**attempt, 2.0))

    def now(self) -> datetime:
        """The database's clock: what every step without ``at=`` is timed by."""
        return self._run(self.dialect.now)

    def check(self) -> datetime:
        """A cheap proof the store can be read (a service's health check): in one
        transaction, the schema version, one policy and one case row; the database's clock.

        Not a full integrity check: damage in pages these reads do not touch shows up
        (as ``store_damaged``) on the requests that touch them.
        """

        def work(cur: Cursor) -> datetime:
            cur.execute("SELECT MAX(version) FROM rk_schema")
            cur.fetchone()
            for table in ("rk_policies", "rk_cases"):
                cur.execute(f"SELECT * FROM {table} LIMIT 1")
                cur.fetchone()
            return self.dialect.now(cur)

        return self._run(work)

    # -- policies --------------------------------------------------------------------------
    def register(self, policy: ir.Policy) -> str:
        """Keep ``policy`` (its compiled artifact) so cases can be pinned to it; returns its hash.

        The version registered last under a name is the one :meth:`open` uses.
        """
        artifact = to_json(policy)
        digest = policy.hash or content_hash(artifact)

        def work(cur: Cursor) -> None:
            cur.execute(
                "INSERT INTO rk_policies (hash, name, version, artifact, registered_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING",
                (
                    digest,
                    policy.name,
                    policy.version,
                    codec.dumps(artifact),
                    self.dialect.time_param(self.dialect.now(cur)),
                ),
            )

        self._run(work, write=True)
        with self._lock:
            self._engines.setdefault(digest, Engine(policy))
            self._latest[policy.name] = digest
        return digest

    def policies(self) -> list[dict[str, Any]]:
        """Every policy version kept, newest first, with how many open cases each has."""

        def work(cur: Cursor) -> list[Any]:
            cur.execute(
                "SELECT p.hash, p.name, p.version, p.registered_at, "
                "(SELECT COUNT(*) FROM rk_cases c WHERE c.policy_hash = p.hash AND NOT c.final) "
                "FROM rk_policies p ORDER BY p.registered_at DESC, p.hash"
            )
            return cur.fetchall()

        return [
            {
                "hash": r[0],
                "name": r[1],
                "version": r[2],
                "registered_at": self.dialect.time_value(r[3]),
                "open_cases": int(r[4]),
                "current": self._latest.get(r[1]) == r[0],
            }
            for r in self._run(work)
        ]

    def engine(self, digest: str) -> Engine:
        """The engine of one policy version (read back from the store if not registered here)."""
        engine = self._engines.get(digest)
        if engine is not None:
            return engine
        return self._run(lambda cur: self._engine(cur, digest))

    def _engine(self, cur: Cursor, digest: str) -> Engine:
        """:meth:`engine` inside a transaction already begun (never a second one: on SQLite
        that cannot begin, on PostgreSQL it would hold two pooled connections at once)."""
        engine = self._engines.get(digest)
        if engine is not None:
            return engine
        cur.execute("SELECT artifact FROM rk_policies WHERE hash = ?", (digest,))
        row = cur.fetchone()
        if row is None:
            raise StoreError("unknown_policy", f"no policy version {digest!r} in the store")
        policy = from_json(codec.loads(row[0]), Source("", f"<store:{digest[:12]}>"))
        with self._lock:
            return self._engines.setdefault(digest, Engine(policy))

    def current(self, name: str | None = None, *, any_version: bool = False) -> str:
        """The hash new cases of policy ``name`` are pinned to (None: the only policy).

        ``name`` is a policy's name, or the hash of a version registered by this process
        as current; ``any_version``: or the hash of any version the store keeps. What was
        read before never matters (versions read back for old cases are not current).
        """
        return current_version(self._latest, name, self._stored_version if any_version else None)

    def _stored_version(self, digest: str) -> bool:
        def work(cur: Cursor) -> bool:
            cur.execute("SELECT 1 FROM rk_policies WHERE hash = ?", (digest,))
            return cur.fetchone() is not None

        return self._run(work)

    # -- cases -----------------------------------------------------------------------------
    def open(
        self,
        workflow: str,
        facts: Mapping[str, Any],
        *,
        policy: str | None = None,
        id: str | None = None,
        parties: Mapping[str, str] | None = None,
        key: str | None = None,
        at: datetime | None = None,
        caller: str | None = None,
        fingerprint: str | None = None,
        any_version: bool = True,
        by: str | None = None,
    ) -> tuple[StoredCase, StepResult]:
        """Open a case of ``workflow`` on ``policy`` (a name or a hash; None: the only one).

        ``by``: the actor supplying ``facts`` when it is not the integration; it may supply
        only the facts the policy declares ``by`` it (:meth:`Engine.open`, fact_not_allowed).

        ``parties`` says who the case belongs to, per actor (authorization reads it).
        Opening an ``id`` again with the same ``key`` returns the case as it was opened
        (``repeated``); with another key, or none, it is ``case_exists``. A ``key``
        without an ``id`` is looked up among the keyed opens of the same ``caller``: the
        case it opened (``repeated``), or a new case with a random id. ``caller`` and
        ``fingerprint``: see :class:`Key` (None: the Python API's single trusted caller,
        no request to compare). ``any_version``: ``policy`` may name any stored version
        (:meth:`current`); a service passes False for callers that are not admins.
        """
        digest = self.current(policy, any_version=any_version)
        engine = self.engine(digest)
        keyed = Key.of(key, caller, fingerprint)
        if workflow not in engine.policy.workflows:
            known = ", ".join(engine.policy.workflows)
            raise StoreError(
                "unknown_workflow", f"no workflow {workflow!r} in {engine.policy.name} ({known})"
            )

        def exists(cur: Cursor, case_id: str) -> tuple[StoredCase, StepResult]:
            repeated = self._repeated(cur, case_id, keyed) if keyed is not None else None
            if repeated is None:
                raise StoreError("case_exists", f"case {case_id!r} exists already")
            return self._read(cur, case_id), repeated

        def opened_with_key(cur: Cursor, keyed: Key) -> str | None:
            """The case this caller's key opened before (refused if another request)."""
            cur.execute(
                "SELECT case_id, fingerprint FROM rk_open_keys WHERE caller = ? AND key = ?",
                (keyed.caller, keyed.key),
            )
            row = cur.fetchone()
            if row is None:
                return None
            keyed.check(row[1])
            return str(row[0])

        def work(cur: Cursor) -> tuple[StoredCase, StepResult]:
            case_id = id
            if case_id is None and keyed is not None:
                before = opened_with_key(cur, keyed)
                if before is not None:
                    return exists(cur, before)
                case_id = uuid.uuid4().hex
                cur.execute(
                    "INSERT INTO rk_open_keys (caller, key, case_id, fingerprint) "
                    # a concurrent open with the same key may have inserted it since the
                    # SELECT above: PostgreSQL waits for that one to commit, then inserts nothing
                    "VALUES (?, ?, ?, ?) ON CONFLICT (caller, key) DO NOTHING RETURNING case_id",
                    (keyed.caller, keyed.key, case_id, keyed.fingerprint),
                )
                if cur.fetchone() is None:
                    return exists(cur, opened_with_key(cur, keyed) or case_id)
            elif case_id is None:
                case_id = uuid.uuid4().hex
            cur.execute("SELECT 1 FROM rk_cases WHERE id = ?", (case_id,))
            if cur.fetchone() is not None:
                return exists(cur, case_id)
            t = at if at is not None else self.dialect.now(cur)
            case = engine.open(workflow, facts, at=t, id=case_id, by=by)
            records = tuple(case.history)
            result = StepResult(records, case.state.name, case.state.final, tuple(case.effects))
            stamp = self.dialect.time_param(t)
            cur.execute(
                f"INSERT INTO rk_cases ({CASE_COLUMNS}) "
                # A concurrent open of the same id may have inserted it since the SELECT
                # above: PostgreSQL waits for that one to commit, then inserts nothing.
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING RETURNING id",
                (
                    case_id,
                    digest,
                    workflow,
                    case.state.name,
                    case.state.final,
                    case.outcome,
                    codec.dumps(case.facts),
                    _pending_json(Engine.pending(case)),
                    self.dialect.time_param(case.now),
                    len(records),
                    1,
                    codec.dumps(dict(parties or {})),
                    stamp,
                    stamp,
                    self._due(case.next_deadline),
                    _clocks_json(case),
                    codec.isoformat(case.entered),
                ),
            )
            if cur.fetchone() is None:
                return exists(cur, case_id)
            if parties:
                cur.executemany(
                    "INSERT INTO rk_parties (case_id, actor, principal) VALUES (?, ?, ?)",
                    [(case_id, a, p) for a, p in parties.items()],
                )
            writes = _Writes()
            self._collect_step(
                writes, case_id, digest, records, result, keyed, None, case.next_deadline, t
            )
            writes.flush(cur)
            return self._read(cur, case_id), result

        return self._run(work, write=True, safe=key is not None)

    def _step(
        self,
        case_id: str,
        key: Key | None,
        at: datetime | None,
        run: Callable[[Engine, Case, datetime], StepResult],
        only_if: Callable[[Mapping[str, str]], bool] | None = None,
    ) -> tuple[StoredCase, StepResult]:
        def work(cur: Cursor) -> tuple[StoredCase, StepResult]:
            row = self._lock_case(cur, case_id)
            if row is None or (only_if is not None and not only_if(codec.loads(row[11]))):
                raise CaseNotFound(case_id)
            if key is not None:
                repeated = self._repeated(cur, case_id, key)
                if repeated is not None:
                    return self._stored(row), repeated
            loaded = self._load(row, cur)
            t = at if at is not None else max(self.dialect.now(cur), loaded.case.now)
            result = run(loaded.engine, loaded.case, t)
            writes = _Writes()
            self._collect(writes, loaded, result, key, t)
            writes.flush(cur)
            return self._stepped(row, loaded, t), result

        return self._run(work, write=True, safe=key is not None)

    def migrate_case(self, case_id: str, to: str) -> Record | None:
        """Move one open case to the policy version ``to`` (a hash), as that version's
        `migrate from` block says, in a transaction of its own; returns the `migrated`
        record, or None when there is nothing to do (the case is on ``to`` already, or
        closed): running it again is a no-op, so a migration stopped half-way is resumed
        by running it again.

        The case's row is locked as a step locks it: a step on the case waits for the
        migration or the migration for the step, never half of one and half of the other.
        Raises :class:`StepRefused` (``cannot_migrate``) when ``to`` has no block for the
        case's version or the case does not fit it."""

        def work(cur: Cursor) -> Record | None:
            row = self._lock_case(cur, case_id)
            if row is None:
                raise CaseNotFound(case_id)
            if row[1] == to or bool(row[4]):
                return None
            loaded = self._load(row, cur)
            engine = self._engine(cur, to)
            t = max(self.dialect.now(cur), loaded.case.now)
            case = engine.migrate(loaded.case, loaded.engine.policy.version or "", t)
            tp = self.dialect.time_param
            due = case.next_deadline
            cur.execute(
                "UPDATE rk_cases SET policy_hash = ?, state = ?, final = ?, outcome = ?, "
                "facts = ?, deadlines = ?, case_time = ?, records = ?, version = ?, "
                "updated_at = ?, next_due = ?, clocks = ?, entered_at = ? "
                "WHERE id = ? AND version = ?",
                (
                    to,
                    case.state.name,
                    case.state.final,
                    case.outcome,
                    codec.dumps(case.facts),
                    _pending_json(Engine.pending(case)),
                    tp(case.now),
                    case.base + len(case.history),
                    loaded.version + 1,
                    tp(t),
                    tp(due) if due is not None else None,
                    _clocks_json(case),
                    codec.isoformat(case.entered),
                    case_id,
                    loaded.version,
                ),
            )
            writes = _Writes()
            self._collect_step(
                writes, case_id, to, tuple(case.history), None, None, loaded.next_due, due, t
            )
            writes.flush(cur)
            return case.history[-1]

        return self._run(work, write=True)

    def _stepped(self, row: Any, loaded: _Loaded, t: datetime) -> StoredCase:
        """The case as a step at ``t`` on the case of ``row`` left it: what :meth:`get` would
        read back (times as the database gives them), without reading it again."""
        case = loaded.case
        assert case.id is not None
        tp, tv = self.dialect.time_param, self.dialect.time_value
        due = case.next_deadline
        return StoredCase(
            id=case.id,
            policy=row[1],
            workflow=row[2],
            state=case.state.name,
            final=case.state.final,
            outcome=case.outcome,
            facts=case.facts,  # replaced by a step, never changed in place: the case's own
            next_deadline=tv(tp(due)) if due is not None else None,
            version=loaded.version + 1,
            parties=codec.loads(row[11]),
            opened_at=tv(row[12]),
            updated_at=tv(tp(t)),
            records=case.base + len(case.history),
        )

    def fire_due(self, *, limit: int = 100, now: datetime | None = None) -> list[Fired]:
        """Fire the deadlines due before ``now`` (default: the database's clock), ``limit`` at most.

        Any number of workers may run this at once: each due deadline is claimed by one
        of them and fires once, recorded at its due time however late the worker is. A
        deadline of a case that moved on since it was set is a no-op.
        """

        def work(cur: Cursor) -> list[Fired]:
            t = now if now is not None else self.dialect.now(cur)
            writes = _Writes()
            stamp = writes.time(t, self.dialect.time_param)
            claimed = self._claim_deadlines(cur, stamp, limit)
            if not claimed:
                return []
            # The cases, locked in one statement; one a step holds is skipped: that step
            # fires what is due itself.
            rows = {r[0]: r for r in self._lock_cases(cur, [c for _, c, _ in claimed])}
            out: list[Fired] = []
            for deadline_id, case_id, due_value in claimed:
                row = rows.pop(case_id, None)
                if row is None:
                    continue
                loaded = self._load(row, cur)
                due = self.dialect.time_value(due_value)
                if loaded.case.next_deadline != due:
                    writes.done.append((stamp, None, deadline_id))
                    out.append(Fired(case_id, due, None))
                    continue
                try:
                    result = loaded.engine.advance(loaded.case, max(t, loaded.case.now))
                except (EvaluationError, StepRefused) as e:
                    # The engine wrote nothing yet (it writes nothing at all: the batch's rows
                    # are written below): the case stays as it was, the deadline is done with
                    # its error, and the rest of the batch goes on.
                    writes.done.append((stamp, str(e), deadline_id))
                    log.error("case %s: the deadline due %s failed: %s", case_id, due, e)
                    out.append(Fired(case_id, due, None, error=str(e)))
                    continue
                if loaded.next_due is None or loaded.case.next_deadline == loaded.next_due:
                    # the step leaves the case's deadline rows alone: mark this one done
                    # (otherwise every pending one of the case is marked done, this one too)
                    writes.done.append((stamp, None, deadline_id))
                self._collect(writes, loaded, result, None, t)
                out.append(Fired(case_id, due, result))
            writes.flush(cur)
            return out

        return self._run(work, write=True)

    def get(self, case_id: str) -> StoredCase:
        return self._run(lambda cur: self._read(cur, case_id))

    def history(self, case_id: str, *, after: int = -1, limit: int | None = None) -> list[Record]:
        """The case's history records (``after``: only those with a greater ``seq``)."""

        def work(cur: Cursor) -> list[Record]:
            stored = self._read(cur, case_id)
            end = stored.records if limit is None else min(stored.records, after + 1 + limit)
            return self._records(cur, case_id, after + 1, end)

        return self._run(work)

    def allowed(self, case_id: str, *, at: datetime | None = None) -> dict[str, tuple[str, ...]]:
        """The events the case would accept now, each with the actors that may send it."""

        def work(cur: Cursor) -> tuple[Any, datetime]:
            return self._row(cur, case_id), at if at is not None else self.dialect.now(cur)

        row, t = self._run(work)
        loaded = self._load(row)
        return loaded.engine.allowed(loaded.case, max(t, loaded.case.now))

    def cases(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        party: tuple[str, str] | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[StoredCase]:
        """Cases by workflow and state, in id order (``after``: the last id of the page before).

        ``party`` (actor, principal): only the cases that principal is a party to.
        """
        conditions: list[tuple[str, Sequence[Any]]] = [
            (f"{column} = ?", (value,))
            for column, value in (("workflow", workflow), ("state", state))
            if value is not None
        ]
        if after is not None:
            conditions.append(("id > ?", (after,)))
        if party is not None:
            conditions.append(
                ("id IN (SELECT case_id FROM rk_parties WHERE actor = ? AND principal = ?)", party)
            )
        rows = self._select(f"SELECT {CASE_COLUMNS} FROM rk_cases", conditions, limit)
        return [self._stored(r) for r in rows]

    def _select(
        self, select: str, conditions: list[tuple[str, Sequence[Any]]], limit: int
    ) -> list[Any]:
        """``select`` narrowed by every condition (SQL and its parameters), in id order."""
        sql = select
        if conditions:
            sql += " WHERE " + " AND ".join(c for c, _ in conditions)
        params = [p for _, ps in conditions for p in ps]

        def work(cur: Cursor) -> list[Any]:
            cur.execute(sql + " ORDER BY id LIMIT ?", [*params, limit])
            return cur.fetchall()

        return self._run(work)

    def count(self) -> dict[tuple[str, str], int]:
        """How many cases sit in each (workflow, state): for metrics."""

        def work(cur: Cursor) -> list[Any]:
            cur.execute("SELECT workflow, state, COUNT(*) FROM rk_cases GROUP BY workflow, state")
            return cur.fetchall()

        return {(w, s): int(n) for w, s, n in self._run(work)}

    def pending(self) -> dict[str, int]:
        """Deadlines waiting and effects by status: for metrics."""

        def work(cur: Cursor) -> dict[str, int]:
            cur.execute("SELECT COUNT(*) FROM rk_deadlines WHERE done_at IS NULL")
            out = {"deadlines": int(cur.fetchone()[0])}
            cur.execute("SELECT status, COUNT(*) FROM rk_effects GROUP BY status")
            out.update({f"effects_{s}": int(n) for s, n in cur.fetchall()})
            return out

        return self._run(work)

    # -- effects (the outbox) ----------------------------------------------------------------
    def claim(
        self,
        *,
        limit: int = 100,
        lease: timedelta = timedelta(seconds=60),
        names: Collection[str] | None = None,
    ) -> list[OutboxEffect]:
        """Claim effects to carry out; each stays claimed for ``lease``.

        An effect not acknowledged within its lease is claimed again: delivery is at
        least once, so consumers deduplicate on ``key``. After :attr:`max_attempts`
        deliveries it moves to the dead letters, and blocks nothing else. ``names``: only
        effects of those names (a relay claims what it has routes for).
        """
        only = sorted(set(names)) if names is not None else None

        def work(cur: Cursor) -> list[Any]:
            return self._claim_effects(cur, self.dialect.now(cur), limit, lease, only)

        if only is not None and not only:
            return []
        return [self._effect(r) for r in self._run(work, write=True)]

    def ack(self, key: str) -> OutboxEffect:
        """Mark an effect carried out (acknowledging it again changes nothing)."""

        def work(cur: Cursor) -> OutboxEffect:
            cur.execute(
                "UPDATE rk_effects SET status = 'done', done_at = ? "
                "WHERE key = ? AND status = 'pending'",
                (self.dialect.time_param(self.dialect.now(cur)), key),
            )
            return self._effect_by_key(cur, key)

        return self._run(work, write=True)

    def ack_many(self, keys: Collection[str]) -> int:
        """:meth:`ack` each of ``keys`` in one transaction (a relay acknowledges what its
        deliveries confirmed together); returns how many were pending until now. Unknown
        keys are skipped."""
        wanted = sorted(set(keys))
        if not wanted:
            return 0

        def work(cur: Cursor) -> int:
            stamp = self.dialect.time_param(self.dialect.now(cur))
            done = 0
            for at in range(0, len(wanted), 500):  # within every database's parameter limit
                chunk = wanted[at : at + 500]
                cur.execute(
                    "UPDATE rk_effects SET status = 'done', done_at = ? "
                    f"WHERE key IN ({', '.join('?' * len(chunk))}) AND status = 'pending' "
                    "RETURNING id",
                    (stamp, *chunk),
                )
                done += len(cur.fetchall())
            return done

        return self._run(work, write=True)

    def fail(
        self,
        key: str,
        error: str,
        *,
        retry_in: timedelta = timedelta(0),
        dead: bool = False,
        attempt: int | None = None,
    ) -> OutboxEffect:
        """Report a failed delivery: tried again after ``retry_in``, dead after
        :attr:`max_attempts` (at once with ``dead``: the receiver refused it for good).
        ``attempt``: the delivery this reports on (the claim's ``attempts``); if the effect
        has been claimed again since (its lease ran out), the report is stale and changes
        nothing, so it cannot cut short the lease of the delivery now in flight."""
        fence = " AND attempts = ?" if attempt is not None else ""

        def work(cur: Cursor) -> OutboxEffect:
            now = self.dialect.now(cur)
            cur.execute(
                "UPDATE rk_effects SET last_error = ?, available_at = ?, "
                "status = CASE WHEN attempts >= ? OR ? THEN 'dead' ELSE status END "
                f"WHERE key = ? AND status = 'pending'{fence}",
                (
                    error,
                    self.dialect.time_param(now + retry_in),
                    self.max_attempts,
                    dead,
                    key,
                    *((attempt,) if attempt is not None else ()),
                ),
            )
            return self._effect_by_key(cur, key)

        return self._run(work, write=True)

    def effects(
        self,
        *,
        status: str | None = None,
        case_id: str | None = None,
        limit: int = 100,
        after: int | None = None,
    ) -> list[OutboxEffect]:
        """Effects in the outbox, oldest first (the dead letters: ``status="dead"``);
        ``after``: only those whose ``id`` is greater (the next page)."""
        conditions: list[tuple[str, Sequence[Any]]] = [
            (f"{column} = ?", (value,))
            for column, value in (("status", status), ("case_id", case_id))
            if value is not None
        ]
        if after is not None:
            conditions.append(("id > ?", (after,)))
        rows = self._select(f"SELECT {EFFECT_COLUMNS} FROM rk_effects", conditions, limit)
        return [self._effect(r) for r in rows]

    def retry_dead(self, key: str) -> OutboxEffect:
        """Put a dead-lettered effect back in the outbox for another round of deliveries."""

        def work(cur: Cursor) -> OutboxEffect:
            cur.execute(
                "UPDATE rk_effects SET status = 'pending', attempts = 0, available_at = ? "
                "WHERE key = ? AND status = 'dead'",
                (self.dialect.time_param(self.dialect.now(cur)), key),
            )
            return self._effect_by_key(cur, key)

        return self._run(work, write=True)

    # -- rows <-> cases ------------------------------------------------------------------------
    def _lock_case(self, cur: Cursor, case_id: str) -> Any:
        """The case's row, locked until the transaction ends; None if there is no such case."""
        cur.execute(
            f"SELECT {CASE_COLUMNS} FROM rk_cases WHERE id = ?{self.dialect.locking}", (case_id,)
        )
        return cur.fetchone()

    def _lock_cases(self, cur: Cursor, case_ids: list[str]) -> list[Any]:
        """The rows of those cases no other transaction holds, locked until this one ends."""
        marks = ", ".join("?" * len(case_ids))
        cur.execute(
            f"SELECT {CASE_COLUMNS} FROM rk_cases WHERE id IN ({marks})"
            f"{self.dialect.locking}{self.dialect.skip_locked}",
            case_ids,
        )
        return list(cur.fetchall())

    def _claim_deadlines(self, cur: Cursor, now: Any, limit: int) -> list[tuple[int, str, Any]]:
        """Up to ``limit`` pending deadlines due before ``now``, earliest first, claimed."""
        cur.execute(
            "SELECT id, case_id, due FROM rk_deadlines WHERE done_at IS NULL AND due < ? "
            f"ORDER BY due LIMIT ?{self.dialect.locking}{self.dialect.skip_locked}",
            (now, limit),
        )
        return [tuple(r) for r in cur.fetchall()]

    def _claim_effects(
        self, cur: Cursor, now: datetime, limit: int, lease: timedelta, names: list[str] | None
    ) -> list[Any]:
        """Rows of up to ``limit`` claimable effects (of ``names``), now hidden for ``lease``.

        The claimable effects are found through the pending index and locked; those
        delivered :attr:`max_attempts` times already (their last lease ran out) move to the
        dead letters instead. Only the rows found are touched: a claim costs the same with
        a backlog of a million effects as with none."""
        tp = self.dialect.time_param
        named = f" AND name IN ({', '.join('?' * len(names))})" if names is not None else ""
        while True:
            cur.execute(
                "SELECT id, attempts FROM rk_effects WHERE status = 'pending' AND available_at <= ?"
                f"{named} ORDER BY available_at, id LIMIT ?"
                f"{self.dialect.locking}{self.dialect.skip_locked}",
                (tp(now), *(names or ()), limit),
            )
            found = cur.fetchall()
            dead = [r[0] for r in found if r[1] >= self.max_attempts]
            live = [r[0] for r in found if r[1] < self.max_attempts]
            if dead:
                cur.execute(
                    "UPDATE rk_effects SET status = 'dead', "
                    "last_error = COALESCE(last_error, 'not acknowledged within its lease') "
                    f"WHERE id IN ({', '.join('?' * len(dead))})",
                    dead,
                )
            if live or not dead:
                break  # (only dead ones found: look again past them)
        if not live:
            return []
        cur.execute(
            "UPDATE rk_effects SET attempts = attempts + 1, available_at = ? "
            f"WHERE id IN ({', '.join('?' * len(live))}) RETURNING {EFFECT_COLUMNS}",
            (tp(now + lease), *live),
        )
        return sorted(cur.fetchall(), key=lambda r: r[0])

    def _row(self, cur: Cursor, case_id: str) -> Any:
        cur.execute(f"SELECT {CASE_COLUMNS} FROM rk_cases WHERE id = ?", (case_id,))
        row = cur.fetchone()
        if row is None:
            raise CaseNotFound(case_id)
        return row

    def _read(self, cur: Cursor, case_id: str) -> StoredCase:
        return self._stored(self._row(cur, case_id))

    def _stored(self, row: Any) -> StoredCase:
        tv = self.dialect.time_value
        return StoredCase(
            id=row[0],
            policy=row[1],
            workflow=row[2],
            state=row[3],
            final=bool(row[4]),
            outcome=row[5],
            facts=codec.loads(row[6]),
            next_deadline=tv(row[14]) if row[14] is not None else None,
            version=int(row[10]),
            parties=codec.loads(row[11]),
            opened_at=tv(row[12]),
            updated_at=tv(row[13]),
            records=int(row[9]),
        )

    def _load(self, row: Any, cur: Cursor | None = None) -> _Loaded:
        engine = self.engine(row[1]) if cur is None else self._engine(cur, row[1])
        facts = codec.loads(row[6])
        case = engine.resume(
            row[2],
            row[3],
            facts,
            _pending_from_json(row[7]),
            self.dialect.time_value(row[8]),
            id=row[0],
            base=int(row[9]),
            clocks=_clocks_from_json(row[15]),
            entered=datetime.fromisoformat(row[16]) if row[16] is not None else None,
        )
        due = self.dialect.time_value(row[14]) if row[14] is not None else None
        return _Loaded(
            case,
            engine,
            row[1],
            int(row[10]),
            due,
            facts,
            row[6],
            case.deadlines,
            row[7],
            case.clocks,
            row[15],
        )

    def _collect(
        self, writes: _Writes, loaded: _Loaded, result: StepResult, key: Key | None, t: datetime
    ) -> None:
        """What a step on a loaded case writes: its new row, then as for :meth:`_collect_step`."""
        case = loaded.case
        assert case.id is not None
        tp = self.dialect.time_param
        due = case.next_deadline
        writes.cases.append(
            (
                case.state.name,
                case.state.final,
                case.outcome,
                loaded.facts_text if case.facts is loaded.facts else codec.dumps(case.facts),
                loaded.deadlines_text
                if case.deadlines is loaded.deadlines
                else _pending_json(Engine.pending(case)),
                writes.time(case.now, tp),
                case.base + len(case.history),
                loaded.version + 1,
                writes.time(t, tp),
                writes.time(due, tp) if due is not None else None,
                loaded.clocks_text if case.clocks is loaded.clocks else _clocks_json(case),
                codec.isoformat(case.entered),
                case.id,
                loaded.version,
            )
        )
        self._collect_step(
            writes,
            case.id,
            loaded.policy,
            tuple(case.history),
            result,
            key,
            loaded.next_due,
            case.next_deadline,
            t,
        )

    def _collect_step(
        self,
        writes: _Writes,
        case_id: str,
        policy: str,
        records: tuple[Record, ...],
        result: StepResult | None,
        key: Key | None,
        due_before: datetime | None,
        due_after: datetime | None,
        t: datetime,
    ) -> None:
        """The step's history, outbox (each effect with ``policy``, the version that emitted
        it), idempotency key and next deadline."""
        tp, time = self.dialect.time_param, writes.time
        writes.history.extend(
            (case_id, r.seq, time(r.at, tp), r.kind, _record_json(r)) for r in records
        )
        stamp = time(t, tp)
        writes.effects.extend(
            (
                f"{case_id}/{e.seq}/{i}",  # stable: the case, the record, its place in it
                case_id,
                e.seq,
                e.name,
                codec.dumps(dict(e.args)),
                time(e.at, tp),
                stamp,
                policy,
            )
            for r in records
            for i, e in enumerate(r.effects)
        )
        if key is not None:
            assert result is not None, "a keyed step has a result"
            writes.keys.append(
                (
                    case_id,
                    key.caller,
                    key.key,
                    key.fingerprint,
                    records[0].seq if records else -1,
                    records[-1].seq if records else -2,
                    result.state,
                    result.final,
                )
            )
        if due_after != due_before:
            if due_before is not None:
                writes.moved.append((stamp, case_id))
            if due_after is not None:
                writes.deadlines.append((case_id, time(due_after, tp)))

    def _repeated(self, cur: Cursor, case_id: str, key: Key) -> StepResult | None:
        """The first result of the step ``key`` was used with (None: a new key), or
        ``idempotency_key_reused`` when this request is not the one it was used with."""
        cur.execute(
            "SELECT first_seq, last_seq, state, final, fingerprint FROM rk_keys "
            "WHERE case_id = ? AND caller = ? AND key = ?",
            (case_id, key.caller, key.key),
        )
        row = cur.fetchone()
        if row is None:
            return None
        key.check(row[4])
        records = tuple(self._records(cur, case_id, int(row[0]), int(row[1]) + 1))
        effects = tuple(e for r in records for e in r.effects)
        return StepResult(records, row[2], bool(row[3]), effects, repeated=True)

    def _records(self, cur: Cursor, case_id: str, start: int, end: int) -> list[Record]:
        cur.execute(
            "SELECT record FROM rk_history WHERE case_id = ? AND seq >= ? AND seq < ? ORDER BY seq",
            (case_id, start, end),
        )
        return [_record_from_json(r[0]) for r in cur.fetchall()]

    def _effect(self, row: Any) -> OutboxEffect:
        return OutboxEffect(
            id=int(row[0]),
            key=row[1],
            case_id=row[2],
            seq=int(row[3]),
            name=row[4],
            args=codec.loads(row[5]),
            at=self.dialect.time_value(row[6]),
            status=row[7],
            attempts=int(row[8]),
            last_error=row[9],
            policy=row[10],
        )

    def _effect_by_key(self, cur: Cursor, key: str) -> OutboxEffect:
        cur.execute(f"SELECT {EFFECT_COLUMNS} FROM rk_effects WHERE key = ?", (key,))
        row = cur.fetchone()
        if row is None:
            raise effect_not_found(key)
        return self._effect(row)

    def _due(self, due: datetime | None) -> Any:
        return self.dialect.time_param(due) if due is not None else None


#: mypy checks here that SqlStore keeps the contract (and MemoryStore, in runtime/memory.py)
_contract: type[Store] = SqlStore


def _record_json(r: Record) -> str:
    """A record as stored: what it has (fields it leaves empty are left out)."""
    d: dict[str, Any] = {"seq": r.seq, "at": r.at, "kind": r.kind}
    # each field by name, not in a loop of getattr: a batch of deadlines writes thousands
    if r.source is not None:
        d["source"] = r.source
    if r.target is not None:
        d["target"] = r.target
    if r.event is not None:
        d["event"] = r.event
    if r.actor is not None:
        d["actor"] = r.actor
    if r.key is not None:
        d["key"] = r.key
    if r.cite is not None:
        d["cite"] = r.cite
    if r.rule is not None:
        d["rule"] = r.rule
    if r.workflow is not None:
        d["workflow"] = r.workflow
    if r.data is not None:
        d["data"] = dict(r.data)
    if r.cause is not None and r.cause.guard is not None:
        d["guard"] = r.cause.guard
        d["reads"] = [[k, v] for k, v in r.cause.reads]
    if r.effects:
        d["effects"] = [[e.name, dict(e.args)] for e in r.effects]
    if r.sets:
        d["sets"] = [[k, v] for k, v in r.sets]
    return codec.dumps(d)


def _pending_json(pending: list[tuple[datetime, int, datetime]]) -> str:
    """Pending deadlines (:meth:`Engine.pending`) as stored: the text ``codec.dumps``
    writes for them, written out directly (each step writes it)."""
    parts = []
    for due, order, entered in pending:
        if due.tzinfo is None or entered.tzinfo is None:
            return codec.dumps(pending)  # refused there
        parts.append(
            f'[{{"$rk":"time","v":"{codec.isoformat(due)}"}},{order:d},'
            f'{{"$rk":"time","v":"{codec.isoformat(entered)}"}}]'
        )
    return f"[{','.join(parts)}]"


def _pending_from_json(text: str) -> list[tuple[datetime, int, datetime]]:
    """:func:`_pending_json` read back (each step reads it): the shape it always has read
    directly, anything else through the codec."""
    out = []
    try:
        for d, o, e in orjson.loads(text):
            if type(o) is not int or len(d) != 2 or len(e) != 2:
                break
            if d["$rk"] != "time" or e["$rk"] != "time":
                break
            out.append((datetime.fromisoformat(d["v"]), o, datetime.fromisoformat(e["v"])))
        else:
            return out
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        pass
    return [(due, int(order), entered) for due, order, entered in codec.loads(text)]


def _clocks_json(case: Case) -> str | None:
    """A case's clocks as stored (None: it has none)."""
    if not case.clocks:
        return None
    return codec.dumps({name: c.to_data() for name, c in case.clocks.items()})


def _clocks_from_json(text: str | None) -> dict[str, ClockState] | None:
    """:func:`_clocks_json` read back (None: a case without clocks, or one stored before them)."""
    if text is None:
        return None
    return {name: ClockState.from_data(c) for name, c in codec.loads(text).items()}


def _record_from_json(text: str) -> Record:
    d = codec.loads(text)
    seq, at = d["seq"], d["at"]
    return Record(
        seq,
        at,
        d["kind"],
        source=d.get("source"),
        target=d.get("target"),
        event=d.get("event"),
        actor=d.get("actor"),
        data=d.get("data"),
        key=d.get("key"),
        cite=d.get("cite"),
        cause=Cause.of(d.get("guard"), tuple((k, v) for k, v in d.get("reads", ()))),
        effects=tuple(Effect(name, args, at, seq) for name, args in d.get("effects", ())),
        rule=d.get("rule"),
        workflow=d.get("workflow"),
        sets=tuple((k, v) for k, v in d.get("sets", ())),
    )
