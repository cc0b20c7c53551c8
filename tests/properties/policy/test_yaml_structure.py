"""2. YAML structure: structural mutations of YAML policies never crash; an unknown key is
an RK0402 naming the key, on the key's line; a state written twice is an RK0403.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from rulekit.policy import yaml_form

from .generator import generated_policies
from .helpers import (
    GOLDEN_YAML,
    PROPS,
    REFUNDS_DATA,
    Pairs,
    assert_unknown_key_reported,
    checked,
    dump_yaml,
    load_yaml,
    unknown_keys,
)
from .mutations import get_at, walk_paths


def _yaml_paths(data: Any) -> list[tuple[Any, ...]]:
    return [p for p in walk_paths(data) if p]


yaml_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 300),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["", "x", "on", "48h", "order.amount < 1", "+25:00", "Service?", "list("]),
    st.lists(st.sampled_from(["a", "merchant", 1, None]), max_size=3),
    st.sampled_from([{}, {"a": "b"}, {"to": "refunded"}, {"on": "approve"}]),
)


@st.composite
def yaml_structural_mutation(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    data = copy.deepcopy(base)
    paths = _yaml_paths(data)
    kind = draw(st.sampled_from(["delete", "unknown", "retype", "dup-state", "dup-item"]))
    if not paths:
        kind = "unknown"
    if kind == "delete":
        p = draw(st.sampled_from(paths))
        del get_at(data, p[:-1])[p[-1]]
    elif kind == "unknown":
        maps = [p for p in [(), *paths] if isinstance(get_at(data, p), dict)]
        p = draw(st.sampled_from(maps))
        get_at(data, p)[draw(st.from_regex(r"[a-z_]{1,8}", fullmatch=True))] = draw(yaml_values)
    elif kind == "retype":
        p = draw(st.sampled_from(paths))
        get_at(data, p[:-1])[p[-1]] = draw(yaml_values)
    elif kind == "dup-state":
        bodies = _state_maps(data)
        if bodies:
            p = draw(st.sampled_from(bodies))
            states = get_at(data, p)
            name = draw(st.sampled_from(list(states)))
            if draw(st.booleans()):  # the same key twice
                pairs = Pairs(states.items())
                pairs.insert(draw(st.integers(0, len(pairs))), (name, copy.deepcopy(states[name])))
                get_at(data, p[:-1])[p[-1]] = pairs
            else:  # a copy under another name
                states[name + "_copy"] = copy.deepcopy(states[name])
    else:
        lists = [p for p in paths if _is_list(get_at(data, p)) and get_at(data, p)]
        if lists:
            items = get_at(data, draw(st.sampled_from(lists)))
            items.insert(0, copy.deepcopy(draw(st.sampled_from(items))))
    return data


def _is_list(x: Any) -> bool:
    return isinstance(x, list) and not isinstance(x, Pairs)


def _state_maps(data: Any) -> list[tuple[Any, ...]]:
    out = []
    for section in ("workflows", "fragments"):
        bodies = data.get(section) if isinstance(data, dict) else None
        if isinstance(bodies, dict):
            for name, body in bodies.items():
                if (
                    isinstance(body, dict)
                    and isinstance(body.get("states"), dict)
                    and body["states"]
                ):
                    out.append((section, name, "states"))
    return out


@settings(PROPS, max_examples=200)
@given(data=st.data())
def test_structurally_mutated_yaml_is_checked_without_raising(data: st.DataObject) -> None:
    seed = data.draw(
        st.one_of(
            st.sampled_from([REFUNDS_DATA, *(load_yaml(t) for t in GOLDEN_YAML[1:2])]),
            generated_policies().map(lambda g: load_yaml(g.yaml)),
        )
    )
    mutated_data = seed
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        if not isinstance(mutated_data, dict):
            break
        mutated_data = data.draw(yaml_structural_mutation(mutated_data))
    text = dump_yaml(mutated_data, flow=data.draw(st.sampled_from([False, None])))
    note(text)
    checked(text, "yaml", "refunds.yaml")


def _schema_props(name: str) -> set[str]:
    s = yaml_form.schema()
    if name == "policy":
        return set(s["properties"])
    if name == "event":
        return set(s["properties"]["events"]["additionalProperties"]["properties"])
    return set(s["$defs"][name]["properties"])


def _fixed_key_maps(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """(path, schema part) of every map of the YAML form whose keys are fixed words."""
    out: list[tuple[tuple[Any, ...], str]] = [((), "policy")]
    for name, ev in (data.get("events") or {}).items():
        if isinstance(ev, dict):
            out.append((("events", name), "event"))
    for section in ("workflows", "fragments"):
        for name, body in (data.get(section) or {}).items():
            out.append(((section, name), "body"))
            for sname, state in (body.get("states") or {}).items():
                if isinstance(state, dict):
                    out.append(((section, name, "states", sname), "state"))
                    for i, _t in enumerate(state.get("transitions") or []):
                        out.append(
                            ((section, name, "states", sname, "transitions", i), "transition")
                        )
            for i, block in enumerate(body.get("every") or []):
                out.append(((section, name, "every", i), "every"))
                for j, _t in enumerate(block.get("transitions") or []):
                    out.append(((section, name, "every", i, "transitions", j), "transition"))
    return out


@settings(PROPS, max_examples=100)
@given(data=st.data(), key=unknown_keys)
def test_unknown_yaml_key_is_reported_by_name(data: st.DataObject, key: str) -> None:
    base = copy.deepcopy(REFUNDS_DATA)
    path, part = data.draw(st.sampled_from(_fixed_key_maps(base)))
    if key in _schema_props(part):
        return
    get_at(base, path)[key] = data.draw(yaml_values)
    assert_unknown_key_reported(base, path, key)


@settings(PROPS, max_examples=40)
@given(data=st.data())
def test_state_written_twice_in_yaml_is_a_duplicate_key(data: st.DataObject) -> None:
    base = copy.deepcopy(REFUNDS_DATA)
    p = data.draw(st.sampled_from(_state_maps(base)))
    states = get_at(base, p)
    name = data.draw(st.sampled_from(list(states)))
    pairs = Pairs(states.items())
    pairs.insert(data.draw(st.integers(0, len(pairs))), (name, copy.deepcopy(states[name])))
    get_at(base, p[:-1])[p[-1]] = pairs
    text = dump_yaml(base)
    note(text)
    result = checked(text, "yaml", "dup.yaml")
    assert result is not None and result.policy is None
    assert any(d.code == "RK0403" and f"`{name}`" in d.message for d in result.diagnostics), [
        str(d) for d in result.diagnostics
    ]
