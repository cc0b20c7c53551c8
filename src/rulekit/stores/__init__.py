"""Where cases live between steps: SQLite (the embedded default) or PostgreSQL.

``open_store("cases.db")`` (a path, or ``sqlite:///var/data/cases.db``, an
absolute one) and ``open_store("postgresql://user@host/db")`` give a
:class:`SqlStore`; the in-memory store for library use is
:class:`rulekit.MemoryStore`. See docs/service.md for what a store guarantees.

:mod:`.base` (the SQL store, one for both databases), :mod:`.sqlite` and
:mod:`.postgres` (their dialects), :mod:`.migrations` (the schema's versions),
:mod:`.codec` (values to and from columns) and :mod:`.worker` (the deadline
worker, which needs a store and nothing of the web stack).

Layer: imports :mod:`rulekit.core`, :mod:`rulekit.expr`, :mod:`rulekit.policy` and
:mod:`rulekit.runtime`; a database driver only in its dialect's module.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from rulekit.runtime.store import Store
from rulekit.stores.base import (
    CaseNotFound,
    Fired,
    OutboxEffect,
    SqlStore,
    StoredCase,
    StoreError,
    reporting_damage,
)
from rulekit.stores.migrations import Migration, latest

if TYPE_CHECKING:
    from rulekit.stores.postgres import PostgresDialect
    from rulekit.stores.sqlite import SQLiteDialect

DEFAULT_STORE = "rulekit.db"

__all__ = [
    "DEFAULT_STORE",
    "CaseNotFound",
    "Fired",
    "OutboxEffect",
    "SqlStore",
    "Store",
    "StoreError",
    "StoredCase",
    "describe",
    "is_postgres",
    "open_store",
    "schema",
]


def is_postgres(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (a URL, or a key=value connection string)."""
    return url.startswith(("postgresql://", "postgres://")) or ("=" in url and "dbname" in url)


_SCHEMES = "postgresql://, postgres://, sqlite:///absolute/path.db, or a file path"


def _sqlite_path(url: str) -> str:
    """The SQLite file a store URL names, read as URLs are: ``sqlite:///var/data/x.db`` is the
    absolute path /var/data/x.db, ``sqlite:data/x.db`` and ``data/x.db`` relative ones,
    ``sqlite://`` (or ``sqlite:///:memory:``) a database in memory. Any other scheme is an
    error (a typo such as ``postgresq://`` must not become a file)."""
    if url.startswith("sqlite:"):
        rest = url.removeprefix("sqlite:")
        if rest.startswith("//"):
            rest = rest[2:]
            if rest and not rest.startswith("/"):
                raise StoreError(
                    "invalid_store_url",
                    f"{url}: sqlite:// takes no host: write sqlite:///absolute/path.db "
                    "(three slashes), or the path alone",
                )
        url = ":memory:" if rest in ("", "/:memory:", ":memory:") else rest
    elif scheme := re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", url):
        raise StoreError(
            "invalid_store_url", f"{url}: unknown store scheme `{scheme[1]}://` (use {_SCHEMES})"
        )
    folder = Path(url).parent
    if url != ":memory:" and not folder.exists():
        raise StoreError("store_not_found", f"{url}: the folder {folder} does not exist")
    return url


def open_store(url: str | Path, *, migrate: bool = False) -> SqlStore:
    """The store at ``url``: a PostgreSQL connection string, ``sqlite:///absolute/path``, or a
    file path (:func:`_sqlite_path`).

    ``migrate``: bring the schema up to date first (what ``rulekit db upgrade`` does).
    """
    text = str(url)
    if is_postgres(text):
        from rulekit.stores.postgres import PostgresStore

        return PostgresStore(text, migrate=migrate)
    from rulekit.stores.sqlite import SQLiteStore

    return SQLiteStore(_sqlite_path(text), migrate=migrate)


def schema(url: str | Path, *, upgrade: bool) -> tuple[list[Migration], int, int]:
    """Migrations applied now (``upgrade``), the schema version, and the version this rulekit writes."""
    text = str(url)
    dialect: SQLiteDialect | PostgresDialect
    if is_postgres(text):
        from rulekit.stores.postgres import PostgresDialect

        dialect = PostgresDialect(text)
    else:
        from rulekit.stores.sqlite import SQLiteDialect

        path = _sqlite_path(text)
        if not upgrade and path != ":memory:" and not Path(path).exists():
            return [], 0, latest("sqlite")  # nothing there yet, and nothing made by looking
        dialect = SQLiteDialect(path)
    try:
        with reporting_damage(dialect):
            applied = dialect.migrate() if upgrade else []
            return applied, dialect.schema_version(), latest(dialect.name)
    finally:
        dialect.close()


def describe(url: str | Path) -> str:
    """``url`` for messages and logs, without a password."""
    text = str(url)
    if is_postgres(text):
        from rulekit.stores.postgres import safe_dsn

        return safe_dsn(text)
    return text
