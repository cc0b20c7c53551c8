"""Bugs the policy properties found, fixed: regression tests, each with its minimal repro
as an explicit ``@example``. A newly found bug goes in as a strict xfail with its repro,
and the broad properties skip its signature (``helpers.known_bug``) until it is fixed.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

import rulekit
from rulekit import CompileError
from rulekit.analysis import check_source
from rulekit.policy import CheckResult, artifact

from .helpers import (
    PROPS,
    REFUNDS_ARTIFACT,
    REFUNDS_DATA,
    REFUNDS_RK,
    REFUNDS_YAML,
    assert_unknown_key_reported,
    assert_well_formed,
    unknown_keys,
)
from .mutations import get_at


def _must_not_raise(text: str, fmt: str) -> CheckResult:
    result = check_source(text, fmt, "repro")
    assert_well_formed(result, text)
    return result


@settings(PROPS, max_examples=10)
@example(fmt="yaml", text="[" * 10_000)
@example(fmt="json", text="[" * 100_000)
@given(
    fmt=st.sampled_from(["yaml", "json"]),
    text=st.integers(10_000, 30_000).flatmap(
        lambda n: st.sampled_from(["[" * n, "[" * n + "]" * n, '{"a":' * n + "1" + "}" * n])
    ),
)
def test_fixed_deeply_nested_yaml_or_json_text(fmt: str, text: str) -> None:
    _must_not_raise(text, fmt)


@settings(PROPS, max_examples=1)
@example(levels=21)
@given(levels=st.just(21))
def test_fixed_yaml_alias_bomb_is_expanded(levels: int) -> None:
    lines = ["a0: &a0 [x, x]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, levels)]
    text = "policy: p\nbomb:\n" + "".join(f"  {line}\n" for line in lines)
    start = time.perf_counter()
    _must_not_raise(text, "yaml")
    # Unexpanded, this is milliseconds of work; expanded, seconds (2**21 leaves).
    assert time.perf_counter() - start < 0.25


def _edited_artifact(edit: Callable[[dict[str, Any]], None], rehash: bool = True) -> str:
    data = copy.deepcopy(REFUNDS_ARTIFACT)
    edit(data)
    if rehash:
        data["hash"] = artifact.content_hash(data)
    return json.dumps(data)


@settings(PROPS, max_examples=10)
@example(note_=["assumption"])
@given(note_=st.lists(st.sampled_from(["assumption", "note", "x"]), min_size=1, max_size=1))
def test_fixed_artifact_constant_note_shorter_than_two(note_: list[str]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["constants"][1]["note"] = note_

    result = _must_not_raise(_edited_artifact(edit), "json")
    assert result.policy is None and result.diagnostics[0].code == "RK0501"


def _free_frames() -> int:
    depth = 0
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return sys.getrecursionlimit() - depth


@settings(PROPS, max_examples=5)
@example(share=0.75)
@given(share=st.floats(0.7, 0.8))
def test_fixed_artifact_deep_constant_value(share: float) -> None:
    # Deep enough for content_hash's recursion, shallow enough for json.loads (one level
    # per list), whatever the recursion limit is (Hypothesis raises it while testing).
    value: Any = 1
    for _ in range(int(_free_frames() * share)):
        value = [value]

    def edit(d: dict[str, Any]) -> None:
        d["constants"][0]["type"] = "dyn"
        d["constants"][0]["value"] = value

    _must_not_raise(_edited_artifact(edit, rehash=False), "json")


CONSTANT_BASE = """policy p
facts {{ a: int }}
actors u
event go by u
const X = {value}
workflow w {{
  initial state s {{ on go -> t }}
  final state t
}}
"""


@settings(PROPS, max_examples=20)
@example(value="null")
@example(value='b"ab"')
@example(value="{1: 2}")
@example(value="1.0 / 0.0")
@given(
    value=st.sampled_from(
        ["null", "[null]", 'b"ab"', "{1: 2}", "{true: 1}", "1.0 / 0.0", "-1.0 / 0.0", "type(1)"]
    )
)
def test_fixed_constant_values_that_do_not_round_trip(value: str) -> None:
    # A constant either survives its artifact exactly, or is refused when compiled (RK0314).
    try:
        p = rulekit.loads(CONSTANT_BASE.format(value=value), "rk", "p.rk")
    except CompileError as e:
        assert [d.code for d in e.diagnostics] == ["RK0314"]
        return
    a = artifact.to_json(p)
    loaded = rulekit.loads(json.dumps(a), "json", "p.json")
    assert artifact.to_json(loaded) == a


@settings(PROPS, max_examples=10)
@example(name="hash", where="argument")
@example(name="file", where="enum")
@given(name=st.sampled_from(["hash", "file", "at"]), where=st.sampled_from(["argument", "enum"]))
def test_fixed_content_hash_ignores_user_names_at_file_hash(name: str, where: str) -> None:
    template = """policy p
