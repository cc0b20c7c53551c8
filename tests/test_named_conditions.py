"""Named conditions (`condition NAME = EXPR`, issue 15): checked once, evaluated by name.

A guard that names a condition calls that condition's own compiled function (one per
policy, shared by every guard that names it), and its interpreter evaluates the
condition's tree: both give the same value, an error of the condition is absorbed by
`||`/`&&` as any other, and explain shows the condition by name with its own clauses.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import rulekit
from rulekit import CompileError
from rulekit.policy import artifact
from support import TESTS

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 3, 1, 12, tzinfo=CST)

POLICY = """
policy t.named
facts {
  order.amount: money
  order.paid_at: time
  order.note: string?
  shop.fast: bool
}
const LIMIT = 300
actors merchant
event approve by merchant
condition small = order.amount < LIMIT
condition recent = since(order.paid_at) <= 6h
condition noted = order.note == "vip"
condition fast = shop.fast and small and recent
workflow w {
  initial state a {
    on approve when fast -> done
    on approve when noted or small -> done
    on approve when not fast and not small -> done
  }
  final state done
}
"""


def _guards() -> list[Any]:
    policy = rulekit.loads(POLICY, "rk", "named.rk")
    return [t.guard for t in policy.workflows["w"].states["a"].transitions]


def _facts(amount: int, hours: int, fast: bool, note: str | None = None) -> dict[str, object]:
    order: dict[str, object] = {"amount": amount, "paid_at": NOW - timedelta(hours=hours)}
    if note is not None:
        order["note"] = note
    return {"order": order, "shop": {"fast": fast}}


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (_facts(100, 1, True), [True, True, False]),
        (_facts(100, 7, True), [False, True, False]),
        (_facts(500, 1, True, "regular"), [False, False, True]),
        # `order.note` is not set: `noted` fails, and `|| small` absorbs it when small holds
        (_facts(100, 1, False), [False, True, False]),
        (_facts(500, 1, False, "vip"), [False, True, True]),
    ],
)
def test_generated_code_and_interpreter_agree(
    facts: dict[str, object], expected: list[bool]
) -> None:
    for guard, want in zip(_guards(), expected, strict=True):
        compiled = guard.compiled
        assert compiled.evaluate(facts, NOW) is want
        assert compiled._slow(facts, NOW) is want


def test_an_error_of_a_named_condition_is_the_guards_error() -> None:
    guard = (
        rulekit.loads(POLICY.replace("when fast -> done", "when noted -> done"), "rk", "named.rk")
        .workflows["w"]
        .states["a"]
        .transitions[0]
        .guard
    )
    assert guard is not None
    with pytest.raises(rulekit.EvaluationError, match='`noted`: no such key: "note"'):
        guard.compiled.evaluate(_facts(100, 1, True), NOW)


def test_the_guard_calls_the_conditions_shared_function() -> None:
    policy = rulekit.loads(POLICY, "rk", "named.rk")
    fast = policy.conditions["fast"].expr.compiled
    guard = policy.workflows["w"].states["a"].transitions[0].guard
    assert guard is not None
    guard.compiled.compile()
    assert guard.compiled.python_source is not None
    assert "(variables, now)" in guard.compiled.python_source
    assert "order" not in guard.compiled.python_source  # the definition is not pasted in
    assert fast.python_source is not None  # compiled once, for every guard naming it
    assert list(policy.conditions) == ["small", "recent", "noted", "fast"]


def test_explain_shows_the_condition_by_name_and_clause() -> None:
    guard = _guards()[0]
    text = str(guard.compiled.explain(_facts(100, 7, True), now=NOW))
    assert text.splitlines() == [
        "result: false",
        "  fast -> false",
        "    shop.fast -> true   (shop.fast = true)",
        "    small -> true",
        "      order.amount < LIMIT -> true   (order.amount = 100)",
        "    recent -> false",
        '      since(order.paid_at) <= 6h -> false   (order.paid_at = timestamp("2026-03-01T05:00:00+08:00"))',
    ]


def test_the_cost_of_a_guard_counts_the_conditions_it_names() -> None:
    policy = rulekit.loads(POLICY, "rk", "named.rk")
    fast = policy.conditions["fast"].expr.compiled
    small = policy.conditions["small"].expr.compiled
    guard = policy.workflows["w"].states["a"].transitions[0].guard
    assert guard is not None
    assert fast.cost[1] >= small.cost[1]
    assert guard.compiled.cost[1] > fast.cost[1]


def test_a_condition_reading_now_makes_the_guard_read_now() -> None:
    policy = rulekit.loads(POLICY, "rk", "named.rk")
    guard = policy.workflows["w"].states["a"].transitions[0].guard
    assert guard is not None
    assert guard.compiled.checked.uses_now
    assert guard.compiled.variables == {"order", "shop"}


def _artifact() -> dict[str, Any]:
    return artifact.to_json(rulekit.loads(POLICY, "rk", "named.rk"))


def test_the_artifact_round_trips(tmp_path: Path) -> None:
    data = _artifact()
    assert [c["name"] for c in data["conditions"]] == ["small", "recent", "noted", "fast"]
    loaded = rulekit.loads(json.dumps(data), "json", "named.json")
    assert loaded.hash == data["hash"]
    guard = loaded.workflows["w"].states["a"].transitions[0].guard
    assert guard is not None and guard.compiled.evaluate(_facts(100, 1, True), NOW) is True
    # policies without named conditions keep their artifacts (and hashes) as they were
    plain = artifact.to_json(rulekit.load(TESTS / "policies" / "refunds.rk"))
    assert "conditions" not in plain


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # each condition may name only those before it: no cycle can be written
        (lambda cs: cs.reverse(), "condition fast: `shop.fast and small and recent`: undeclared"),
        (lambda cs: cs[0].update(name="order"), "condition order: the name is taken"),
        (
            lambda cs: cs[0]["expr"].update(
                text="order.amount",
                ast={
                    "node": "Select",
                    "span": [0, 12],
                    "operand": {"node": "Ident", "span": [0, 5], "name": "order"},
                    "field": "amount",
                    "field_span": [6, 12],
                },
            ),
            "is money, not bool",
        ),
    ],
)
def test_hand_edited_conditions_are_refused(edit: object, message: str) -> None:
    data = _artifact()
    edit(data["conditions"])  # type: ignore[operator]
    data["hash"] = artifact.content_hash(data)
    with pytest.raises(CompileError) as info:
        rulekit.loads(json.dumps(data), "json", "edited.json")
    assert message in str(info.value)
    assert {d.code for d in info.value.diagnostics} == {"RK0501"}
