"""The databases the store tests run on: :class:`Backend` opens stores on one of them.

The fixtures that hand backends to tests are in conftest.py; tests import the class
from here for their type annotations.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rulekit.policy import Policy
from rulekit.runtime import MemoryStore, Store
from rulekit.stores import SqlStore, open_store

#: every table a store writes, children first (rk_schema stays: it says the schema is migrated)
TABLES = (
    "rk_parties",
    "rk_history",
    "rk_keys",
    "rk_open_keys",
    "rk_deadlines",
    "rk_effects",
    "rk_cases",
    "rk_policies",
)


@dataclass
class Backend:
    """One database a store can be opened on, any number of times (several processes too)."""

    name: str
    #: what ``open_store`` (and a worker process) takes
    url: str
    _opened: list[SqlStore] = field(default_factory=list)
    #: the one store of the ``memory`` backend
    _memory: MemoryStore | None = None

    def open(self, *, register: Policy | None = None) -> Store:
        """A new store object on this database, closed when the test ends (``memory``: the
        backend's one store)."""
        store: Store
        if self.name == "memory":
            store = self._memory = self._memory or MemoryStore()
        else:
            store = self.sql()
        if register is not None:
            store.register(register)
        return store

    def sql(self, *, migrate: bool = False) -> SqlStore:
        """A new SQL store object on this database, closed when the test ends."""
        assert self.name != "memory", "a SQL-only test asked the memory backend"
        store = open_store(self.url, migrate=migrate)
        self._opened.append(store)
        return store

    def reset(self) -> None:
        """Empty every table (between the examples of a property test)."""
        if self.name == "memory":
            self._memory = None
            return
        if self.name == "sqlite":
            with closing(sqlite3.connect(self.url)) as db, db:
                for table in TABLES:
                    db.execute(f"DELETE FROM {table}")
            return
        import psycopg

        # DELETE, in one transaction: much cheaper than TRUNCATE on tables this small. After
        # the 100,000-deadline race it would take minutes (each deleted case has its foreign
        # keys checked against tables of dead rows), so large tables are truncated instead.
        with psycopg.connect(self.url, autocommit=True) as conn, conn.transaction():
            row = conn.execute("SELECT count(*) FROM rk_cases").fetchone()
            if row is not None and row[0] > 1_000:
                conn.execute("TRUNCATE " + ", ".join(TABLES))
                return
            for table in TABLES:
                conn.execute(f"DELETE FROM {table}")

    @contextmanager
    def empty(self) -> Iterator[str]:
        """The url of another database of this kind, with no schema at all (dropped after)."""
        if self.name == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                yield str(Path(folder) / "empty.db")
            return
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        schema = f"rk_test_{os.getpid()}_{secrets.token_hex(4)}_empty"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
            try:
                info = conninfo_to_dict(self.url)
                info["options"] = f"-csearch_path={schema}"
                yield make_conninfo("", **info)
            finally:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    def close(self) -> None:
        for store in self._opened:
            store.close()
        self._opened.clear()
