"""``rulekit explain POLICY --store URL --case ID``: stored cases, on SQLite and PostgreSQL.

The history a database kept (guards with the values they read, citations, effects,
assignments) explains the case as the engine's own history does: the outputs are
golden files (tests/golden/explain/stored_*.out, the same on every database; accept a
deliberate change with ``UPDATE_GOLDEN=1``). The error paths exit 2 without a traceback.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

import rulekit
from rulekit.cli import main
from rulekit.stores import SqlStore
from support import ROOT, TESTS

from .backends import Backend
from .helpers import D, H, T, fast_refund, slow_refund

GOLDEN = TESTS / "golden" / "explain"
POLICY = "rules/kuaishou_after_sales.rk"


@pytest.fixture
def stored(sql_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> SqlStore:
    """A database with three Kuaishou cases: a fast refund after the amount was lowered,
    a rejection closed by its deadline, a refund the platform ruled after an escalation.

    The policy is loaded by its path from the repository's root, as the command line is
    given it below: the records name their rules by that path."""
    monkeypatch.chdir(ROOT)
    store = sql_backend.sql()
    store.register(rulekit.load(POLICY))
    store.open("refund_only", fast_refund("500.00"), id="lowered", at=T)
    store.update("lowered", {"order.amount": "120.00"}, at=T + H)
    store.open("refund_only", slow_refund(), id="rejected", at=T)
    store.send("rejected", "reject", "merchant", {"reason": "used"}, at=T + H)
    store.fire_due(now=T + 9 * D)
    store.open("refund_only", slow_refund(), id="ruled", at=T)
    store.send("ruled", "escalate", "consumer", at=T + H)
    store.send("ruled", "rule", "platform", {"decision": "refund"}, at=T + 2 * H)
    return store


def _explain(
    backend: Backend, args: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    status = main(["explain", POLICY, "--store", backend.url, *shlex.split(args)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("stored_fast_refund_on_update", "--case lowered --why effect:refund"),
        ("stored_rejected_by_deadline", "--case rejected"),
        ("stored_platform_refund", "--case ruled --all"),
    ],
)
def test_golden(
    stored: SqlStore,
    sql_backend: Backend,
    name: str,
    args: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = _explain(sql_backend, args, capsys)
    assert (status, err) == (0, "")
    golden = GOLDEN / f"{name}.out"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(out)
    assert out == golden.read_text()


def test_json(stored: SqlStore, sql_backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    status, out, _ = _explain(sql_backend, "--case lowered --format json", capsys)
    assert status == 0
    data = json.loads(out)
    assert (data["state"], data["found"]) == ("refunded", True)
    last = data["steps"][-1]
    assert last["condition"]["value"] is True
    assert [c["value"] for c in last["condition"]["clauses"]] == [True] * 4
    update = next(s for s in data["steps"] if s["kind"] == "update")
    assert update["facts"] == {"order.amount": "120.00"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("--case nope", "no case 'nope' in the store"),
        ("--case lowered --why refusal", "a store keeps no refused steps"),
        ("--case lowered --why effect:nothing", "the policy declares no effect `nothing`"),
    ],
)
def test_errors(
    stored: SqlStore,
    sql_backend: Backend,
    args: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = _explain(sql_backend, args, capsys)
    assert (status, out) == (2, "")
    assert message in err


def test_a_case_of_another_policy_version(
    stored: SqlStore,
    sql_backend: Backend,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Another version's conditions and clauses did not decide the case: refused."""
    other = tmp_path / "other.rk"
    other.write_text(
        (ROOT / POLICY)
        .read_text()
        .replace("const REVIEW_WINDOW = 48h", "const REVIEW_WINDOW = 72h")
    )
    status = main(["explain", str(other), "--store", sql_backend.url, "--case", "lowered"])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert "case 'lowered' runs on policy version sha256:" in err
    assert "explain it with the policy it was opened on" in err


def test_a_missing_effect_exits_1(
    stored: SqlStore, sql_backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _explain(sql_backend, "--case rejected --why effect:refund", capsys)
    assert status == 1
    assert "no refund was emitted: the case is in `rejected`" in out


def test_a_store_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    status = main(["explain", POLICY, "--store", str(tmp_path / "no" / "x.db"), "--case", "c"])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert "does not exist" in err and "Traceback" not in err
