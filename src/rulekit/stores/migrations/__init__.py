"""Versioned schema migrations, applied by ``rulekit db upgrade`` (never by hand).

Each database has its folder of numbered SQL scripts (``0001_initial.sql``, ...).
A store records the versions applied in ``rk_schema``; upgrading applies the
missing ones in order, each in its own transaction with its record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from rulekit.stores.base import StoreError


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(database: str) -> list[Migration]:
    """The migrations of ``database`` (``sqlite`` or ``postgresql``), in order."""
    folder = resources.files(__name__).joinpath(database)
    found = []
    for entry in folder.iterdir():
        m = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if m:
            found.append(Migration(int(m[1]), m[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def latest(database: str) -> int:
    return max(m.version for m in migrations(database))


class Versioned(Protocol):
    name: str

    def schema_version(self) -> int: ...
    def close(self) -> None: ...


def check_schema(dialect: Versioned, where: str) -> None:
    """Refuse a database whose schema is not the one this rulekit writes (closing it)."""
    have, want = dialect.schema_version(), latest(dialect.name)
    if have == want:
        return
    dialect.close()
    if have < want:
        raise StoreError(
            "schema_behind",
            f"the store at {where} has schema version {have}, this rulekit needs {want}: "
            f"run `rulekit db upgrade --store {where}`",
        )
    raise StoreError(
        "schema_ahead",
        f"the store at {where} has schema version {have}, newer than this rulekit knows ({want}): "
        "upgrade rulekit",
    )
