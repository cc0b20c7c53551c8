"""Syntax error recovery under attack (issue 16): a hostile file (100,000 random tokens,
brackets nested 100,000 deep, a file that is all errors, characters outside the language
everywhere) is checked in time linear in its length, and reports at most
:data:`MAX_ERRORS` errors, the last noting how many more there were. Recovery's own work
(popping the parser's stack, trying insertions, describing errors) stays within its
budget on each of them; a text that would spend it is stopped, and says so.
"""

from __future__ import annotations

import random
import time

import pytest

from rulekit.analysis import check_source
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.source import Source
from rulekit.expr import parser as expr_parser
from rulekit.expr import recovery
from rulekit.expr.recovery import MAX_ERRORS

#: Generous, for a loaded machine: each attack takes a few seconds at most.
BOUND_SECONDS = 30.0
GIVEN_UP = "the file is too broken to look further: fix these errors first"

_WORDS = "policy state initial final on when after at emit set cite workflow facts const event"
_MORE_WORDS = (
    "by actors effect every except use clock value condition stay and or not x order.amount"
)
_SYMBOLS = '{ } ( ) [ ] -> = == , : . + - * ! ? # @ & 1 48h 2.5 "s" "open \' '
VOCABULARY = [*_WORDS.split(), *_MORE_WORDS.split(), *_SYMBOLS.split(), "\n", "\n", "1 month"]


def _random_tokens(n: int, seed: int = 16) -> str:
    rng = random.Random(seed)
    return "policy p\n" + " ".join(rng.choice(VOCABULARY) for _ in range(n))


ATTACKS = {
    "100,000 random tokens": _random_tokens(100_000),
    "100,000 open parentheses": "policy p\nconst a = " + "(" * 100_000,
    "brackets of every kind nested 90,000 deep": "policy p\nconst a = " + "([{" * 30_000,
    "30,000 open braces": "policy p\n" + "{" * 30_000,
    "50,000 parentheses, then 50,000 lines of names": (
        "policy p\nconst a = " + "(" * 50_000 + "\nx" * 50_000
    ),
    "50,000 parentheses, then 50,000 declarations": (
        "policy p\nconst a = " + "(" * 50_000 + "\nconst" * 50_000
    ),
    "all errors: 20,000 broken constants": "policy p\n" + "const a = )\n" * 20_000,
    "all errors: 50,000 closing braces": "policy p\n" + "}\n" * 50_000,
    "all errors: 10,000 unterminated strings": "policy p\n" + 'const a = "x\n' * 10_000,
    "30,000 characters outside the language": "policy p\n" + "#" * 30_000,
}


def _check(text: str) -> tuple[list[Diagnostic], float]:
    start = time.perf_counter()
    result = check_source(text, "rk", "hostile.rk")
    return result.diagnostics, time.perf_counter() - start


@pytest.mark.parametrize("text", ATTACKS.values(), ids=ATTACKS.keys())
def test_a_hostile_file_is_checked_quickly_with_a_bounded_report(text: str) -> None:
    found, seconds = _check(text)
    assert seconds < BOUND_SECONDS
    assert 1 <= len(found) <= MAX_ERRORS
    assert all(d.code.startswith("RK01") and d.severity == "error" for d in found)
    assert all(GIVEN_UP not in d.notes for d in found)  # within recovery's budget
    lines = text.count("\n") + 1
    assert all(1 <= d.line <= lines and 1 <= d.end_line <= lines for d in found)


def test_past_the_cap_the_last_error_says_how_many_more() -> None:
    found, _ = _check(ATTACKS["all errors: 20,000 broken constants"])
    assert len(found) == MAX_ERRORS
    assert found[-1].notes == (f"{20_000 - MAX_ERRORS} more syntax errors not shown",)


def test_recovery_time_grows_linearly() -> None:
    """Four times the tokens take about four times as long (quadratic would be sixteen)."""

    def best(n: int) -> float:
        return min(_check(_random_tokens(n, seed))[1] for seed in (1, 2))

    small, large = best(10_000), best(40_000)
    assert large < 10 * small + 0.5


@pytest.mark.parametrize(
    "text", ["(" * 100_000, "a < < b and " * 5_000, "#" * 30_000, "a " * 30_000]
)
def test_a_hostile_condition_is_parsed_quickly_with_a_bounded_report(text: str) -> None:
    start = time.perf_counter()
    result = expr_parser.parse(Source(text))
    assert time.perf_counter() - start < BOUND_SECONDS
    assert result.ast is None and 1 <= len(result.diagnostics) <= MAX_ERRORS


def test_recovery_that_would_spend_its_budget_stops_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recovery, "WORK_PER_CHARACTER", 0)
    monkeypatch.setattr(recovery, "WORK_BASE", 50)
    found, _ = _check(ATTACKS["50,000 parentheses, then 50,000 declarations"])
    assert found and found[-1].notes[-1] == GIVEN_UP
