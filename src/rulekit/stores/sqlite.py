"""The SQLite store: the embedded default, no server to install.

WAL journal and ``synchronous=FULL`` by default: a step the store returned
from survives a power cut. Write transactions start with ``BEGIN IMMEDIATE``,
which takes the database's write lock up front, so steps on a case (and
everything else that writes) are serialized across threads and processes;
readers go on meanwhile. Several processes may share one database file on
one host (a service and a worker, say); for several hosts, use PostgreSQL.

Group commit: the writes of a process's threads queue for one writer, which
runs those waiting in one transaction, each in a savepoint of its own (so a
refused step, or one that fails, is undone alone), and commits them with one
fsync. Each caller is answered only once that commit is durable, so nothing
acknowledged is lost on a crash; under concurrent load the fsync, most of a
step's time, is paid once per group instead of once per step.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from rulekit.stores import codec
from rulekit.stores.base import SqlStore, StoreError, reporting_damage
from rulekit.stores.migrations import Migration, check_schema, migrations

UTC = UTC
#: SQLite's primary result codes for a damaged database file: SQLITE_CORRUPT, SQLITE_NOTADB
_DAMAGED = (11, 26)
T = TypeVar("T")


@dataclass(eq=False)
class _Write:
    """One write transaction's work, queued for the group commit, and how it ended."""

    work: Callable[[sqlite3.Cursor], Any]
    #: held while its thread waits (None: its thread led at once), released when the write
    #: is answered, or when its thread is to lead the next group (``lead``)
    waiting: threading.Lock | None = None
    lead: bool = False
    result: Any = None
    error: BaseException | None = None

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class SQLiteDialect:
    name = "sqlite"
    locking = ""  # a write transaction holds the whole database (BEGIN IMMEDIATE)
    skip_locked = ""

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 30.0,
        create: bool = True,
        group_commit: bool = True,
    ) -> None:
        """``create``: make the file (and its folder) when there is none yet.
        ``group_commit``: commit the writes of concurrent threads together (the module's
        docstring); without it, each write is a transaction and an fsync of its own."""
        self.path = path
        if path != ":memory:":
            if not create and not Path(path).exists():
                raise StoreError(
                    "schema_behind",
                    f"there is no store at {path} yet: create it with "
                    f"`rulekit db upgrade --store {path}`",
                )
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(
                    "store_unreachable", f"cannot open the SQLite store at {path}: {e.strerror}"
                ) from None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._writer = threading.Lock()
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self.group_commit = group_commit
        #: the group commit's queue, and whether a thread is leading a group now
        self._queue: list[_Write] = []
        self._queue_lock = threading.Lock()
        self._leading = False
        #: transactions the group commit committed, and the writes they held
        self.commits = 0
        self.writes = 0
        if path == ":memory:":
            # One shared connection: each new one would be a database of its own.
            self._shared: sqlite3.Connection | None = self._connect()
            self._shared_lock = threading.RLock()
        else:
            self._shared = None

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,  # transactions are begun and ended here, explicitly
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as e:
            raise StoreError(
                "store_unreachable", f"cannot open the SQLite store at {self.path}: {e}"
            ) from None
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        with self._guard:
            self._connections.append(conn)
        return conn

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def transaction(self, write: bool) -> Iterator[sqlite3.Cursor]:
        if self._shared is not None:
            with self._shared_lock:
                yield from self._transaction(self._shared, write)
        else:
            yield from self._transaction(self._connection(), write)

    def _transaction(self, conn: sqlite3.Connection, write: bool) -> Iterator[sqlite3.Cursor]:
        if not write:
            yield from self._run(conn, "BEGIN")
            return
        # Writers of this process queue here rather than in SQLite's busy handler, which
        # polls with sleeps of up to 100 ms; other processes still wait in the handler.
        with self._writer:
            yield from self._run(conn, "BEGIN IMMEDIATE")

    @staticmethod
    def _run(conn: sqlite3.Connection, begin: str) -> Iterator[sqlite3.Cursor]:
        cur = conn.cursor()
        cur.execute(begin)
        try:
            yield cur
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            cur.close()

    #: the most writes one group holds (its callers wait for all of them)
    group_limit = 64

    def write(self, work: Callable[[sqlite3.Cursor], T]) -> T:
        """Run ``work`` in a write transaction, with those of other threads waiting then
        (each in a savepoint), and return its result once the transaction is committed."""
        if not self.group_commit:
            with self.transaction(True) as cur:
                return work(cur)
        w = _Write(work)
        with self._queue_lock:
            self._queue.append(w)
            if self._leading:
                w.waiting = threading.Lock()
                w.waiting.acquire()
            else:
                self._leading = True
        if w.waiting is not None:
            w.waiting.acquire()  # until a leader releases it
        if w.waiting is None or w.lead:
            self._lead()
        result: T = w.outcome()
        return result

    @property
    def waiting(self) -> int:
        """Writes queued for the group commit and not yet begun."""
        with self._queue_lock:
            return len(self._queue)

    def _take(self, limit: int) -> list[_Write]:
        with self._queue_lock:
            taken, self._queue[:limit] = self._queue[:limit], []
        return taken

    def _lead(self) -> None:
        """Run one group: this thread's write, then what queued before or while it ran (up to
        :attr:`group_limit`), in one transaction; then hand the lead to the next waiting."""
        group = self._take(1)
        try:
            with self.transaction(True) as cur:
                # The first write needs no savepoint: if it raises, the transaction holds
                # nothing else, and rolls back whole.
                group[0].result = group[0].work(cur)
                batch = self._take(self.group_limit - 1)
                while batch:
                    group += batch
                    for w in batch:
                        self._apply(cur, w)
                    batch = self._take(self.group_limit - len(group))
            with self._queue_lock:
                self.commits += 1
                self.writes += len(group)
        except BaseException as e:
            # The first write raised; or BEGIN or COMMIT failed, or SQLite rolled the
            # transaction back: nothing of the group is kept, and each caller meets the error
            # (and retries it if it may)
            for w in group:
                w.error = e
        finally:
            with self._queue_lock:
                if self._queue:  # only writes that wait: this one's led, and is in the group
                    nxt = self._queue[0]
                    nxt.lead = True
                    assert nxt.waiting is not None
                    nxt.waiting.release()
                else:
                    self._leading = False
            for w in group:
                if w.waiting is not None and not w.lead:
                    w.waiting.release()

    @staticmethod
    def _apply(cur: sqlite3.Cursor, w: _Write) -> None:
        """A write after the first in its savepoint: undone alone when it raises."""
        cur.execute("SAVEPOINT rk_write")
        try:
            w.result = w.work(cur)
        except Exception as e:
            if not cur.connection.in_transaction:
                raise  # SQLite rolled the whole transaction back (I/O error, disk full)
            cur.execute("ROLLBACK TO rk_write")
            cur.execute("RELEASE rk_write")
            w.error = e
        else:
            cur.execute("RELEASE rk_write")

    def retryable(self, error: Exception) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)

    def damaged(self, error: Exception) -> bool:
        # SQLITE_CORRUPT ("database disk image is malformed") and SQLITE_NOTADB
        return (
            isinstance(error, sqlite3.DatabaseError)
            and getattr(error, "sqlite_errorcode", 0) & 0xFF in _DAMAGED
        )

    def now(self, cur: Any) -> datetime:
        # The database is this host's file: its clock is this host's clock.
        return datetime.now(UTC)

    def time_param(self, t: datetime) -> str:
        # fixed width, in UTC, so that the text compares as the times do (due < ?, ORDER BY)
        if t.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        if t.tzinfo is not UTC:
            t = t.astimezone(UTC)
        text = codec.isoformat(t)
        return text if t.microsecond else f"{text[:19]}.000000{text[19:]}"

    def time_value(self, v: Any) -> datetime:
        return datetime.fromisoformat(v)

    def schema_version(self) -> int:
        with self.transaction(False) as cur:
            cur.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'rk_schema'"
            )
            if cur.fetchone() is None:
                return 0
            cur.execute("SELECT COALESCE(MAX(version), 0) FROM rk_schema")
            return int(cur.fetchone()[0])

    def migrate(self) -> list[Migration]:
        applied = []
        conn = self._shared if self._shared is not None else self._connection()
        conn.execute(
            "CREATE TABLE IF NOT EXISTS rk_schema "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for m in migrations(self.name):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute(
                    "SELECT 1 FROM rk_schema WHERE version = ?", (m.version,)
                ).fetchone():
                    conn.rollback()
                    continue
                for statement in _statements(m.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO rk_schema VALUES (?, ?, ?)",
                    (m.version, m.name, self.time_param(datetime.now(UTC))),
                )
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            applied.append(m)
        return applied

    def close(self) -> None:
        with self._guard:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


def _statements(script: str) -> Sequence[str]:
    """The statements of a migration script (``;`` ends one; there are no triggers)."""
    text = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


class SQLiteStore(SqlStore):
    """A store in one SQLite file (``:memory:`` for a throwaway one)."""

    def __init__(
        self,
        path: str | Path,
        *,
        migrate: bool = False,
        synchronous: str = "FULL",
        group_commit: bool = True,
    ) -> None:
        """Open the store at ``path``; ``migrate``: bring its schema up to date first.

        Without ``migrate``, a store whose schema is behind this version of rulekit is an
        error that says to run ``rulekit db upgrade``. ``group_commit``: see the module.
        """
        dialect = SQLiteDialect(
            str(path), synchronous=synchronous, create=migrate, group_commit=group_commit
        )
        super().__init__(dialect)
        with reporting_damage(dialect):
            if migrate:
                dialect.migrate()
            check_schema(dialect, str(path))
