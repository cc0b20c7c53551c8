"""Property (issue #11): a compiled artifact is data, so no edit of one can run code.

Artifacts of real policies (rules/kuaishou_after_sales.rk, tests/policies/*.rk) and
serialized expressions (``Expression.to_dict``) are mutated: a string field replaced by
hostile text (Python that would create a sentinel file, quotes, brackets, newlines) or
another name, an operator, a literal kind; a node kind swapped; a number or a flag
changed. The content hash is recomputed (it is not a secret). Then:

- loading either fails with diagnostics (a CompileError with RK02xx/RK05xx codes, never
  another exception), or yields a policy or expression that runs: the policy's
  scenarios and the expression's sample inputs;
- when the loaded result is the unmutated one (the edit touched only positions, texts
  shown in messages, or an ignored field), it behaves exactly as its source: every
  scenario passes, every sample gives the source's value;
- a loaded expression gives the same value through generated code and the interpreter;
- the sentinel file never appears.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import rulekit
from rulekit.core.errors import CompileError, EvaluationError
from rulekit.expr import ast
from rulekit.expr.expression import Expression, _content_hash
from rulekit.policy import artifact
from rulekit.policy.ir import Policy
from rulekit.tools import scenarios

from .hostile import hostile_strings

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
SENTINEL = Path(tempfile.mkdtemp(prefix="rulekit-mutation-")) / "SENTINEL"
atexit.register(shutil.rmtree, SENTINEL.parent, True)
PROPS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: (policy file, scenario files run against it).
POLICIES = {
    ROOT / "rules" / "kuaishou_after_sales.rk": sorted(
        (TESTS / "scenarios" / "kuaishou").glob("*.yaml")
    ),
    TESTS / "policies" / "refunds.rk": [TESTS / "scenarios" / "refunds.yaml"],
    TESTS / "policies" / "store_values.rk": [],
    TESTS / "policies" / "library_loans.rk": [TESTS / "scenarios" / "library_loans.yaml"],
    # the time features: calendars, periods and modifiers, clocks, as soon as,
    # named values, reschedule (each a part of the artifact a tampered file may target)
    **{
        TESTS / "policies" / f"{name}.rk": [TESTS / "scenarios" / f"{name}.yaml"]
        for name in ("calendar_deadlines", "clocks", "named_values", "reschedule")
    },
    ROOT / "examples" / "support_sla" / "support_sla.rk": [
        ROOT / "examples" / "support_sla" / "scenarios.yaml"
    ],
}

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
#: (source, declarations, sample variables) of serialized expressions.
EXPRESSIONS: list[tuple[str, dict[str, str] | None, list[dict[str, Any]]]] = [
    (
        "xs.all(x, x > 0) && xs.exists(y, y == 2) || xs.exists_one(z, z < 0)",
        {"xs": "list(int)"},
        [{"xs": [1, 2, 3]}, {"xs": [-1, 5]}, {"xs": []}],
    ),
    (
        "xs.map(x, x * 2).filter(y, y % 3 != 0).size() + xs.map(x, x > 1, x - 1).size()",
        {"xs": "list(int)"},
        [{"xs": [1, 2, 3, 4]}, {"xs": []}],
    ),
    (
        'order.amount * 2 - money("0.01") < 300.5 && !order.shipped ? "yes" + s : b"no" == b"no" ? s : "x"',
        {"order.amount": "money", "order.shipped": "bool", "s": "string"},
        [
            {"order": {"amount": Decimal("10.25"), "shipped": False}, "s": "!"},
            {"order": {"amount": Decimal("1000"), "shipped": True}, "s": ""},
        ],
    ),
    (
        'since(t) > 6h && t.getHours("Asia/Shanghai") in [1, 2, 3] || has(m.k) && m["k"] == 1.5',
        {"t": "time", "m": "map(string, double)"},
        [
            {"t": NOW - timedelta(hours=7), "m": {"k": 1.5}},
            {"t": NOW, "m": {}},
        ],
    ),
    (
        '{"a": [1, 2], "b": []}[k].map(v, {v: string(v) + "-" + k}).size() == 2 && int("7") - 7 == 0',
        None,
        [{"k": "a"}, {"k": "b"}, {"k": "c"}],
    ),
    (
        "name.startsWith('a') && name.contains(\"b\") && !name.endsWith('''c''') || name.matches('^[a-z]+$')",
        {"name": "string"},
        [{"name": "abz"}, {"name": "ABC"}, {"name": ""}],
    ),
    (
        "o.?c.orValue(0) + o.?l[?1].orValue(0) > 1 && optional.of(o).?`x-y`.hasValue()"
        " || type(t) == google.protobuf.Timestamp",
        {"o": "map(string, dyn)", "t": "time"},
        [{"o": {"c": 1, "l": [1, 2]}, "t": NOW}, {"o": {"x-y": 1}, "t": NOW}, {"o": {}, "t": NOW}],
    ),
]


# -- mutations --------------------------------------------------------------------------

Path_ = tuple[str | int, ...]

NAMES = ["x", "y", "xs", "size", "now", "order", "int", "dyn", "all", "map", "__class__", "_v0"]
NAMES += ["variables", "_slow", "_bail", "__import__", "event", "actor", "refund_only", "merchant"]
TOKENS = ["+", "-", "*", "/", "%", "in", "==", "<", "&&", "||", "!", "=", ":"]
TOKENS += ["int", "double", "string", "bytes", "bool", "null", "duration", "money", "list(int)"]
NODE_KINDS = sorted(ast._CLASSES)


def leaves(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every scalar in a JSON tree, and every expression node (to swap its kind)."""
    if isinstance(node, dict):
        if "node" in node:
            yield (*path, "node"), node["node"]
        for k, v in node.items():
            if k != "node":
                yield from leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from leaves(v, (*path, i))
    else:
        yield path, node


