"""Simulations: cases on the engine in memory, each on its own simulated time.

A :class:`Sim` keeps what the user did as scenario steps, so it can be exported as a
scenario file (the scenario contract) that ``rulekit test`` passes: each step is
followed by an ``expect`` of what was seen after it. :class:`Sessions` holds at most
:data:`MAX_SESSIONS` of them, dropping the oldest.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import yaml

from rulekit.analysis import graph
from rulekit.core.errors import StepRefused
from rulekit.expr import stdlib
from rulekit.expr.convert import to_data
from rulekit.expr.types import Type
from rulekit.policy import ir
from rulekit.runtime import Case, Engine, Record
from rulekit.runtime.timeline import describe

#: simulations kept at once; opening one more drops the oldest
MAX_SESSIONS = 100
#: how far past a deadline :meth:`Sim.advance_to_next_deadline` moves the clock (deadlines
#: fire once their time has passed, at their due time; a second is the finest step the
#: language writes)
JUST_PAST = timedelta(seconds=1)


def parse_time(text: str) -> datetime:
    """An ISO-8601 time with an offset (ValueError otherwise)."""
    try:
        at = stdlib.parse_timestamp(text)
    except stdlib.CelError as e:
        raise ValueError(str(e)) from None
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise ValueError(f"{text!r}: a time needs an offset (e.g. +08:00)")
    return at


def type_info(policy: ir.Policy, t: Type) -> dict[str, Any]:
    """A declared type as the API describes it: its name as the checker prints it, whether
    it may be left out (``T?``), and an enum's values (what the front end's forms need)."""
    optional = t.kind == "optional"
    inner = t.params[0] if optional else t
    return {
        "type": str(inner),
        "optional": optional,
        "enum": list(policy.enums[inner.name]) if inner.kind == "enum" else None,
    }


def payload_fields(policy: ir.Policy, fields: tuple[ir.Field, ...]) -> list[dict[str, Any]]:
    """An event's payload fields as the API describes them."""
    return [{"name": f.name, **type_info(policy, f.type)} for f in fields]


class Sim:
    """One simulated case, its edges (to say which one each record took) and its steps."""

    def __init__(
        self,
        policy: ir.Policy,
        path: str,
        workflow: str,
        facts: dict[str, Any],
        at: datetime,
        by: str | None,
    ) -> None:
        self.id = secrets.token_hex(8)
        self.policy = policy
        self.path = path
        self.engine = Engine(policy)
        self.case: Case = self.engine.open(workflow, facts, at=at, by=by)
        self.opened_at, self.opened_facts = at, facts
        self.edges = edge_ids(policy.workflows[workflow])
        self.tz = zone(policy)
        self.steps: list[dict[str, Any]] = [{"expect": self._expectation()}]
        self.refused: dict[str, str] | None = None
        #: held by each request that reads or changes the simulation (requests run in
        #: threads: two clicks must not step the case at once)
        self.lock = threading.RLock()

    def _expectation(self) -> dict[str, Any]:
        """What the case shows now, as a scenario's ``expect``: its state (and outcome),
        the effects emitted so far with their arguments, and the next deadline."""
        c = self.case
        want: dict[str, Any] = {"state": c.state.name}
        if c.final:
            want["final"] = True
            want["outcome"] = c.outcome
        want["effects"] = [{e.name: to_data(dict(e.args))} if e.args else e.name for e in c.effects]
        due = c.next_deadline
        want["deadline"] = {"at": due.isoformat()} if due is not None and not c.final else None
        return want

    def send(self, event: str, by: str, payload: dict[str, Any], at: datetime | None) -> None:
        """Deliver an event (at ``at``, when given: the clock moves there first); a refusal
        is kept in ``refused`` (and as an ``expect_error`` step), the case unchanged."""
        with self.lock:
            if at is not None and at != self.case.now:
                self._advance(at, None)
            step: dict[str, Any] = {
                "send": {"event": event, "by": by, **({"data": payload} if payload else {})}
            }
            try:
                self.engine.send(self.case, event, by, payload, at=self.case.now)
            except StepRefused as e:
                self.refused = {"code": e.code, "message": e.message}
                step["expect_error"] = e.code
                self.steps.append(step)
                return
            self.refused = None
            self.steps += [step, {"expect": self._expectation()}]

    def advance(self, to: datetime) -> None:
        """Move the clock to ``to``, firing what falls due."""
        with self.lock:
            self._advance(to, None)

    def advance_by(self, duration: str) -> None:
        """Move the clock on by ``duration`` as the language writes it (``48h``, ``PT48H``),
        kept as written in the scenario's step."""
        with self.lock:
            self._advance(self.case.now + stdlib.parse_duration(duration), duration)

    def advance_to_next_deadline(self) -> None:
        """Move the clock just past the next deadline (:data:`JUST_PAST`): a deadline fires
        once its time has passed, and is recorded at its due time."""
        with self.lock:
            due = self.case.next_deadline
            if due is None:
                raise ValueError("no deadline is pending")
            self._advance(due + JUST_PAST, None)

    def _advance(self, to: datetime, written: str | None) -> None:
        if to < self.case.now:
            raise ValueError(f"time cannot go back: the case is at {self.case.now.isoformat()}")
        self.engine.advance(self.case, to)
        self.refused = None
        step = {"advance": written} if written is not None else {"until": to.isoformat()}
        self.steps += [step, {"expect": self._expectation()}]

    def view(self) -> dict[str, Any]:
        """The simulation as the API's ``Sim``."""
        with self.lock:
            return self._view()

    def _view(self) -> dict[str, Any]:
        c = self.case
        allowed: dict[str, list[dict[str, Any]]] = {}
        for event, actors in self.engine.allowed(c).items():
            fields = payload_fields(self.policy, self.policy.events[event].payload)
            for actor in actors:
                allowed.setdefault(actor, []).append({"event": event, "payload": fields})
        wf = c.workflow.name
        return {
            "id": self.id,
            "workflow": wf,
            "now": c.now.isoformat(),
            "state": c.state.name,
            "final": c.final,
            "facts": to_data(c.facts),
            "deadlines": [
                {
                    "name": t.deadline.text if t.deadline is not None else t.kind,
                    "due": due.isoformat(),
                    "to": t.target,
                    "edge": self.edge(c.state.name, t),
                }
                for due, _order, t, _entered in c.deadlines
            ]
            + [
                {
                    "name": f"clock {name}",
                    "due": clock.due.isoformat(),
                    "to": c.workflow.clocks[name].expiry.target,
                    "edge": self.edge(c.state.name, c.workflow.clocks[name].expiry),
                }
                for name, clock in c.clocks.items()
                if clock.status == "running" and clock.due is not None and not c.final
            ],
            "allowed": allowed,
            # as `rulekit simulate` shows it: without the records that only say time passed
            "timeline": timeline(c, self.tz, self.edges),
            "effects": [{"name": e.name, "args": to_data(dict(e.args))} for e in c.effects],
            "refused": self.refused,
        }

    def edge(self, state: str, t: ir.Transition) -> str | None:
        """The id of the edge transition ``t`` draws from ``state``."""
        return self.edges.get((state, str(t.at) if t.at is not None else ""))

    def scenario(self, policy_path: str, name: str) -> str:
        """The simulation as a scenario file naming ``policy_path``."""
        with self.lock:
            return self._scenario(policy_path, name)

    def _scenario(self, policy_path: str, name: str) -> str:
        document = {
            "policy": policy_path,
            "scenarios": [
                {
                    "name": name,
                    "workflow": self.case.workflow.name,
                    "at": self.opened_at.isoformat(),
                    "facts": self.opened_facts,
                    "steps": self.steps,
                }
            ],
        }
        return yaml.dump(
            _plain(document), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
        )


