"""Shared test helpers: paths to the data folders and strict value comparison.

Tests import it as ``from support import ROOT, TESTS, same_value``: pytest puts
``tests/`` on ``sys.path`` (``pythonpath`` in pyproject.toml's pytest options), so this
works whatever the import mode. Fixtures and hooks live in the conftest.py files; plain
helpers live here (a conftest is not a module to import from).
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import lark

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def same_value(a: Any, b: Any) -> bool:
    """Equal values of the same Python type (NaN equals NaN; containers compared strictly)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(
            type(k) is type(next(k2 for k2 in b if k2 == k)) and same_value(a[k], b[k]) for k in a
        )
    if isinstance(a, datetime):
        return a == b
    return bool(a == b)


@cache
def _rk_lexer() -> tuple[lark.Lark, list[str]]:
    from rulekit.core.grammars import grammar_text

    found: list[str] = []
    return lark.Lark(
        grammar_text("rules.lark") + "\n" + grammar_text("cel.lark"),
        start="policy",
        parser="lalr",
        lexer_callbacks={"COMMENT": lambda t: found.append(str(t).rstrip())},
    ), found


def rk_comments(text: str) -> list[str]:
    """The comments of a .rk policy, in order, as Lark's own lexer finds them (not
    rulekit's: the formatter's tests check it against an independent reading)."""
    parser, found = _rk_lexer()
    found.clear()
    parser.parse(text)
    return list(found)