enum {enum} {{ {members} }}
facts {{ o.k: {enum} }}
actors u
event go by u
effect notify({param}: string)
workflow w {{
  initial state s {{ on go -> t emit notify({param}: {value}) }}
  final state t
}}
"""
    enum, param = (name, "x") if where == "enum" else ("E", name)
    one = template.format(enum=enum, members="a, b", param=param, value='"one"')
    two = (
        template.format(enum=enum, members="a, c", param=param, value='"one"')
        if where == "enum"
        else template.format(enum=enum, members="a, b", param=param, value='"two"')
    )
    p1, p2 = rulekit.loads(one, "rk", "one.rk"), rulekit.loads(two, "rk", "two.rk")
    assert artifact.to_json(p1) != artifact.to_json(p2)
    assert p1.hash != p2.hash


@settings(PROPS, max_examples=10)
@example(key="asumption")
@given(key=unknown_keys.filter(lambda k: k not in ("value", "assumption", "note")))
def test_fixed_yaml_constant_map_unknown_key(key: str) -> None:
    data = copy.deepcopy(REFUNDS_DATA)
    data["constants"]["GRACE"][key] = "x"
    assert_unknown_key_reported(data, ("constants", "GRACE"), key)


# =====================================================================================
# Found by these properties and fixed since (057c7f3 -> dcb2437): kept as regression
# tests of the policy entry points. The first three shared a root cause with expression
# bugs fixed in stdlib/parser; the last was expr.ast.from_json.
# =====================================================================================


@settings(PROPS, max_examples=10)
@example(tz="+25:00", fmt="rk")
@example(tz="America", fmt="yaml")
@given(
    tz=st.sampled_from(["+24:00", "+25:00", "-99:59", "America", "Europe", "Etc"]),
    fmt=st.sampled_from(["rk", "yaml"]),
)
def test_policy_time_zone_out_of_range_or_a_directory_is_rk0315(tz: str, fmt: str) -> None:
    """Was: a raw ValueError (offset >= 24h) / IsADirectoryError (`America`) out of
    check_source, from checker.declarations, which caught only CelError."""
    text = (REFUNDS_RK if fmt == "rk" else REFUNDS_YAML).replace("Asia/Shanghai", tz)
    result = _must_not_raise(text, fmt)
    assert [d.code for d in result.diagnostics] == ["RK0315"]


@settings(PROPS, max_examples=10)
@example(lit="--3.0", fmt="rk")
@given(lit=st.sampled_from(["--3.0", "- -0.5", "---2.0"]), fmt=st.sampled_from(["rk", "yaml"]))
def test_money_literal_with_double_minus_in_a_policy(lit: str, fmt: str) -> None:
    """Was: CelError('--3.0 is not a decimal number') out of check_source for a guard."""
    text = (REFUNDS_RK if fmt == "rk" else REFUNDS_YAML).replace(
        "order.amount < 300", f"order.amount < {lit}"
    )
    _must_not_raise(text, fmt)


@settings(PROPS, max_examples=10)
@example(value="")
@given(value=st.sampled_from(["", " ", "  "]))
def test_artifact_duration_constant_empty_is_rk0501(value: str) -> None:
    """Was: a raw IndexError from stdlib.parse_duration (through convert) out of check_source."""

    def edit(d: dict[str, Any]) -> None:
        d["constants"][0]["value"] = value  # REVIEW: duration

    result = _must_not_raise(_edited_artifact(edit), "json")
    assert result.policy is None and result.diagnostics[0].code == "RK0501"


GUARD = ("workflows", 0, "states", 0, "transitions", 0, "guard", "ast")
#: (path under the first guard's tree, value): corrupt fields the loader does not check.
AST_CORRUPTIONS = [
    (("left", "left", "operand", "name"), None),  # Ident name -> TypeError in difflib
    (("left", "left", "operand", "name"), ["order"]),  # unhashable name
    (("op",), "**"),  # unknown operator -> KeyError in the checker
    (("left", "op"), None),
    (("left", "right", "kind"), None),  # unknown literal kind -> KeyError
    (("left", "right", "kind"), "uint"),
    (("left",), None),  # missing operand -> TypeError
    (("right", "left", "function"), ["since"]),
    (("right", "right", "value"), 2**70),  # duration literal -> OverflowError
    (("node",), []),  # unhashable class name -> TypeError in from_json
    (("span",), [None, 49]),  # loads; then to_json of the loaded policy raises TypeError
]


@settings(PROPS, max_examples=20)
@example(case=(("left", "left", "operand", "name"), None))
@example(case=(("op",), "**"))
@example(case=(("right", "right", "value"), 2**70))
@given(case=st.sampled_from(AST_CORRUPTIONS))
def test_artifact_expression_with_corrupt_fields_is_rk0501(
    case: tuple[tuple[str, ...], Any],
) -> None:
    """Was (before dcb2437): expr.ast.from_json checked only the node class, so these raised
    a raw TypeError / KeyError / OverflowError out of check_source, and a span that was not
    two ints loaded, then made artifact.to_json of the loaded policy raise."""
    path, value = case

    def edit(d: dict[str, Any]) -> None:
        get_at(d, GUARD + path[:-1])[path[-1]] = value

    result = _must_not_raise(_edited_artifact(edit), "json")
    assert result.policy is None and result.diagnostics[0].code == "RK0501"


@settings(PROPS, max_examples=5)
@example(share=0.75)
@given(share=st.floats(0.7, 0.8))
def test_artifact_expression_tree_too_deep_is_rk0501(share: float) -> None:
    """Was (before dcb2437): from_json and the checker recursed per level without a bound,
    so a deep guard tree raised a raw RecursionError out of check_source."""
    # Deep enough for the loader's recursion, shallow enough for json.loads (one level
    # per node), whatever the recursion limit is (Hypothesis raises it while testing).
    depth = int(_free_frames() * share)
    node: dict[str, Any] = {
        "node": "Literal",
        "span": [0, 4],
        "kind": "bool",
        "value": True,
        "text": "true",
    }
    for _ in range(depth):
        node = {"node": "Unary", "span": [0, 4], "op": "!", "operand": node, "op_span": [0, 1]}

    def edit(d: dict[str, Any]) -> None:
        d["workflows"][0]["states"][0]["transitions"][0]["guard"] = {
            "text": "true",
            "type": "bool",
            "ast": node,
        }

    # Not re-signed: content_hash (a test helper here) would recurse as deep itself. The
    # loader reads the tree before it compares the hash.
    text = _edited_artifact(edit, rehash=False)
    result = _must_not_raise(text, "json")
    assert result.policy is None and result.diagnostics[0].code == "RK0501"
