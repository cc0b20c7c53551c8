"""Golden diagnostics: each broken expression in tests/golden/expressions/*.cel
sits beside the exact output authors see (*.out).

A `.cel` file may declare names in comment lines (`// declare order.amount:
money`); with none, names are untyped. To accept new output after a
deliberate wording change: `UPDATE_GOLDEN=1 ./dev test tests/test_golden_diagnostics.py`,
then review the diff like any other change.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import TESTS
from rulekit import CompileError
from rulekit.expression import parse_and_check
from rulekit.source import Source

GOLDEN = TESTS / "golden" / "expressions"
CASES = sorted(GOLDEN.glob("*.cel"))
DECLARE = re.compile(r"^//\s*declare\s+([\w.]+)\s*:\s*(.+?)\s*$", re.M)


def _render(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    decls = dict(DECLARE.findall(text)) or None
    try:
        parse_and_check(Source(text, path.name), decls)
    except CompileError as e:
        codes = " ".join(d.code for d in e.diagnostics)
        return f"codes: {codes}\n\n{e.rendered}\n"
    return "compiled without errors\n"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(path: Path) -> None:
    actual = _render(path)
    expected_path = path.with_suffix(".out")
    if os.environ.get("UPDATE_GOLDEN"):
        expected_path.write_text(actual, encoding="utf-8")
    assert expected_path.exists(), (
        f"no golden output yet: run with UPDATE_GOLDEN=1 and review {expected_path}"
    )
    assert actual == expected_path.read_text(encoding="utf-8")


def test_every_code_has_a_golden_case() -> None:
    from rulekit.diagnostics import CODES

    seen = set()
    for out in GOLDEN.glob("*.out"):
        first = out.read_text(encoding="utf-8").splitlines()[0]
        seen.update(first.removeprefix("codes: ").split())
    expression_codes = {c for c in CODES if c.startswith(("RK01", "RK02"))}
    assert expression_codes - seen == set(), "codes without a golden case"
