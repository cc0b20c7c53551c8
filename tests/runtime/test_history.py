"""History records: cause, cite, rule and effects of events, deadlines and automatic
transitions.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from .helpers import T0, H, engine_for, position

HISTORY = """
policy t.history
facts {
  order.amount: money
  order.fee: money
  refund.reason: string?
}
actors consumer, merchant
event reject(reason: string) by merchant
event approve by merchant
effect refund(amount: money, note: string)
effect close
workflow w {
  initial state awaiting cite "1" {
    on approve when order.amount - order.fee > 0 and order.amount < 300 -> refunded emit refund(amount: order.amount - order.fee, note: "ok") emit close cite "3.1"
    on reject when event.reason != "" stay set refund.reason = event.reason cite "3.2"
    after 48h -> refunded emit refund(amount: order.amount, note: "timeout") cite "3.3"
    when order.amount == 0 -> nothing cite "3.4"
  }
  final state refunded
  final state nothing
}
"""


def test_history_records_cause_cite_rule_and_effects() -> None:
    engine = engine_for(HISTORY)
    case = engine.open("w", {"order": {"amount": "128.50", "fee": "0.50"}}, at=T0)
    engine.send(case, "reject", "merchant", {"reason": "no"}, at=T0 + H, key="r1")
    engine.send(case, "approve", "merchant", at=T0 + 2 * H)
    opened, rejected, approved = case.history
    assert (opened.seq, opened.kind, opened.at, opened.target, opened.workflow) == (
        0,
        "open",
        T0,
        "awaiting",
        "w",
    )
    # every declared group is there, the ones with no fact set yet empty
    assert opened.data == {
        "order": {"amount": Decimal("128.50"), "fee": Decimal("0.50")},
        "refund": {},
    }

    assert (rejected.seq, rejected.kind, rejected.at) == (1, "event", T0 + H)
    assert (rejected.event, rejected.actor, rejected.data, rejected.key) == (
        "reject",
        "merchant",
        {"reason": "no"},
        "r1",
    )
    assert (rejected.source, rejected.target, rejected.cite) == ("awaiting", None, "3.2")
    assert rejected.cause.guard == 'event.reason != ""'
    assert rejected.cause.reads == (("event.reason", "no"),)
    assert rejected.rule == position(HISTORY, "on reject")
    assert rejected.effects == ()

    assert (approved.source, approved.target, approved.cite) == ("awaiting", "refunded", "3.1")
    assert approved.cause.guard == "order.amount - order.fee > 0 and order.amount < 300"
    assert approved.cause.reads == (
        ("order.amount", Decimal("128.50")),
        ("order.fee", Decimal("0.50")),
    )
    assert approved.rule == position(HISTORY, "on approve")
    assert [(e.name, dict(e.args), e.at, e.seq) for e in approved.effects] == [
        ("refund", {"amount": Decimal("128.00"), "note": "ok"}, T0 + 2 * H, 2),
        ("close", {}, T0 + 2 * H, 2),
    ]
    assert case.effects == list(approved.effects)
    assert case.facts["refund"] == {"reason": "no"}


@pytest.mark.parametrize(
    ("facts", "to", "record"),
    [
        pytest.param(
            {"order": {"amount": 500, "fee": 0}},
            T0 + 49 * H,
            ("deadline", T0 + 48 * H, "3.3", None, (), "after 48h",
             [("refund", {"amount": Decimal(500), "note": "timeout"})]),
            id="deadline",
        ),
        pytest.param(
            {"order": {"amount": 0, "fee": 0}},
            T0,
            ("auto", T0, "3.4", "order.amount == 0", (("order.amount", Decimal(0)),),
             "when order.amount == 0", []),
            id="auto",
        ),
    ],
)  # fmt: skip
def test_history_records_of_deadlines_and_automatic_transitions(
    facts: dict[str, Any], to: datetime, record: tuple[Any, ...]
) -> None:
    kind, at, cite, guard, reads, snippet, effects = record
    engine = engine_for(HISTORY)
    case = engine.open("w", facts, at=T0)
    engine.advance(case, to)
    r = case.history[1]
    assert (r.kind, r.at, r.cite, r.actor, r.event) == (kind, at, cite, None, None)
    assert (r.cause.guard, r.cause.reads) == (guard, reads)
    assert r.rule == position(HISTORY, snippet)
    assert [(e.name, dict(e.args)) for e in r.effects] == effects


CAUSE = """
policy t.cause
facts {
  n: int
}
actors consumer
event bump by consumer
workflow w {
  initial state a {
    on bump when n < 1 stay set n = n + 1
    when n >= 1 -> b set n = n + 10
  }
  final state b
}
"""


def test_cause_reads_are_the_values_the_guard_read_before_the_transitions_own_set() -> None:
    engine = engine_for(CAUSE)
    case = engine.open("w", {"n": 0}, at=T0)
    engine.send(case, "bump", "consumer", at=T0)
    assert [(r.kind, r.cause.guard, r.cause.reads) for r in case.history[1:]] == [
        ("event", "n < 1", (("n", 0),)),  # not n = 1: that is what its `set` wrote
        ("auto", "n >= 1", (("n", 1),)),
    ]
    assert case.facts == {"n": 11}
