"""CEL conformance, as data: tests/conformance/*.yaml, one file per section of
the language definition (google/cel-spec doc/langdef.md) and of our extensions.

Each case gives an expression and its expected value (itself written as a CEL
expression), an evaluation error, or a compile error; skipped cases say why.
Every case is checked twice: through the compiled fast path and through the
reference interpreter alone, so both stay faithful to the language.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rulekit import CompileError, EvaluationError, compile_expression
from rulekit.expr import stdlib
from support import TESTS, same_value

FILES = sorted((TESTS / "conformance").glob("*.yaml"))
RESULT_KEYS = ("value", "error", "compile_error")


def _load() -> list[Any]:
    params = []
    for path in FILES:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in doc["tests"]:
            marks = [pytest.mark.skip(reason=case["skip"])] if "skip" in case else []
            params.append(pytest.param(path, case, id=f"{path.stem}::{case['name']}", marks=marks))
    return params


CASES = _load()


def _cel(text: str) -> Any:
    return compile_expression(text).evaluate({})


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_table_is_well_formed(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert set(doc) >= {"section", "tests"}, "each table names its section and lists tests"
    names = [c["name"] for c in doc["tests"]]
    assert len(names) == len(set(names)), "test names are unique within a table"
    for case in doc["tests"]:
        assert isinstance(case.get("expr"), str), case["name"]
        assert sum(k in case for k in RESULT_KEYS) == 1, (
            f"{case['name']}: exactly one of {RESULT_KEYS}"
        )


@pytest.mark.parametrize(("path", "case"), CASES)
def test_case(path: Path, case: dict[str, Any]) -> None:
    decls = case.get("decls")
    if "compile_error" in case:
        with pytest.raises(CompileError) as info:
            compile_expression(case["expr"], decls)
        if case["compile_error"] is not True:
            assert case["compile_error"] in [d.code for d in info.value.diagnostics]
        return
    expr = compile_expression(case["expr"], decls)
    bindings = {name: _cel(text) for name, text in (case.get("bindings") or {}).items()}
    now = stdlib.parse_timestamp(case["now"]) if "now" in case else None
    for evaluate in (expr.evaluate, expr._interp.evaluate):
        if "error" in case:
            with pytest.raises(EvaluationError) as err:
                evaluate(bindings, now)
            assert case["error"].lower() in str(err.value).lower()
        else:
            expected = _cel(case["value"])
            actual = evaluate(bindings, now)
            assert same_value(actual, expected), (
                f"{case['expr']} gave {actual!r}, expected {expected!r}"
            )
