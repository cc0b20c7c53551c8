"""A scenario run to explain it (``rulekit explain SCENARIO_FILE --scenario NAME``).

The scenario's steps run on the engine as ``rulekit test`` runs them, without
checking its expectations: what is wanted is the case's history, and the steps the
engine refused, each kept as the caller saw it then (a refused step changes nothing,
so the history does not hold it): its code and message, and for ``guard_failed`` the
conditions of the transitions the sender may take, judged on the case as it was at
that moment (:class:`rulekit.runtime.explain.Refusal`).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rulekit.core.errors import EvaluationError, StepRefused
from rulekit.expr import stdlib
from rulekit.expr.convert import ConversionError, convert
from rulekit.runtime import Case, Engine
from rulekit.runtime.explain import Condition, Refusal, judge
from rulekit.tools.scenarios import Scenario


class ScenarioNotFound(LookupError):
    """No scenario of that name in the file; the message names the closest and lists all."""


@dataclass
class ScenarioRun:
    """A scenario's case as its steps left it, and the steps refused on the way.

    ``case`` None: its opening was refused (the one refusal, numbered 0). ``stopped``:
    why it stopped before its last step (the opening was refused, a step failed with an
    error), or None."""

    case: Case | None
    refusals: list[Refusal]
    stopped: str | None = None


def find(scenarios: list[Scenario], name: str) -> Scenario:
    """The scenario called ``name``; :class:`ScenarioNotFound` says which names there are."""
    for s in scenarios:
        if s.name == name:
            return s
    names = [s.name for s in scenarios]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listed = "; ".join(repr(n) for n in names)
    raise ScenarioNotFound(f"no scenario named {name!r}{hint}: the file has {listed}")


def run(engine: Engine, scenario: Scenario) -> ScenarioRun:
    """Run ``scenario``'s steps (not its expectations) on ``engine``."""
    try:
        case = engine.open(scenario.workflow, scenario.facts, at=scenario.at)
    except StepRefused as e:
        opening = Refusal(scenario.at, "open", None, e.code, e.message, "", (), (), 0)
        return ScenarioRun(None, [opening], f"opening the case was refused: {e.code}: {e.message}")
    out = ScenarioRun(case, [])
    now = scenario.at
    for number, step in enumerate(scenario.steps, 1):
        try:
            if "advance" in step:
                now = now + stdlib.parse_duration(str(step["advance"]))
                engine.advance(case, now)
            elif "until" in step:
                now = max(now, stdlib.parse_timestamp(str(step["until"])))
                engine.advance(case, now)
            elif "send" in step:
                send = step["send"]
                event, by, data = str(send["event"]), str(send["by"]), send.get("data")
                try:
                    engine.send(case, event, by, data, at=now)
                except StepRefused as e:
                    out.refusals.append(_refused(engine, case, now, e, event, by, data, number))
            elif "update" in step:
                try:
                    engine.update(case, step["update"], at=now)
                except StepRefused as e:
                    out.refusals.append(_refused(engine, case, now, e, None, None, None, number))
        except (EvaluationError, ValueError, stdlib.CelError) as e:
            out.stopped = f"a step failed: {e}"
            break
    return out


def _refused(
    engine: Engine,
    case: Case,
    at: datetime,
    error: StepRefused,
    event: str | None,
    by: str | None,
    data: Mapping[str, Any] | None,
    number: int,
) -> Refusal:
    """The refusal as the caller saw it. A step fires the deadlines due before it first:
    the case it was refused in is the case with those fired (a copy: the refusal undid
    them), and its conditions are judged on that case, at that moment."""
    then = engine.replay(case.history)
    if then.now < at:
        engine.advance(then, at)
    step = f"send {event} by {by}" if event is not None else "update"
    conditions: tuple[Condition, ...] = ()
    if error.code == "guard_failed" and event is not None and by is not None:
        conditions = _conditions(engine, then, event, by, data or {}, at)
    return Refusal(
        at,
        step,
        event,
        error.code,
        error.message,
        then.state.name,
        tuple(then.history),
        conditions,
        number,
    )


def _conditions(
    engine: Engine, case: Case, event: str, by: str, data: Mapping[str, Any], at: datetime
) -> tuple[Condition, ...]:
    """The conditions of the transitions ``by``'s ``event`` may take in the case's state,
    judged with the payload as the engine reads it (a payload it accepted: the refusal
    was of the conditions)."""
    decl = engine.policy.events[event]
    payload = {}
    for f in decl.payload:
        try:
            payload[f.name] = convert(data.get(f.name), f.type, f"{event}.{f.name}")
        except ConversionError:
            return ()
    variables = dict(case.facts)
    variables["event"] = payload
    variables["actor"] = by
    return tuple(
        judge(t.guard, variables, at)
        for t in case.state.transitions
        if t.kind == "event" and t.event == event and by in t.actors and t.guard is not None
    )
