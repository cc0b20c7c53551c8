"""Named values (`value NAME = EXPR`, YAML `values:`, issue 15): a named condition of any
type, checked once, evaluated by name wherever an expression is.

tests/policies/named_values.rk (and its YAML twin) names its values in guards, deadlines,
a clock, effect arguments, a `set` and `as soon as`; tests/scenarios/named_values.yaml
runs it at the boundaries. Here: what the scenario files cannot see.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import rulekit
from rulekit import CompileError
from rulekit.analysis import check_source, diff
from rulekit.cli import main
from rulekit.policy import artifact
from rulekit.runtime.timeline import render
from support import TESTS

POLICY = TESTS / "policies" / "named_values.rk"
PARIS = timezone(timedelta(hours=1))
FILED = datetime(2026, 1, 30, 15, tzinfo=PARIS)
NOW = datetime(2026, 2, 2, 9, tzinfo=PARIS)
FACTS = {"claim": {"filed_at": FILED, "amount": "500.00", "deductible": "120.00"}}

KINDS = """
policy t.kinds timezone "Europe/Paris"
facts {
  order.value: int
  order.items: list(string)
  order.note: string?
  order.at: time
  order.price: double
}
actors a
event go(value: int) by a
effect out(n: int, items: list(string), note: string, wait: duration, half: double, at: time)
value count = order.value * 2
value tags = order.items.map(i, i + "!")
value note = has(order.note) ? order.note : "none"
value wait = count > 6 ? 2d : 1d
value half = order.price / 2.0
value due = order.at + wait
workflow w {
  initial state s {
    on go when event.value < count and size(tags) > 0
      -> t emit out(n: count, items: tags, note: note, wait: wait, half: half, at: due)
    after wait -> t
  }
  final state t
}
"""


def _kinds() -> rulekit.Policy:
    return rulekit.loads(KINDS, "rk", "kinds.rk")


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (
            {"value": 5, "items": ["a"], "note": "n", "price": 3.0},
            [True, 10, ["a!"], "n", timedelta(days=2), 1.5, FILED + timedelta(days=2)],
        ),
        (
            {"value": 1, "items": [], "price": 1.0},
            [False, 2, [], "none", timedelta(days=1), 0.5, FILED + timedelta(days=1)],
        ),
    ],
)
def test_values_of_every_kind_evaluate_alike_compiled_and_interpreted(
    order: dict[str, Any], expected: list[Any]
) -> None:
    (t, _) = _kinds().workflows["w"].states["s"].transitions
    assert t.guard is not None
    variables = {"order": {**order, "at": FILED}, "event": {"value": 3}, "actor": "a"}
    exprs = [t.guard, *(v for e in t.emits for _, v in e.args)]
    for expr, want in zip(exprs, expected, strict=True):
        assert expr.compiled.evaluate(variables, NOW) == want
        assert expr.compiled._slow(variables, NOW) == want


def test_a_value_is_compiled_once_and_named_where_used() -> None:
    policy = _kinds()
    assert [(c.name, c.kind, str(c.expr.type)) for c in policy.conditions.values()] == [
        ("count", "value", "int"),
        ("tags", "value", "list(string)"),
        ("note", "value", "string"),
        ("half", "value", "double"),
        ("wait", "value", "duration"),  # each after those it names
        ("due", "value", "timestamp"),
    ]
    (t, after) = policy.workflows["w"].states["s"].transitions
    at = dict(t.emits[0].args)["at"].compiled
    at.compile()
    assert at.python_source is not None and "(variables, now)" in at.python_source
    assert "order" not in at.python_source  # the definition is not pasted in
    assert after.deadline is not None and after.deadline.compiled.variables == {"order"}


def test_explain_shows_a_value_by_name_with_its_definition() -> None:
    policy = rulekit.load(POLICY)
    escalate = policy.workflows["claim"].states["escalated"].transitions[0]
    assert escalate.guard is not None
    text = str(escalate.guard.compiled.explain(FACTS, now=datetime(2026, 3, 20, tzinfo=PARIS)))
    assert text.splitlines() == [
        "result: true",
        '  now > appeal_closes -> true   (now = timestamp("2026-03-20T00:00:00+01:00"), '
        'appeal_closes = timestamp("2026-03-14T23:59:59.999999+01:00"))',
        '    appeal_closes -> timestamp("2026-03-14T23:59:59.999999+01:00")',
        '      review_due + 14 calendar days -> timestamp("2026-03-14T23:59:59.999999+01:00")'
        '   (review_due = timestamp("2026-02-28T23:59:59.999999+01:00"))',
        '        review_due -> timestamp("2026-02-28T23:59:59.999999+01:00")',
        "          (claim.filed_at.localDate() + 1 month).endOfDay() -> "
        'timestamp("2026-02-28T23:59:59.999999+01:00")   '
        '(claim.filed_at = timestamp("2026-01-30T15:00:00+01:00"))',
    ]


def test_the_timeline_shows_the_facts_a_named_value_reads() -> None:
    engine = rulekit.Engine(rulekit.load(POLICY))
    case = engine.open("claim", FACTS, at=NOW)
    engine.send(case, "review", by="insurer", at=NOW)
    text = render(case.history)
    assert "because worth_paying (claim.amount = 500.00, claim.deductible = 120.00)" in text
    assert "set claim.paid = 380.00" in text
    assert (
        'emit notify(what: "approved", due: timestamp("2026-02-28T23:59:59.999999+01:00"))' in text
    )


def test_as_soon_as_is_solved_through_named_values() -> None:
    policy = rulekit.load(POLICY)
    (closes,) = policy.workflows["claim"].states["escalated"].deadlines
    (waited,) = [t for t in policy.workflows["appeal"].states["appealed"].deadlines]
    assert closes.deadline is not None and closes.deadline.text == "appeal_closes"
    # `waited` is since(claim.filed_at): seen through, written from its own text
    assert waited.deadline is not None and waited.deadline.text == "claim.filed_at + 90d"


SOON = """
policy t.soon
facts {
  claim.filed_at: time
}
actors insurer
event hold by insurer
value later = now + 1d
value waited = since(claim.filed_at)
value doubled = waited + waited
workflow w {
  initial state a {
    as soon as CONDITION -> done
  }
  final state done
}
"""


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("now > later", "cannot compute when this becomes true"),
        ("doubled > 30d", "cannot compute when this becomes true"),
        ("waited < 30d", "only stops holding as time passes"),
    ],
)
def test_as_soon_as_on_a_value_it_cannot_solve_is_rk0332(condition: str, message: str) -> None:
    with pytest.raises(CompileError) as info:
        rulekit.loads(SOON.replace("CONDITION", condition), "rk", "soon.rk")
    (problem,) = info.value.diagnostics
    assert problem.code == "RK0332" and message in problem.message


def test_the_artifact_round_trips_and_marks_values(tmp_path: Path) -> None:
    data = artifact.to_json(rulekit.load(POLICY))
    # conditions, then values, as declared, each after those it names
    assert [(c["name"], c.get("value", False)) for c in data["conditions"]] == [
        ("review_due", True),
        ("payable", True),
        ("waited", True),
        ("worth_paying", False),
        ("appeal_closes", True),
    ]
    loaded = rulekit.loads(json.dumps(data), "json", "named_values.json")
    assert loaded.hash == data["hash"]
    assert loaded.conditions["review_due"].value and not loaded.conditions["worth_paying"].value
    engine = rulekit.Engine(loaded)
    assert engine.pending(engine.open("claim", FACTS, at=NOW))[0][0] == datetime(
        2026, 2, 28, 23, 59, 59, 999999, tzinfo=PARIS
    )


def _edited(edit: Any) -> str:
    data = artifact.to_json(rulekit.load(POLICY))
    edit(data["conditions"])
    data["hash"] = artifact.content_hash(data)
    with pytest.raises(CompileError) as info:
        rulekit.loads(json.dumps(data), "json", "edited.json")
    assert {d.code for d in info.value.diagnostics} == {"RK0501"}
    return str(info.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # a value read as a condition must be a bool
        (lambda cs: cs[0].pop("value"), "is timestamp, not bool"),
        # the type a tool shows for the name is its own
        (lambda cs: cs[0]["expr"].update(type="duration"), "is timestamp, not duration"),
        # each may name only those before it
        (lambda cs: cs.reverse(), "undeclared name `payable`"),
        (lambda cs: cs[0].update(value=False), "/conditions/0/value: True was expected"),
    ],
)
def test_hand_edited_values_are_refused(edit: Any, message: str) -> None:
    assert message in _edited(edit)


def test_check_explain_times_lists_named_values_with_their_types(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "--explain-times", str(POLICY)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{POLICY}: named values and conditions\n")
    assert '  condition worth_paying: bool = payable > money("0")\n' in out
    assert (
        "  value review_due: timestamp = (claim.filed_at.localDate() + 1 month).endOfDay()\n" in out
    )
    assert "  value waited: duration = since(claim.filed_at)\n" in out
    assert main(["check", "--explain-times", "--format", "json", str(POLICY)]) == 0
    (file,) = json.loads(capsys.readouterr().out)["files"]
    assert file["named"][0] == {
        "kind": "value",
        "name": "review_due",
        "type": "timestamp",
        "text": "(claim.filed_at.localDate() + 1 month).endOfDay()",
        "at": f"{POLICY}:23:1",
    }


def test_diff_says_a_value_changed() -> None:
    old = rulekit.load(POLICY)
    text = POLICY.read_text(encoding="utf-8").replace("+ 14 calendar days", "+ 21 calendar days")
    new = rulekit.loads(text, "rk", "named_values.rk")
    assert [str(c) for c in diff.compare(old, new)] == [
        "values: appeal_closes: review_due + 14 calendar days -> review_due + 21 calendar days"
    ]


def test_value_is_still_a_name_after_a_dot_and_in_payloads() -> None:
    source = """
