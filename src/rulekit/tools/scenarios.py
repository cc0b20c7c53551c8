"""Scenario files and `rulekit test` (../shared/contracts/scenarios.md).

A scenario file names a policy and lists scenarios: a case opened at a time
with facts, then steps (advance, until, send, update, expect). This module
reads the files (exactly: money as written, times only with an offset) and
runs them on the engine with a simulated clock.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.errors import REFUSAL_CODES, CompileError, EvaluationError, StepRefused
from rulekit.core.source import Source, Span, find_files, read_text
from rulekit.expr import stdlib
from rulekit.expr.convert import MAX_NESTING, ConversionError, convert
from rulekit.policy import Policy, load
from rulekit.policy.yaml_form import yaml_problem
from rulekit.runtime import Case, Engine
from rulekit.runtime.timeline import render as render_timeline
from rulekit.runtime.timeline import show_time
from rulekit.tools import coverage as cov

STEP_KINDS = ("advance", "until", "send", "update", "expect")
EXPECT_KEYS = ("state", "final", "outcome", "effects", "facts", "allowed", "deadline")


# -- reading scenario files ----------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML as scenario files mean it: decimals exact, timestamps as written, positions kept."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.positions: dict[int, yaml.Mark] = {}
        #: id(map) -> key -> (offset of the key, offset of its value)
        self.keys: dict[int, dict[str, tuple[int, int]]] = {}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise _Invalid(f"key `{key.value}` appears twice", key.start_mark)
                seen.add(key.value)
        mapping = super().construct_mapping(node, deep=True)
        self.positions[id(mapping)] = node.start_mark
        self.keys[id(mapping)] = {
            str(k.value): (k.start_mark.index, v.start_mark.index)
            for k, v in node.value
            if isinstance(k, yaml.ScalarNode)
        }
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        seq = super().construct_sequence(node, deep=True)
        self.positions[id(seq)] = node.start_mark
        return seq


def _decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        return Decimal(text)
    except InvalidOperation:
        return float(text.replace(".inf", "inf").replace(".nan", "nan"))


def _map(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    return loader.construct_mapping(
        node, deep=True
    )  # not SafeLoader's generator: keeps the dict's id


def _seq(loader: _Loader, node: yaml.SequenceNode) -> list[Any]:
    return loader.construct_sequence(node, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:map", _map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _seq)


def _bool(loader: _Loader, node: yaml.ScalarNode) -> Any:
    text = str(node.value)
    return (
        text.lower() == "true" if text.lower() in ("true", "false") else text
    )  # YAML 1.2: `no` is text


_Loader.add_constructor("tag:yaml.org,2002:bool", _bool)
_Loader.add_constructor("tag:yaml.org,2002:float", _decimal)
# Times stay text: they are read as RFC 3339 with an offset, or refused.
_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)  # type: ignore[type-var]


class _Invalid(Exception):
    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


@dataclass
class Scenario:
    name: str
    workflow: str
    at: datetime
    facts: Mapping[str, Any]
    steps: list[dict[str, Any]]
    open_error: str | None
    line: int
    #: the scenario's map as read (its keys have positions in ScenarioFile.keys)
    written: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class ScenarioFile:
    path: Path
    policy_path: Path
    scenarios: list[Scenario]
    #: id(step map) -> line of the step, for messages
    lines: dict[int, int] = field(default_factory=dict)
    #: the file's text and, per map (by id), where each key and its value start
    text: str = ""
    keys: dict[int, dict[str, tuple[int, int]]] = field(default_factory=dict)
    #: the file's top-level map as read
    written: dict[str, Any] = field(default_factory=dict, repr=False)

    def error(
        self, message: str, at: object, key: str, *, value: bool = True, help: str | None = None
    ) -> ScenarioFileError:
        """An RK0601 pointing at ``key`` of the map ``at`` (at its value when ``value``)."""
        place = self.keys.get(id(at), {}).get(key, (0, 0))
        return _fail(self.path, self.text, message, place[1 if value else 0], help)


class ScenarioFileError(Exception):
    """A scenario file that cannot be run: ``diagnostic`` says where and why."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(str(diagnostic))
        self.diagnostic = diagnostic


