"""Issue #11, finding 8: no evaluation cost limit.

36 nested ``[v+v].map(...)`` ended in a MemoryError; 8 nested 10-element maps did not
finish in 20 s; when generated code failed, the interpreter ran it all again. Each bomb
below is now refused at check time (RK0210) and, when the check is bypassed, stopped at
run time well within a generous bound by an EvaluationError naming the limit, through
generated code and through the interpreter alike. Inputs bigger than the sizes the
estimate assumes are stopped by the run-time budget. An evaluation stopped for cost,
memory or stack depth is never run a second time by the interpreter.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

import rulekit
from rulekit.core.errors import CompileError, EvaluationError, StepRefused
from rulekit.core.source import Source
from rulekit.expr import codegen, parser
from rulekit.expr.checker import check
from rulekit.expr.cost import DEFAULT_COST_LIMIT
from rulekit.expr.expression import Expression, parse_and_check
from rulekit.expr.interpreter import Interpreter
from rulekit.policy import artifact
from rulekit.runtime.engine import Engine

#: Generous: each bomb is stopped in well under a second; unbounded, they ran for minutes.
BOUND_SECONDS = 5.0
LIMIT_MESSAGE = f"evaluation cost limit {DEFAULT_COST_LIMIT} exceeded"
#: A lower limit where the interpreter (the slow path) must reach it.
LOW_LIMIT = 100_000
TEN = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
THOUSAND = "[" + ", ".join(map(str, range(1000))) + "]"


def nested(depth: int, make: Callable[[int, str], str], inner: str) -> str:
    text = inner
    for i in reversed(range(depth)):
        text = make(i, text)
    return text


BOMBS = {
    # The report: every level doubles the string it is given.
    "36 nested [v+v].map": '["ab"].map(v, '
    + nested(36, lambda i, s: f"[v+v].map(v, {s})", "v")
    + ")",
    "8 nested 10-element maps": nested(8, lambda i, s: f"{TEN}.map(a{i}, {s})", "a0"),
    "doubling strings": '["x"].map(s0, '
    + nested(40, lambda i, s: f"[s{i} + s{i}].map(s{i + 1}, {s})", "s40")
    + ")",
    "big list literals": f"{THOUSAND}.map(x, {THOUSAND})",
    # An optional has the size of the value it holds (expr/cost.py).
    "doubling through optionals": '["x"].map(s0, '
    + nested(40, lambda i, s: f"[optional.of(s{i} + s{i}).value()].map(s{i + 1}, {s})", "s40")
    + ")",
    "deep nesting": nested(30, lambda i, s: f"[true, true].all(b{i}, {s})", "true"),
}


@pytest.mark.parametrize("source", BOMBS.values(), ids=BOMBS.keys())
def test_refused_at_check_time(source: str) -> None:
    with pytest.raises(CompileError) as info:
        rulekit.compile_expression(source)
    (problem,) = info.value.diagnostics
    assert problem.code == "RK0210"
    assert "the limit is 1,000,000" in problem.message
    assert (problem.line, problem.column, problem.end_column) == (1, 1, len(source) + 1)


def unchecked(source: str, limit: int = DEFAULT_COST_LIMIT) -> Expression:
    """The expression with its check's diagnostics ignored (a bypassed check)."""
    src = Source(source)
    tree = parser.parse(src).ast
    assert tree is not None
    checked, problems = check(tree, src, None, cost_limit=limit)
    assert [d.code for d in problems] == ["RK0210"]
    return Expression(checked, None)


def stopped(evaluate: Callable[[], Any]) -> EvaluationError:
    start = time.monotonic()
    with pytest.raises(EvaluationError) as info:
        evaluate()
    assert time.monotonic() - start < BOUND_SECONDS
    return info.value


@pytest.mark.parametrize("source", BOMBS.values(), ids=BOMBS.keys())
def test_stopped_at_run_time_when_the_check_is_bypassed(source: str) -> None:
    e = unchecked(source)
    assert LIMIT_MESSAGE in str(stopped(lambda: e.evaluate({})))  # generated code
    slow = unchecked(source, LOW_LIMIT)
    message = str(stopped(lambda: slow._interp.evaluate({}, None)))  # the interpreter
    assert f"evaluation cost limit {LOW_LIMIT} exceeded" in message
    assert slow.explain({}).error is not None


#: Expressions the estimate lets through (assuming small inputs), with inputs far bigger.
HUGE_INPUTS: list[tuple[str, dict[str, Any]]] = [
    ("xs.map(x, ys.map(y, [x, y])).size()", {"xs": list(range(5000)), "ys": list(range(5000))}),
    ("size(s + s + s + s + s)", {"s": "x" * 300_000}),
    ("size(xs + xs + xs)", {"xs": [0] * 400_000}),
    ("xs.exists(x, x < 0)", {"xs": [0] * 2_000_000}),
    (
        "m.?xs.orValue([]).map(x, m[?'ys'].orValue([]).map(y, [x, y])).size()",
        {"m": {"xs": list(range(5000)), "ys": list(range(5000))}},
    ),
]


@pytest.mark.parametrize(("source", "variables"), HUGE_INPUTS)
def test_huge_inputs_are_stopped_by_the_budget(source: str, variables: dict[str, Any]) -> None:
    e = rulekit.compile_expression(source, cost_limit=LOW_LIMIT)
    assert e.checked.counted  # the estimate relies on assumed sizes: evaluations count
    message = f"evaluation cost limit {LOW_LIMIT} exceeded"
    assert message in str(stopped(lambda: e.evaluate(variables)))
    assert message in str(stopped(lambda: e._interp.evaluate(variables, None)))


