"""The stores under test: every test asking for ``store`` or ``backend`` runs on each.

- ``memory``: a :class:`rulekit.MemoryStore` (the "database" is the store object: opening
  the backend again gives the same one; its clock is the wall clock, as a database's is);
- ``sqlite``: a fresh database file in the test's tmp_path;
- ``postgresql``: the server named by RULEKIT_TEST_POSTGRES_DSN. The test session works
  in a schema of its own (``rk_test_<pid>_<random>``, reached through the connection
  string's ``options=-csearch_path=...``: the stores' SQL names its tables unqualified),
  migrated once and dropped at the end; each test starts on empty tables (TRUNCATE).

Without the variable the PostgreSQL tests are skipped (with how to run them), except in
CI (``CI=true``), where that is a failure; with the variable set, an unreachable server
is a failure, never a skip.

What only a database can be put through (other store objects, threads and processes
sharing it, migrations, damaged files, lost connections) asks for ``sql_store`` or
``sql_backend`` instead: SQLite and PostgreSQL only.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import rulekit
from rulekit.policy import Policy
from rulekit.runtime import Store
from rulekit.stores import SqlStore, open_store
from support import postgres_schema

from .backends import Backend
from .helpers import KUAISHOU


@pytest.fixture(scope="session")
def kuaishou() -> Policy:
    return rulekit.load(KUAISHOU)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The connection string of this session's own schema (created, migrated, then dropped)."""
    yield from postgres_schema("rk_test", "the PostgreSQL store")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated SQLite database that each test copies (cheaper than migrating)."""
    path = tmp_path_factory.mktemp("template") / "store.db"
    open_store(path, migrate=True).close()  # closing checkpoints the WAL into the file
    return path


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    path = tmp_path / "store.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return Backend("sqlite", str(path))


def _postgres(request: pytest.FixtureRequest) -> Backend:
    url: str = request.getfixturevalue("postgres_url")
    backend = Backend("postgresql", url)
    backend.reset()
    return backend


def _backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        b = Backend("memory", "")
    elif request.param == "sqlite":
        b = _sqlite(request, tmp_path)
    else:
        b = _postgres(request)
    yield b
    b.close()


POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.postgresql)


@pytest.fixture(params=["memory", "sqlite", POSTGRESQL])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """An empty store of each kind: in memory, or a migrated database."""
    yield from _backend(request, tmp_path)


@pytest.fixture
def sqlite_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """An empty, migrated SQLite database (what only SQLite has: group commit, its files)."""
    b = _sqlite(request, tmp_path)
    yield b
    b.close()


@pytest.fixture(params=["sqlite", POSTGRESQL])
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """An empty, migrated database of each kind."""
    yield from _backend(request, tmp_path)


@pytest.fixture
def store(backend: Backend, kuaishou: Policy) -> Store:
    """An empty store of each kind, with the Kuaishou policy registered."""
    return backend.open(register=kuaishou)


@pytest.fixture
def sql_store(sql_backend: Backend, kuaishou: Policy) -> SqlStore:
    """An empty database of each kind, with the Kuaishou policy registered."""
    store = sql_backend.sql()
    store.register(kuaishou)
    return store
