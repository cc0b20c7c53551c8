"""Issue #11, finding 1: a compiled artifact could run code.

A comprehension variable set to ``x=__import__('os').system('touch ...')`` in a
compiled artifact (content hash recomputed) passed ``rulekit check``, and
``rulekit simulate``, ``Expression.from_dict`` and a store reading
``rk_policies.artifact`` ran the command. Each route must now refuse the
artifact with RK0501 and the command must never run.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

import rulekit
from rulekit.cli import main
from rulekit.core.errors import CompileError
from rulekit.core.source import Source, Span
from rulekit.expr import ast
from rulekit.expr.checker import check
from rulekit.expr.expression import Expression, _content_hash
from rulekit.policy import artifact
from rulekit.stores import codec
from rulekit.stores.sqlite import SQLiteStore

from .hostile import comprehension_with_var, evil_policy_artifact, payload

TESTS = Path(__file__).resolve().parent.parent
POLICY = TESTS / "policies" / "refunds.rk"
FACTS = {"order": {"amount": 100, "paid_at": "2026-03-01T09:00:00+08:00", "shipped": False}}
AT = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    return tmp_path / "SENTINEL"


@pytest.fixture
def evil_file(tmp_path: Path, sentinel: Path) -> Path:
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(evil_policy_artifact(POLICY, sentinel)))
    return path


def test_check_reports_the_artifact(
    evil_file: Path, sentinel: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check", str(evil_file)])
    out = capsys.readouterr().out
    assert code == 1
    assert "error[RK0501]" in out and "/transitions/0/guard/ast/var:" in out
    assert not sentinel.exists()


def test_simulate_refuses_the_artifact(
    evil_file: Path, sentinel: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "simulate",
            str(evil_file),
            "-w",
            "refund_only",
            "--facts",
            json.dumps(FACTS),
            "--at",
            AT.isoformat(),
        ]
    )
    assert code == 2
    assert "error[RK0501]" in capsys.readouterr().err
    assert not sentinel.exists()


def test_expression_from_dict_refuses_a_python_variable(sentinel: Path) -> None:
    data = rulekit.compile_expression("[1].all(x, true)").to_dict()
    data["ast"] = comprehension_with_var(f"x={payload(sentinel)}")
    data["hash"] = _content_hash(data["source"], data["declarations"], data["ast"])
    with pytest.raises(CompileError) as info:
        Expression.from_dict(data).evaluate({})
    assert [d.code for d in info.value.diagnostics] == ["RK0501"]
    assert "var" in str(info.value) and "is not a name" in str(info.value)
    assert not sentinel.exists()


def test_a_store_refuses_a_tampered_artifact(tmp_path: Path, sentinel: Path) -> None:
    db = tmp_path / "cases.db"
    store = SQLiteStore(db, migrate=True)
    digest = store.register(rulekit.load(POLICY))
    store.close()
    with sqlite3.connect(db) as conn:  # what anyone with write access to the table can do
        conn.execute(
            "UPDATE rk_policies SET artifact = ? WHERE hash = ?",
            (codec.dumps(evil_policy_artifact(POLICY, sentinel)), digest),
        )
    conn.close()
    fresh = SQLiteStore(db)
    try:
        with pytest.raises(CompileError) as info:
            fresh.engine(digest).open("refund_only", FACTS, at=AT)  # the guard runs on open
        assert {d.code for d in info.value.diagnostics} == {"RK0501"}
    finally:
        fresh.close()
    assert not sentinel.exists()


def test_the_checker_refuses_trees_the_parser_cannot_build(sentinel: Path) -> None:
    """Defence in depth: a tree built by hand (not read from JSON) meets the checker first."""
    src = Source("[1].all(x, true)")
    one = ast.Literal(1, Span(1, 2), "int", 1, "1")
    true = ast.Literal(2, Span(11, 15), "bool", True, "true")
    rng = ast.ListLit(3, Span(0, 3), (one,))
    cases = {
        "RK0107": ast.Comprehension(
            4, Span(0, 16), "all", rng, f"x={payload(sentinel)}", Span(8, 9), true, None
        ),
        "RK0109": ast.Comprehension(4, Span(0, 16), "all", rng, "x", Span(8, 9), None, true),
    }
    for code, tree in cases.items():
        _, problems = check(tree, src, None)
        assert [d.code for d in problems] == [code]
    _, problems = check(ast.Ident(5, Span(0, 1), "x) or (y"), src, None)
    assert [d.code for d in problems] == ["RK0107"]
    _, problems = check(ast.Call(6, Span(0, 3), "__import__", None, (), Span(0, 3)), src, None)
    assert [d.code for d in problems] == ["RK0204"]


@pytest.mark.parametrize(
    ("where", "edit"),
    [
        ("workflow", lambda a, bad: a["workflows"][0].__setitem__("name", bad)),
        ("state", lambda a, bad: a["workflows"][0]["states"][0].__setitem__("name", bad)),
        ("event", lambda a, bad: a["events"][0].__setitem__("name", bad)),
        ("actor", lambda a, bad: a["actors"].__setitem__(0, bad)),
    ],
)
def test_names_of_the_policy_are_names_in_an_artifact_too(
    where: str, edit: object, sentinel: Path
) -> None:
    """Workflow, state, event and actor names are what the rule language could spell:
    hostile text there is refused by the schema (RK0501), not carried to scenarios, graphs
    or the service's answers."""
    data = artifact.to_json(rulekit.load(POLICY))
    edit(data, payload(sentinel))  # type: ignore[operator]
    data["hash"] = artifact.content_hash(data)
    with pytest.raises(CompileError) as refused:
        rulekit.loads(json.dumps(data), "json", "edited.json")
    assert {d.code for d in refused.value.diagnostics} == {"RK0501"}, where
    assert not sentinel.exists()
