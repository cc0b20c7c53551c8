"""Shared test helpers: paths to the data folders and strict value comparison.

Tests import it as ``from support import ROOT, TESTS, same_value``: pytest puts
``tests/`` on ``sys.path`` (``pythonpath`` in pyproject.toml's pytest options), so this
works whatever the import mode. Fixtures and hooks live in the conftest.py files; plain
helpers live here (a conftest is not a module to import from).
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import lark
import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


#: The PostgreSQL server the durable store's tests use (.ci/run sets it).
PG_ENV = "RULEKIT_TEST_POSTGRES_DSN"


def postgres_schema(prefix: str, untested: str) -> Iterator[str]:
    """For a fixture to yield from: the connection string of a fresh schema on
    $RULEKIT_TEST_POSTGRES_DSN's server, migrated, dropped afterwards. Without the
    variable the test skips, except in CI (``CI=true``), where ``untested`` is the failure."""
    from rulekit.stores import open_store

    dsn = os.environ.get(PG_ENV, "").strip()
    if not dsn:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{PG_ENV} is not set in CI: {untested} would go untested")
        pytest.skip(f"PostgreSQL tests need a server: set {PG_ENV}=postgresql://user@host:5432/db")
    import psycopg
    from psycopg.conninfo import make_conninfo

    schema = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.Error as e:
        pytest.fail(f"{PG_ENV} is set but PostgreSQL cannot be reached: {e}")
    try:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        url = make_conninfo(dsn, options=f"-csearch_path={schema}")
        open_store(url, migrate=True).close()
        yield url
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


def same_value(a: Any, b: Any) -> bool:
    """Equal values of the same Python type (NaN equals NaN; containers compared strictly)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(
            type(k) is type(next(k2 for k2 in b if k2 == k)) and same_value(a[k], b[k]) for k in a
        )
    if isinstance(a, datetime):
        return a == b
    return bool(a == b)


@cache
def _rk_lexer() -> tuple[lark.Lark, list[str]]:
    from rulekit.core.grammars import grammar_text

    found: list[str] = []
    return lark.Lark(
        grammar_text("rules.lark") + "\n" + grammar_text("cel.lark"),
        start="policy",
        parser="lalr",
        lexer_callbacks={"COMMENT": lambda t: found.append(str(t).rstrip())},
    ), found


def rk_comments(text: str) -> list[str]:
    """The comments of a .rk policy, in order, as Lark's own lexer finds them (not
    rulekit's: the formatter's tests check it against an independent reading)."""
    parser, found = _rk_lexer()
    found.clear()
    parser.parse(text)
    return list(found)
