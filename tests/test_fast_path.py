"""The compiled fast path: ``Expression.evaluate`` and ``Expression.function``, and the
guards the generated code keeps or leaves out (issue 14).

Each guard the code generator leaves out is left out because something else
proves it; each test here feeds the value at that boundary and holds the fast
path to the reference interpreter's answer (the conformance tables and the
property tests hold both paths to CEL everywhere else).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntFlag as _IntFlag
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rulekit import EvaluationError, compile_expression
from rulekit.expr import codegen
from rulekit.expr.expression import Expression, parse_and_check
from support import same_value

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


class IntFlag(_IntFlag):
    A = 1


def both(expr: Expression, variables: Mapping[str, Any] | None, now: datetime | None) -> Any:
    """The value from the compiled function, after checking that evaluate(), the
    function and the reference interpreter agree on it (value or error message)."""
    outcomes = []
    for run in (expr.evaluate, expr.function, lambda v, n: expr._slow(v, n)):
        try:
            outcomes.append(("value", run(variables, now)))
        except EvaluationError as e:
            outcomes.append(("error", e.message))
    kind, value = outcomes[0]
    for other_kind, other in outcomes[1:]:
        assert other_kind == kind, outcomes
        assert same_value(other, value) if kind == "value" else other == value, outcomes
    if kind == "error":
        raise EvaluationError(value)
    return value


def fast_only(expr: Expression) -> Any:
    """The generated code without its fallback: it answers, or raises AssertionError
    where it would have handed over to the interpreter."""

    def no_fallback(variables: Any, now: Any) -> Any:
        raise AssertionError("handed over to the interpreter")

    function, _ = codegen.build(expr.checked, no_fallback, expr._interp.stopped)
    return function


# -- evaluate is a method; function is the compiled function ------------------------------


def test_evaluate_is_a_real_method_with_its_signature_and_docstring() -> None:
    assert inspect.isfunction(Expression.evaluate)
    assert list(inspect.signature(Expression.evaluate).parameters) == [
        "self",
        "variables",
        "now",
    ]
    assert "EvaluationError" in (Expression.evaluate.__doc__ or "")
    expr = compile_expression("x + 1", {"x": "int"})
    assert inspect.ismethod(expr.evaluate)


def test_function_is_generated_on_first_read_and_is_the_same_function_after() -> None:
    expr = parse_and_check("x * 2", {"x": "int"})
    assert expr.python_source is None
    fn = expr.function
    assert expr.python_source is not None and "def evaluate" in expr.python_source
    assert expr.function is fn
    assert fn({"x": 21}) == 42
    assert fn({"x": 21}, NOW) == expr.evaluate({"x": 21}, now=NOW) == 42


def test_none_means_no_variables_before_and_after_code_generation() -> None:
    constant = parse_and_check("1 + 2")
    assert constant.evaluate(None) == 3  # generates the code
    assert constant.evaluate(None) == 3  # runs it
    assert constant.function(None) == constant.function() == 3
    reads = parse_and_check("x", {"x": "int"})
    messages = []
    for _ in range(2):
        with pytest.raises(EvaluationError) as info:
            reads.evaluate(None)
        messages.append(info.value.message)
    assert messages[0] == messages[1]


def test_function_raises_what_evaluate_raises() -> None:
    expr = compile_expression("order.total / order.count > 2")
    with pytest.raises(EvaluationError) as by_method:
        expr.evaluate({"order": {"total": 10, "count": 0}})
    with pytest.raises(EvaluationError) as by_function:
        expr.function({"order": {"total": 10, "count": 0}})
    assert str(by_method.value) == str(by_function.value)
    with pytest.raises(EvaluationError, match="mapping"):
        expr.function([1, 2])  # type: ignore[arg-type]


# -- guards the generated code keeps cheaper, or leaves out -------------------------------


def test_the_fast_path_generated_what_the_tests_below_hold_to_the_interpreter() -> None:
    """The shapes the tests below rely on (if codegen stops emitting them, the tests
    below no longer test a dropped guard and need revisiting)."""
    expr = compile_expression("since(t) < 1h && now - t > 0s && b && x + 1 > 0 && m < 300", DECLS)
    expr.compile()
    source = expr.python_source
    assert source is not None
    assert (
        "(now - (_g if (_g := variables['t']).__class__ is _datetime else _in_timestamp(_g)))"
        in source
    )
    assert "((_g := variables['b']) is True or (_g is not False and _bail()))" in source
    assert ".bit_length() < 64 else _check_int(_g))" in source
    assert "< _k" in source and "< 300" not in source  # 300 is a Decimal constant


DECLS = {"t": "time", "u": "time", "b": "bool", "x": "int", "y": "int", "m": "money"}
BERLIN = ZoneInfo("Europe/Berlin")
# 2026-10-25 02:30 happens twice in Berlin (fold 0: +02:00, fold 1: +01:00);
# 2026-03-29 02:30 does not happen at all.
FOLD_0 = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)
FOLD_1 = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN)
GAP = datetime(2026, 3, 29, 2, 30, tzinfo=BERLIN)


class OddDatetime(datetime):
    """A datetime subclass answering subtraction its own way: must not reach Python's `-`."""

    def __rsub__(self, other: object) -> timedelta:
        return timedelta(0)

    def __sub__(self, other: object) -> timedelta:  # type: ignore[override]
        return timedelta(0)


