"""Refusals: every code, their order of precedence, and the case left exactly as it was
(deep copies compared), also when deadlines were due before the refused step.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

import rulekit

from .helpers import OK_REJECT, REFUSE, T0, H, M, engine_for, refused, snapshot

OK_DECIDE = {"amount": "10", "at": "2026-03-01T12:00:00+08:00", "wait": "24h"}

SEND_REFUSALS = [
    # (id, closed first?, amount, event, by, data, code)
    ("unknown", False, 10, "nope", "merchant", None, "unknown_event"),
    ("unknown-on-closed", True, 10, "nope", "merchant", None, "unknown_event"),
    ("unknown-by-system", False, 10, "nope", "system", {"x": 1}, "unknown_event"),
    ("closed", True, 10, "approve", "merchant", None, "case_closed"),
    ("closed-before-not-taken", True, 10, "escalate", "consumer", None, "case_closed"),
    ("closed-before-actor", True, 10, "approve", "consumer", None, "case_closed"),
    ("closed-before-system", True, 10, "approve", "system", None, "case_closed"),
    ("closed-before-payload", True, 10, "reject", "merchant", {"x": 1}, "case_closed"),
    ("not-taken", False, 10, "escalate", "consumer", None, "event_not_allowed"),
    ("not-taken-before-actor", False, 10, "escalate", "merchant", None, "event_not_allowed"),
    ("not-taken-before-system", False, 10, "escalate", "system", None, "event_not_allowed"),
    ("actor", False, 10, "approve", "consumer", None, "actor_not_allowed"),
    ("actor-undeclared", False, 10, "approve", "stranger", None, "actor_not_allowed"),
    ("system", False, 10, "approve", "system", None, "actor_not_allowed"),
    ("system-no-guard", False, 10, "cancel", "system", None, "actor_not_allowed"),
    ("actor-before-payload", False, 10, "reject", "consumer", {"x": 1}, "actor_not_allowed"),
    ("actor-before-guard", False, 500, "approve", "platform", None, "actor_not_allowed"),
    ("payload-missing", False, 10, "reject", "merchant", {"reason": "x"}, "invalid_payload"),
    ("payload-none", False, 10, "reject", "merchant", None, "invalid_payload"),
    ("payload-extra", False, 10, "reject", "merchant", {**OK_REJECT, "x": 1}, "invalid_payload"),
    ("payload-on-no-payload", False, 10, "approve", "merchant", {"x": 1}, "invalid_payload"),
    ("payload-type", False, 10, "reject", "merchant", {**OK_REJECT, "reason": 5}, "invalid_payload"),
    ("payload-enum", False, 10, "reject", "merchant", {**OK_REJECT, "kind": "food"}, "invalid_payload"),
    ("payload-enum-case", False, 10, "reject", "merchant", {**OK_REJECT, "kind": "Goods"}, "invalid_payload"),
    ("payload-not-a-map", False, 10, "reject", "merchant", ["broken", "goods"], "invalid_payload"),
    ("payload-money-bool", False, 10, "decide", "platform", {**OK_DECIDE, "amount": True}, "invalid_payload"),
    ("payload-time-no-offset", False, 10, "decide", "platform", {**OK_DECIDE, "at": "2026-03-01T12:00:00"}, "invalid_payload"),
    ("payload-duration-number", False, 10, "decide", "platform", {**OK_DECIDE, "wait": 24}, "invalid_payload"),
    ("payload-before-guard", False, 10, "reject", "merchant", {"reason": "", "kind": "x"}, "invalid_payload"),
    ("guard", False, 500, "approve", "merchant", None, "guard_failed"),
    ("guard-payload", False, 10, "reject", "merchant", {"reason": "", "kind": "goods"}, "guard_failed"),
    ("guard-money", False, 10, "decide", "platform", {**OK_DECIDE, "amount": "10.01"}, "guard_failed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("closed", "amount", "event", "by", "data", "code"),
    [pytest.param(*row[1:], id=row[0]) for row in SEND_REFUSALS],
)
def test_send_refusal_codes_and_precedence(
    closed: bool, amount: int, event: str, by: str, data: Any, code: str
) -> None:
    engine = engine_for(REFUSE)
    case = engine.open("w", {"amount": amount, "paid_at": T0}, at=T0)
    if closed:
        engine.send(case, "cancel", "consumer", at=T0 + M)
    before = snapshot(case)
    with refused(code):
        engine.send(case, event, by, data, at=T0 + 5 * M, key="k")
    assert snapshot(case) == before


@pytest.mark.parametrize(
    ("event", "by", "data", "state"),
    [
        ("approve", "merchant", None, "done"),
        ("reject", "merchant", OK_REJECT, "done"),
        ("cancel", "consumer", {}, "done"),
        ("decide", "platform", OK_DECIDE, "done"),
        ("decide", "platform", {**OK_DECIDE, "amount": 10.0, "wait": "PT24H"}, "done"),
    ],
)
def test_accepted_counterparts_of_the_refusals(event: str, by: str, data: Any, state: str) -> None:
    engine = engine_for(REFUSE)
    case = engine.open("w", {"amount": 10, "paid_at": T0}, at=T0)
    engine.send(case, event, by, data, at=T0 + M)
    assert case.state.name == state


UPDATE_REFUSALS = [
    ("closed", True, {"amount": 5}, "case_closed"),
    ("closed-before-undeclared", True, {"nope": 5}, "case_closed"),
    ("closed-before-type", True, {"amount": "abc"}, "case_closed"),
    ("undeclared", False, {"nope": 5}, "invalid_fact"),
    ("undeclared-nested", False, {"reason": {"code": 5}}, "invalid_fact"),
    ("object-as-value", False, {"reason": "x"}, "invalid_fact"),
    ("money-as-bool", False, {"amount": True}, "invalid_fact"),
    ("money-as-text", False, {"amount": "ten"}, "invalid_fact"),
    ("time-without-offset", False, {"paid_at": "2026-03-01T12:00:00"}, "invalid_fact"),
    ("naive-datetime", False, {"paid_at": datetime(2026, 3, 1, 12)}, "invalid_fact"),
    ("required-to-null", False, {"amount": None}, "invalid_fact"),
    ("one-bad-of-two", False, {"reason.text": "ok", "amount": False}, "invalid_fact"),
]


@pytest.mark.parametrize(
    ("closed", "changes", "code"), [pytest.param(*row[1:], id=row[0]) for row in UPDATE_REFUSALS]
)
def test_update_refusal_codes_and_precedence(
    closed: bool, changes: dict[str, Any], code: str
) -> None:
    engine = engine_for(REFUSE)
    case = engine.open("w", {"amount": 10, "paid_at": T0}, at=T0)
    if closed:
        engine.send(case, "cancel", "consumer", at=T0 + M)
    before = snapshot(case)
    with refused(code):
        engine.update(case, changes, at=T0 + 5 * M)
    assert snapshot(case) == before


@pytest.mark.parametrize(
    ("changes", "facts"),
    [
        ({"reason.text": "late"}, {"amount": Decimal(10), "reason": {"text": "late"}}),
        ({"reason": {"text": "late"}}, {"amount": Decimal(10), "reason": {"text": "late"}}),
        ({"amount": "12.50"}, {"amount": Decimal("12.50"), "reason": {"text": "first"}}),
        ({"reason.text": None}, {"amount": Decimal(10)}),  # an optional fact may be cleared
    ],
)
def test_accepted_updates(changes: dict[str, Any], facts: dict[str, Any]) -> None:
    engine = engine_for(REFUSE)
    case = engine.open("w", {"amount": 10, "paid_at": T0, "reason.text": "first"}, at=T0)
    engine.update(case, changes, at=T0 + M)
    found = {k: v for k, v in case.facts.items() if k != "paid_at"}
    if found.get("reason") == {}:  # a cleared field may leave its (empty) object behind
        del found["reason"]
    assert found == facts
    assert case.history[-1].kind == "update" and case.history[-1].at == T0 + M


def test_a_fact_an_event_stores_may_be_updated() -> None:
    engine = engine_for(REFUSE)
    case = engine.open("w", {"amount": 10, "paid_at": T0, "reason.text": "a"}, at=T0)
    engine.update(case, {"reason.text": "b"}, at=T0)
    assert case.facts["reason"] == {"text": "b"}


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(lambda e, c, t: e.send(c, "approve", "consumer", at=t), id="actor"),
        pytest.param(lambda e, c, t: e.send(c, "approve", "merchant", at=t), id="guard"),
        pytest.param(lambda e, c, t: e.send(c, "reject", "merchant", {"x": 1}, at=t), id="payload"),
        pytest.param(lambda e, c, t: e.update(c, {"amount": True}, at=t), id="update"),
        pytest.param(lambda e, c, t: e.send(c, "approve", "system", at=t), id="system"),
    ],
)
def test_a_refused_step_after_due_deadlines_leaves_them_unfired(step: Any) -> None:
    """The 2h `stay` deadline is due before the step: the refusal undoes its firing too."""
    engine = engine_for(REFUSE)
    case = engine.open("w", {"amount": 500, "paid_at": T0}, at=T0)
    before = snapshot(case)
    with pytest.raises(rulekit.StepRefused):
        step(engine, case, T0 + 5 * H)
    assert snapshot(case) == before
    assert case.next_deadline == T0 + 2 * H and case.effects == []
    # the next accepted step fires it, at its due time
    engine.update(case, {"amount": 50}, at=T0 + 6 * H)
    assert [(e.name, e.args, e.at) for e in case.effects] == [
        ("refund", {"amount": Decimal(1)}, T0 + 2 * H)
    ]


DIV = """
policy t.div
facts {
  n: int
  d: int
}
actors consumer
event split by consumer
effect share(x: int)
workflow w {
  initial state a {
    on split -> b set n = n + 1 emit share(x: n / d)
    after 1h stay set n = n + 100
  }
  final state b
}
"""


def test_an_evaluation_error_in_a_step_changes_nothing() -> None:
    engine = engine_for(DIV)
    case = engine.open("w", {"n": 1, "d": 0}, at=T0)
    before = snapshot(case)
    with pytest.raises(rulekit.EvaluationError):
        engine.send(case, "split", "consumer", at=T0 + 2 * H)  # after the 1h deadline
    assert snapshot(case) == before
    engine.update(case, {"d": 2}, at=T0 + 2 * H)
    engine.send(case, "split", "consumer", at=T0 + 2 * H)
    assert case.facts["n"] == 102 and case.effects[0].args == {"x": 51}
