"""``rulekit impact``: a set of Kuaishou cases on known timelines, OLD = the shipped policy,
NEW = the review window cut to 24h and the fast-refund limit raised to 500; the exact report
expected (golden JSON and Markdown, `UPDATE_GOLDEN=1` rewrites them for review), the same
from a store and from an export file, and the gates' exit statuses."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import rulekit
from rulekit.cli import main
from rulekit.stores import open_store
from support import ROOT

GOLDEN = Path(__file__).parent / "golden" / "impact"
OLD = ROOT / "rules" / "kuaishou_after_sales.rk"
H = timedelta(hours=1)
AT = "2021-03-02T18:00:00+08:00"  # T + 30h: what the report compares at
T = datetime(2021, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=8)))  # AT is T + 30h


def facts(amount: str, *, shipped: bool, paid: timedelta = 2 * H) -> dict[str, Any]:
    return {
        "order": {"amount": Decimal(amount), "paid_at": T - paid, "shipped": shipped},
        "shop": {"fast_refund_enabled": True},
    }


@pytest.fixture(scope="module")
def new(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NEW: the shipped policy with the two changes, made from it (so it never drifts)."""
    text = OLD.read_text(encoding="utf-8")
    changed = (
        text.replace("const REVIEW_WINDOW = 48h ", "const REVIEW_WINDOW = 24h ")
        .replace("const FAST_REFUND_LIMIT = 300 ", "const FAST_REFUND_LIMIT = 500 ")
        .replace('version "2023-01-31"', 'version "2026-12-08"')
    )
    assert changed.count("24h ") > text.count("24h ") and "= 500 " in changed
    path = tmp_path_factory.mktemp("new") / "kuaishou_new.rk"
    path.write_text(changed, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, new: Path) -> str:
    """The cases, each on a timeline whose outcome under NEW is known in advance."""
    url = str(tmp_path_factory.mktemp("store") / "cases.db")
    with open_store(url, migrate=True) as s:
        s.register(rulekit.load(OLD))
        # waiting 30h: NEW's 24h window has run out, so NEW would have refunded already
        s.open("refund_only", facts("500.00", shipped=True), id="c1-waiting-30h", at=T)
        # waiting 10h: still open under both, its deadline 24h earlier under NEW
        s.open("refund_only", facts("500.00", shipped=True), id="c2-waiting-10h", at=T + 20 * H)
        # 400 unshipped: above OLD's fast-refund limit, below NEW's: refunded at once
        s.open("refund_only", facts("400.00", shipped=False), id="c3-fast-400", at=T)
        # rejected at 30h: NEW refunded at 24h, so it refuses the merchant's rejection
        s.open("refund_only", facts("200.00", shipped=True), id="c4-rejected-late", at=T)
        s.send("c4-rejected-late", "reject", "merchant", {"reason": "used"}, at=T + 29 * H)
        # rejected at 1h: both agree
        s.open("refund_only", facts("200.00", shipped=True), id="c5-rejected-early", at=T)
        s.send("c5-rejected-early", "reject", "merchant", {"reason": "used"}, at=T + H)
        # closed cases are not assessed
        s.open("refund_only", facts("128.00", shipped=False), id="c6-fast-128", at=T)
        s.open("refund_only", facts("500.00", shipped=True), id="c7-approved", at=T)
        s.send("c7-approved", "approve", "merchant", {}, at=T + H)
        # already on NEW: not OLD's to replay, so not assessed
        s.register(rulekit.load(new))
        s.open("refund_only", facts("500.00", shipped=True), id="c8-on-new", at=T)
    return url


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def compare(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden output yet: run with UPDATE_GOLDEN=1 and review {path}"
    assert actual == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("fmt", "golden"), [("json", "kuaishou.json"), ("markdown", "kuaishou.md")]
)
def test_the_report_is_exactly_the_expected_one(
    capsys: pytest.CaptureFixture[str], store: str, new: Path, fmt: str, golden: str
) -> None:
    code, out, _ = run(
        capsys, "impact", str(OLD), str(new), "--store", store, "--at", AT, "--format", fmt
    )
    assert code == 0
    compare(golden, out)


def test_an_export_file_gives_the_same_report(
    capsys: pytest.CaptureFixture[str], store: str, new: Path, tmp_path: Path
) -> None:
    cases = tmp_path / "cases.jsonl"
    assert run(capsys, "export", "--store", store, "--out", str(cases))[0] == 0
    code, out, _ = run(
        capsys, "impact", str(OLD), str(new), "--cases", str(cases), "--at", AT, "--format", "json"
    )
    assert code == 0
    compare("kuaishou.json", out)


def test_the_table_names_each_differing_case(
    capsys: pytest.CaptureFixture[str], store: str, new: Path
) -> None:
    code, out, _ = run(capsys, "impact", str(OLD), str(new), "--store", store, "--at", AT)
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == [
        "c1-waiting-30h",
        "c2-waiting-10h",
        "c3-fast-400",
        "c4-rejected-late",
    ]
    assert lines[-1].startswith("5 open case(s) assessed, 4 differ")