def zone(policy: ir.Policy) -> tzinfo | None:
    """The zone a policy's times are shown in (None: as they were given)."""
    return stdlib.time_zone(policy.timezone) if policy.timezone else None


def edge_ids(wf: ir.Workflow) -> dict[tuple[str, str], str]:
    """The diagram's edge ids by (source state, the rule's place), as records name them."""
    return {(e.source, e.rule): e.id for e in graph.edges(wf)}


def timeline(
    case: Case, tz: tzinfo | None, edges: dict[tuple[str, str], str] | None = None
) -> list[dict[str, Any]]:
    """A case's history as timeline entries, as ``rulekit simulate`` shows it: without the
    records that only say time passed."""
    if edges is None:
        edges = edge_ids(case.workflow)
    return [
        timeline_entry(r, tz, edges.get((r.source or "", r.rule or "")))
        for r in case.history
        if r.kind != "advance"
    ]


def timeline_entry(r: Record, tz: tzinfo | None, edge: str | None) -> dict[str, Any]:
    """A history record as a timeline entry: its text as ``rulekit simulate`` prints it,
    the edge it took, the condition that held with the values it read."""
    conditions = []
    if r.cause is not None and r.cause.guard is not None:
        conditions.append(
            {
                "text": r.cause.guard,
                "value": ", ".join(f"{k} = {stdlib.render(v)}" for k, v in r.cause.reads),
                "held": True,
            }
        )
    return {
        "at": r.at.isoformat(),
        "kind": r.kind,
        "text": describe(r, tz),
        "from": r.source,
        "to": r.target,
        "edge": edge,
        "cite": r.cite,
        "conditions": conditions,
    }


class _Dumper(yaml.SafeDumper):
    """YAML for a scenario file: decimals written as numbers, exactly."""


def _decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:float", str(value))


_Dumper.add_representer(Decimal, _decimal)


def _plain(value: Any) -> Any:
    """Data YAML can write: times as RFC 3339 text, durations as literals."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool | int | str | Decimal) or value is None:
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    return to_data(value)


class Sessions:
    """The simulations, by id, the oldest dropped beyond :data:`MAX_SESSIONS`."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._sims: OrderedDict[str, Sim] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, sim: Sim) -> None:
        with self._lock:
            self._sims[sim.id] = sim
            while len(self._sims) > self.limit:
                self._sims.popitem(last=False)

    def get(self, id: str) -> Sim | None:
        with self._lock:
            return self._sims.get(id)
