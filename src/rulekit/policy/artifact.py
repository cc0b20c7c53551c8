"""The compiled artifact: a policy as plain JSON, and back.

``rulekit compile`` writes it; ``rulekit.load`` reads it. Workflows are data
and each expression is its checked AST (never Python code), with positions
for every element, the policy version and a content hash over everything
but positions (so a .rk policy and its YAML twin hash alike). Loading
validates against the published JSON Schema (``schemas/artifact.schema.json``)
and re-checks every expression against the declared facts, so a hand-edited
artifact with a broken reference is a :class:`CompileError`, not a crash when
a case runs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from rulekit.core import calendar, canonical
from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.errors import CompileError
from rulekit.core.source import Source, Span
from rulekit.expr import ast as expr_ast
from rulekit.expr import stdlib
from rulekit.expr.checker import check as check_expr
from rulekit.expr.convert import ConversionError, convert, to_data
from rulekit.expr.cost import DEFAULT_COST_LIMIT, MAX_COST_LIMIT
from rulekit.expr.expression import Expression
from rulekit.expr.types import (
    PERIOD,
    Type,
    TypeSyntaxError,
    build_environment,
    enum_of,
    parse_type,
)
from rulekit.policy import ir, soon
from rulekit.policy.checker import assignable

FORMAT = "rulekit.policy/1"


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of compiled artifacts."""
    text = resources.files("rulekit").joinpath("schemas/artifact.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


# -- writing ---------------------------------------------------------------------------


def _at(p: ir.Position | None) -> list[int] | None:
    return None if p is None else [p.line, p.column, p.end_line, p.end_column]


def _expr(e: ir.Expr | None) -> dict[str, Any] | None:
    if e is None:
        return None
    root = e.compiled.checked.root
    shift = root.span.start
    return {
        "text": e.text,
        "type": str(e.type),
        "at": _at(e.at),
        "ast": expr_ast.shift_json(expr_ast.to_json(root), -shift),
    }


def _fact(f: ir.Fact) -> dict[str, Any]:
    data: dict[str, Any] = {"path": f.path, "type": str(f.type), "optional": f.optional}
    if f.by:  # only when given: artifacts of policies without `by` hash as before
        data["by"] = list(f.by)
    if f.default is not None:  # likewise
        data["default"] = to_data(f.default)
    data["at"] = _at(f.at)
    return data


def to_json(policy: ir.Policy) -> dict[str, Any]:
    """The artifact for ``policy`` (JSON-ready; see docs/artifact.schema.json)."""
    body: dict[str, Any] = {
        "format": FORMAT,
        "policy": {
            "name": policy.name,
            "version": policy.version,
            "source": policy.source_doc,
            "timezone": policy.timezone,
        },
        "file": policy.file,
        "facts": [_fact(f) for f in policy.facts.values()],
        "enums": {k: list(v) for k, v in policy.enums.items()},
        "constants": [
            {
                "name": c.name,
                "type": str(c.type),
                "value": to_data(c.value),
                "text": c.text,
                "note": list(c.note) if c.note else None,
                "at": _at(c.at),
            }
            for c in policy.constants.values()
        ],
        "actors": list(policy.actors),
        "events": [
            {
                "name": e.name,
                "actors": list(e.actors),
                "payload": [{"name": f.name, "type": str(f.type)} for f in e.payload],
                "at": _at(e.at),
            }
            for e in policy.events.values()
        ],
        "effects": [
            {
                "name": e.name,
                "params": [{"name": f.name, "type": str(f.type)} for f in e.params],
                "at": _at(e.at),
            }
            for e in policy.effects.values()
        ],
        "workflows": [_workflow(w) for w in policy.workflows.values()],
    }
    if policy.cost_limit != DEFAULT_COST_LIMIT:
        # Only when set: the artifacts (and content hashes) of other policies stay as they were.
        body["policy"]["cost_limit"] = policy.cost_limit
    if policy.conditions:  # likewise
        body["conditions"] = [
            {"name": c.name, "expr": _expr(c.expr), "at": _at(c.at)}
            # only on a named value: the artifacts of named conditions hash as before
            | ({"value": True} if c.value else {})
            for c in policy.conditions.values()
        ]
    if policy.calendars:  # likewise
        body["calendars"] = [{"name": c.name, **c.to_data()} for c in policy.calendars]
    if policy.migrations:  # likewise
        body["migrations"] = [
            {
                "from": m.from_version,
                "states": {wf: dict(states) for wf, states in m.states.items()},
                "assigns": [{"fact": a.fact, "value": _expr(a.value)} for a in m.assigns],
                "deadlines": m.deadlines,
                "at": _at(m.at),
            }
            for m in policy.migrations.values()
        ]
    body["hash"] = content_hash(body)
    return body


def _transition(t: ir.Transition) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": t.kind,
        "event": t.event,
        "actors": list(t.actors),
        "target": t.target,
        "guard": _expr(t.guard),
        "deadline": _expr(t.deadline),
        "start": _expr(t.start),
        "emits": [{"effect": e.effect, "args": {k: _expr(v) for k, v in e.args}} for e in t.emits],
        "assigns": [{"fact": a.fact, "value": _expr(a.value)} for a in t.assigns],
        "cite": t.cite,
        # Only when given: artifacts of policies without it hash as before.
        **({"assumption": t.assumption} if t.assumption is not None else {}),
        "origin": t.origin,
        "at": _at(t.at),
    }
    # only when given: the artifacts (and hashes) of policies that use none stay as they were
    if t.clocks:
        out["clocks"] = [{"verb": a.verb, "clock": a.clock, "by": _expr(a.by)} for a in t.clocks]
    if t.rolled is not None:
        out["rolled"] = t.rolled
    if t.end_of_day:
        out["end_of_day"] = True
    if t.reschedule:
        out["reschedule"] = True
    return out