@pytest.mark.parametrize(
    ("gates", "status"),
    [
        ([], 0),
        (["effects"], 1),
        (["refused"], 1),
        (["state>3"], 0),
        (["state>2"], 1),
        (["state>9", "effects"], 1),
    ],
)
def test_gates(
    capsys: pytest.CaptureFixture[str], store: str, new: Path, gates: list[str], status: int
) -> None:
    flags = [x for g in gates for x in ("--fail-on", g)]
    code, _, err = run(capsys, "impact", str(OLD), str(new), "--store", store, "--at", AT, *flags)
    assert code == status
    assert ("impact gate failed" in err) == bool(status)


def test_no_change_is_no_impact(capsys: pytest.CaptureFixture[str], store: str) -> None:
    code, out, _ = run(
        capsys, "impact", str(OLD), str(OLD), "--store", store, "--at", AT, "--format", "json"
    )
    assert code == 0
    assert json.loads(out)["changed"] == 0


def test_sampling_is_deterministic(
    capsys: pytest.CaptureFixture[str], store: str, new: Path
) -> None:
    args = ["impact", str(OLD), str(new), "--store", store, "--at", AT, "--format", "json"]
    first = run(capsys, *args, "--sample", "2", "--seed", "7")[1]
    assert json.loads(first)["assessed"] == 2
    assert run(capsys, *args, "--sample", "2", "--seed", "7")[1] == first
    assert json.loads(run(capsys, *args, "--sample", "99")[1])["assessed"] == 5


def test_progress_goes_to_stderr(capsys: pytest.CaptureFixture[str], store: str, new: Path) -> None:
    code, out, err = run(
        capsys, "impact", str(OLD), str(new), "--store", store, "--at", AT, "--progress"
    )
    assert code == 0 and "impact: 5 of 5 cases read" in err and "cases read" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-on", "everything"], "unknown gate"),
        (["--at", "yesterday"], "not an ISO 8601 time"),
        (["--at", "2021-03-02T18:00:00"], "no timezone"),
        (["--sample", "0"], "--sample"),
        (["--cases", "/nonexistent/cases.jsonl"], "No such file"),
    ],
)
def test_bad_usage_is_status_2(
    capsys: pytest.CaptureFixture[str], new: Path, args: list[str], message: str
) -> None:
    try:
        code, _, err = run(capsys, "impact", str(OLD), str(new), *args)
    except SystemExit as e:  # argparse refuses it
        code, err = int(str(e.code)), capsys.readouterr().err
    assert code == 2 and message in err


def test_an_old_the_store_does_not_keep_assesses_every_version(
    capsys: pytest.CaptureFixture[str], store: str, new: Path, tmp_path: Path
) -> None:
    # a NEW-like OLD the store does not keep: every version's cases are replayed under it,
    # and it refuses c4's rejection (refunded at 24h under it): not the cases' version
    other = tmp_path / "other.rk"
    other.write_text(new.read_text(encoding="utf-8").replace("2026-12-08", "2027-01-01"))
    code, _, err = run(capsys, "impact", str(other), str(OLD), "--store", store, "--at", AT)
    assert code == 2 and "OLD itself refuses" in err
    assert "is not a version the cases are pinned to" in err


def test_the_cases_of_new_are_new_s_own(
    capsys: pytest.CaptureFixture[str], store: str, new: Path
) -> None:
    code, out, _ = run(
        capsys, "impact", str(new), str(new), "--store", store, "--at", AT, "--format", "json"
    )
    assert code == 0 and json.loads(out)["assessed"] == 1  # c8-on-new alone


def test_the_docs_show_the_golden_report() -> None:
    """docs/live-changes.md quotes the Kuaishou report's rows as the test produces them."""
    docs = (ROOT / "docs" / "live-changes.md").read_text(encoding="utf-8")
    rows = [
        x
        for x in (GOLDEN / "kuaishou.md").read_text(encoding="utf-8").splitlines()
        if x.startswith("| c")
    ]
    assert rows and all(row in docs for row in rows)


def test_the_ci_example_runs_impact() -> None:
    import yaml

    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "github-rules.yml").read_text())
    runs = " ".join(step.get("run", "") for step in workflow["jobs"]["check"]["steps"])
    assert "rulekit impact" in runs and "--format markdown" in runs


R = ("refund", {"amount": "500.00"})
R4 = ("refund", {"amount": "400.00"})


@pytest.mark.parametrize(
    ("old", "new", "only_old", "only_new"),
    [
        ([R], [R], (), ()),
        ([R, R], [R], (R,), ()),
        ([R], [R4], (R,), (R4,)),
        ([], [R4], (), (R4,)),
    ],
)
def test_effects_differ_as_a_multiset(
    old: list[Any], new: list[Any], only_old: tuple[Any, ...], only_new: tuple[Any, ...]
) -> None:
    from rulekit.runtime.impact import _difference

    assert _difference(old, new) == (only_old, only_new)
