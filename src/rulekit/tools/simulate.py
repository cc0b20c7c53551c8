"""`rulekit simulate`: run a case by hand and watch its timeline.

Steps come from the command line, a file, or a prompt that lists what is
allowed now. Each step prints the transitions it caused, with their causes;
a refused step prints its code and changes nothing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import yaml

from rulekit.core.errors import CompileError, EvaluationError, StepRefused
from rulekit.core.source import read_text
from rulekit.expr import stdlib
from rulekit.expr.convert import MAX_NESTING, ConversionError, check_nesting, to_data
from rulekit.policy import load
from rulekit.runtime import Case, Engine, Record
from rulekit.runtime.timeline import describe, record_data, show_time

HELP = """steps:
  send EVENT by ACTOR [field=value ...]   deliver an event (values: JSON, or text)
  advance DURATION                         move time forward (48h, 1d12h, PT48H)
  until TIMESTAMP                          move time to an instant (RFC 3339)
  update PATH=VALUE [PATH=VALUE ...]       change facts from outside
  allowed | facts | history | help | quit"""


class SimulationError(Exception):
    """Bad input to the simulator (exit status 2)."""


def _value(text: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError:
        return text


def _pairs(words: list[str], what: str) -> dict[str, Any]:
    out = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} takes name=value pairs, got {word!r}")
        out[key] = _value(value)
    return out


class Simulation:
    def __init__(self, engine: Engine, case: Case, out: Any = None, as_json: bool = False) -> None:
        self.engine = engine
        self.case = case
        self.out = out if out is not None else sys.stdout
        self.as_json = as_json
        self.log: list[dict[str, Any]] = []
        tz = engine.policy.timezone
        self.tz = stdlib.time_zone(tz) if tz else None

    def say(self, text: str) -> None:
        if not self.as_json:
            print(text, file=self.out)

    def show(self, records: tuple[Record, ...] | list[Record]) -> None:
        for r in records:
            self.say("  " + describe(r, self.tz).replace("\n", "\n  "))

    def step(self, line: str) -> bool:
        """Run one step; False when the user asked to quit."""
        words = shlex.split(line, comments=True)
        if not words:
            return True
        verb, rest = words[0].lower(), words[1:]
        c, e = self.case, self.engine
        entry: dict[str, Any] = {"step": line.strip(), "refused": None, "message": None}
        try:
            if verb in ("quit", "exit", "q"):
                return False
            if verb == "help":
                self.say(HELP)
                return True
            if verb == "allowed":
                allowed = e.allowed(c)
                self.say(
                    "  allowed now: "
                    + (
                        ", ".join(f"{ev} by {'/'.join(a)}" for ev, a in allowed.items())
                        or "nothing"
                    )
                )
                return True
            if verb == "facts":
                self.say("  " + json.dumps(to_data(c.facts), ensure_ascii=False))
                return True
            if verb == "history":
                self.show(c.history)
                return True
            if verb == "send":
                if len(rest) < 3 or rest[1] != "by":
                    raise ValueError("write: send EVENT by ACTOR [field=value ...]")
                result = e.send(c, rest[0], rest[2], _pairs(rest[3:], "send"), at=c.now)
            elif verb == "advance":
                if len(rest) != 1:
                    raise ValueError("write: advance DURATION (e.g. advance 48h)")
                result = e.advance(c, c.now + stdlib.parse_duration(rest[0]))
            elif verb == "until":
                if len(rest) != 1:
                    raise ValueError("write: until TIMESTAMP")
                result = e.advance(c, stdlib.parse_timestamp(rest[0]))
            elif verb == "update":
                result = e.update(c, _pairs(rest, "update"), at=c.now)
            else:
                raise ValueError(f"unknown step {verb!r} (help lists the steps)")
            self.say(f"> {line.strip()}")
            self.show([r for r in result.records if r.kind not in ("advance",)] or [])
            if not result.records:
                self.say(f"  nothing happened; now {show_time(c.now, self.tz)} in `{c.state.name}`")
        except StepRefused as err:
            entry["refused"], entry["message"] = err.code, err.message
            self.say(f"> {line.strip()}\n  refused: {err.code}: {err.message}")
        except (ValueError, stdlib.CelError, EvaluationError) as err:
            entry["message"] = str(err)
            self.say(f"> {line.strip()}\n  error: {err}")
        self.log.append(entry)
        return True

    def prompt(self) -> None:
        self.say(HELP)
        while True:
            allowed = ", ".join(self.engine.allowed(self.case)) or "nothing"
            deadline = self.case.next_deadline
            due = f"; next deadline {show_time(deadline, self.tz)}" if deadline else ""
            try:
                line = input(
                    f"[{self.case.state.name} at {show_time(self.case.now, self.tz)}; allowed: {allowed}{due}] "
                )
            except EOFError:
                print(file=self.out)
                return
            if not self.step(line):
                return

    def report(self) -> dict[str, Any]:
        c = self.case
        return {
            "workflow": c.workflow.name,
            "state": c.state.name,
            "final": c.final,
            "outcome": c.outcome,
            "now": c.now.isoformat(),
            "facts": to_data(c.facts),
            "effects": [
                {"name": f.name, "args": to_data(dict(f.args)), "at": f.at.isoformat()}
                for f in c.effects
            ],
            "next_deadline": c.next_deadline.isoformat() if c.next_deadline else None,
            "steps": self.log,
            "timeline": [record_data(r) for r in c.history],
        }


def _facts(text: str) -> Any:
    try:
        data = _read_facts(text)
    except RecursionError:
        raise SimulationError(f"--facts: nested more than {MAX_NESTING} levels deep") from None
    try:
        check_nesting(data, "--facts")
    except ConversionError as e:
        raise SimulationError(str(e)) from None
    return data


def _read_facts(text: str) -> Any:
    if text.startswith("@"):
        try:
            text = read_text(text[1:])
        except OSError as e:
            raise SimulationError(f"--facts: cannot read {text[1:]}: {e.strerror}") from None
        try:
            return json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError:
            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise SimulationError(f"--facts: neither JSON nor YAML: {e}") from None
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as e:
        raise SimulationError(f"--facts is not valid JSON: {e.msg} at column {e.colno}") from None


def main(args: argparse.Namespace) -> int:
    try:
        return _main(args)
    except SimulationError as e:
        print(f"rulekit: error: {e}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    try:
        policy = load(args.file)
    except CompileError as e:
        print(e.rendered, file=sys.stderr)
        return 2
    engine = Engine(policy)
    try:
        at = (
            stdlib.parse_timestamp(args.at) if args.at else datetime.now(UTC).replace(microsecond=0)
        )
    except stdlib.CelError as e:
        raise SimulationError(f"--at: {e}") from None
    try:
        case = engine.open(args.workflow, _facts(args.facts), at=at)
    except StepRefused as e:
        if e.code == "unknown_workflow":
            raise SimulationError(e.message) from None
        raise SimulationError(f"the case cannot be opened: {e.code}: {e.message}") from None
    sim = Simulation(engine, case, as_json=args.json)
    sim.say(f"opened a case of {args.workflow} at {show_time(at, sim.tz)}")
    sim.show(case.history)
    steps = list(args.step)
    if args.steps:
        try:
            steps += [
                line
                for line in read_text(args.steps).splitlines()
                if line.strip() and not line.lstrip().startswith("#")
            ]
        except OSError as e:
            raise SimulationError(f"--steps: cannot read {args.steps}: {e.strerror}") from None
    for line in steps:
        if not sim.step(line):
            break
    if args.interactive or (not steps and sys.stdin.isatty() and not args.json):
        sim.prompt()
    if args.json:
        print(json.dumps(sim.report(), indent=2, ensure_ascii=False))
    else:
        outcome = f", outcome {case.outcome}" if case.final else ""
        effects = ", ".join(e.name for e in case.effects) or "none"
        sim.say(
            f"now: `{case.state.name}`{' (final' + outcome + ')' if case.final else ''}; effects: {effects}"
        )
    return 0