def _clock(c: ir.Clock) -> dict[str, Any]:
    return {
        "name": c.name,
        "length": _expr(c.length),
        "starts": c.starts,
        "start_event": c.start_event,
        "counting_from": _expr(c.counting_from),
        "paused_in": list(c.paused_in),
        "expiry_in": list(c.expiry_in),
        "expiry": _transition(c.expiry),
        "at": _at(c.at),
    }


def _workflow(w: ir.Workflow) -> dict[str, Any]:
    out = {
        "name": w.name,
        "initial": w.initial,
        "requires": list(w.requires),
        "at": _at(w.at),
        "states": [
            {
                "name": s.name,
                "initial": s.initial,
                "final": s.final,
                "outcome": s.outcome,
                "waits": s.waits,
                # Only when set: artifacts of policies without it hash as before.
                **({"unbounded": True} if s.unbounded else {}),
                **({"assumption": s.assumption} if s.assumption is not None else {}),
                "cite": s.cite,
                "at": _at(s.at),
                "transitions": [_transition(t) for t in s.transitions],
            }
            for s in w.states.values()
        ],
    }
    if w.clocks:  # only when declared: artifacts of policies without clocks hash as before
        out["clocks"] = [_clock(c) for c in w.clocks.values()]
    return out


def _without_positions(node: Any, top: bool = True) -> Any:
    """The artifact without positions (`at`), and at the top without `file` and `hash`.

    Maps keyed by the author's names (effect arguments, enums) keep every key:
    an argument called `at` is content, not a position.
    """
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "at" or (top and k in ("file", "hash")):
                continue
            if k in ("args", "enums") and isinstance(v, dict):
                out[k] = {name: _without_positions(x, False) for name, x in v.items()}
            else:
                out[k] = _without_positions(v, False)
        return out
    if isinstance(node, list):
        return [_without_positions(x, False) for x in node]
    return node


def content_hash(body: Mapping[str, Any]) -> str:
    """sha256 over the artifact without positions, file name or hash (in
    :mod:`rulekit.core.canonical`'s JSON form)."""
    return canonical.content_hash(_without_positions(dict(body)))


