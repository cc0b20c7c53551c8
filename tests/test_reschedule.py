"""`stay ... reschedule` (issue 15): both forms compile to the same artifact, which keeps
the clause and is validated when it is loaded; the engine counts the deadlines again
from the entry and replay reproduces it (tests/scenarios/reschedule.yaml runs the
boundaries, tests/stores/test_reschedule.py the stores)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import rulekit
from rulekit import CompileError
from rulekit.policy import artifact
from rulekit.runtime.timeline import render
from support import TESTS

POLICY = TESTS / "policies" / "reschedule.rk"
T = datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=1)))
D = timedelta(days=1)


def _transitions(data: dict[str, Any], state: str) -> list[dict[str, Any]]:
    (wf,) = [w for w in data["workflows"] if w["name"] == "review"]
    states = wf["states"]
    found = (
        states[state] if isinstance(states, dict) else next(s for s in states if s["name"] == state)
    )
    return found["transitions"]  # type: ignore[no-any-return]


def test_both_forms_compile_to_one_artifact_that_keeps_the_clause() -> None:
    rk, yaml = rulekit.load(POLICY), rulekit.load(POLICY.with_suffix(".yaml"))
    assert rk.hash == yaml.hash
    data = artifact.to_json(rk)
    marked = [t.get("event") for t in _transitions(data, "reviewing") if t.get("reschedule")]
    assert marked == ["extend_review", "clear_review"]
    loaded = rulekit.loads(json.dumps(data), "json", "reschedule.json")
    assert loaded.hash == data["hash"]
    assert [t.reschedule for t in loaded.workflows["review"].states["reviewing"].transitions][
        :3
    ] == [True, True, False]
    # policies without it keep their artifacts (and hashes) as they were
    plain = artifact.to_json(rulekit.load(TESTS / "policies" / "refunds.rk"))
    assert "reschedule" not in json.dumps(plain)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"target": "decided"}, "only a `stay`"),
        ({"reschedule": False}, "RK0501"),
    ],
)
def test_hand_edited_reschedules_are_refused(edit: dict[str, Any], message: str) -> None:
    data = artifact.to_json(rulekit.load(POLICY))
    first = _transitions(data, "reviewing")[0]
    assert first["reschedule"] is True
    first.update(edit)
    data["hash"] = artifact.content_hash(data)
    with pytest.raises(CompileError) as info:
        rulekit.loads(json.dumps(data), "json", "edited.json")
    assert message in str(info.value)
    assert {d.code for d in info.value.diagnostics} == {"RK0501"}


def test_the_timeline_shows_the_deadlines_counted_again_and_replay_reproduces_them() -> None:
    engine = rulekit.Engine(rulekit.load(POLICY))
    case = engine.open("review", {}, at=T)
    engine.send(case, "extend_review", "reviewer", {"until": T + 5 * D}, at=T + D / 2)
    engine.send(case, "clear_review", "reviewer", at=T + 2 * D)
    # the reminder fired at T+1d: it is not counted again
    assert render(case.history[-1:]).splitlines() == [
        "2026-03-04 09:00:00+01:00  deadlines of `reviewing` counted again",
        "      at review.until: not scheduled",
        "      after 30d: due 2026-04-01 09:00:00+01:00",
    ]
    again = engine.replay(case.history)
    assert [(r.kind, r.at, r.data) for r in again.history] == [
        (r.kind, r.at, r.data) for r in case.history
    ]
    assert again.deadlines == case.deadlines and again.entered == case.entered == T


def test_a_refused_step_leaves_the_entry_and_deadlines_as_they_were() -> None:
    engine = rulekit.Engine(rulekit.load(POLICY))
    case = engine.open("review", {"review": {"until": T + 5 * D}}, at=T)
    before = (list(case.deadlines), case.entered, case.facts)
    with pytest.raises(rulekit.StepRefused):
        engine.send(case, "extend_review", "reviewer", {"until": "soon"}, at=T + D / 2)
    assert (list(case.deadlines), case.entered, case.facts) == before


def test_diff_says_when_a_stay_starts_or_stops_rescheduling() -> None:
    from rulekit.analysis import diff

    old = rulekit.load(POLICY)
    text = POLICY.read_text(encoding="utf-8").replace(
        "set review.until = event.until reschedule", "set review.until = event.until", 1
    )
    new = rulekit.loads(text, "rk", "reschedule.rk")
    changes = [str(c) for c in diff.compare(old, new)]
    assert changes == [
        "review.reviewing: on extend_review: no longer reschedules the state's deadlines"
    ]
