"""Automatic transitions: on entry, after an update, after an event or a deadline,
chaining, and the chain limit (EvaluationError, case unchanged).
"""

from __future__ import annotations

from typing import Any

import pytest

import rulekit
from rulekit.runtime.engine import MAX_CHAIN

from .helpers import T0, US, H, M, engine_for, kinds, names, snapshot

AUTO = """
policy t.auto
facts {
  x: bool
  y: bool
  n: int
}
actors consumer
event bump by consumer
event go by consumer
effect passed_a
effect passed_b
workflow w {
  initial state a {
    when x -> b emit passed_a
    on bump stay set n = n + 1
    on go -> d
  }
  state b {
    when y -> c emit passed_b
    when n >= 2 -> c
  }
  state d {
    after 1h -> b
  }
  final state c
}
"""


@pytest.mark.parametrize(
    ("facts", "state", "autos"),
    [
        ({"x": False, "y": False, "n": 0}, "a", []),
        ({"x": True, "y": False, "n": 0}, "b", [("a", "b")]),
        ({"x": True, "y": True, "n": 0}, "c", [("a", "b"), ("b", "c")]),
        ({"x": True, "y": False, "n": 5}, "c", [("a", "b"), ("b", "c")]),
    ],
)
def test_automatic_transitions_on_entry_chain(
    facts: dict[str, Any], state: str, autos: list[tuple[str, str]]
) -> None:
    case = engine_for(AUTO).open("w", facts, at=T0)
    assert case.state.name == state
    assert kinds(case) == ["open"] + ["auto"] * len(autos)
    assert [(r.source, r.target) for r in case.history[1:]] == autos
    assert all(r.at == T0 for r in case.history)
    guards = [r.cause.guard for r in case.history[1:]]
    assert guards == ["x", "y" if facts["y"] else "n >= 2"][: len(autos)]


@pytest.mark.parametrize(
    ("changes", "state", "after_update"),
    [
        ({"y": True}, "a", []),
        ({"x": True}, "b", ["auto"]),
        ({"x": True, "y": True}, "c", ["auto", "auto"]),
        ({"n": 2, "x": True}, "c", ["auto", "auto"]),
    ],
)
def test_automatic_transitions_after_update(
    changes: dict[str, Any], state: str, after_update: list[str]
) -> None:
    engine = engine_for(AUTO)
    case = engine.open("w", {"x": False, "y": False, "n": 0}, at=T0)
    result = engine.update(case, changes, at=T0 + H)
    assert case.state.name == state
    assert kinds(case) == ["open", "update", *after_update]
    assert [r.kind for r in result.records] == ["update", *after_update]
    assert result.state == state and result.final is (state == "c")


def test_automatic_transitions_after_an_event_and_a_deadline() -> None:
    engine = engine_for(AUTO)
    case = engine.open("w", {"x": False, "y": False, "n": 0}, at=T0)
    engine.send(case, "bump", "consumer", at=T0)
    engine.send(case, "bump", "consumer", at=T0)  # n = 2, but a has no `when n >= 2`
    assert case.state.name == "a"
    engine.send(case, "go", "consumer", at=T0 + M)
    engine.advance(case, T0 + M + H + US)  # d -> b at its due time, then b -> c at once
    assert case.state.name == "c"
    assert [(r.kind, r.source, r.target, r.at) for r in case.history[-3:]] == [
        ("deadline", "d", "b", T0 + M + H),
        ("auto", "b", "c", T0 + M + H),
        ("advance", "c", None, T0 + M + H + US),
    ]


def test_automatic_transition_after_a_stay_event() -> None:
    text = AUTO.replace("on bump stay set n = n + 1", "on bump stay set n = n + 1, x = n >= 1")
    engine = engine_for(text)
    case = engine.open("w", {"x": False, "y": False, "n": 0}, at=T0)
    engine.send(case, "bump", "consumer", at=T0)  # x = (0 >= 1) = false
    assert case.state.name == "a"
    result = engine.send(case, "bump", "consumer", at=T0)  # x = true: a -> b; n = 2: b -> c
    assert [r.kind for r in result.records] == ["event", "auto", "auto"]
    assert case.state.name == "c" and names(case.effects) == ["passed_a"]


LOOP = """
policy t.loop
facts {
  n: int
  go: bool
}
actors consumer
event poke by consumer
workflow w {
  initial state a {
    when go -> b set n = n + 1
    on poke stay set go = true
  }
  state b {
    when go -> a set n = n + 1
  }
}
"""


@pytest.mark.parametrize("how", ["update", "send"])
def test_a_chain_that_never_ends_is_an_evaluation_error_and_changes_nothing(how: str) -> None:
    engine = engine_for(LOOP)
    case = engine.open("w", {"n": 0, "go": False}, at=T0)
    before = snapshot(case)
    with pytest.raises(rulekit.EvaluationError, match="did not settle"):
        if how == "update":
            engine.update(case, {"go": True}, at=T0 + H)
        else:
            engine.send(case, "poke", "consumer", at=T0 + H)
    assert snapshot(case) == before
    # and the case goes on: a later step that does not start the loop is accepted
    engine.update(case, {"n": 5}, at=T0 + 2 * H)
    assert case.facts == {"n": 5, "go": False}


def test_a_chain_that_never_ends_refuses_the_opening() -> None:
    with pytest.raises(rulekit.EvaluationError, match="did not settle"):
        engine_for(LOOP).open("w", {"n": 0, "go": True}, at=T0)


def test_a_long_chain_that_ends_settles() -> None:
    text = f"""
policy t.long
facts {{
  n: int
}}
actors consumer
event poke by consumer
workflow w {{
  initial state a {{
    when n < {MAX_CHAIN - 1} stay set n = n + 1
    on poke -> b
  }}
  final state b
}}
"""
    case = engine_for(text).open("w", {"n": 0}, at=T0)
    assert case.facts["n"] == MAX_CHAIN - 1
    assert kinds(case) == ["open"] + ["auto"] * (MAX_CHAIN - 1)