def replacements(path: Path_, value: Any) -> list[Any]:
    if path and path[-1] == "node":
        return [k for k in NODE_KINDS if k != value]
    if isinstance(value, bool):
        return [not value, None, "true"]
    if isinstance(value, int):
        return [value + 1, value - 1, 0, -1, 2**63, -(2**63) - 1, 10**30, str(value)]
    if isinstance(value, str):
        return [*hostile_strings(SENTINEL), *NAMES, *TOKENS, value + value, value[:-1]]
    return [{}, [], "x", 0, True]  # None


def set_at(data: Any, path: Path_, value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


@st.composite
def mutated(draw: st.DrawFn, original: Any) -> Any:
    data = json.loads(json.dumps(original))
    spots = list(leaves(data))
    in_trees = [s for s in spots if "ast" in s[0]]
    for _ in range(draw(st.integers(1, 3))):
        path, value = draw(st.sampled_from(in_trees if draw(st.booleans()) else spots))
        new = draw(st.sampled_from(replacements(path, value)))
        note(f"{'/'.join(map(str, path))}: {value!r} -> {new!r}")
        set_at(data, path, new)
        spots = list(leaves(data))
        in_trees = [s for s in spots if "ast" in s[0]] or spots
    return data


# -- what "unmutated" means -------------------------------------------------------------

_SPANS = {"span", "field_span", "name_span", "op_span", "var_span"}


def meaning(node: Any) -> Any:
    """A serialized policy or tree without what does not change behaviour: positions,
    spans, the file and hash, expression texts and types (shown in messages), and
    literal spellings other than a double's (read exactly beside money)."""
    if isinstance(node, dict):
        keep_text = node.get("node") == "Literal" and node.get("kind") == "double"
        return {
            k: meaning(v)
            for k, v in node.items()
            if k not in _SPANS
            and k not in ("at", "file", "hash")
            and not (k == "text" and not keep_text)
            and not (k == "type" and "ast" in node)
        }
    if isinstance(node, list):
        return [meaning(x) for x in node]
    return node


def refused(e: CompileError) -> None:
    codes = {d.code for d in e.diagnostics}
    assert codes and all(c.startswith(("RK02", "RK05")) for c in codes), codes


# -- policies ---------------------------------------------------------------------------


@cache
def compiled(path: Path) -> tuple[dict[str, Any], Any]:
    data = artifact.to_json(rulekit.load(path))
    return data, meaning(data)


def run_scenarios(policy: Policy, files: list[Path]) -> list[bool]:
    passed = []
    for f in files:
        sf = scenarios.read(f)
        passed += [r.passed for r in scenarios.run_file(sf, {sf.policy_path: policy})]
    return passed


@pytest.mark.parametrize("path", list(POLICIES), ids=lambda p: p.name)
def test_the_unmutated_artifacts_pass_their_scenarios(path: Path) -> None:
    data, _ = compiled(path)
    policy = rulekit.loads(json.dumps(data), "json", "unmutated.json")
    assert all(run_scenarios(policy, POLICIES[path]))


@PROPS
@given(st.data())
def test_a_mutated_policy_artifact_is_refused_or_harmless(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(list(POLICIES)), label="policy")
    original, original_meaning = compiled(path)
    edited = data.draw(mutated(original))
    edited["hash"] = artifact.content_hash(edited)
    try:
        policy = rulekit.loads(json.dumps(edited), "json", "mutated.json")
    except CompileError as e:
        event("refused")
        refused(e)
    else:
        same = meaning(artifact.to_json(policy)) == original_meaning
        event("loaded, unchanged" if same else "loaded, changed")
        try:
            passed = run_scenarios(policy, POLICIES[path])
        except scenarios.ScenarioFileError:
            # a renamed workflow, state or event: the scenarios name what is no longer there
            assert not same
        else:
            if same:
                assert all(passed)
    assert not SENTINEL.exists()


# -- expressions ------------------------------------------------------------------------


def outcome(evaluate: Any, variables: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "value", evaluate(variables, NOW)
    except EvaluationError:
        return "error", None


@pytest.mark.parametrize(("source", "decls", "samples"), EXPRESSIONS)
def test_the_expressions_evaluate(
    source: str, decls: dict[str, str] | None, samples: list[dict[str, Any]]
) -> None:
    e = rulekit.compile_expression(source, decls)
    assert any(outcome(e.evaluate, s)[0] == "value" for s in samples)


@settings(PROPS, max_examples=400)
@given(st.data())
def test_a_mutated_expression_is_refused_or_harmless(data: st.DataObject) -> None:
    source, decls, samples = data.draw(st.sampled_from(EXPRESSIONS), label="expression")
    expression = rulekit.compile_expression(source, decls)
    edited = data.draw(mutated(expression.to_dict()))
    if isinstance(edited.get("source"), str):
        declarations = edited.get("declarations")
        edited["hash"] = _content_hash(
            edited["source"],
            declarations if isinstance(declarations, dict) else None,
            edited.get("ast"),
        )
    event(load_and_run(expression, edited, samples))


NAME_FIELDS = ("var", "name", "field", "function")


@pytest.mark.parametrize("hostile", hostile_strings(SENTINEL))
@pytest.mark.parametrize(("source", "decls", "samples"), EXPRESSIONS)
def test_every_name_of_every_tree_replaced_by_hostile_text(
    source: str, decls: dict[str, str] | None, samples: list[dict[str, Any]], hostile: str
) -> None:
    """The exhaustive half: each name field in turn (where finding 1 struck)."""
    expression = rulekit.compile_expression(source, decls)
    original = expression.to_dict()
    names = [p for p, _ in leaves(original) if p[-1] in NAME_FIELDS]
    assert names
    for path in names:
        edited = json.loads(json.dumps(original))
        set_at(edited, path, hostile)
        edited["hash"] = _content_hash(edited["source"], edited["declarations"], edited["ast"])
        # A field CEL can spell after a dot (m.while, m.`x y`) is a tree the parser builds:
        # it loads unless the checker finds it wrong (no such declared field).
        spelled = path[-1] == "field" and ast.is_selector(hostile)
        allowed = {"refused", "loaded, changed"} if spelled else {"refused"}
        assert load_and_run(expression, edited, samples) in allowed


def load_and_run(
    expression: Expression, edited: dict[str, Any], samples: list[dict[str, Any]]
) -> str:
    """Load ``edited``, run it on ``samples``; what happened ("refused", "loaded, ...")."""
    try:
        loaded = Expression.from_dict(edited)
    except CompileError as e:
        refused(e)
        happened = "refused"
    else:
        same = meaning(loaded.to_dict()) == meaning(expression.to_dict())
        happened = "loaded, unchanged" if same else "loaded, changed"
        for sample in samples:
            fast = outcome(loaded.evaluate, sample)
            assert fast == interpreted(loaded, sample)
            if same:
                assert fast == outcome(expression.evaluate, sample)
    assert not SENTINEL.exists()
    return happened


def interpreted(e: Expression, variables: dict[str, Any]) -> tuple[str, Any]:
    explained = e.explain(variables, now=NOW)
    return ("error", None) if explained.error is not None else ("value", explained.value)