def test_expressions_the_estimate_vouches_for_count_nothing() -> None:
    e = rulekit.compile_expression(
        "shop.fast_refund_enabled and since(order.paid_at) <= 6h and order.amount < 300",
        {"shop.fast_refund_enabled": "bool", "order.paid_at": "time", "order.amount": "money"},
    )
    e.compile()
    assert not e.checked.counted and "_Budget" not in (e.python_source or "")


@pytest.mark.parametrize(
    ("helper", "error", "message"),
    [
        ("_c_map", MemoryError, "evaluation ran out of memory"),
        ("_c_map", RecursionError, "evaluation nested too deeply"),
    ],
)
def test_generated_code_never_runs_a_stopped_evaluation_again(
    monkeypatch: pytest.MonkeyPatch, helper: str, error: type[BaseException], message: str
) -> None:
    def fails(*_args: Any) -> Any:
        raise error

    runs: list[object] = []
    interpret = Interpreter.evaluate
    monkeypatch.setattr(
        Interpreter, "evaluate", lambda self, *a: runs.append(a) or interpret(self, *a)
    )
    monkeypatch.setitem(codegen._RUNTIME, helper, fails)
    e = parse_and_check("xs.map(x, x + 1)")  # uncached: compiled with the failing helper
    assert message in str(stopped(lambda: e.evaluate({"xs": [1, 2]})))
    assert runs == []


def test_a_cost_stop_in_generated_code_is_not_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[object] = []
    interpret = Interpreter.evaluate
    monkeypatch.setattr(
        Interpreter, "evaluate", lambda self, *a: runs.append(a) or interpret(self, *a)
    )
    e = rulekit.compile_expression("xs.all(x, x >= 0)")
    assert LIMIT_MESSAGE in str(stopped(lambda: e.evaluate({"xs": [0] * 2_000_000})))
    assert runs == []


def test_the_limit_can_be_raised_or_lowered() -> None:
    source = f"{TEN}.map(a, {TEN}.map(b, {TEN}.map(c, a + b + c)))"
    e = rulekit.compile_expression(source)
    low, high = e.cost
    assert 0 < low <= high <= DEFAULT_COST_LIMIT
    with pytest.raises(CompileError) as info:
        rulekit.compile_expression(source, cost_limit=high - 1)
    assert [d.code for d in info.value.diagnostics] == ["RK0210"]
    deeper = f"{TEN}.map(d, {TEN}.map(f, {TEN}.map(g, {source})))"
    with pytest.raises(CompileError):
        rulekit.compile_expression(deeper)
    assert rulekit.compile_expression(deeper, cost_limit=10_000 * high).cost[1] > DEFAULT_COST_LIMIT


RK_POLICY = """policy demo.bulk version "1"{limit}
facts {{
  order.items: list(int)
}}
actors consumer
event ask by consumer
workflow w {{
  initial state open waits "the consumer asks" {{
    on ask when {guard} -> done
  }}
  final state done
}}
"""
YAML_POLICY = """policy: demo.bulk
version: "1"{limit}
facts:
  order.items: list(int)
actors: [consumer]
events:
  ask: {{by: consumer}}
workflows:
  w:
    states:
      open:
        initial: true
        waits: the consumer asks
        transitions:
          - on: ask
            when: {guard}
            to: done
      done: {{final: true}}
"""
NESTED = (
    "order.items.exists(a, order.items.exists(b, order.items.exists(c,"
    " order.items.exists(d, order.items.exists(e, a + b + c + d + e == 100)))))"
)


@pytest.mark.parametrize(
    ("template", "setting"),
    [(RK_POLICY, " cost_limit 10000000"), (YAML_POLICY, "\ncost_limit: 10000000")],
)
def test_a_policy_sets_its_own_limit(template: str, setting: str) -> None:
    fmt = "rk" if template is RK_POLICY else "yaml"
    with pytest.raises(CompileError) as info:
        rulekit.loads(template.format(limit="", guard=NESTED), fmt, f"p.{fmt}")
    assert [d.code for d in info.value.diagnostics] == ["RK0210"]
    policy = rulekit.loads(template.format(limit=setting, guard=NESTED), fmt, f"p.{fmt}")
    assert policy.cost_limit == 10_000_000
    written = artifact.to_json(policy)
    assert written["policy"]["cost_limit"] == 10_000_000
    assert rulekit.loads(json.dumps(written), "json", "p.json").cost_limit == 10_000_000


def test_the_default_limit_is_left_out_of_artifacts() -> None:
    policy = rulekit.loads(RK_POLICY.format(limit="", guard="order.items.size() > 0"), "rk", "p.rk")
    assert policy.cost_limit == DEFAULT_COST_LIMIT
    assert "cost_limit" not in artifact.to_json(policy)["policy"]


def test_a_guard_over_a_huge_list_stops_and_does_not_hold() -> None:
    policy = rulekit.loads(
        RK_POLICY.format(limit="", guard="order.items.exists(i, i < 0)"), "rk", "p.rk"
    )
    engine = Engine(policy)
    at = datetime(2026, 3, 1, tzinfo=UTC)
    case = engine.open("w", {"order": {"items": [0] * 2_000_000}}, at=at)
    start = time.monotonic()
    with pytest.raises(StepRefused) as info:  # the guard's evaluation stopped: it does not hold
        engine.send(case, "ask", by="consumer", at=at)
    assert time.monotonic() - start < BOUND_SECONDS
    assert info.value.code == "guard_failed" and case.state.name == "open"
