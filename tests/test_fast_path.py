"""The compiled fast path: ``Expression.evaluate`` and ``Expression.function``, and the
guards the generated code keeps or leaves out (issue 14).

Each guard the code generator leaves out is left out because something else
proves it; each test here feeds the value at that boundary and holds the fast
path to the reference interpreter's answer (the conformance tables and the
property tests hold both paths to CEL everywhere else).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import same_value
from rulekit import EvaluationError, compile_expression
from rulekit.expr.expression import Expression, parse_and_check

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


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