def _fail(
    path: Path, text: str, message: str, offset: int | None, help: str | None = None
) -> ScenarioFileError:
    source = Source(text, str(path))
    at = offset or 0
    return ScenarioFileError(diag.make("RK0601", message, source, Span(at, at + 1), help=help))


def _did_you_mean(name: object, known: Iterable[str], what: str) -> str:
    """The help line for an unknown name: the closest known one, then all of them."""
    names = list(known)
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.6)
    listed = f"{what}: {', '.join(names)}"
    return f"did you mean `{close[0]}`? ({listed})" if close else listed


#: A line that starts with a `scenarios` key: every scenario file has one (block style).
SCENARIOS_LINE = re.compile(r"""^(?:scenarios|'scenarios'|"scenarios")[ \t]*:""", re.M)


def is_scenario_file(path: Path) -> bool:
    """A YAML file whose top level has a `scenarios` key (written at the start of a line).

    The pytest plugin asks this of every YAML file pytest collects, in any project that
    installs rulekit: a search of the text for the key's line comes first, so that files
    without one (CI configurations, fixtures, data) are never parsed.
    """
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError):
        return False
    return bool(SCENARIOS_LINE.search(text)) and "scenarios" in (top_level_keys(text) or ())


def top_level_keys(text: str) -> list[str] | None:
    """The (scalar) keys of a YAML document's top-level mapping, read as YAML nodes, never
    made into Python values; None when the text is not YAML, [] when its top level is
    not a mapping."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode):
        return []
    return [k.value for k, _ in root.value if isinstance(k, yaml.ScalarNode)]


SCENARIO_KEYS = ("name", "workflow", "at", "facts", "steps", "open_error")


def read(path: Path, text: str | None = None) -> ScenarioFile:
    """Read and validate a scenario file; raises ScenarioFileError naming line and column.

    ``text``: the file's text as an editor holds it (not saved yet); read from ``path``
    when None. The policy it names is found relative to ``path`` either way.
    """
    if text is None:
        try:
            text = read_text(path)
        except (OSError, UnicodeDecodeError) as e:
            raise _fail(path, "", f"cannot read the file: {e}", None) from None
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except _Invalid as e:
        raise _fail(path, text, e.message, e.mark.index if e.mark else None) from None
    except RecursionError:
        raise _fail(path, text, f"nested more than {MAX_NESTING} levels deep", None) from None
    except yaml.YAMLError as e:
        what, help_, offset = yaml_problem(e, text)
        raise _fail(path, text, what, offset, help_) from None
    finally:
        loader.dispose()
    marks = loader.positions
    sf = ScenarioFile(path, path, [], {}, text, loader.keys, data if isinstance(data, dict) else {})

    def bad(message: str, at: object, help: str | None = None) -> ScenarioFileError:
        m = marks.get(id(at))
        return _fail(path, text, message, m.index if m is not None else None, help)

    if not isinstance(data, dict):
        raise bad("a scenario file is a map with `policy` and `scenarios`", data)
    unknown = sorted(set(data) - {"policy", "scenarios"}, key=str)
    if unknown:
        raise sf.error(
            f"unknown key `{unknown[0]}` at the top of a scenario file",
            data,
            unknown[0],
            value=False,
            help=_did_you_mean(unknown[0], ("policy", "scenarios"), "allowed"),
        )
    if not isinstance(data.get("policy"), str):
        raise bad("`policy` is required: the path of the rule file, relative to this file", data)
    sf.policy_path = (path.parent / data["policy"]).resolve()
    if not sf.policy_path.is_file():
        raise sf.error(
            f"policy file not found: {data['policy']}",
            data,
            "policy",
            help="the path is relative to the folder of this scenario file",
        )
    scenarios = data.get("scenarios")
    if not isinstance(scenarios, list) or not scenarios:
        raise bad("`scenarios` is required: a non-empty list", data)
    names: set[str] = set()
    for item in scenarios:
        if not isinstance(item, dict):
            raise bad("each scenario is a map", scenarios)
        extra = sorted(set(item) - set(SCENARIO_KEYS), key=str)
        if extra:
            raise sf.error(
                f"unknown key `{extra[0]}` in a scenario",
                item,
                extra[0],
                value=False,
                help=_did_you_mean(extra[0], SCENARIO_KEYS, "allowed"),
            )
        for required in ("name", "workflow", "at"):
            if required not in item:
                raise bad(f"a scenario needs `{required}`", item)
        name = str(item["name"])
        if name in names:
            raise sf.error(f"two scenarios are named `{name}`", item, "name")
        names.add(name)
        try:
            at = stdlib.parse_timestamp(str(item["at"]))
        except stdlib.CelError as e:
            raise sf.error(f"`at`: {e}", item, "at") from None
        if ("steps" in item) == ("open_error" in item):
            raise bad("a scenario has either `steps` or `open_error`", item)
        steps = item.get("steps") or []
        if not isinstance(steps, list):
            raise sf.error("`steps` is a list", item, "steps")
        for step in steps:
            _check_step(step, bad, sf)
            m = marks.get(id(step))
            sf.lines[id(step)] = m.line + 1 if m is not None else 0
        facts = item.get("facts") or {}
        if not isinstance(facts, dict):
            raise sf.error("`facts` is a map of fact paths to values", item, "facts")
        open_error = item.get("open_error")
        if "open_error" in item and open_error != "invalid_fact":
            raise sf.error(
                f"`open_error: {open_error}`: opening a case can only be refused with invalid_fact",
                item,
                "open_error",
            )
        m = marks.get(id(item))
        sf.scenarios.append(
            Scenario(
                name,
                str(item["workflow"]),
                at,
                facts,
                steps,
                open_error,
                m.line + 1 if m else 0,
                item,
            )
        )
    return sf


def _check_step(step: Any, bad: Any, sf: ScenarioFile) -> None:
    if not isinstance(step, dict):
        raise bad("each step is a map with one of: " + ", ".join(STEP_KINDS), step)
    kinds = [k for k in step if k in STEP_KINDS]
    others = [k for k in step if k not in STEP_KINDS and k != "expect_error"]
    if others:
        raise sf.error(
            f"unknown step `{others[0]}`",
            step,
            others[0],
            value=False,
            help=_did_you_mean(others[0], STEP_KINDS, "steps"),
        )
    if len(kinds) != 1:
        message = "a step has exactly one of " + ", ".join(STEP_KINDS)
        if not kinds:
            raise bad(message + " (plus expect_error on send and update)", step)
        raise sf.error(
            f"{message}, but this one also has `{kinds[1]}`",
            step,
            kinds[1],
            value=False,
            help="split it into two steps",
        )
    kind = kinds[0]
    if "expect_error" in step:
        if kind not in ("send", "update"):
            raise sf.error("`expect_error` goes with `send` or `update`", step, "expect_error")
        if step["expect_error"] not in REFUSAL_CODES:
            raise sf.error(
                f"unknown error code `{step['expect_error']}`",
                step,
                "expect_error",
                help=_did_you_mean(step["expect_error"], REFUSAL_CODES, "codes"),
            )
    value = step[kind]
    try:
        if kind == "advance":
            if not isinstance(value, str) or stdlib.parse_duration(value) < timedelta(0):
                raise sf.error(
                    f"`advance` takes a duration like 48h or PT48H, not {value!r}", step, kind
                )
        elif kind == "until":
            stdlib.parse_timestamp(str(value))
        elif (
            kind == "expect" and isinstance(value, dict) and isinstance(value.get("deadline"), dict)
        ):
            d = value["deadline"]
            if "at" in d:
                stdlib.parse_timestamp(str(d["at"]))
            if "in" in d:
                stdlib.parse_duration(str(d["in"]))
    except stdlib.CelError as e:
        raise sf.error(f"`{kind}`: {e}", step, kind) from None
    if kind == "send":
        if not isinstance(value, dict) or "event" not in value or "by" not in value:
            raise sf.error("`send` is {event: NAME, by: ACTOR, data: {...}}", step, kind)
        extra = sorted(set(value) - {"event", "by", "data"}, key=str)
        if extra:
            raise sf.error(
                f"unknown key `{extra[0]}` in `send`",
                value,
                extra[0],
                value=False,
                help=_did_you_mean(extra[0], ("event", "by", "data"), "keys"),
            )
    if kind == "update" and not isinstance(value, dict):
        raise sf.error("`update` is a map of fact paths to values", step, kind)
    if kind == "expect":
        if not isinstance(value, dict):
            raise sf.error("`expect` is a map of: " + ", ".join(EXPECT_KEYS), step, kind)
        extra = sorted(set(value) - set(EXPECT_KEYS), key=str)
        if extra:
            raise sf.error(
                f"unknown key `{extra[0]}` in `expect`",
                value,
                extra[0],
                value=False,
                help=_did_you_mean(extra[0], EXPECT_KEYS, "keys"),
            )
        if "allowed" in value and not isinstance(value["allowed"], list | None):
            raise sf.error(
                "`allowed` is a list of event names, like [approve, reject] ([] for none)",
                value,
                "allowed",
                help=f"write it as [{value['allowed']}]"
                if isinstance(value["allowed"], str)
                else None,
            )


def check_names(sf: ScenarioFile, policy: Policy) -> None:
    """The workflows, events, actors and states the file names exist in ``policy``.

    A misspelt name is a mistake in the file (RK0601 with a suggestion), not a failed
    scenario. A `send` with `expect_error` may name an unknown event or actor on purpose.
    """
    actors = [*policy.actors, "system"]
    for scenario in sf.scenarios:
        item = scenario.written
        wf = policy.workflows.get(scenario.workflow)
        if wf is None:
            raise sf.error(
                f"unknown workflow `{scenario.workflow}` in policy {policy.name}",
                item,
                "workflow",
                help=_did_you_mean(scenario.workflow, policy.workflows, "workflows"),
            )
        for step in scenario.steps:
            send, want = step.get("send"), step.get("expect")
            if isinstance(send, dict) and "expect_error" not in step:
                if send["event"] not in policy.events:
                    raise sf.error(
                        f"unknown event `{send['event']}`",
                        send,
                        "event",
                        help=_did_you_mean(send["event"], policy.events, "events"),
                    )
                if send["by"] not in actors:
                    raise sf.error(
                        f"unknown actor `{send['by']}`",
                        send,
                        "by",
                        help=_did_you_mean(send["by"], actors, "actors"),
                    )
            if not isinstance(want, dict):
                continue
            if "state" in want and want["state"] not in wf.states:
                raise sf.error(
                    f"workflow {wf.name} has no state `{want['state']}`",
                    want,
                    "state",
                    help=_did_you_mean(want["state"], wf.states, "states"),
                )
            for event in want.get("allowed") or []:
                if event not in policy.events:
                    raise sf.error(
                        f"unknown event `{event}` in `allowed`",
                        want,
                        "allowed",
                        help=_did_you_mean(event, policy.events, "events"),
                    )


# -- running -----------------------------------------------------------------------------------


@dataclass
class Failure:
    step: int
    message: str
    timeline: str
    #: the scenario's clock when it failed
    clock: datetime | None = None
    #: the case as it was when the scenario failed (None when none was opened): its
    #: history as data, for the studio to show as it shows a simulation's
    case: Case | None = None


@dataclass
class Result:
    file: str
    scenario: str
    failure: Failure | None
    steps: int = 0

    @property
    def passed(self) -> bool:
        return self.failure is None


class _StepFailed(Exception):
    pass


def run_file(
    sf: ScenarioFile,
    policies: dict[Path, Policy] | None = None,
    coverage: dict[Path, cov.Coverage] | None = None,
) -> list[Result]:
    """Run every scenario of a file; the policy is loaded once (and cached in ``policies``).

    ``coverage``: when given, what the scenarios exercise is counted in its entry for the
    file's policy (made on first use)."""
    policy = load_policy(sf, policies)
    engine = Engine(policy)
    counted = coverage_of(policy, sf.policy_path, coverage)
    return [run(engine, sf, s, counted) for s in sf.scenarios]


