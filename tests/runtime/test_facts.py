"""Facts on open (the invalid_fact table), money read exactly, payload validation."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

import rulekit

from .helpers import CST, MONEY_SUM, T0, engine_for, refused

FACTS = """
policy t.facts
facts {
  order.amount: money
  order.paid_at: time
  order.window: duration
  order.kind: Kind
  order.count: int
  order.tags: list(string)
  note: string?
}
enum Kind { goods, service }
actors consumer
event poke by consumer
effect refund(amount: money)
workflow w {
  initial state a {
    on poke when order.amount < 300 -> b emit refund(amount: order.amount)
  }
  final state b
}
"""
GOOD_FACTS: dict[str, Any] = {
    "order": {
        "amount": "128.00",
        "paid_at": "2026-03-01T10:00:00+08:00",
        "window": "24h",
        "kind": "goods",
        "count": 1,
        "tags": ["a"],
    }
}


_DROP = object()


def with_fact(path: str, value: Any) -> dict[str, Any]:
    """GOOD_FACTS with ``path`` (dotted) set to ``value``, or removed when it is _DROP."""
    facts = copy.deepcopy(GOOD_FACTS)
    head, _, field = path.partition(".")
    if head == "order" and field:
        facts["order"].pop(field, None)
    else:
        facts.pop(head, None)
    if value is not _DROP:
        facts[path] = value  # a dotted key next to the nested map
    return facts


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("order.amount", _DROP, id="required-missing"),
        pytest.param("order.paid_at", _DROP, id="required-time-missing"),
        pytest.param("order.amount", None, id="required-null"),
        pytest.param("order.colour", "red", id="undeclared"),
        pytest.param("customer", {"name": "x"}, id="undeclared-object"),
        pytest.param("order.amount", True, id="money-as-bool"),
        pytest.param("order.amount", False, id="money-as-false"),
        pytest.param("order.amount", "12,50", id="money-bad-text"),
        pytest.param("order.amount", [1], id="money-as-list"),
        pytest.param("order.paid_at", "2026-03-01T10:00:00", id="time-text-without-offset"),
        pytest.param("order.paid_at", "2026-03-01", id="time-date-only"),
        pytest.param("order.paid_at", datetime(2026, 3, 1, 10), id="time-naive-datetime"),
        pytest.param("order.paid_at", 1772330400, id="time-as-number"),
        pytest.param("order.window", 24, id="duration-as-int"),
        pytest.param("order.window", 86400.0, id="duration-as-float"),
        pytest.param("order.window", "a day", id="duration-bad-text"),
        pytest.param("order.kind", "food", id="enum-not-in-enum"),
        pytest.param("order.kind", "Goods", id="enum-case-sensitive"),
        pytest.param("order.kind", 0, id="enum-as-number"),
        pytest.param("order.count", "1", id="int-as-text"),
        pytest.param("order.count", 1.5, id="int-as-float"),
        pytest.param("order.count", True, id="int-as-bool"),
        pytest.param("order.tags", "a", id="list-as-scalar"),
        pytest.param("order.tags", ["a", 1], id="list-wrong-item"),
        pytest.param("note", 5, id="optional-wrong-type"),
        pytest.param("order", 5, id="object-as-value"),
    ],
)
def test_open_refuses_invalid_facts(path: str, value: Any) -> None:
    with refused("invalid_fact") as info:
        engine_for(FACTS).open("w", with_fact(path, value), at=T0)
    assert path in str(info.value)  # refused for this fact, not another


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(GOOD_FACTS, {}, id="nested"),
        pytest.param(
            {f"order.{k}": v for k, v in GOOD_FACTS["order"].items()}, {}, id="dotted-keys"
        ),
        pytest.param({**GOOD_FACTS, "note": None}, {}, id="optional-null"),
        pytest.param({**GOOD_FACTS, "note": "hi"}, {"note": "hi"}, id="optional-given"),
        pytest.param(with_fact("order.window", "PT24H"), {}, id="duration-iso"),
        pytest.param(with_fact("order.window", timedelta(days=1)), {}, id="duration-timedelta"),
        pytest.param(
            with_fact("order.paid_at", datetime(2026, 3, 1, 2, tzinfo=UTC)),
            {},
            id="time-aware-datetime",
        ),
        pytest.param(with_fact("order.count", Decimal(1)), {}, id="int-as-integral-decimal"),
    ],
)
def test_open_accepts_valid_facts(facts: dict[str, Any], expected: dict[str, Any]) -> None:
    case = engine_for(FACTS).open("w", facts, at=T0)
    order = case.facts["order"]
    assert order["amount"] == Decimal("128.00") and type(order["amount"]) is Decimal
    assert order["paid_at"] == datetime(2026, 3, 1, 10, tzinfo=CST)
    assert order["window"] == timedelta(days=1)
    assert order["kind"] == "goods" and order["count"] == 1 and order["tags"] == ["a"]
    assert {k: v for k, v in case.facts.items() if k != "order"} == expected


@pytest.mark.parametrize("depth", [101, 5000])
def test_facts_nested_too_deep_are_refused_not_a_recursion_error(depth: int) -> None:
    deep: list[Any] = []
    for _ in range(depth - 1):
        deep = [deep]
    with pytest.raises(rulekit.StepRefused) as refusal:
        engine_for(FACTS).open("w", with_fact("order.tags", deep), at=T0)
    assert str(refusal.value) == "invalid_fact: order.tags: nested more than 100 levels deep"


def test_open_an_unknown_workflow_is_refused_with_the_workflows_listed() -> None:
    with pytest.raises(
        rulekit.StepRefused,
        match=r"^unknown_workflow: no workflow 'nope' in policy \S+ \(workflows: \w+",
    ):
        engine_for(FACTS).open("nope", GOOD_FACTS, at=T0)


@pytest.mark.parametrize(
    ("given", "exact", "holds"),
    [
        ("299.99", Decimal("299.99"), True),
        (299.99, Decimal("299.99"), True),  # a float, read as written: never binary 299.99
        (Decimal("299.99"), Decimal("299.99"), True),
        (" 299.99 ", Decimal("299.99"), True),
        (300, Decimal(300), False),
        (300.0, Decimal(300), False),
        ("300.00", Decimal(300), False),
        ("300", Decimal(300), False),
        (299.999999999999, Decimal("299.999999999999"), True),
        (0.1, Decimal("0.1"), True),
    ],
)
def test_money_is_read_exactly(given: Any, exact: Decimal, holds: bool) -> None:
    engine = engine_for(FACTS)
    case = engine.open("w", with_fact("order.amount", given), at=T0)
    amount = case.facts["order"]["amount"]
    assert type(amount) is Decimal and amount == exact
    if holds:
        engine.send(case, "poke", "consumer", at=T0)
        assert case.effects[0].args["amount"] == exact
    else:
        with refused("guard_failed"):
            engine.send(case, "poke", "consumer", at=T0)


@pytest.mark.parametrize(
    ("a", "b", "extra"),
    [(0.1, 0.2, 0.3), ("0.1", "0.2", "0.3"), (Decimal("0.1"), 0.2, "0.30")],
)
def test_money_arithmetic_is_decimal_in_guards_payloads_and_effects(
    a: Any, b: Any, extra: Any
) -> None:
    engine = engine_for(MONEY_SUM)
    case = engine.open("w", {"a": a, "b": b}, at=T0)
    engine.send(case, "pay", "merchant", {"extra": extra}, at=T0)
    assert case.effects[0].args == {"amount": Decimal("0.6")}
    assert type(case.history[-1].data["extra"]) is Decimal