AFTER_FOLD = datetime(2026, 10, 25, 1, 45, tzinfo=UTC)  # 15 minutes after FOLD_1's instant


@pytest.mark.parametrize("source", ["since(t)", "now - t", "since(t) < 1h", "now - t <= 45m"])
@pytest.mark.parametrize(
    ("t", "now"),
    [
        # why the class check alone suffices for t: `now` is checked to be a fixed offset,
        # so Python subtracts instants whatever t's zone; these are t's boundary values
        (FOLD_0, AFTER_FOLD),
        (FOLD_1, AFTER_FOLD),
        (GAP, NOW),
        (FOLD_1, AFTER_FOLD.astimezone(timezone(timedelta(hours=-5)))),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), AFTER_FOLD),
        (OddDatetime(2026, 10, 25, 1, 30, tzinfo=UTC), AFTER_FOLD),
        (datetime(2026, 10, 25, 1, 30), AFTER_FOLD),  # naive: an error on both paths
        ("2026-10-25T01:30:00Z", AFTER_FOLD),  # not a datetime: an error on both paths
        (timedelta(hours=1), AFTER_FOLD),  # `now - timedelta` is a datetime: must not pass
        # and `now`'s: a named zone (same zone as t, and another), naive, missing
        (FOLD_1, datetime(2026, 10, 25, 2, 45, fold=1, tzinfo=BERLIN)),
        (FOLD_0, datetime(2026, 10, 25, 2, 45, fold=1, tzinfo=BERLIN)),  # wall 15m, instants 75m
        (
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
            datetime(2026, 10, 25, 2, 45, fold=1, tzinfo=BERLIN),
        ),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 45)),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), None),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), OddDatetime(2026, 10, 25, 1, 45, tzinfo=UTC)),
    ],
)
def test_a_time_subtracted_from_now_is_subtracted_as_an_instant(
    source: str, t: object, now: datetime | None
) -> None:
    expr = parse_and_check(source, DECLS)
    try:
        value = both(expr, {"t": t}, now)
    except EvaluationError:
        return  # both paths agreed on the error
    fixed_now = type(now) is datetime and type(now.tzinfo) is timezone
    if type(t) is datetime and t.tzinfo is not None and fixed_now:
        # the case the dropped check is about: answered by the fast path, as instants
        assert same_value(fast_only(expr)({"t": t}, now), value)
        if source in ("since(t)", "now - t"):
            assert value == now - t.astimezone(UTC)


