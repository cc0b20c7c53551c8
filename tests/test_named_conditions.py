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


# -- with clocks and `as soon as` (tests/scenarios/named_clocks.yaml runs the policy) -----

NAMED_CLOCKS = TESTS / "policies" / "named_clocks.rk"


def test_as_soon_as_is_solved_through_a_named_condition() -> None:
    policy = rulekit.load(NAMED_CLOCKS)
    (soon,) = policy.workflows["claim"].states["held"].deadlines
    assert soon.kind == "soon" and soon.deadline is not None
    # `overdue` names `held_too_long`, which compares since(claim.filed_at) with HOLD_LIMIT
    assert soon.deadline.text == "claim.filed_at + HOLD_LIMIT"


def test_a_loaded_artifact_solves_the_same_instant_through_the_name() -> None:
    data = artifact.to_json(rulekit.load(NAMED_CLOCKS))
    loaded = rulekit.loads(json.dumps(data), "json", "named_clocks.json")
    assert loaded.hash == data["hash"]
    held = data["workflows"][0]["states"][1]
    held["transitions"][0]["deadline"]["text"] = "claim.filed_at"  # not the condition's
    held["transitions"][0]["deadline"]["ast"] = {
        "node": "Select",
        "span": [0, 14],
        "operand": {"node": "Ident", "span": [0, 5], "name": "claim"},
        "field": "filed_at",
        "field_span": [6, 14],
    }
    data["hash"] = artifact.content_hash(data)
    with pytest.raises(CompileError, match="is not its condition's"):
        rulekit.loads(json.dumps(data), "json", "edited.json")


def test_an_assumption_on_a_clocks_expiry_is_kept() -> None:
    policy = rulekit.load(NAMED_CLOCKS)
    expiry = policy.workflows["claim"].clocks["handling"].expiry
    assert expiry.assumption == "the ten days count from filing, not from opening"
    data = artifact.to_json(policy)
    assert data["workflows"][0]["clocks"][0]["expiry"]["assumption"] == expiry.assumption


SOON = """
policy t.soon
facts {
  claim.filed_at: time
  claim.urgent: bool
}
actors insurer
event hold by insurer
condition late = since(claim.filed_at) > 30d
condition either = late or claim.urgent
condition early = since(claim.filed_at) <= 30d
workflow w {
  initial state a {
    on hold -> b
  }
  state b waits "the insurer" {
    as soon as CONDITION -> done
  }
  final state done
}
"""


@pytest.mark.parametrize(
    ("condition", "message", "at"),
    [
        (
            "either",
            "cannot compute when this becomes true (`late or claim.urgent`, in a named",
            "either",
        ),
        (
            "early",
            "only stops holding as time passes: it holds at once or never "
            "(`since(claim.filed_at) <= 30d`, in a named condition)",
            "early",
        ),
        ("late and late", "only one part of an `as soon as` condition may read", "late ->"),
        ("not late", "cannot compute when this becomes true", "not late"),
    ],
)
def test_as_soon_as_through_a_name_it_cannot_solve_is_rk0332_where_it_is_named(
    condition: str, message: str, at: str
) -> None:
    source = SOON.replace("CONDITION", condition)
    with pytest.raises(CompileError) as info:
        rulekit.loads(source, "rk", "soon.rk")
    (problem,) = info.value.diagnostics
    assert problem.code == "RK0332" and message in problem.message
    assert source.splitlines()[problem.line - 1][problem.column - 1 :].startswith(at)


def test_a_when_that_a_named_condition_makes_wait_for_time_is_rk0711() -> None:
    from rulekit.analysis import check_source

    source = SOON.replace("as soon as CONDITION", "when late and not claim.urgent")
    result = check_source(source, "rk", "soon.rk")
    assert [d.line for d in result.diagnostics if d.code == "RK0711"] == [17]