# -- reading ------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: dict[str, Any], source: Source) -> None:
        self.data = data
        self.source = source
        self.file = str(data.get("file") or source.name)
        self.problems: list[Diagnostic] = []
        self.enums = {k: enum_of(k, tuple(v)) for k, v in data["enums"].items()}
        self.ids = itertools.count(1)
        #: the named conditions read so far: each may name only those before it
        self.named: dict[str, Expression] = {}
        self.cost_limit = data["policy"].get("cost_limit", DEFAULT_COST_LIMIT)
        if not 1 <= self.cost_limit <= MAX_COST_LIMIT:
            self.fail(f"policy cost_limit: not from 1 to {MAX_COST_LIMIT:,}")
            self.cost_limit = DEFAULT_COST_LIMIT
        self.calendars = self.read_calendars(data.get("calendars", []))
        zone = data["policy"].get("timezone")
        self.time_rules = stdlib.DEFAULT_TIME_RULES
        try:
            tz = stdlib.time_zone(zone) if zone is not None else stdlib.DEFAULT_TIME_RULES.tz
            self.time_rules = calendar.TimeRules(zone or "UTC", tz, self.calendars)
        except stdlib.CelError:
            pass  # reported with the policy header below

    def read_calendars(self, data: list[dict[str, Any]]) -> tuple[calendar.WorkCalendar, ...]:
        """The calendars, checked as a calendar file is (the schema has checked their shape)."""
        out: list[calendar.WorkCalendar] = []
        for c in data:
            body = {k: v for k, v in c.items() if k != "name"}
            try:
                built = calendar.calendar_from_data(c["name"], body)
            except calendar.CalendarError as e:
                self.fail(f"calendar {c['name']}: {e}")
                continue
            if any(x.name == built.name for x in out):
                self.fail(f"calendar {c['name']}: declared twice")
                continue
            out.append(built)
        return tuple(out)

    def period(self, text: object, where: str) -> calendar.BoundPeriod | None:
        """A period constant: its text, with the calendar of working days named, which
        the artifact must declare (``5 working days in cn``)."""
        try:
            if not isinstance(text, str):
                raise calendar.CalendarError("a period is written as text (1 month)")
            p = calendar.parse_period(text)
            cal = None
            if p.unit == "working day":
                cal = self.time_rules.pick(p.calendar, f"`{text}`", "{}")
        except calendar.CalendarError as e:
            self.fail(f"{where}: {e.message}")
            return None
        return calendar.BoundPeriod(p, self.time_rules.tz, cal)

    def fail(self, message: str) -> None:
        self.problems.append(diag.make("RK0501", message, self.source, Span(0, 1)))

    def pos(self, at: list[int] | None) -> ir.Position:
        if not at:
            return ir.Position(self.file, 1, 1, 1, 1)
        return ir.Position(self.file, *at)

    def type(self, text: str, where: str) -> Type:
        try:
            return parse_type(text, self.enums)
        except TypeSyntaxError as e:
            self.fail(f"{where}: {e}")
            return Type("dyn")

    def expr(
        self,
        data: dict[str, Any] | None,
        env: Mapping[str, Type],
        constants: Mapping[str, tuple[Type, Any]],
        where: str,
        want: Type | tuple[str, ...] | None = None,
    ) -> ir.Expr | None:
        """The expression, re-checked as source text would be, and of the type its place
        wants: kinds (``("bool",)``) or a declared type (a fact's, an effect parameter's)."""
        if data is None:
            return None
        src = Source(data["text"], f"{self.file}: {where}")
        try:
            root = expr_ast.from_json(data["ast"], lambda: next(self.ids))
        except expr_ast.ASTFormatError as e:
            self.fail(f"{where}: {e}")
            return None
        checked, problems = check_expr(
            root,
            src,
            env,
            constants,
            cost_limit=self.cost_limit,
            named=self.named,
            time_rules=self.time_rules,
        )
        if problems:
            self.fail(f"{where}: `{data['text']}`: {problems[0].message}")
            return None
        t = checked.type
        if isinstance(want, Type):
            fits = assignable(t, want)
        else:
            fits = want is None or t.is_dynamic or t.kind in want
        if not fits:
            self.fail(
                f"{where}: `{data['text']}` is {t}, not {want if isinstance(want, Type) else ' or '.join(want or ())}"
            )
            return None
        return ir.Expr(
            data["text"], self.pos(data.get("at")), Expression(checked, None, embedded=True)
        )

    def fact_default(self, f: dict[str, Any]) -> Any:
        """The default of fact ``f``, a value of its type, or None (none, or not valid)."""
        if "default" not in f:
            return None
        if not f["optional"]:
            self.fail(f"fact {f['path']}: a default on a fact that is not optional")
            return None
        try:
            return convert(f["default"], self.type(f["type"], f"fact {f['path']}"), f["path"])
        except ConversionError as e:
            self.fail(f"fact default: {e}")
            return None

    def policy(self) -> ir.Policy | None:
        d = self.data
        facts = {
            f["path"]: ir.Fact(
                f["path"],
                self.type(f["type"], f"fact {f['path']}"),
                f["optional"],
                self.pos(f.get("at")),
                tuple(f.get("by", ())),
                self.fact_default(f),
            )
            for f in d["facts"]
        }
        try:
            env = build_environment({k: f.type for k, f in facts.items()})
        except ValueError as e:
            self.fail(f"facts: {e}")
            return None
        constants: dict[str, ir.Constant] = {}
        for c in d["constants"]:
            if c["type"] == "period":
                t, value = PERIOD, self.period(c["value"], f"constant {c['name']}")
                if value is None:
                    continue
            else:
                t = self.type(c["type"], f"constant {c['name']}")
                try:
                    value = convert(c["value"], t, c["name"])
                except ConversionError as e:
                    self.fail(f"constant {e}")
                    continue
            constants[c["name"]] = ir.Constant(
                c["name"],
                t,
                value,
                c["text"],
                (c["note"][0], c["note"][1]) if c.get("note") else None,
                self.pos(c.get("at")),
            )
        consts = {k: (c.type, c.value) for k, c in constants.items()}
        conditions: dict[str, ir.Condition] = {}
        for c in d.get("conditions", []):
            is_value = c.get("value", False)
            where = f"{'value' if is_value else 'condition'} {c['name']}"
            if c["name"] in conditions or c["name"] in env or c["name"] in consts:
                self.fail(f"{where}: the name is taken")
                continue
            expr = self.expr(c["expr"], env, consts, where, None if is_value else ("bool",))
            if expr is not None and is_value and c["expr"]["type"] != str(expr.type):
                # A named value's type is what tools show for its name: it must be its own.
                self.fail(f"{where}: `{expr.text}` is {expr.type}, not {c['expr']['type']}")
                continue
            if expr is not None:
                conditions[c["name"]] = ir.Condition(
                    c["name"], expr, self.pos(c.get("at")), is_value
                )
                self.named[c["name"]] = expr.compiled
        actors = tuple(d["actors"])
        events = {
            e["name"]: ir.Event(
                e["name"],
                tuple(e["actors"]),
                tuple(
                    ir.Field(f["name"], self.type(f["type"], f"event {e['name']}"))
                    for f in e["payload"]
                ),
                self.pos(e.get("at")),
            )
            for e in d["events"]
        }
        for event in events.values():
            for a in event.actors:
                if a not in actors:
                    self.fail(f"event {event.name}: unknown actor {a!r}")
        for fact in facts.values():
            for a in fact.by:
                if a not in actors:
                    self.fail(f"fact {fact.path}: unknown actor {a!r} may supply it")
        effects = {
            e["name"]: ir.EffectDecl(
                e["name"],
                tuple(ir.Field(f["name"], self.type(f["type"], e["name"])) for f in e["params"]),
                self.pos(e.get("at")),
            )
            for e in d["effects"]
        }
        workflows = {}
        for w in d["workflows"]:
            built = self.workflow(w, env, consts, events, effects, facts, actors)
            if built is not None:
                workflows[w["name"]] = built
        p = d["policy"]
        if p.get("timezone") is not None:
            try:
                stdlib.time_zone(p["timezone"])
            except stdlib.CelError as e:
                self.fail(f"policy timezone: {e}")
        migrations = self.migrations(d.get("migrations", []), env, consts, facts, workflows)
        if self.problems:
            return None
        return ir.Policy(
            p["name"],
            p.get("version"),
            p.get("source"),
            p.get("timezone"),
            facts,
            {k: tuple(v) for k, v in d["enums"].items()},
            constants,
            actors,
            events,
            effects,
            workflows,
            self.file,
            d["hash"],
            self.cost_limit,
            conditions,
            self.calendars,
            migrations,
        )

    def migrations(
        self,
        data: list[dict[str, Any]],
        env: Mapping[str, Type],
        consts: Mapping[str, tuple[Type, Any]],
        facts: Mapping[str, ir.Fact],
        workflows: Mapping[str, ir.Workflow],
    ) -> dict[str, ir.Migration]:
        """The `migrate from` blocks, their states and facts checked as the checker does."""
        out: dict[str, ir.Migration] = {}
        for m in data:
            where = f"migration from {m['from']!r}"
            if m["from"] in out:
                self.fail(f"{where}: written twice")
            for wf, states in m["states"].items():
                if wf not in workflows:
                    self.fail(f"{where}: unknown workflow {wf!r}")
                    continue
                for target in states.values():
                    if target not in workflows[wf].states:
                        self.fail(f"{where}: target state {target!r} does not exist")
            assigns = []
            for a in m["assigns"]:
                if a["fact"] not in facts:
                    self.fail(f"{where}: unknown fact {a['fact']!r}")
                    continue
                where_set = f"{where}, set {a['fact']}"
                value = self.expr(a["value"], env, consts, where_set, facts[a["fact"]].type)
                if value is not None:
                    assigns.append(ir.Assign(a["fact"], value))
            out[m["from"]] = ir.Migration(
                m["from"], m["states"], tuple(assigns), m["deadlines"], self.pos(m.get("at"))
            )
        return out

    def workflow(
        self,
        w: dict[str, Any],
        env: Mapping[str, Type],
        consts: Mapping[str, tuple[Type, Any]],
        events: Mapping[str, ir.Event],
        effects: Mapping[str, ir.EffectDecl],
        facts: Mapping[str, ir.Fact],
        actors: tuple[str, ...],
    ) -> ir.Workflow | None:
        names = {s["name"] for s in w["states"]}
        finals = {s["name"] for s in w["states"] if s["final"]}
        if w["initial"] not in names:
            self.fail(f"workflow {w['name']}: initial state {w['initial']!r} does not exist")
        clock_names = [c["name"] for c in w.get("clocks", [])]
        if len(set(clock_names)) != len(clock_names):
            self.fail(f"workflow {w['name']}: a clock is declared twice")
        read = _Context(names, env, consts, events, effects, facts, actors, clock_names)
        clocks = {}
        for c in w.get("clocks", []):
            where = f"workflow {w['name']}, clock {c['name']}"
            for listed in ("paused_in", "expiry_in"):
                for state in c[listed]:
                    if state not in names or state in finals:
                        self.fail(f"{where}: {listed} names {state!r}, not a non-final state")
            if c["starts"] == "event" and c["start_event"] not in events:
                self.fail(f"{where}: starts on unknown event {c['start_event']!r}")
            if (c["starts"] == "event") != (c["start_event"] is not None):
                self.fail(f"{where}: start_event goes with starts `event`, and only with it")
            length = self.expr(c["length"], env, consts, f"{where}, length", ("duration", "period"))
            counting = self.expr(
                c["counting_from"], env, consts, f"{where}, counting from", ("timestamp",)
            )
            expiry = self.transition(c["expiry"], "", f"{where}, expiry", read)
            if expiry is None or length is None or expiry.kind != "expiry":
                if expiry is not None:
                    self.fail(f"{where}: its expiry is a transition of kind {expiry.kind!r}")
                continue
            clocks[c["name"]] = ir.Clock(
                c["name"],
                length,
                c["starts"],
                c["start_event"],
                counting,
                tuple(c["paused_in"]),
                tuple(c["expiry_in"]),
                expiry,
                self.pos(c.get("at")),
            )
        states = {}
        for s in w["states"]:
            if s.get("unbounded") and s["waits"] is None:
                self.fail(f"workflow {w['name']}, state {s['name']}: unbounded without `waits`")
            transitions = []
            for i, t in enumerate(s["transitions"]):
                where = f"workflow {w['name']}, state {s['name']}, transition {i + 1}"
                built = self.transition(t, s["name"], where, read)
                if built is None:
                    continue
                if built.kind == "expiry":
                    self.fail(f"{where}: an expiry belongs to a clock, not to a state")
                transitions.append(built)
            states[s["name"]] = ir.State.build(
                s["name"],
                s["initial"],
                s["final"],
                s["outcome"],
                s["waits"],
                s["cite"],
                tuple(transitions),
                self.pos(s.get("at")),
                bool(s.get("unbounded", False)),
                s.get("assumption"),
            )
        for path in w.get("requires", []):
            if path not in facts:
                self.fail(f"workflow {w['name']}: requires unknown fact {path!r}")
        return ir.Workflow(
            w["name"],
            w["initial"],
            states,
            self.pos(w.get("at")),
            tuple(w.get("requires", [])),
            clocks,
        )

    def transition(
        self, t: dict[str, Any], source: str, where: str, c: _Context
    ) -> ir.Transition | None:
        """One transition, its references and expressions checked (None: an unknown event)."""
        if t["target"] is not None and t["target"] not in c.states:
            self.fail(f"{where}: target state {t['target']!r} does not exist")
        if (t["kind"] in ("after", "at", "soon") and t["deadline"] is None) or (
            t["kind"] in ("auto", "soon") and t["guard"] is None
        ):
            self.fail(f"{where}: a transition of kind {t['kind']!r} without its trigger")
        if ("rolled" in t or "end_of_day" in t) and t["kind"] not in ("after", "at"):
            self.fail(f"{where}: only a deadline is rolled or lasts to the end of day")
        if t.get("rolled") is not None and self.time_rules.calendar(t["rolled"]) is None:
            self.fail(f"{where}: rolled on calendar {t['rolled']!r}, which is not declared")
        if "reschedule" in t and t["target"] is not None:
            self.fail(f"{where}: only a `stay` (target null) reschedules")
        scope = dict(c.env)
        consts = c.consts
        if t["kind"] == "event":
            ev = c.events.get(t["event"])
            if ev is None:
                self.fail(f"{where}: unknown event {t['event']!r}")
                return None
            scope["event"] = Type(
                "object",
                name="event",
                fields=tuple(sorted((f.name, f.type) for f in ev.payload)),
            )
            scope["actor"] = enum_of("actor", c.actors)
        emits = []
        for e in t["emits"]:
            if e["effect"] not in c.effects:
                self.fail(f"{where}: unknown effect {e['effect']!r}")
                continue
            params = {f.name: f.type for f in c.effects[e["effect"]].params}
            if set(e["args"]) != set(params):
                self.fail(f"{where}: the arguments of {e['effect']} are not its parameters")
                continue
            args = tuple(
                (
                    k,
                    self.expr(v, scope, consts, f"{where}, {e['effect']}({k})", params[k]),
                )
                for k, v in e["args"].items()
            )
            emits.append(ir.Emit(e["effect"], tuple((k, v) for k, v in args if v is not None)))
        assigns = []
        for a in t["assigns"]:
            if a["fact"] not in c.facts:
                self.fail(f"{where}: unknown fact {a['fact']!r}")
                continue
            fact = c.facts[a["fact"]]
            # `set x = null` clears an optional fact (as the checker allows).
            clears = fact.optional and _is_null(a["value"])
            value = self.expr(
                a["value"],
                scope,
                consts,
                f"{where}, set {a['fact']}",
                ("null_type",) if clears else fact.type,
            )
            if value is not None:
                assigns.append(ir.Assign(a["fact"], value))
        actions = []
        for a in t.get("clocks", []):
            if a["clock"] not in c.clocks:
                self.fail(f"{where}: unknown clock {a['clock']!r}")
                continue
            if (a["verb"] == "extend") != (a["by"] is not None):
                self.fail(f"{where}: a length goes with `extend`, and only with it")
                continue
            by = self.expr(a["by"], scope, consts, f"{where}, extend", ("duration", "period"))
            actions.append(ir.ClockAction(a["verb"], a["clock"], by))
        if [a.clock for a in actions] != sorted({a.clock for a in actions}, key=c.clocks.index):
            self.fail(f"{where}: clocks acted on twice, or out of their declared order")
        guard = self.expr(t["guard"], scope, consts, f"{where}, guard", ("bool",))
        deadline = self.expr(
            t["deadline"],
            scope,
            consts,
            f"{where}, deadline",
            ("duration", "period") if t["kind"] == "after" else ("timestamp",),
        )
        if t["kind"] == "soon" and guard is not None and deadline is not None:
            # The instant must be the one the condition gives (it is derived, never written).
            checked = guard.compiled.checked
            solved = soon.solve(checked)
            if not isinstance(solved, soon.Solved) or solved.instant != deadline.text:
                self.fail(f"{where}: the instant `{deadline.text}` is not its condition's")
        return ir.Transition(
            kind=t["kind"],
            source=source,
            target=t["target"],
            event=t["event"],
            actors=tuple(t["actors"]),
            guard=guard,
            deadline=deadline,
            start=self.expr(t["start"], scope, consts, f"{where}, from", ("timestamp",)),
            emits=tuple(emits),
            assigns=tuple(assigns),
            cite=t["cite"],
            origin=t["origin"],
            at=self.pos(t.get("at")),
            assumption=t.get("assumption"),
            clocks=tuple(actions),
            rolled=t.get("rolled"),
            end_of_day=t.get("end_of_day", False),
            reschedule=t.get("reschedule", False),
        )


