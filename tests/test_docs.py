"""The documentation stays in step with the code."""

from __future__ import annotations

import re

from conftest import ROOT
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
