"""The guard analysis (rulekit.analysis.guards) as a table: two conditions -> can they both hold.

Each row: the first condition, the second (None: the first on its own), the answer,
and for "yes" the witness expected. Names are declared in DECLS; ``e`` is an enum.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from rulekit.analysis.guards import MAX_TERMS, Condition, actor_var, satisfiable
from rulekit.expr.expression import parse_and_check
from rulekit.expr.types import enum_of

DECLS: dict[str, Any] = {
    "i": "int",
    "d": "double",
    "m": "money",
    "u": "duration",
    "f": "bool",
    "s": "string",
    "t": "time",
    "o.x": "int",
    "e": enum_of("Color", ("red", "green", "blue")),
    "actor": enum_of("actor", ("consumer", "merchant")),
}

NOW = datetime(2025, 1, 1, tzinfo=UTC)

# (first, second or None, answer, witness for "yes" or None to skip comparing it)
ROWS: list[tuple[str, str | None, str, dict[str, Any] | None]] = [
    # int: whole numbers, int64 range
    ("i > 1", "i < 2", "no", None),
    ("i > 1", "i < 3", "yes", {"i": 2}),
    ("i >= 2", "i <= 2", "yes", {"i": 2}),
    ("i > 9223372036854775807", None, "no", None),
    ("i < 2.5", "i > 2", "no", None),
    ("i == 2.5", None, "no", None),
    ("i != 0", "i in [0, 1]", "yes", {"i": 1}),
    ("i in [1, 2]", "!(i in [1, 2])", "no", None),
    # double: dense enough, NaN and the infinities
    ("d > 1.0", "d < 2.0", "yes", {"d": 1.5}),
    ("d > 1.0", "d < 1.0000000000000002", "no", None),
    ("!(d > 5.0)", "!(d <= 5.0)", "yes", None),  # NaN
    ("d > 5.0", "d <= 5.0", "no", None),
    ("d < 1", "d > -1", "yes", {"d": 0.0}),
    # money: exact decimals
    ("m > 1", "m < 2", "yes", {"m": Decimal("1.5")}),
    ("m > 299.99", "m < 300", "yes", None),
    ("m > 1.5", "m <= 1.5", "no", None),
    ("m >= 100", "m < 500", "yes", {"m": Decimal(100)}),
    # durations and times
    ("u > 90m", "u < 2h", "yes", {"u": timedelta(minutes=90, microseconds=1)}),
    ("u > 90m", "u <= duration('1h30m')", "no", None),
    ("since(t) <= 6h", "since(t) > 6h", "no", None),
    ("since(t) > 6h", "now - t < 7h", "yes", None),
    ("t < now", "t >= now", "no", None),
    ("now > t", "since(t) <= duration('0s')", "no", None),
    (
        "t < timestamp('2025-01-01T00:00:00Z')",
        "t >= timestamp('2025-01-01T08:00:00+08:00')",
        "no",
        None,
    ),
    # bools, strings, enums
    ("f", "!f", "no", None),
    ("f == true", "f", "yes", {"f": True}),
    ("s == 'a'", "s != 'a'", "no", None),
    ("s != 'a'", "s != 'b'", "yes", {"s": ""}),
    ("s in ['a', 'b']", "s == 'b'", "yes", {"s": "b"}),
    ("e == 'red'", "e == 'green'", "no", None),
    ("e != 'red' && e != 'green'", None, "yes", {"e": "blue"}),
    ("e != 'red' && e != 'green'", "e != 'blue'", "no", None),
    ("actor == 'merchant'", "actor != 'consumer'", "yes", {"actor": "merchant"}),
    # has() and nested facts
    ("has(o.x) && o.x > 3", "o.x < 5", "yes", {"has(o.x)": True, "o.x": 4}),
    ("has(o.x)", "!has(o.x)", "no", None),
    # structure: constants fold, or/not distribute
    ("i > 1 || i < -1", "i == 0", "no", None),
    ("!(i > 1 || f)", "i == 1", "yes", {"i": 1, "f": False}),
    ("true", "false", "no", None),
    ("1 < 2", "i == 3", "yes", {"i": 3}),
    # unknown: beyond the analysis, never a guess
    ("i * 2 > 3", "i >= 5", "unknown", None),
    ("i + 1 > 2", "i < 0", "unknown", None),
    ("i == o.x", None, "unknown", None),
    ("s.startsWith('a')", None, "unknown", None),
    ("[1, 2].exists(x, x == i)", None, "unknown", None),
    # ...but a contradiction elsewhere still decides
    ("i * 2 > 3 && i < 0", "i >= 0", "no", None),
    ("s.startsWith('a')", "!s.startsWith('a')", "no", None),
]


def condition(text: str) -> Condition:
    return Condition(parse_and_check(text, DECLS))


@pytest.mark.parametrize(
    ("first", "second", "answer", "witness"), ROWS, ids=[f"{r[0]} | {r[1]}" for r in ROWS]
)
def test_decision(
    first: str, second: str | None, answer: str, witness: dict[str, Any] | None
) -> None:
    parts = [(condition(first), True)] + ([(condition(second), True)] if second else [])
    verdict = satisfiable(parts)
    assert verdict.answer == answer, verdict
    if witness is not None:
        assert dict(verdict.witness) == witness
    if answer == "unknown":
        assert verdict.unknown


def test_negation_and_given_values() -> None:
    earlier = [(condition("e == 'red'"), False), (condition("e == 'green'"), False)]
    assert satisfiable([(condition("e != 'blue'"), True), *earlier]).answer == "no"
    assert satisfiable([(condition("e != 'red'"), True), *earlier]).witness == (("e", "blue"),)
    actor = actor_var(("consumer", "merchant"))
    # `given` holds the very `actor` the condition reads: same name, kind and values
    merchant = condition("actor == 'merchant'")
    assert satisfiable([(merchant, True)], {actor: ("consumer",)}).answer == "no"
    assert satisfiable([(merchant, True)], {actor: ("merchant",)}).answer == "yes"


def test_no_condition_always_holds() -> None:
    always = Condition(None)
    assert satisfiable([(always, True)]).answer == "yes"
    assert satisfiable([(condition("i > 0"), True), (always, False)]).answer == "no"


def test_too_many_cases_is_unknown() -> None:
    # (a1 || b1) && (a2 || b2) && ... multiplies out to 2**n terms
    n = MAX_TERMS.bit_length() + 1
    text = " && ".join(f"(i != {k} || d != {k}.0)" for k in range(n))
    assert satisfiable([(condition(text), True)]).answer == "unknown"
    assert satisfiable([(condition(text), False)]).answer == "yes"  # its negation is small


def test_since_and_time_together_are_confirmed_or_unknown() -> None:
    # t held both directly and through since(t): the witness is checked, never trusted blindly
    verdict = satisfiable(
        [
            (condition("t > timestamp('2030-01-01T00:00:00Z')"), True),
            (condition("since(t) > 1h"), True),
        ]
    )
    assert verdict.answer in ("yes", "unknown")
    if verdict.answer == "yes":
        w = dict(verdict.witness)
        assert w["t"] > datetime(2030, 1, 1, tzinfo=UTC)
