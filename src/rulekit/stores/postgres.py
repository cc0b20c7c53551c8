"""The PostgreSQL store: several service and worker processes, on several hosts, one database.

psycopg 3 with its connection pool. Steps lock their case's row
(``SELECT ... FOR UPDATE``), so concurrent steps on one case are serialized
and steps on different cases run in parallel. Workers claim due deadlines
with ``FOR UPDATE SKIP LOCKED`` through a partial index on pending deadlines
only, so any number of them share the work and the claim stays as fast once
millions of deadlines have fired. Every time is the database's clock.

A deadlock, a serialization failure or a lost connection (a restarted
server) runs the transaction again on a fresh connection; a commit lost with
its connection is retried only when that cannot apply a step twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, TypeVar

from rulekit.stores.base import CommitUnknown, SqlStore, StoreError, reporting_damage
from rulekit.stores.migrations import Migration, check_schema, migrations

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError:  # pragma: no cover - depends on the installation
    psycopg = None  # type: ignore[assignment]

UTC = UTC
T = TypeVar("T")
#: an arbitrary constant: the advisory lock migrations take so two upgrades never interleave
_MIGRATION_LOCK = 0x726B6D67


class _Cursor:
    """A psycopg cursor that takes the ``?`` placeholders the store's SQL is written with."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self._cur.execute(sql.replace("?", "%s"), params, prepare=True)

    def executemany(self, sql: str, params: Any) -> Any:
        return self._cur.executemany(sql.replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cur.fetchall())


class PostgresDialect:
    name = "postgresql"
    locking = " FOR UPDATE"
    skip_locked = " SKIP LOCKED"

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        if psycopg is None:
            raise StoreError(
                "driver_missing",
                "the PostgreSQL store needs psycopg: pip install 'rulekit[postgresql]'",
            )
        self.dsn = dsn
        try:  # one connection first: a clear error at once rather than the pool's retries
            psycopg.connect(dsn, connect_timeout=10).close()
        except psycopg.Error as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StoreError(
                "store_unreachable", f"cannot reach PostgreSQL at {safe_dsn(dsn)}: {reason}"
            ) from None
        self.pool = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            open=False,
            # No check on checkout (a round trip each time): a connection that died while
            # idle fails its transaction's first statement, which runs again on a new one.
            kwargs={"autocommit": True},
        )
        try:
            self.pool.open(wait=True, timeout=10)
        except Exception as e:
            self.pool.close()
            raise StoreError(
                "store_unreachable", f"cannot reach PostgreSQL at {safe_dsn(dsn)}: {e}"
            ) from None

    @contextmanager
    def transaction(self, write: bool) -> Iterator[_Cursor]:
        # In pipeline mode: a statement is sent when a result is asked for (a fetch) or at the
        # end, with those before it, so BEGIN goes with the first query and a step's writes
        # (case, history, outbox, deadlines) go in one round trip. COMMIT stays a round trip of
        # its own: a connection lost during it is the one case where the outcome is unknown.
        with self.pool.connection() as conn:
            try:
                with conn.pipeline() as pipeline:
                    conn.execute("BEGIN")
                    with conn.cursor() as cur:
                        yield _Cursor(cur)
                    pipeline.sync()  # what is still queued, and its errors
            except BaseException:
                # A broken connection needs no rollback: the server drops its transaction.
                with suppress(psycopg.Error):
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except psycopg.OperationalError as e:
                raise CommitUnknown(str(e)) from e

    def write(self, work: Callable[[Any], T]) -> T:
        with self.transaction(True) as cur:
            return work(cur)

    def retryable(self, error: Exception) -> bool:
        return isinstance(
            error,
            pg_errors.DeadlockDetected
            | pg_errors.SerializationFailure
            | psycopg.OperationalError
            | pg_errors.AdminShutdown
            | pg_errors.CannotConnectNow
            | PoolTimeout,
        )

    def damaged(self, error: Exception) -> bool:
        return isinstance(error, pg_errors.DataCorrupted | pg_errors.IndexCorrupted)

    def now(self, cur: Any) -> datetime:
        cur.execute("SELECT clock_timestamp()")
        value: datetime = cur.fetchone()[0]
        return value

    def time_param(self, t: datetime) -> datetime:
        if t.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        return t

    def time_value(self, v: Any) -> datetime:
        value: datetime = v
        return value.astimezone(UTC)

    def schema_version(self) -> int:
        with self.transaction(False) as cur:
            cur.execute("SELECT to_regclass('rk_schema') IS NOT NULL")
            if not cur.fetchone()[0]:
                return 0
            cur.execute("SELECT COALESCE(MAX(version), 0) FROM rk_schema")
            return int(cur.fetchone()[0])

    def migrate(self) -> list[Migration]:
        applied = []
        with self.pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS rk_schema (version integer PRIMARY KEY, "
                    "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                for m in migrations(self.name):
                    with conn.transaction():
                        done = conn.execute(
                            "SELECT 1 FROM rk_schema WHERE version = %s", (m.version,)
                        ).fetchone()
                        if done:
                            continue
                        conn.execute(m.sql.encode())
                        conn.execute(
                            "INSERT INTO rk_schema (version, name) VALUES (%s, %s)",
                            (m.version, m.name),
                        )
                    applied.append(m)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
        return applied

    def close(self) -> None:
        self.pool.close()


def safe_dsn(dsn: str) -> str:
    """The connection string without its password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "(an unreadable connection string)"
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo("", **info)


class PostgresStore(SqlStore):
    """A store in a PostgreSQL database (``postgresql://user@host:5432/db``)."""

    def __init__(self, dsn: str, *, migrate: bool = False, pool_size: int = 10) -> None:
        """Connect to ``dsn``; ``migrate``: bring the schema up to date first.

        Without ``migrate``, a schema behind this version of rulekit is an error that says
        to run ``rulekit db upgrade``.
        """
        dialect = PostgresDialect(dsn, max_size=pool_size)
        super().__init__(dialect)
        with reporting_damage(dialect):
            if migrate:
                dialect.migrate()
            check_schema(dialect, safe_dsn(dsn))