policy t.words
facts {
  order.value: int
}
actors a
event go(value: int) by a
value doubled = order.value * 2
workflow w {
  initial state s waits "the sender" {
    on go when event.value < doubled -> t
  }
  final state t
}
"""
    result = check_source(source, "rk", "words.rk")
    assert result.ok and result.diagnostics == [], result.render()


GUARDS = """
policy t.guards
facts {
  order.a: money
  order.b: money
  order.due: time
}
actors m
event close by m
value total = order.a + order.b
value due = order.due + 1d
workflow w {
  initial state open waits "m" {
    on close when FIRST -> big
    on close when SECOND -> small
  }
  final state big
  final state small
}
"""


@pytest.mark.parametrize(
    ("first", "second", "found"),
    [
        # a named value is one variable of the analysis: exclusive conditions are known so
        ('total > money("100")', 'total <= money("100")', []),
        ("now > due", "now <= due", []),
        # and a condition always shadowed by an earlier one
        ('total > money("100")', 'total > money("200")', ["RK0708"]),
        # a case where both hold cannot be checked through a value's definition
        ('total > money("100")', 'total > money("50")', ["RK0709"]),
    ],
)
def test_the_guard_analysis_reads_a_named_value_as_one_value(
    first: str, second: str, found: list[str]
) -> None:
    source = GUARDS.replace("FIRST", first).replace("SECOND", second)
    result = check_source(source, "rk", "guards.rk")
    assert result.ok, result.render()
    assert [d.code for d in result.diagnostics] == found


def test_diagrams_label_edges_with_the_values_names() -> None:
    from rulekit.analysis import graph

    lines = graph.mermaid(rulekit.load(POLICY).workflows["claim"]).splitlines()
    assert "    filed --> approved : review by insurer [worth_paying]" in lines
    assert "    filed --> escalated : at review_due" in lines
    assert "    approved --> paid_out : after 5d from review_due" in lines