@pytest.mark.parametrize("value", [True, False, 1, 0, None, "true", [], 1.0])
@pytest.mark.parametrize(
    "source",
    ["b", "!b", "b && x > 0", "x > 0 && b", "!b || x > 0", "b ? 1 : 2", "[b].all(v, v)"],
)
def test_a_bool_is_exactly_true_or_false_or_goes_to_the_interpreter(
    source: str, value: object
) -> None:
    expr = parse_and_check(source, DECLS)
    with contextlib.suppress(EvaluationError):
        result = both(expr, {"b": value, "x": 1}, None)
        assert type(result) in (bool, int)
    if value is True or value is False:
        fast_only(expr)({"b": value, "x": 1})


INT64 = 2**63


@pytest.mark.parametrize(
    "value",
    [0, 1, -1, INT64 - 1, -INT64, INT64, -INT64 - 1, 2**64, True, False, 1.0, IntFlag.A],
)
@pytest.mark.parametrize(
    "source", ["x", "x == x", "x < 1", "-x", "x + 0", "x - 1", "x * 1", "x * -1"]
)
def test_an_int_is_within_int64_and_an_int_result_too(source: str, value: object) -> None:
    """bit_length() < 64 is int64 but for -2**63 itself, which goes to _in_int or
    _check_int and is accepted there; every other value outside is an overflow."""
    expr = parse_and_check(source, DECLS)
    try:
        result = both(expr, {"x": value}, None)
    except EvaluationError as e:
        assert not (type(value) is int and -INT64 <= value < INT64) or "overflow" in str(e)
        return
    if type(result) is int:
        assert -INT64 <= result < INT64
    if type(value) is int and -INT64 < value < INT64 and type(result) is int and result != -INT64:
        assert fast_only(expr)({"x": value}) == result


def test_int64_edges_of_results() -> None:
    assert both(parse_and_check("x * y", DECLS), {"x": -(2**62), "y": 2}, None) == -INT64
    assert both(parse_and_check("x - 1", DECLS), {"x": -INT64 + 1}, None) == -INT64
    assert both(parse_and_check("x + 1", DECLS), {"x": INT64 - 2}, None) == INT64 - 1
    for source, x in (("x + 1", INT64 - 1), ("x - 1", -INT64), ("-x", -INT64), ("x * 2", 2**62)):
        with pytest.raises(EvaluationError, match="overflow"):
            both(parse_and_check(source, DECLS), {"x": x}, None)


@pytest.mark.parametrize(
    "value",
    [
        Decimal("299.99"),
        Decimal("300"),
        Decimal("300.00"),
        Decimal("3E+2"),
        Decimal("300.01"),
        Decimal("-0"),
        299,
        300,
        301,
        Decimal("Infinity"),
        Decimal("NaN"),
        299.5,
        True,
    ],
)
@pytest.mark.parametrize("source", ["m < 300", "m == 300", "300 <= m", "m != 300", "m > 0"])
def test_money_beside_an_int_literal_compares_exactly(source: str, value: object) -> None:
    expr = parse_and_check(source, DECLS)
    with contextlib.suppress(EvaluationError):
        assert type(both(expr, {"m": value}, None)) is bool
    if type(value) is Decimal and value.is_finite():
        assert fast_only(expr)({"m": value}) is both(expr, {"m": value}, None)


def test_one_guard_local_serves_nested_guards() -> None:
    """Every guard assigns `_g` and reads it back before anything else runs, so a guard
    inside another's operand, beside it, or in a macro's lambda cannot see another's value."""
    decls = {"mm": "map(string, int)", "k": "string", "l": "list(int)", "x": "int", "b": "bool"}
    cases = [
        ("mm[k] + x", {"mm": {"a": 1}, "k": "a", "x": 2}, 3),
        ("x + mm[k]", {"mm": {"a": 1}, "k": "a", "x": 2}, 3),
        ("l.exists(v, v == x) && b", {"l": [1, 2, 3], "x": 3, "b": True}, True),
        ("l.map(v, v + x)", {"l": [1, 2], "x": 10}, [11, 12]),
        ("(b ? x : mm[k]) + x", {"mm": {"a": 1}, "k": "a", "x": 2, "b": False}, 3),
    ]
    for source, variables, expected in cases:
        assert same_value(both(parse_and_check(source, decls), variables, None), expected)
