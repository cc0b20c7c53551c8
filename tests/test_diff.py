"""rulekit diff: changes in words, breaking ones marked, across forms and git revisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rulekit.cli import main
from support import ROOT

RK = ROOT / "rules" / "kuaishou_after_sales.rk"


def edited(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    text = RK.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    out = tmp_path / "edited.rk"
    out.write_text(text, encoding="utf-8")
    return out


def test_twins_and_compiled_artifacts_have_no_changes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["compile", str(RK), "-o", str(tmp_path / "k.json")]) == 0
    assert main(["diff", str(RK), str(RK.with_suffix(".yaml")), "--fail-on", "any"]) == 0
    assert (
        main(["diff", str(RK.with_suffix(".yaml")), str(tmp_path / "k.json"), "--fail-on", "any"])
        == 0
    )
    assert capsys.readouterr().out.splitlines()[-1] == "no changes"


def test_changes_in_words_with_breaking_ones_marked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    new = edited(
        tmp_path,
        ("const REVIEW_WINDOW = 48h", "const REVIEW_WINDOW = 72h"),
        ("event reapply by consumer\n", ""),
        (
            '    on reapply -> awaiting_merchant cite "1, 2. the consumer modifies and resubmits the same request"\n',
            "",
        ),
        ("  final state return_expired\n", "  final state return_expired outcome expired\n"),
        ("event withdraw by consumer", "event withdraw by consumer\nevent nudge by merchant"),
    )
    assert main(["diff", str(RK), str(new)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "constants: REVIEW_WINDOW: 48h -> 72h" in out
    assert "BREAKING events: removed reapply (clients that send it will be refused)" in out
    assert "BREAKING refund_only.merchant_rejected: removed: on reapply -> awaiting_merchant" in out
    assert "return_refund.return_expired: outcome return_expired -> expired" in out
    assert "events: added nudge" in out
    assert out[-1] == "6 changes, 3 breaking"
    assert main(["diff", str(RK), str(new), "--fail-on", "breaking"]) == 1
    capsys.readouterr()
    assert main(["diff", str(RK), str(new), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["breaking"] == 3 and len(report["changes"]) == 6


def test_removed_state_and_new_required_fact_are_breaking(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    new = edited(
        tmp_path,
        ("  order.shipped: bool ", "  order.shipped: bool\n  order.channel: string\n  "),
        ("  final state not_eligible\n", ""),
        (
            "    when order.after_sales_until < now -> not_eligible",
            "    when order.after_sales_until < now -> rejected",
        ),
    )
    assert main(["diff", str(RK), str(new), "--fail-on", "breaking"]) == 1
    out = capsys.readouterr().out
    assert "BREAKING facts: added order.channel: string" in out
    assert "BREAKING exchange_repair.not_eligible: state removed (live cases may sit in it)" in out
    assert "target not_eligible -> rejected" in out


def test_bad_sides_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(RK), "missing.rk"]) == 2
    assert "missing.rk" in capsys.readouterr().err
    assert main(["diff", "NOSUCHREV:rules/kuaishou_after_sales.rk", str(RK)]) == 2
    assert "NOSUCHREV" in capsys.readouterr().err
