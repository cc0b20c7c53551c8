"""Service-level fixtures: the shipped policy, its tokens, stores and clients.

SQLite stores live in ``tmp_path``. PostgreSQL is used when
RULEKIT_TEST_POSTGRES_DSN is set: each test gets a schema of its own (through
the connection string's ``options=-csearch_path=...``), dropped afterwards.
Without the variable those tests skip, saying how to set it; in CI
(``CI=true``), or with the variable set but the server unreachable, they fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rulekit import policy as policies
from rulekit.policy import Policy
from rulekit.service.auth import Tokens
from rulekit.stores import SqlStore, open_store

from .service_support import (
    POLICY_FILE,
    POSTGRES_ENV,
    TOKENS_FILE,
    TestClient,
    lax_kuaishou_text,
    make_client,
    postgres_base_dsn,
)


@pytest.fixture(scope="session")
def kuaishou() -> Policy:
    return policies.load(POLICY_FILE)


@pytest.fixture(scope="session")
def lax_kuaishou() -> Policy:
    """:func:`lax_kuaishou_text`, loaded."""
    return policies.loads(lax_kuaishou_text(), "rk", "lax_kuaishou.rk")


@pytest.fixture(scope="session")
def tokens(kuaishou: Policy) -> Tokens:
    return Tokens.parse(TOKENS_FILE, "tokens.yaml", set(kuaishou.actors))


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    store = open_store(tmp_path / "cases.db", migrate=True)
    yield store
    store.close()


@pytest.fixture
def postgres_dsn() -> Iterator[str]:
    """A DSN whose search_path is a fresh schema of this test's own (dropped afterwards)."""
    import psycopg
    from psycopg import conninfo

    base = postgres_base_dsn()
    schema = f"rk_service_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        pytest.fail(f"{POSTGRES_ENV} is set but PostgreSQL cannot be reached: {e}")
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield conninfo.make_conninfo(base, options=f"-csearch_path={schema}")
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_store(postgres_dsn: str) -> Iterator[SqlStore]:
    store = open_store(postgres_dsn, migrate=True)
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest) -> SqlStore:
    """Each store in turn (PostgreSQL skips without its DSN)."""
    store: SqlStore = request.getfixturevalue(f"{request.param}_store")
    return store


@pytest.fixture
def client(sqlite_store: SqlStore, kuaishou: Policy, tokens: Tokens) -> Iterator[TestClient]:
    with make_client(sqlite_store, kuaishou, tokens) as c:
        yield c


@pytest.fixture
def any_client(any_store: SqlStore, kuaishou: Policy, tokens: Tokens) -> Iterator[TestClient]:
    with make_client(any_store, kuaishou, tokens) as c:
        yield c


@pytest.fixture
def lax_client(any_store: SqlStore, lax_kuaishou: Policy, tokens: Tokens) -> Iterator[TestClient]:
    """A client of every store serving :func:`lax_kuaishou`: parties open cases too."""
    with make_client(any_store, lax_kuaishou, tokens) as c:
        yield c
