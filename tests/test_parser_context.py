"""Each parse has its own context (no module-level state, no lock): many documents can be
parsed at once, in threads, as a language server does, with the results of parsing them
one at a time (issue 13: "a parse should own its context")."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from rulekit.analysis import check_source
from rulekit.core.diagnostics import render
from rulekit.core.source import Source
from rulekit.expr import parser as expr_parser
from support import ROOT

# recovered problems (`=` read as `==`), parenthesized literals (not folded), plain errors
EXPRESSIONS = [
    *(f"a.x = {i} && -({i}) < b" for i in range(60)),
    *(f"[{i}, ({i})].map(v, -(v)) == [-{i}]" for i in range(60)),
    *(f"a.x + {i} <" for i in range(30)),
]
POLICY = (ROOT / "rules" / "kuaishou_after_sales.rk").read_text(encoding="utf-8")


def _expression(text: str) -> str:
    result = expr_parser.parse(Source(text))
    shown = [render(d, text) for d in result.diagnostics]
    return f"{result.ast is not None} {shown}"


def _policy(i: int) -> str:
    text = POLICY if i % 2 else POLICY.replace("approve by merchant", "approve by merchnt = 1")
    result = check_source(text, "rk", f"policy{i}.rk")
    return result.render() + str(result.policy is not None)


def test_expressions_parsed_in_threads_as_one_at_a_time() -> None:
    alone = [_expression(t) for t in EXPRESSIONS]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(_expression, EXPRESSIONS * 4))
    assert together == alone * 4


def test_policies_parsed_in_threads_as_one_at_a_time() -> None:
    alone = [_policy(i) for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(_policy, list(range(8)) * 3))
    assert together == alone * 3
    assert "RK0101" in alone[0] and alone[1].endswith("True")
