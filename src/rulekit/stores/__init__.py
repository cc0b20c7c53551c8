"""Where cases live between steps: SQLite (the embedded default) or PostgreSQL.

``open_store("cases.db")`` (or ``sqlite:///cases.db``) and
``open_store("postgresql://user@host/db")`` give a :class:`SqlStore`; the
in-memory store for library use is :class:`rulekit.MemoryStore`. See
docs/service.md for what a store guarantees.
"""

from __future__ import annotations

from pathlib import Path

from rulekit.stores.base import (
    CaseNotFound,
    Fired,
    OutboxEffect,
    SqlStore,
    StoredCase,
    StoreError,
)

DEFAULT_STORE = "rulekit.db"

__all__ = [
    "DEFAULT_STORE",
    "CaseNotFound",
    "Fired",
    "OutboxEffect",
    "SqlStore",
    "StoreError",
    "StoredCase",
    "describe",
    "open_store",
]


def open_store(url: str | Path, *, migrate: bool = False) -> SqlStore:
    """The store at ``url``: a PostgreSQL connection string, ``sqlite:///path``, or a file path.

    ``migrate``: bring the schema up to date first (what ``rulekit db upgrade`` does).
    """
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")) or (
        "=" in text and "dbname" in text  # a key=value connection string
    ):
        from rulekit.stores.postgres import PostgresStore

        return PostgresStore(text, migrate=migrate)
    from rulekit.stores.sqlite import SQLiteStore

    if text.startswith("sqlite://"):
        text = text.removeprefix("sqlite://").removeprefix("/") or ":memory:"
    return SQLiteStore(text, migrate=migrate)


def describe(url: str | Path) -> str:
    """``url`` for messages and logs, without a password."""
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")) or "dbname" in text:
        from rulekit.stores.postgres import _safe

        return _safe(text)
    return text
