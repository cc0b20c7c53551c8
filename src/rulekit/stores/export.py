"""Cases out of one store and into another, as JSON Lines (``rulekit export`` / ``import``).

The format, ``rulekit-export/1`` (schemas/export.schema.json, docs/live-changes.md): a
header line with every policy version the cases are pinned to (its compiled artifact, so
an import needs nothing else), then one line per case: its row (state, facts, times,
parties) and its whole history. Values JSON has no type for (money, times, durations)
are tagged as the store's columns tag them (:mod:`.codec`).

Reading and writing stream: a page of cases at a time out of the store, a line at a time
into it, so memory does not grow with the number of cases.

An export file is data from elsewhere. Each line is bounded in length, parsed as JSON,
checked against the schema, and then not trusted: the case is rebuilt by replaying its
history under its policy, and its row must be what that replay gives. Each case is
imported in its own transaction; a case already there with the same history is skipped,
with another history it is an error naming the case. Effects already emitted are not put
in the outbox again: a copy must not pay a refund twice.

Layer: stores.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import IO, Any

import jsonschema
import orjson

from rulekit.core.errors import RuleError
from rulekit.core.source import Source
from rulekit.policy.artifact import from_json
from rulekit.runtime.engine import Engine
from rulekit.runtime.model import Case, Record
from rulekit.stores import codec
from rulekit.stores.base import (
    CASE_COLUMNS,
    Cursor,
    SqlStore,
    StoreError,
    _clocks_json,
    _pending_json,
    _record_from_json,
    _record_json,
)

FORMAT = "rulekit-export/1"
#: the longest line read (a case with a very long history is still far below it)
MAX_LINE = 16 * 1024 * 1024
#: cases read from the store per transaction
PAGE = 500


class ImportProblem(Exception):
    """A line of an export file that cannot be imported: where (1-based) and why."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True)
class ExportedCase:
    """One case as exported: its row's fields (codec values) and its history."""

    data: dict[str, Any]
    history: list[Record]

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def final(self) -> bool:
        return bool(self.data["final"])


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of a line of an export file (the header or a case)."""
    text = resources.files("rulekit").joinpath("schemas/export.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


# -- export ----------------------------------------------------------------------------------
def header(store: SqlStore, policy: str | None = None) -> dict[str, Any]:
    """The header line: the format and each policy version kept (``policy``: of that name)."""

    def work(cur: Cursor) -> list[Any]:
        sql = "SELECT hash, name, version, artifact FROM rk_policies"
        cur.execute(
            sql + (" WHERE name = ? ORDER BY hash" if policy else " ORDER BY hash"),
            (policy,) if policy else (),
        )
        return cur.fetchall()

    return {
        "format": FORMAT,
        "policies": [
            {"hash": h, "name": n, "version": v, "artifact": orjson.loads(a)}
            for h, n, v, a in store._run(work)
        ],
    }


def cases(
    store: SqlStore,
    *,
    open_only: bool = False,
    policy: str | None = None,
    version: str | None = None,
) -> Iterator[ExportedCase]:
    """Every case of ``store`` in id order with its history, a page per transaction
    (``open_only``: not in a final state; ``policy``: pinned to a version of that name;
    ``version``: pinned to that version, by hash)."""
    tv = store.dialect.time_value
    where = ["id > ?"]
    if open_only:
        where.append("final = ?")
    if policy is not None:
        where.append("policy_hash IN (SELECT hash FROM rk_policies WHERE name = ?)")
    if version is not None:
        where.append("policy_hash = ?")
    sql = f"SELECT {CASE_COLUMNS} FROM rk_cases WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"
    after = ""
    while True:
        params: list[Any] = [after]
        if open_only:
            params.append(False)
        if policy is not None:
            params.append(policy)
        if version is not None:
            params.append(version)
        rows, records = store._run(functools.partial(_page, sql=sql, params=[*params, PAGE]))
        if not rows:
            return
        by_case: dict[str, list[Record]] = {}
        for case_id, text in records:
            by_case.setdefault(case_id, []).append(_record_from_json(text))
        for r in rows:
            yield ExportedCase(
                {
                    "id": r[0],
                    "policy": r[1],
                    "workflow": r[2],
                    "state": r[3],
                    "final": bool(r[4]),
                    "outcome": r[5],
                    "facts": codec.loads(r[6]),
                    "case_time": tv(r[8]),
                    "version": int(r[10]),
                    "parties": codec.loads(r[11]),
                    "opened_at": tv(r[12]),
                    "updated_at": tv(r[13]),
                },
                by_case.get(r[0], []),
            )
        after = rows[-1][0]


def _page(cur: Cursor, *, sql: str, params: list[Any]) -> tuple[list[Any], list[Any]]:
    """A page of case rows and, in case and sequence order, their history records."""
    cur.execute(sql, params)
    rows = cur.fetchall()
    if not rows:
        return rows, []
    marks = ", ".join("?" for _ in rows)
    cur.execute(
        f"SELECT case_id, record FROM rk_history WHERE case_id IN ({marks}) ORDER BY case_id, seq",
        [r[0] for r in rows],
    )
    return rows, cur.fetchall()


def line(case: ExportedCase) -> str:
    """A case's line (without its newline)."""
    records = ",".join(_record_json(r) for r in case.history)
    head = codec.dumps(case.data)
    return f'{head[:-1]},"history":[{records}]}}'


