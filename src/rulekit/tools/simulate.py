"""A case run by hand on the engine, step by step, its timeline printed (``rulekit simulate``).

:class:`Simulation` runs steps written as text (``send approve by merchant``,
``advance 48h``), from the command line, a file or a prompt that lists what is
allowed now. Each step prints the transitions it caused, with their causes; a
refused step prints its code and changes nothing.
"""

from __future__ import annotations

import json
import shlex
import sys
from decimal import Decimal
from typing import Any

from rulekit.core.errors import EvaluationError, StepRefused
from rulekit.expr import stdlib
from rulekit.expr.convert import to_data
from rulekit.runtime import Case, Engine, Record
from rulekit.runtime.timeline import describe, record_data, show_time

HELP = """steps:
  send EVENT by ACTOR [field=value ...]   deliver an event (values: JSON, or text)
  advance DURATION                         move time forward (48h, 1d12h, PT48H)
  until TIMESTAMP                          move time to an instant (RFC 3339)
  update PATH=VALUE [PATH=VALUE ...]       change facts from outside
  allowed | facts | history | help | quit"""


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