@dataclass(frozen=True)
class _Context:
    """What the transitions of one workflow may refer to."""

    states: set[str]
    env: Mapping[str, Type]
    consts: Mapping[str, tuple[Type, Any]]
    events: Mapping[str, ir.Event]
    effects: Mapping[str, ir.EffectDecl]
    facts: Mapping[str, ir.Fact]
    actors: tuple[str, ...]
    clocks: list[str]


def _is_null(expr: Any) -> bool:
    tree = expr.get("ast") if isinstance(expr, dict) else None
    return isinstance(tree, dict) and tree.get("node") == "Literal" and tree.get("kind") == "null"


def from_json(data: Any, source: Source) -> ir.Policy:
    """Read an artifact (already parsed JSON); raises CompileError with RK0501 diagnostics."""
    import jsonschema  # here, not at the top: 45 ms that checking a .rk file never needs

    # Diagnostics name the file; an artifact is machine-written, so no source line is shown.
    source = Source("", source.name)
    try:
        errors = sorted(
            jsonschema.Draft202012Validator(schema()).iter_errors(data),
            key=lambda e: list(map(str, e.absolute_path)),
        )
    except RecursionError:
        raise CompileError(
            [
                diag.make(
                    "RK0501", "not a valid compiled artifact: nested too deeply", source, Span(0, 1)
                )
            ]
        ) from None
    if errors:
        raise CompileError(
            [
                diag.make(
                    "RK0501",
                    f"not a valid compiled artifact: at /{'/'.join(map(str, e.absolute_path))}: "
                    f"{e.message}",
                    source,
                    Span(0, 1),
                )
                for e in errors[:20]
            ]
        )
    reader = _Reader(data, source)
    try:
        policy = reader.policy()
        digest = content_hash(data)
    except RecursionError:
        raise CompileError(
            [
                diag.make(
                    "RK0501", "not a valid compiled artifact: nested too deeply", source, Span(0, 1)
                )
            ]
        ) from None
    if policy is None:
        raise CompileError(reader.problems)
    if data["hash"] != digest:
        raise CompileError(
            [
                diag.make(
                    "RK0501",
                    "the content hash does not match the artifact (edited by hand?)",
                    source,
                    Span(0, 1),
                    help="recompile it from the rule file with `rulekit compile`",
                )
            ]
        )
    return policy
