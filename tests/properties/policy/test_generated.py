"""3. Generated valid policies (generator.py), written as .rk and as YAML, check without
errors, compile to the same artifact (hash and content without positions), and the
artifact round-trips through JSON to the same hash, workflows, states and transitions,
and to the very same artifact. Injecting one error gives the same codes in both forms;
any hand edit of a non-position value of an artifact is caught.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import event, given, note, settings
from hypothesis import strategies as st

import rulekit
from rulekit.analysis import check_source
from rulekit.policy import artifact

from .generator import (
    EverySpec,
    Generated,
    PolicySpec,
    Tr,
    emit_rk,
    emit_yaml,
    generated_policies,
    policy_specs,
)
from .helpers import PROPS, assert_well_formed, checked
from .mutations import RK_KEYWORDS, RK_PUNCT, get_at, mutated


def _compile(text: str, fmt: str, filename: str) -> rulekit.Policy:
    result = check_source(text, fmt, filename)
    assert_well_formed(result, text)
    errors = [d for d in result.diagnostics if d.severity == "error"]
    assert not errors, f"{fmt} form does not check:\n{result.render()}\n---\n{text}"
    assert result.policy is not None
    return rulekit.loads(text, fmt, filename)


def _shape(p: rulekit.Policy) -> list[Any]:
    return [
        (
            wname,
            w.initial,
            [
                (
                    s.name,
                    s.initial,
                    s.final,
                    s.outcome,
                    [(t.kind, t.event, t.target, t.origin) for t in s.transitions],
                )
                for s in w.states.values()
            ],
        )
        for wname, w in p.workflows.items()
    ]


@settings(PROPS, max_examples=200)
@given(g=generated_policies())
def test_generated_policies_compile_alike_in_both_forms_and_round_trip(g: Generated) -> None:
    note(g.rk)
    note(g.yaml)
    p_rk = _compile(g.rk, "rk", "gen.rk")
    p_yaml = _compile(g.yaml, "yaml", "gen.yaml")
    # Both forms, one artifact.
    assert p_rk.hash.startswith("sha256:")
    assert p_rk.hash == p_yaml.hash
    a_rk, a_yaml = artifact.to_json(p_rk), artifact.to_json(p_yaml)
    assert artifact._without_positions(a_rk) == artifact._without_positions(a_yaml)
    assert _shape(p_rk) == _shape(p_yaml)
    # The artifact round-trips through JSON text.
    text = json.dumps(a_rk, ensure_ascii=False)
    loaded = rulekit.loads(text, "json", "gen.json")
    assert loaded.hash == p_rk.hash
    assert list(loaded.workflows) == list(p_rk.workflows)
    assert _shape(loaded) == _shape(p_rk)
    # ... and writing what was read gives back the very same artifact.
    assert artifact.to_json(loaded) == a_rk
    event(f"states: {sum(len(w.states) for w in p_rk.workflows.values())}")
    event("with fragment" if g.spec.fragment else "no fragment")


@settings(PROPS, max_examples=120)
@given(g=generated_policies(), data=st.data())
def test_mutated_generated_policies_are_checked_without_raising(
    g: Generated, data: st.DataObject
) -> None:
    fmt = data.draw(st.sampled_from(["rk", "yaml"]))
    seed = g.rk if fmt == "rk" else g.yaml
    text = data.draw(mutated(st.just(seed), tuple(RK_KEYWORDS + RK_PUNCT)))
    note(text)
    checked(text, fmt)


INJECTIONS = [
    "target",
    "event",
    "actor",
    "initial",
    "fact",
    "effect",
    "guard",
    "deadline",
    "fragment",
    "constant",
    "every",
]


def inject_error(spec: PolicySpec, how: str, pick: Callable[[list[Any]], Any]) -> str | None:
    """Break ``spec`` in one way (in place); the code the checker should report, or None."""
    bodies = [spec.workflow] + ([spec.fragment] if spec.fragment else [])
    non_final = {s.name for b in bodies for s in b.states if not s.final}

    def lands(blk: EverySpec) -> bool:
        # Documented: an `every` block that applies to no state is not checked at all.
        return blk.mode != "except" or bool(non_final - set(blk.names))

    trs = [t for b in bodies for s in b.states for t in s.transitions]
    trs += [t for b in bodies for blk in b.every if lands(blk) for t in blk.transitions]
    if how == "target" and trs:
        pick(trs).target = "nowhere"
        return "RK0302"
    if how == "event" and [t for t in trs if t.kind == "event"]:
        pick([t for t in trs if t.kind == "event"]).event = "nothing"
        return "RK0303"
    if how == "actor" and [t for t in trs if t.kind == "event"]:
        pick([t for t in trs if t.kind == "event"]).by = ["ghost"]
        return "RK0304"
    if how == "initial":
        others = [s for s in spec.workflow.states if not s.initial and not s.final]
        if others:
            pick(others).initial = True
            return "RK0306"
    if how == "fact" and trs:
        pick(trs).sets.append(("order.ghost", "1"))
        return "RK0310"
    if how == "effect" and trs:
        pick(trs).emits.append(("ghost", []))
        return "RK0311"
    if how == "guard" and trs:
        t = pick(trs)
        if t.kind == "auto":
            t.condition = "case.count"
        else:
            t.guard = "case.count"
        return "RK0205"
    if how == "deadline" and [t for t in trs if t.kind == "after"]:
        pick([t for t in trs if t.kind == "after"]).deadline = "case.count"
        return "RK0308"
    if how == "fragment":
        spec.workflow.uses.append("ghost")
        return "RK0313"
    if how == "constant":
        spec.constants.append(("BAD", "int", "case.count", None))
        return "RK0314"
    if how == "every":
        spec.workflow.every.append(EverySpec("in", ["ghost"], [Tr(kind="at", deadline="now")]))
        return "RK0302"
    return None


@settings(PROPS, max_examples=100)
@given(spec=policy_specs(), how=st.sampled_from(INJECTIONS), data=st.data())
def test_both_forms_report_the_same_problems(
    spec: PolicySpec, how: str, data: st.DataObject
) -> None:
    code = inject_error(spec, how, lambda xs: data.draw(st.sampled_from(xs)))
    if code is None:
        return
    rnd = data.draw(st.randoms(use_true_random=False))
    rk, yml = emit_rk(spec, rnd), emit_yaml(spec, rnd)
    note(rk)
    note(yml)
    r_rk, r_yaml = checked(rk, "rk", "bad.rk"), checked(yml, "yaml", "bad.yaml")
    assert r_rk is not None and r_yaml is not None
    codes_rk = sorted(d.code for d in r_rk.diagnostics)
    codes_yaml = sorted(d.code for d in r_yaml.diagnostics)
    assert code in codes_rk, (code, r_rk.render())
    assert codes_rk == codes_yaml, (r_rk.render(), r_yaml.render())
    event(f"injected {code}")


def _leaves(
    node: Any, pre: tuple[Any, ...] = (), user_map: bool = False
) -> Iterator[tuple[Any, ...]]:
    """Paths of the values the content hash covers (not positions, file or hash)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if not user_map and (k == "at" or (not pre and k in ("file", "hash"))):
                continue
            yield from _leaves(v, (*pre, k), k in ("args", "enums") and not user_map)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*pre, i))
    else:
        yield pre


def _edited(v: Any) -> Any:
    if isinstance(v, bool):
        return not v
    if isinstance(v, int | float):
        return v + 1
    if isinstance(v, str):
        return v + "x"
    return "x"


@settings(PROPS, max_examples=100)
@given(g=generated_policies(), data=st.data())
def test_any_hand_edit_of_an_artifact_is_caught(g: Generated, data: st.DataObject) -> None:
    a = artifact.to_json(rulekit.loads(g.rk, "rk", "gen.rk"))
    leaves = list(_leaves(a))
    path = data.draw(st.sampled_from(leaves), label="edited value")
    edited = copy.deepcopy(a)
    parent = get_at(edited, path[:-1])
    parent[path[-1]] = _edited(parent[path[-1]])
    text = json.dumps(edited, ensure_ascii=False)
    result = checked(text, "json", "gen.json")
    if result is None:
        return
    assert result.policy is None and any(d.code == "RK0501" for d in result.diagnostics), (
        path,
        [str(d) for d in result.diagnostics],
    )
