"""Finding 4 of the trust-boundaries review: callers assert only the facts the policy lets them.

A consumer that could supply `order.amount` or `order.paid_at` could refund itself. Facts
come from the integration unless a fact's declaration names the actor (`by consumer`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from rulekit import Engine, StepRefused, load
from rulekit.service.auth import Tokens
from rulekit.stores import SqlStore
from service.service_support import PARTIES_A, TestClient, auth, error_of, make_client
from support import TESTS

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


# -- over HTTP: the service refuses with 403 fact_not_allowed, naming the fact -----------------
@pytest.fixture
def http(any_store: SqlStore, tokens: Tokens) -> Iterator[TestClient]:
    with make_client(any_store, load(TESTS / "policies" / "provenance.rk"), tokens) as c:
        yield c


def _open(c: TestClient) -> str:
    body = {"workflow": "w", "facts": ORDER, "parties": PARTIES_A}
    r = c.post("/cases", json=body, headers=auth("admin"))
    assert r.status_code == 201, r.text
    return str(r.json()["case"]["id"])


# (who, the facts it sends, the answer)
HTTP_UPDATES: list[tuple[str, dict[str, Any], int | tuple[int, str]]] = [
    ("consumer", {"request.reason": "it broke"}, 200),  # the policy lets the consumer say why
    ("merchant", {"request": {"photos": ["a.jpg"]}}, 200),
    ("consumer", {"order.amount": "1.00"}, (403, "fact_not_allowed")),  # the finding
    ("consumer", {"order": {"paid_at": "2026-03-01T11:59:00Z"}}, (403, "fact_not_allowed")),
    ("merchant", {"request.reason": "mine"}, (403, "fact_not_allowed")),
    ("platform", {"order.amount": "1.00"}, (403, "fact_not_allowed")),
    ("other_consumer", {"request.reason": "not my case"}, (404, "case_not_found")),
    ("admin", {"order.amount": "1.00", "request.reason": "integration"}, 200),
]


@pytest.mark.parametrize(("role", "facts", "answer"), HTTP_UPDATES)
def test_parties_supply_only_the_facts_the_policy_lets_them(
    http: TestClient, role: str, facts: dict[str, Any], answer: int | tuple[int, str]
) -> None:
    case_id = _open(http)
    r = http.post(f"/cases/{case_id}/facts", json={"facts": facts}, headers=auth(role))
    if isinstance(answer, int):
        assert r.status_code == answer, r.text
        return
    assert error_of(r) == answer
    if answer[1] == "fact_not_allowed":
        assert "may not supply" in r.json()["detail"]
    after = http.get(f"/cases/{case_id}", headers=auth("admin")).json()
    assert after["facts"]["order"]["amount"] == "120.00"  # nothing changed
    assert after["history"][-1]["kind"] == "open"


def test_a_consumer_cannot_open_a_case_with_the_integrations_facts(http: TestClient) -> None:
    body = {"workflow": "w", "facts": ORDER, "parties": {"consumer": "user-1"}}
    r = http.post("/cases", json=body, headers=auth("consumer"))
    assert error_of(r) == (403, "fact_not_allowed")
    assert "`order.amount`" in r.json()["detail"]