def json_line(head: dict[str, Any]) -> str:
    """The header as its line, newline included."""
    return json.dumps(head, ensure_ascii=False, sort_keys=True) + "\n"


def export(
    store: SqlStore, out: IO[str], *, open_only: bool = False, policy: str | None = None
) -> int:
    """Write the header and every case (as :func:`cases` selects them); returns how many."""
    out.write(json_line(header(store, policy)))
    n = 0
    for case in cases(store, open_only=open_only, policy=policy):
        out.write(line(case) + "\n")
        n += 1
    return n


# -- reading a file --------------------------------------------------------------------------
def bounded(f: IO[bytes]) -> Iterator[bytes]:
    """The lines of ``f``, none read past :data:`MAX_LINE` bytes (a longer one is cut there,
    and :func:`read` refuses it): a hostile file cannot make a line fill memory."""
    while raw := f.readline(MAX_LINE + 1):
        yield raw


def read(lines: Iterable[str | bytes]) -> Iterator[tuple[int, dict[str, Any] | ExportedCase]]:
    """The header (a dict) and then each case of an export file, with its line number;
    raises :class:`ImportProblem` at the first line that is not one."""
    validator = jsonschema.Draft202012Validator(schema())
    for number, raw in enumerate(lines, 1):
        if len(raw) > MAX_LINE:
            raise ImportProblem(number, f"line longer than {MAX_LINE} bytes")
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise ImportProblem(number, f"not JSON: {e}") from None
        error = jsonschema.exceptions.best_match(validator.iter_errors(data))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the line"
            raise ImportProblem(number, f"{where}: {error.message}")
        if number == 1 or "format" in data:
            if number != 1 or data.get("format") != FORMAT:
                raise ImportProblem(number, f"the first line, and only it, is the {FORMAT} header")
            yield number, data
            continue
        try:
            values = codec.loads(text)
            history = [_record_from_json(codec.dumps(r)) for r in values.pop("history")]
        except (KeyError, TypeError, ValueError) as e:
            raise ImportProblem(number, f"a value cannot be read: {e}") from None
        yield number, ExportedCase(values, history)


# -- import ----------------------------------------------------------------------------------
def register(store: SqlStore, head: dict[str, Any], line: int = 1) -> dict[str, Engine]:
    """Keep the header's policy versions in ``store``; their engines by hash."""
    engines = {}
    for p in head["policies"]:
        try:
            policy = from_json(p["artifact"], Source("", f"<import:{p['hash'][:19]}>"))
        except (RuleError, KeyError, TypeError, ValueError) as e:
            raise ImportProblem(line, f"policy {p['hash']}: not a policy artifact ({e})") from None
        digest = store.register(policy)
        if digest != p["hash"]:
            raise ImportProblem(line, f"policy {p['hash']}: its artifact hashes to {digest}")
        engines[digest] = Engine(policy)
    return engines


