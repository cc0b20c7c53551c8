"""The public Python API of conditions (../shared/contracts/api.md)."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import rulekit
from rulekit import CompileError, EvaluationError, compile_expression

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
FAST_REFUND = "shop.fast_refund_enabled and since(order.paid_at) <= 6h and order.amount < 300 and not order.shipped"
DECLS = {
    "shop.fast_refund_enabled": "bool",
    "order.paid_at": "time",
    "order.amount": "money",
    "order.shipped": "bool",
}


def facts(
    amount: object = Decimal("128.00"),
    hours_ago: float = 2,
    shipped: object = False,
    enabled: object = True,
) -> dict[str, object]:
    return {
        "shop": {"fast_refund_enabled": enabled},
        "order": {
            "amount": amount,
            "paid_at": NOW - timedelta(hours=hours_ago),
            "shipped": shipped,
        },
    }


def test_contract_example() -> None:
    expr = compile_expression(
        "order.amount < 300 && !order.shipped",
        declarations={"order.amount": "money", "order.shipped": "bool"},
    )
    assert expr.evaluate({"order": {"amount": 128, "shipped": False}}) is True


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (facts(), True),
        (facts(hours_ago=6), True),  # 6h is inclusive
        (facts(hours_ago=6.0003), False),
        (facts(amount=Decimal("299.99")), True),
        (facts(amount=Decimal("300.00")), False),  # strictly under 300
        (facts(amount=300), False),
        (facts(shipped=True), False),
        (facts(enabled=False), False),
    ],
)
def test_fast_refund_boundaries(variables: dict[str, object], expected: bool) -> None:
    assert compile_expression(FAST_REFUND, DECLS).evaluate(variables, now=NOW) is expected


def test_compiling_twice_hits_the_cache() -> None:
    a = compile_expression(FAST_REFUND, DECLS)
    assert compile_expression(FAST_REFUND, dict(reversed(list(DECLS.items())))) is a
    assert compile_expression(FAST_REFUND) is not a


def test_code_is_generated_on_first_use() -> None:
    expr = rulekit.expr.expression.parse_and_check("x + 1", {"x": "int"})
    assert expr.python_source is None
    assert expr.evaluate({"x": 1}) == 2
    assert expr.python_source is not None and "def evaluate" in expr.python_source


def test_now_is_never_read_from_the_clock() -> None:
    expr = compile_expression("since(t) > 1h", {"t": "time"})
    with pytest.raises(EvaluationError, match="now"):
        expr.evaluate({"t": NOW})
    with pytest.raises(EvaluationError, match="timezone-aware"):
        expr.evaluate({"t": NOW}, now=datetime(2026, 3, 1, 12))
    assert expr.evaluate({"t": NOW - timedelta(hours=2)}, now=NOW) is True


def test_evaluation_error_names_the_subexpression_and_values() -> None:
    with pytest.raises(EvaluationError) as info:
        compile_expression("order.total / order.count > 2").evaluate(
            {"order": {"total": 10, "count": 0}}
        )
    err = info.value
    assert err.message == "division by zero"
    assert err.expression == "order.total / order.count"
    assert err.values == {"order.total": "10", "order.count": "0"}
    assert "order.total / order.count" in str(err)


def test_missing_key_is_an_evaluation_error() -> None:
    with pytest.raises(EvaluationError, match='no such key: "coupon"'):
        compile_expression("order.coupon == 1").evaluate({"order": {}})


def test_overflow_is_an_evaluation_error() -> None:
    with pytest.raises(EvaluationError, match="overflow"):
        compile_expression("x * 2", {"x": "int"}).evaluate({"x": 2**62})


@pytest.mark.parametrize(
    ("decl", "value", "message"),
    [
        ("money", 1.5, "float"),
        ("money", True, "bool"),
        ("bool", 1, "declared bool"),
        ("int", 1.0, "declared int"),
        ("int", 2**64, "overflow"),
        ("time", datetime(2026, 1, 1), "time zone"),
        ("duration", "6h", "declared duration"),
    ],
)
def test_values_of_the_wrong_type_are_reported(decl: str, value: object, message: str) -> None:
    expr = compile_expression("x == x", {"x": decl})
    with pytest.raises(EvaluationError, match=message):
        expr.evaluate({"x": value})


def test_int_is_accepted_as_money_and_double() -> None:
    assert compile_expression("m + 1", {"m": "money"}).evaluate({"m": 2}) == Decimal(3)
    assert type(compile_expression("m + 1", {"m": "money"}).evaluate({"m": 2})) is Decimal
    assert compile_expression("d / 2.0", {"d": "double"}).evaluate({"d": 3}) == 1.5


def test_money_literals_are_exact() -> None:
    expr = compile_expression(
        "amount == 299.99 && amount < 300 && amount > 299.98", {"amount": "money"}
    )
    assert expr.evaluate({"amount": Decimal("299.99")}) is True
    assert compile_expression("amount * 0.1", {"amount": "money"}).evaluate(
        {"amount": Decimal("0.3")}
    ) == Decimal("0.03")


def test_variables_must_be_a_mapping() -> None:
    with pytest.raises(EvaluationError, match="mapping"):
        compile_expression("x").evaluate([1, 2])  # type: ignore[arg-type]


def test_explain_traces_each_clause() -> None:
    explanation = compile_expression(FAST_REFUND, DECLS).explain(
        facts(amount=Decimal("412.50")), now=NOW
    )
    assert explanation.value is False and explanation.error is None
    texts = [(c.text, c.value) for c in explanation.clauses]
    assert texts == [
        ("shop.fast_refund_enabled", True),
        ("since(order.paid_at) <= 6h", True),
        ("order.amount < 300", False),
        ("not order.shipped", True),
    ]
    amount = explanation.clauses[2]
    assert amount.reads == (("order.amount", Decimal("412.50")),)
    assert "order.amount < 300 -> false   (order.amount = 412.50)" in str(explanation)


def test_explain_reports_errors_without_raising() -> None:
    explanation = compile_expression("x > 1 || y.z").explain({"x": 0, "y": {}})
    assert explanation.error is not None and "no such key" in str(explanation.error)
    assert explanation.clauses[1].error is not None


def test_serialized_expression_round_trips() -> None:
    expr = compile_expression(FAST_REFUND, DECLS)
    data = expr.to_dict()
    assert data["format"] == "rulekit.expr.expression/2" and data["hash"].startswith("sha256:")
    again = rulekit.Expression.from_dict(data)
    assert again.evaluate(facts(), now=NOW) is True
    assert again.checked.root.span == expr.checked.root.span
    assert pickle.loads(pickle.dumps(expr)).evaluate(facts(), now=NOW) is True


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(source=d["source"] + " "), "hash"),
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(format="rulekit.expr.expression/1"), "compile its source again"),
        (lambda d: d["ast"].update(node="Nope"), "not an expression node"),
        (lambda d: d["ast"].pop("left"), "malformed"),
    ],
)
def test_tampered_serialized_expression_is_a_compile_error(edit: object, message: str) -> None:
    data = compile_expression("a && b").to_dict()
    edit(data)  # type: ignore[operator]
    with pytest.raises(CompileError, match=message):
        rulekit.Expression.from_dict(data)


def test_diagnostic_fields() -> None:
    with pytest.raises(CompileError) as info:
        compile_expression(
            "order.amount <\n  ordr.limit", {"order.amount": "money", "order.limit": "money"}
        )
    (d,) = info.value.diagnostics
    assert (d.code, d.severity, d.file, d.line, d.column, d.end_line, d.end_column) == (
        "RK0201",
        "error",
        "<expression>",
        2,
        3,
        2,
        7,
    )
    assert d.help == "did you mean `order`?"
    assert d.to_dict()["code"] == "RK0201"


@pytest.mark.parametrize(
    ("decls", "message"),
    [
        ({"x": "currency"}, "unknown type `currency`"),
        ({"x": "list(int"}, "expected `)`"),
        ({"now": "time"}, "built-in"),
        ({"a..b": "int"}, "identifiers joined by dots"),
    ],
)
def test_bad_declarations(decls: dict[str, str], message: str) -> None:
    with pytest.raises(CompileError, match="RK0206") as info:
        compile_expression("1 == 1", decls)
    assert message in str(info.value)


def test_type_of_result() -> None:
    assert str(compile_expression(FAST_REFUND, DECLS).type) == "bool"
    assert str(compile_expression("order.amount * 2", DECLS).type) == "money"
    assert str(compile_expression("x").type) == "dyn"


def test_untyped_names_are_dynamic() -> None:
    expr = compile_expression("a + b")
    assert expr.evaluate({"a": 1, "b": 2}) == 3
    assert expr.evaluate({"a": "x", "b": "y"}) == "xy"
    with pytest.raises(EvaluationError, match="no such overload"):
        expr.evaluate({"a": 1, "b": "y"})


def test_every_public_name_is_its_home_module_s_object() -> None:
    """`import rulekit` loads its names on first use (so `rulekit check` does not load the
    engine and the stores); each is the very object its module defines, and `dir()` and
    `from rulekit import *` see them all."""
    import importlib
    import subprocess
    import sys

    for name in rulekit.__all__:
        home = importlib.import_module(rulekit._EXPORTS[name])
        assert getattr(rulekit, name) is getattr(home, name), name
    assert set(rulekit.__all__) <= set(dir(rulekit))
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        rulekit.nothing_here  # noqa: B018
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, rulekit; print(sorted(m for m in sys.modules if m.startswith('rulekit')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert loaded.strip() == "['rulekit']"