def load_policy(sf: ScenarioFile, policies: dict[Path, Policy] | None = None) -> Policy:
    """The file's policy, loaded once (cached in ``policies``), with the file's names checked
    against it (ScenarioFileError; a policy that does not compile: CompileError)."""
    cache = policies if policies is not None else {}
    if sf.policy_path not in cache:
        cache[sf.policy_path] = load(shown_path(sf.policy_path))
    check_names(sf, cache[sf.policy_path])
    return cache[sf.policy_path]


def coverage_of(
    policy: Policy, path: Path, coverage: dict[Path, cov.Coverage] | None
) -> cov.Coverage | None:
    """The entry of ``coverage`` for ``policy`` (made on first use), or None without one."""
    if coverage is None:
        return None
    if path not in coverage:
        coverage[path] = cov.Coverage(policy)
    return coverage[path]


def shown_path(path: Path) -> Path:
    """The path relative to the working directory when it is under it (shorter messages)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def run(
    engine: Engine, sf: ScenarioFile, scenario: Scenario, coverage: cov.Coverage | None = None
) -> Result:
    """Run one scenario; ``coverage``, when given, counts what its steps exercise."""
    engine.guard_seen = coverage.guard_seen if coverage is not None else None
    try:
        return _run(engine, sf, scenario, coverage)
    finally:
        engine.guard_seen = None


def _run(
    engine: Engine, sf: ScenarioFile, scenario: Scenario, coverage: cov.Coverage | None
) -> Result:
    tz = _zone(engine)
    case: Case | None = None
    index = -1
    clock = scenario.at
    try:
        try:
            case = engine.open(scenario.workflow, scenario.facts, at=scenario.at)
            if coverage is not None:
                coverage.opened(scenario.workflow)
                coverage.recorded(case, case.history, [])
        except StepRefused as e:
            if coverage is not None:
                coverage.refused(scenario.workflow, e.code)
            if scenario.open_error == e.code:
                return Result(str(sf.path), scenario.name, None, len(scenario.steps))
            if e.code == "unknown_workflow":
                raise _StepFailed(e.message) from None
            raise _StepFailed(f"opening the case was refused: {e}") from None
        if scenario.open_error is not None:
            raise _StepFailed(
                f"expected opening to be refused with {scenario.open_error}, but it was accepted"
            )
        now = scenario.at
        for index, step in enumerate(scenario.steps):  # noqa: B007 - `index` names the failing step
            now = _run_step(engine, case, step, now, coverage)
            clock = now
        index = len(scenario.steps)
        engine.guard_seen = None  # replaying is not the scenario: nothing more is counted
        _check_replay(engine, case)
        return Result(str(sf.path), scenario.name, None, len(scenario.steps))
    except _StepFailed as e:
        timeline = render_timeline(case.history, tz) if case is not None else "(no case was opened)"
        return Result(
            str(sf.path),
            scenario.name,
            Failure(index, str(e), timeline, clock.astimezone(tz) if tz else clock, case),
            len(scenario.steps),
        )
    except (EvaluationError, ValueError) as e:
        timeline = render_timeline(case.history, tz) if case is not None else "(no case was opened)"
        return Result(
            str(sf.path),
            scenario.name,
            Failure(index, f"error: {e}", timeline, clock.astimezone(tz) if tz else clock, case),
            len(scenario.steps),
        )


def _run_step(
    engine: Engine,
    case: Case,
    step: dict[str, Any],
    now: datetime,
    coverage: cov.Coverage | None = None,
) -> datetime:
    kind = next(k for k in step if k in STEP_KINDS)
    if kind == "expect" or coverage is None:
        return _step(engine, case, step, kind, now, None)
    before, pending = len(case.history), cov.pending(case)
    try:
        return _step(engine, case, step, kind, now, coverage)
    finally:
        coverage.recorded(case, case.history[before:], pending)


def _step(
    engine: Engine,
    case: Case,
    step: dict[str, Any],
    kind: str,
    now: datetime,
    coverage: cov.Coverage | None,
) -> datetime:
    value = step[kind]
    if kind == "advance":
        try:
            by = stdlib.parse_duration(str(value)) if isinstance(value, str) else None
        except stdlib.CelError as e:
            raise _StepFailed(f"advance: {e}") from None
        if by is None or by < timedelta(0):
            raise _StepFailed(f"advance takes a positive duration like 48h or PT48H, not {value!r}")
        now = now + by
        engine.advance(case, now)
        return now
    if kind == "until":
        try:
            to = stdlib.parse_timestamp(str(value))
        except stdlib.CelError as e:
            raise _StepFailed(f"until: {e}") from None
        if to < now:
            raise _StepFailed(
                f"until {value} is before the clock ({show_time(now, _zone(engine))}): "
                "time never goes back"
            )
        engine.advance(case, to)
        return to
    if kind == "expect":
        _expect(engine, case, value, now)
        return now
    expected_error = step.get("expect_error")
    before = _snapshot(case)
    try:
        if kind == "send":
            engine.send(case, str(value["event"]), str(value["by"]), value.get("data"), at=now)
        else:
            engine.update(case, value, at=now)
    except StepRefused as e:
        if coverage is not None:
            coverage.refused(case.workflow.name, e.code)
        if expected_error is None:
            raise _StepFailed(f"{kind} was refused: {e}") from None
        if e.code != expected_error:
            raise _StepFailed(
                f"expected {kind} to be refused with {expected_error}, but it was refused with "
                f"{e.code}: {e.message}"
            ) from None
        if _snapshot(case) != before:
            raise _StepFailed(f"the refused {kind} changed the case") from None
        return now
    if expected_error is not None:
        raise _StepFailed(
            f"expected {kind} to be refused with {expected_error}, but it was accepted "
            f"(now in `{case.state.name}`)"
        )
    return now


def _check_replay(engine: Engine, case: Case) -> None:
    """History is the source of truth: replaying its inputs must rebuild the same case."""
    rebuilt = engine.replay(case.history)
    if case.now > rebuilt.now:
        engine.advance(rebuilt, case.now)
    for what, a, b in (
        ("state", case.state.name, rebuilt.state.name),
        ("facts", case.facts, rebuilt.facts),
        ("effects", case.effects, rebuilt.effects),
        ("history", case.history, rebuilt.history),
        ("deadlines", case.deadlines, rebuilt.deadlines),
    ):
        if a != b:
            raise _StepFailed(
                f"replaying the case's history rebuilt a different {what}: {b!r} instead of {a!r}"
            )


def _snapshot(case: Case) -> tuple[Any, ...]:
    return (
        case.state.name,
        repr(case.facts),
        list(case.deadlines),
        len(case.effects),
        len(case.history),
    )


def _expect(engine: Engine, case: Case, want: Mapping[str, Any], now: datetime) -> None:
    problems = []
    if "state" in want and case.state.name != want["state"]:
        problems.append(f"state: expected `{want['state']}`, found `{case.state.name}`")
    if "final" in want and case.final is not want["final"]:
        problems.append(
            f"final: expected {str(want['final']).lower()}, found {str(case.final).lower()}"
        )
    if "outcome" in want and case.outcome != want["outcome"]:
        problems.append(f"outcome: expected `{want['outcome']}`, found `{case.outcome}`")
    if "effects" in want:
        problems.extend(_expect_effects(engine, case, want["effects"]))
    if "facts" in want:
        problems.extend(_expect_facts(engine, case, want["facts"]))
    if "allowed" in want:
        expected = set(want["allowed"] or [])
        found = set(engine.allowed(case, now))
        if expected != found:
            problems.append(f"allowed: expected {sorted(expected)}, found {sorted(found)}")
    if "deadline" in want:
        problems.extend(_expect_deadline(case, want["deadline"], now, _zone(engine)))
    if problems:
        raise _StepFailed("; ".join(problems))


def _expect_effects(engine: Engine, case: Case, expected: Any) -> list[str]:
    if not isinstance(expected, list):
        return ["effects: expected a list"]
    found = [e.name for e in case.effects]
    names = [next(iter(e)) if isinstance(e, dict) else str(e) for e in expected]
    if names != found:
        return [f"effects: expected {names}, found {found}"]
    problems = []
    for want, effect in zip(expected, case.effects, strict=True):
        if not isinstance(want, dict):
            continue
        args = next(iter(want.values())) or {}
        decl = engine.policy.effects.get(effect.name)
        types = {f.name: f.type for f in decl.params} if decl else {}
        for k, v in args.items():
            try:
                value = convert(v, types[k], f"{effect.name}.{k}") if k in types else v
            except ConversionError as e:
                problems.append(f"effects: {e}")
                continue
            if k not in effect.args or effect.args[k] != value:
                got = stdlib.render(effect.args[k]) if k in effect.args else "nothing"
                problems.append(
                    f"effect {effect.name}: expected {k} = {stdlib.render(value)}, found {got}"
                )
    return problems


def _expect_facts(engine: Engine, case: Case, expected: Any) -> list[str]:
    if not isinstance(expected, dict):
        return ["facts: expected a map of fact paths to values"]
    problems = []
    for path, value in _flat(expected, engine):
        fact = engine.policy.facts.get(path)
        if fact is None:
            problems.append(f"facts: `{path}` is not a declared fact")
            continue
        node: Any = case.facts
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        try:
            want = None if value is None else convert(value, fact.type, path)
        except ConversionError as e:
            problems.append(f"facts: {e}")
            continue
        if node != want:
            problems.append(
                f"facts: expected {path} = {stdlib.render(want)}, found {stdlib.render(node)}"
            )
    return problems


def _flat(data: Mapping[str, Any], engine: Engine, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in data.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and path not in engine.policy.facts:
            out.extend(_flat(v, engine, path + "."))
        else:
            out.append((path, v))
    return out


def _zone(engine: Engine) -> tzinfo | None:
    """The policy's time zone: where scenario messages show times, as its timelines do."""
    return stdlib.time_zone(engine.policy.timezone) if engine.policy.timezone else None