def import_case(store: SqlStore, engines: dict[str, Engine], case: ExportedCase, line: int) -> bool:
    """Write ``case`` in one transaction, after checking that its history rebuilds it;
    False if it was there already with the same history."""
    d = case.data
    engine = engines.get(d["policy"])
    if engine is None:
        raise ImportProblem(line, f"case {case.id}: policy {d['policy']} is not in the header")
    try:
        rebuilt = engine.replay(case.history, id=case.id)
    except (RuleError, ValueError, KeyError, TypeError, AttributeError, AssertionError) as e:
        raise ImportProblem(line, f"case {case.id}: its policy refuses its history ({e})") from None
    texts = [_record_json(r) for r in rebuilt.history]
    if (
        texts != [_record_json(r) for r in case.history]
        or rebuilt.workflow.name != d["workflow"]
        or rebuilt.state.name != d["state"]
        or rebuilt.state.final != d["final"]
        or codec.dumps(rebuilt.facts) != codec.dumps(d["facts"])
    ):
        raise ImportProblem(line, f"case {case.id}: its history does not rebuild the case it says")

    def work(cur: Cursor) -> bool:
        cur.execute("SELECT record FROM rk_history WHERE case_id = ? ORDER BY seq", (case.id,))
        there = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT 1 FROM rk_cases WHERE id = ?", (case.id,))
        if cur.fetchone() is not None:
            if there == texts:
                return False
            raise StoreError("import_conflict", f"case {case.id} is there with another history")
        insert(store, cur, case, rebuilt, texts)
        return True

    try:
        return store._run(work, write=True)
    except StoreError as e:
        if e.code == "import_conflict":
            raise ImportProblem(line, e.message) from None
        raise


def insert(
    store: SqlStore, cur: Cursor, case: ExportedCase, rebuilt: Case, texts: list[str]
) -> None:
    """Write the rows of ``case``, as ``rebuilt`` by replaying its history (``texts``: its
    records as stored), in the transaction of ``cur``."""
    d = case.data
    tp = store.dialect.time_param
    cur.execute(
        f"INSERT INTO rk_cases ({CASE_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            case.id,
            d["policy"],
            d["workflow"],
            rebuilt.state.name,
            rebuilt.state.final,
            rebuilt.outcome,
            codec.dumps(rebuilt.facts),
            _pending_json(Engine.pending(rebuilt)),
            tp(max(d["case_time"], rebuilt.now)),
            len(texts),
            d["version"],
            codec.dumps(dict(d["parties"])),
            tp(d["opened_at"]),
            tp(d["updated_at"]),
            store._due(rebuilt.next_deadline),
            _clocks_json(rebuilt),
            codec.isoformat(rebuilt.entered),
        ),
    )
    if d["parties"]:
        cur.executemany(
            "INSERT INTO rk_parties (case_id, actor, principal) VALUES (?, ?, ?)",
            [(case.id, a, p) for a, p in d["parties"].items()],
        )
    cur.executemany(
        "INSERT INTO rk_history (case_id, seq, at, kind, record) VALUES (?, ?, ?, ?, ?)",
        [
            (case.id, r.seq, tp(r.at), r.kind, t)
            for r, t in zip(rebuilt.history, texts, strict=True)
        ],
    )
    if rebuilt.next_deadline is not None and not rebuilt.state.final:
        cur.execute(
            "INSERT INTO rk_deadlines (case_id, due) VALUES (?, ?)",
            (case.id, tp(rebuilt.next_deadline)),
        )


def import_file(store: SqlStore, lines: Iterable[str | bytes]) -> tuple[int, int]:
    """Import every case of an export file: (cases written, cases already there)."""
    engines: dict[str, Engine] = {}
    written = skipped = 0
    for number, item in read(lines):
        if isinstance(item, dict):
            engines = register(store, item, number)
        elif import_case(store, engines, item, number):
            written += 1
        else:
            skipped += 1
    return written, skipped


__all__ = ["FORMAT", "ExportedCase", "ImportProblem", "cases", "export", "import_file", "read"]
