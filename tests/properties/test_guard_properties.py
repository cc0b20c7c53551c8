"""Hypothesis properties of the guard analysis (rulekit.analysis.guards) against brute force.

Random conditions over a few typed names (int, double, money, duration, bool, enum),
compared with constants and joined by && / || / !, are decided by the analysis and
checked with the runtime evaluator (``Expression.evaluate``) over sampled values: each
constant a condition uses, the values just beside it, zero, and for doubles the
infinities and NaN.

1. "can both hold": the witness makes both conditions true.
2. "never both": no sampled assignment makes both true.
3. "never holds" (one condition): no sampled assignment makes it true.
"""

from __future__ import annotations

import itertools
import math
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from rulekit.analysis.guards import Condition, Verdict, satisfiable
from rulekit.expr.expression import Expression, parse_and_check
from rulekit.expr.types import enum_of

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

COLORS = ("red", "green", "blue")
DECLS: dict[str, Any] = {
    "i": "int",
    "d": "double",
    "m": "money",
    "u": "duration",
    "f": "bool",
    "e": enum_of("Color", COLORS),
}
#: name -> constants a condition may compare it with (as written, and as a value).
CONSTANTS: dict[str, list[tuple[str, Any]]] = {
    "i": [(str(k), k) for k in (-2, 0, 1, 3)] + [("2.5", 2.5)],
    "d": [("-1.5", -1.5), ("0.0", 0.0), ("2.5", 2.5), ("3", 3)],
    "m": [
        ("-1.25", Decimal("-1.25")),
        ("0", Decimal(0)),
        ("2.5", Decimal("2.5")),
        ("3", Decimal(3)),
    ],
    "u": [("0s", timedelta(0)), ("90m", timedelta(minutes=90)), ("2h", timedelta(hours=2))],
}
ORDERED_OPS = ("<", "<=", ">", ">=", "==", "!=")


@st.composite
def atoms(draw: st.DrawFn, names: list[str]) -> str:
    name = draw(st.sampled_from(names))
    if name == "f":
        return draw(st.sampled_from(["f", "!f", "f == true", "f != true"]))
    if name == "e":
        if draw(st.booleans()):
            members = draw(st.lists(st.sampled_from(COLORS), min_size=1, max_size=2, unique=True))
            return f"e in [{', '.join(repr(m) for m in members)}]"
        return f"e {draw(st.sampled_from(('==', '!=')))} {draw(st.sampled_from(COLORS))!r}"
    text, _ = draw(st.sampled_from(CONSTANTS[name]))
    op = draw(st.sampled_from(ORDERED_OPS))
    if draw(st.booleans()):
        return f"{text} {op} {name}"  # the constant on the left
    return f"{name} {op} {text}"


def conditions(names: list[str]) -> st.SearchStrategy[str]:
    return st.recursive(
        atoms(names),
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(("&&", "||")), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            inner.map(lambda c: f"!({c})"),
        ),
        max_leaves=4,
    )


def samples(name: str) -> list[Any]:
    """Values of ``name`` worth trying: each constant, its neighbours, zero (and specials)."""
    if name == "f":
        return [False, True]
    if name == "e":
        return list(COLORS)
    values = [v for _, v in CONSTANTS[name]]
    if name == "i":
        return sorted({int(x) + k for x in values for k in (-1, 0, 1)} | {0})
    if name == "d":
        near = {math.nextafter(float(x), s) for x in values for s in (-math.inf, math.inf)}
        return [
            *sorted({float(x) for x in values} | near | {0.0, 1.0, -math.inf, math.inf}),
            math.nan,
        ]
    if name == "m":
        cent = Decimal("0.01")
        return sorted({x + k * cent for x in values for k in (-1, 0, 1)} | {Decimal(0)})
    us = timedelta(microseconds=1)
    return sorted({x + k * us for x in values for k in (-1, 0, 1)})


def holds(e: Expression, variables: dict[str, Any]) -> bool:
    try:
        return e.evaluate(variables) is True
    except Exception:  # an evaluation error: the condition does not hold
        return False


def check(texts: list[str]) -> Verdict:
    exprs = [parse_and_check(t, DECLS) for t in texts]
    verdict = satisfiable([(Condition(e), True) for e in exprs])
    note(f"{texts} -> {verdict}")
    event(f"{len(texts)} condition(s): {verdict.answer}")
    names = sorted({n for e in exprs for n in e.variables})
    if verdict.answer == "yes":
        witness = dict(verdict.witness)
        filled = {n: witness.get(n, samples(n)[0]) for n in names}
        assert all(holds(e, filled) for e in exprs), (texts, witness)
    elif verdict.answer == "no":
        for values in itertools.product(*(samples(n) for n in names)):
            assignment = dict(zip(names, values, strict=True))
            assert not all(holds(e, assignment) for e in exprs), (texts, assignment)
    return verdict


names_used = st.lists(st.sampled_from(sorted(DECLS)), min_size=1, max_size=3, unique=True)


@PROPS
@given(st.data())
def test_two_conditions_match_brute_force(data: st.DataObject) -> None:
    names = data.draw(names_used)
    first, second = data.draw(conditions(names)), data.draw(conditions(names))
    verdict = check([first, second])
    assert verdict.answer != "unknown", "every atom here is one the analysis decides"


@PROPS
@given(st.data())
def test_one_condition_matches_brute_force(data: st.DataObject) -> None:
    names = data.draw(names_used)
    verdict = check([data.draw(conditions(names))])
    assert verdict.answer != "unknown"
