"""Finding 4 of the trust-boundaries review: callers assert only the facts the policy lets them.

A consumer that could supply `order.amount` or `order.paid_at` could refund itself. Facts
come from the integration unless a fact's declaration names the actor (`by consumer`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import TESTS
from rulekit import Engine, StepRefused, load

T = datetime(2026, 3, 1, 12, tzinfo=UTC)
ORDER = {"order": {"amount": "120.00", "paid_at": "2026-03-01T10:00:00Z"}}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load(TESTS / "policies" / "provenance.rk"))


# (who supplies, the facts, the refusal expected or None)
OPENS: list[tuple[str | None, dict[str, Any], str | None]] = [
    (None, {**ORDER, "request": {"reason": "broken"}}, None),  # the integration: anything
    ("consumer", {**ORDER}, "fact_not_allowed"),  # the finding: consumer-made order facts
    ("consumer", {"order.amount": 1, "order.paid_at": "2026-03-01T10:00:00Z"}, "fact_not_allowed"),
    ("merchant", {**ORDER}, "fact_not_allowed"),
    ("platform", {**ORDER}, "fact_not_allowed"),
    ("consumer", {"request": {"reason": "broken"}}, "invalid_fact"),  # order facts missing
    ("consumer", {"request": {"nope": 1}}, "invalid_fact"),  # undeclared: not a fact at all
    ("consumer", {"order": {"amount": "not money"}}, "fact_not_allowed"),  # before values
    ("consumer", {"offer.note": "x"}, "fact_not_allowed"),  # event-set facts too
]


@pytest.mark.parametrize(("by", "facts", "code"), OPENS)
def test_who_may_supply_facts_when_opening(
    engine: Engine, by: str | None, facts: dict[str, Any], code: str | None
) -> None:
    if code is None:
        assert engine.open("w", facts, at=T, by=by).state.name == "open"
        return
    with pytest.raises(StepRefused) as refused:
        engine.open("w", facts, at=T, by=by)
    assert refused.value.code == code


UPDATES: list[tuple[str | None, dict[str, Any], str | None]] = [
    ("consumer", {"request.reason": "broken"}, None),
    ("consumer", {"request": {"photos": ["a.jpg"]}}, None),
    ("merchant", {"request.photos": ["b.jpg"]}, None),
    ("merchant", {"request.reason": "mine"}, "fact_not_allowed"),
    ("consumer", {"order.amount": "1.00"}, "fact_not_allowed"),
    (
        "consumer",
        {"request.reason": "ok", "order.paid_at": "2026-03-01T11:59:00Z"},
        "fact_not_allowed",
    ),
    (None, {"order.amount": "1.00", "request.reason": "integration"}, None),
]


@pytest.mark.parametrize(("by", "changes", "code"), UPDATES)
def test_who_may_supply_facts_in_an_update(
    engine: Engine, by: str | None, changes: dict[str, Any], code: str | None
) -> None:
    case = engine.open("w", ORDER, at=T)
    before = (case.state.name, case.facts)
    if code is None:
        result = engine.update(case, changes, at=T, by=by)
        assert result.records[0].kind == "update"
        return
    with pytest.raises(StepRefused) as refused:
        engine.update(case, changes, at=T, by=by)
    assert refused.value.code == code
    assert (case.state.name, case.facts) == before  # a refused step changes nothing


def test_the_refusal_names_the_fact_and_what_the_actor_may_supply(engine: Engine) -> None:
    with pytest.raises(StepRefused) as refused:
        engine.open("w", {**ORDER, "request.reason": "x"}, at=T, by="consumer")
    assert str(refused.value) == (
        "fact_not_allowed: a consumer may not supply `order.amount`: only the integration may"
        " (a consumer may supply request.reason, request.photos)"
    )


def test_the_shipped_policy_keeps_order_and_shop_facts_for_the_integration() -> None:
    policy = load(TESTS.parent / "rules" / "kuaishou_after_sales.rk")
    suppliable = {path: fact.by for path, fact in policy.facts.items() if fact.by}
    assert suppliable == {}