def _expect_deadline(case: Case, want: Any, now: datetime, tz: tzinfo | None) -> list[str]:
    found = case.next_deadline
    if want is None:
        return (
            []
            if found is None
            else [f"deadline: expected none, found one due {show_time(found, tz)}"]
        )
    if not isinstance(want, dict) or len(want) != 1 or next(iter(want)) not in ("at", "in"):
        return ["deadline: expected {at: TIMESTAMP}, {in: DURATION} or null"]
    try:
        due = (
            stdlib.parse_timestamp(str(want["at"]))
            if "at" in want
            else now + stdlib.parse_duration(str(want["in"]))
        )
    except stdlib.CelError as e:
        return [f"deadline: {e}"]
    if found is None:
        return [f"deadline: expected one due {show_time(due, tz)}, found none"]
    if found != due:
        return [f"deadline: expected due {show_time(due, tz)}, found due {show_time(found, tz)}"]
    return []


# -- `rulekit test` --------------------------------------------------------------------------


def discover(paths: list[str]) -> list[Path]:
    """Scenario files under the paths; raises FileNotFoundError for a path that does not exist."""
    return find_files(
        paths, lambda f: f.suffix.lower() in (".yaml", ".yml") and is_scenario_file(f)
    )


def report_text(results: list[Result]) -> str:
    lines = []
    for r in results:
        if r.failure is None:
            continue
        f = r.failure
        where = (
            "opening the case"
            if f.step < 0
            else "replaying its history"
            if f.step >= r.steps
            else f"step {f.step + 1}"
        )
        lines.append(f"FAILED {r.file}: {r.scenario}")
        clock = f" (clock {show_time(f.clock, None)})" if f.clock is not None else ""
        lines.append(f"  at {where}{clock}: {f.message}")
        lines.append("  timeline:")
        lines.extend(f"    {line}" for line in f.timeline.splitlines())
        lines.append("")
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)


def report_data(results: list[Result]) -> dict[str, Any]:
    """The ``--json`` report as data (scenarios.md)."""
    passed = sum(r.passed for r in results)
    return {
        "passed": passed,
        "failed": len(results) - passed,
        "results": [
            {
                "file": r.file,
                "scenario": r.scenario,
                "passed": r.passed,
                "failure": None
                if r.failure is None
                else {"step": r.failure.step, "message": r.failure.message},
            }
            for r in results
        ],
    }


def load_error(sf: ScenarioFile, error: CompileError) -> ScenarioFileError:
    """A scenario file whose policy does not compile; the policy's diagnostics come after it."""
    errors = sum(d.severity == "error" for d in error.diagnostics)
    return sf.error(
        f"its policy does not compile ({errors} error{'s' * (errors != 1)}, shown below)",
        sf.written,
        "policy",
        help="run `rulekit check` on the policy",
    )
