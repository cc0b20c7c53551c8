"""The documentation stays in step with the code."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT
from rulekit.cli import main
from rulekit.diagnostics import CODES


def test_every_diagnostic_code_is_documented() -> None:
    text = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^## (RK\d{4}): ", text, re.M))
    assert documented == set(CODES), {
        "undocumented": sorted(set(CODES) - documented),
        "documented but unknown": sorted(documented - set(CODES)),
    }


def test_every_code_used_in_the_source_is_registered() -> None:
    used: set[str] = set()
    for path in (ROOT / "src" / "rulekit").rglob("*.py"):
        used.update(re.findall(r'"(RK\d{4})"', path.read_text(encoding="utf-8")))
    assert used <= set(CODES), sorted(used - set(CODES))


def test_kuaishou_worst_case_times_are_the_analysis_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/kuaishou.md shows `rulekit check --explain-times` on the shipped policy, verbatim."""
    command = "$ rulekit check --explain-times rules/kuaishou_after_sales.rk\n"
    text = (ROOT / "docs" / "kuaishou.md").read_text(encoding="utf-8")
    assert command in text
    shown = text.split(command, 1)[1].split("```", 1)[0]
    monkeypatch.chdir(ROOT)
    assert main(["check", "--explain-times", "rules/kuaishou_after_sales.rk"]) == 0
    assert capsys.readouterr().out == shown, (
        "docs/kuaishou.md is stale: paste the output of the command above into it"
    )
