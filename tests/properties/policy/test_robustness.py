"""1. Robustness: ``check_source`` returns normally for any text in every format (random
text over the languages' alphabets and keywords; character/line/token/name mutations of
the example policies, the broken golden examples and generated policies; the compiled
artifact mutated as JSON text and as data), and every diagnostic is well-formed.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from rulekit.policy import artifact

from .helpers import (
    GOLDEN_JSON,
    GOLDEN_RK,
    GOLDEN_YAML,
    PROPS,
    REFUNDS_ARTIFACT,
    REFUNDS_JSON,
    REFUNDS_RK,
    REFUNDS_YAML,
    checked,
    loads_only_compile_error,
)
from .mutations import (
    RK_KEYWORDS,
    RK_LITERALS,
    RK_PUNCT,
    artifact_mutation,
    mutated,
    random_json,
    random_rk,
    random_yaml,
)


@settings(PROPS, max_examples=400)
@given(text=random_rk)
def test_random_rk_text_is_checked_without_raising(text: str) -> None:
    note(repr(text))
    checked(text, "rk")
    loads_only_compile_error(text, "rk")


@settings(PROPS, max_examples=120)
@given(text=random_yaml)
def test_random_yaml_text_is_checked_without_raising(text: str) -> None:
    note(text)
    checked(text, "yaml")


@settings(PROPS, max_examples=120)
@given(text=random_json)
def test_random_json_text_is_checked_without_raising(text: str) -> None:
    note(text)
    checked(text, "json")


RK_SEEDS = st.sampled_from([REFUNDS_RK] * 4 + GOLDEN_RK)
YAML_SEEDS = st.sampled_from([REFUNDS_YAML] * 4 + GOLDEN_YAML)
JSON_SEEDS = st.sampled_from(
    [REFUNDS_JSON, REFUNDS_JSON, json.dumps(REFUNDS_ARTIFACT), *GOLDEN_JSON]
)


@settings(PROPS, max_examples=400)
@given(text=mutated(RK_SEEDS, tuple(RK_KEYWORDS + RK_PUNCT + RK_LITERALS)))
def test_mutated_rk_is_checked_without_raising(text: str) -> None:
    note(text)
    checked(text, "rk")


@settings(PROPS, max_examples=200)
@given(text=mutated(YAML_SEEDS, ("- ", ": ", "{", "}", "[", "]", "on:", "to:", "'", "&a", "*a")))
def test_mutated_yaml_text_is_checked_without_raising(text: str) -> None:
    note(text)
    checked(text, "yaml")


@settings(PROPS, max_examples=150)
@given(text=mutated(JSON_SEEDS, ("{", "}", "[", "]", ",", ":", "null", '"x"', "1e999")))
def test_mutated_json_text_is_checked_without_raising(text: str) -> None:
    note(text)
    checked(text, "json")


@settings(PROPS, max_examples=250)
@given(data=st.data())
def test_mutated_artifact_data_is_checked_without_raising(data: st.DataObject) -> None:
    mutated_artifact = REFUNDS_ARTIFACT
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        mutated_artifact = data.draw(artifact_mutation(mutated_artifact))
    text = json.dumps(mutated_artifact, ensure_ascii=False)
    note(f"changed: {_diff(REFUNDS_ARTIFACT, mutated_artifact)}")
    result = checked(text, "json", "refunds.json")
    if result is not None and result.policy is not None:
        # What loads also serializes again.
        again = artifact.to_json(result.policy)
        assert again["hash"].startswith("sha256:")


def _diff(a: Any, b: Any, pre: tuple[Any, ...] = ()) -> list[Any]:
    """Where ``b`` differs from ``a`` (paths and the new values), for failure reports."""
    if type(a) is not type(b):
        return [(pre, b)]
    if isinstance(a, dict):
        out = [((*pre, k), "<dropped>") for k in a if k not in b]
        out += [((*pre, k), b[k]) for k in b if k not in a]
        return out + [d for k in a if k in b for d in _diff(a[k], b[k], (*pre, k))]
    if isinstance(a, list):
        if len(a) != len(b):
            return [(pre, f"<{len(a)} -> {len(b)} items>")]
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, (*pre, i))
        ]
    return [] if a == b else [(pre, b)]
