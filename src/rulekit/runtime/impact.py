"""What a new version of a policy would do to the cases open today (``rulekit impact``).

Each open case's history is replayed from its opening under OLD and under NEW, both
advanced to the same instant (``now``: what the deadline worker would have done by then),
and the two results compared: the state, the next deadline (before advancing, so that a
window cut from 48h to 24h shows as a deadline 24h earlier), the effects emitted so far
(a refund that would or would not have happened, an amount that differs), and whether NEW
refuses a step of the history at all (which step, which code).

Replaying under OLD rather than trusting the stored row keeps the comparison fair: both
sides see the same inputs and the same ``now``. Cases stream through :func:`assess` one at
a time and only the cases that differ are kept, so memory grows with the changes, not
with the store.

Layer: tools; imports the runtime only.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rulekit.core.errors import RuleError, StepRefused
from rulekit.policy import ir
from rulekit.runtime.engine import Engine
from rulekit.runtime.model import Case, Record

#: The gates ``--fail-on`` takes: ``effects``, ``refused``, ``state>N``.
GATES = ("effects", "refused", "state>N")


@dataclass(frozen=True)
class Refusal:
    """The step of a history NEW does not accept: its record's number, kind, event, code."""

    seq: int
    kind: str
    event: str | None
    code: str
    message: str


@dataclass(frozen=True)
class CaseImpact:
    """How one open case differs under NEW (only differing cases are kept)."""

    id: str
    workflow: str
    state: tuple[str, str]
    #: (old due, new due, new - old in seconds; None when either side has none)
    deadline: tuple[datetime | None, datetime | None, float | None] | None
    #: effects only OLD emitted, effects only NEW emitted: (name, arguments)
    effects: tuple[tuple[tuple[str, dict[str, Any]], ...], tuple[tuple[str, dict[str, Any]], ...]]
    refused: Refusal | None

    @property
    def state_differs(self) -> bool:
        return self.state[0] != self.state[1]

    @property
    def effects_differ(self) -> bool:
        return bool(self.effects[0] or self.effects[1])


@dataclass
class Report:
    """The aggregate over every case assessed, and the cases that differ (in id order)."""

    old: str
    new: str
    now: datetime
    assessed: int = 0
    state: int = 0
    earlier: int = 0
    later: int = 0
    effects: int = 0
    refused: int = 0
    cases: list[CaseImpact] = field(default_factory=list)

    def add(self, impact: CaseImpact | None) -> None:
        self.assessed += 1
        if impact is None:
            return
        self.cases.append(impact)
        self.refused += impact.refused is not None
        self.state += impact.state_differs
        self.effects += impact.effects_differ
        if impact.deadline is not None and impact.deadline[2] is not None:
            self.earlier += impact.deadline[2] < 0
            self.later += impact.deadline[2] > 0


def gate_failed(report: Report, gates: Sequence[str]) -> list[str]:
    """The gates (``effects``, ``refused``, ``state>N``) the report fails, each as a reason."""
    failed = []
    for g in gates:
        if g == "effects" and report.effects:
            failed.append(f"{report.effects} case(s) whose past effects differ")
        elif g == "refused" and report.refused:
            failed.append(f"{report.refused} case(s) whose history NEW refuses")
        elif g.startswith("state>") and report.state > int(g.removeprefix("state>")):
            failed.append(f"{report.state} case(s) change state (more than {g[6:]})")
    return failed


def parse_gate(text: str) -> str:
    """A ``--fail-on`` value, checked: raises ValueError naming the gates it may be."""
    if text in ("effects", "refused"):
        return text
    if text.startswith("state>") and text[6:].isdigit():
        return text
    raise ValueError(f"unknown gate {text!r} (use effects, refused or state>N)")


def sample(
    cases: Iterable[tuple[str, list[Record]]], n: int | None, seed: int
) -> Iterator[tuple[str, list[Record]]]:
    """``n`` of ``cases``: those whose id hashes lowest with ``seed``, so the same cases
    whatever order they are read in, yielded in id order; without ``n``, all as they come.

    Memory holds the ``n`` kept (a heap), never the whole store.
    """
    if n is None:
        yield from cases
        return
    kept: list[tuple[int, str, list[Record]]] = []
    for case_id, history in cases:
        digest = hashlib.sha256(f"{seed}:{case_id}".encode()).digest()
        rank = -int.from_bytes(digest[:8], "big")  # a max-heap of the n lowest
        if len(kept) < n:
            heapq.heappush(kept, (rank, case_id, history))
        elif rank > kept[0][0]:
            heapq.heapreplace(kept, (rank, case_id, history))
    for _rank, case_id, history in sorted(kept, key=lambda k: k[1]):
        yield case_id, history


def assess(
    old: Engine, new: Engine, case_id: str, history: Sequence[Record], now: datetime
) -> CaseImpact | None:
    """How the case with ``history`` differs under ``new`` from ``old`` (None: it does not)."""
    before = _replay(old, history, now)
    if isinstance(before, Refusal):
        raise RuleError(f"case {case_id}: OLD itself refuses its history ({before.message})")
    after = _replay(new, history, now)
    first = history[0]
    workflow = first.workflow or before[0].workflow.name
    if isinstance(after, Refusal):
        return CaseImpact(
            case_id, workflow, (before[0].state.name, "?"), None, ((), ()), refused=after
        )
    (o, o_due), (n, n_due) = before, after
    deadline: tuple[datetime | None, datetime | None, float | None] | None = None
    if o_due != n_due:
        moved = (n_due - o_due).total_seconds() if o_due and n_due else None
        deadline = (o_due, n_due, moved)
    only_old, only_new = _difference(_effects(o), _effects(n))
    if o.state.name == n.state.name and deadline is None and not only_old and not only_new:
        return None
    return CaseImpact(
        case_id, workflow, (o.state.name, n.state.name), deadline, (only_old, only_new), None
    )


def _effects(case: Case) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, dict(e.args)) for e in case.effects]


Effects = tuple[tuple[str, dict[str, Any]], ...]


def _difference(
    old: list[tuple[str, dict[str, Any]]], new: list[tuple[str, dict[str, Any]]]
) -> tuple[Effects, Effects]:
    """The effects only ``old`` emitted and only ``new`` did, counted as a multiset: two
    refunds against one is one refund only under OLD. (Arguments are maps: not hashable.)"""
    left = list(new)
    only_old = []
    for e in old:
        if e in left:
            left.remove(e)
        else:
            only_old.append(e)
    return tuple(only_old), tuple(left)


def _replay(
    engine: Engine, history: Sequence[Record], now: datetime
) -> tuple[Case, datetime | None] | Refusal:
    """The case its inputs rebuild under ``engine`` and its next deadline before it is
    advanced to ``now``, or the first step it refuses.

    Step by step rather than :meth:`Engine.replay`, which stops at the first refusal
    without saying which record it was.
    """
    first = history[0]
    wf = first.workflow
    if wf is None or wf not in engine.policy.workflows:
        return Refusal(first.seq, "open", None, "unknown_workflow", f"no workflow {wf!r}")
    r = first
    try:
        case = engine.open(wf, first.data or {}, at=first.at)
        for r in history[1:]:
            if r.kind == "event":
                if r.event is None or r.actor is None:
                    return Refusal(
                        r.seq,
                        r.kind,
                        r.event,
                        "bad_record",
                        "an event record without event or actor",
                    )
                engine.send(case, r.event, r.actor, r.data, at=r.at, key=r.key)
            elif r.kind == "update":
                engine.update(case, r.data or {}, at=r.at)
            elif r.kind == "advance":
                engine.advance(case, r.at)
        due = case.next_deadline
        if now > case.now:
            engine.advance(case, now)
    except StepRefused as e:
        return Refusal(r.seq, r.kind, r.event, e.code, e.message)
    except RuleError as e:
        return Refusal(r.seq, r.kind, r.event, "evaluation_error", str(e))
    except (TypeError, ValueError, KeyError, AttributeError) as e:  # a record from a file
        return Refusal(r.seq, r.kind, r.event, "bad_record", f"the record cannot be replayed ({e})")
    return case, due


def to_json(report: Report) -> dict[str, Any]:
    """The report as JSON data: aggregate counts, then each differing case."""

    def when(t: datetime | None) -> str | None:
        return None if t is None else t.isoformat()

    cases = []
    for c in report.cases:
        item: dict[str, Any] = {"id": c.id, "workflow": c.workflow}
        if c.refused is not None:
            r = c.refused
            item["refused"] = {
                "seq": r.seq,
                "kind": r.kind,
                "event": r.event,
                "code": r.code,
                "message": r.message,
            }
        else:
            item["state"] = {"old": c.state[0], "new": c.state[1]}
            if c.deadline is not None:
                item["deadline"] = {
                    "old": when(c.deadline[0]),
                    "new": when(c.deadline[1]),
                    "moved_seconds": c.deadline[2],
                }
            if c.effects_differ:
                item["effects"] = {
                    "only_old": [{"name": n, "args": a} for n, a in c.effects[0]],
                    "only_new": [{"name": n, "args": a} for n, a in c.effects[1]],
                }
        cases.append(item)
    return {
        "format": "rulekit-impact/1",
        "old": report.old,
        "new": report.new,
        "now": when(report.now),
        "assessed": report.assessed,
        "changed": len(report.cases),
        "state_changes": report.state,
        "deadline_earlier": report.earlier,
        "deadline_later": report.later,
        "effects_differ": report.effects,
        "refused": report.refused,
        "cases": cases,
    }


def dumps(report: Report) -> str:
    """:func:`to_json` as text; money and other values JSON has no type for, as their text."""
    return json.dumps(to_json(report), indent=2, ensure_ascii=False, default=str) + "\n"


def _moved(deadline: tuple[datetime | None, datetime | None, float | None]) -> str:
    """How the next deadline moves, in hours as policies write windows (``24h earlier``)."""
    _old, new, seconds = deadline
    if seconds is None:
        return "none under NEW" if new is None else "none under OLD"
    sign = "earlier" if seconds < 0 else "later"
    left, parts = int(abs(seconds)), list[str]()
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return f"{''.join(parts)} {sign}"


def _line(c: CaseImpact) -> tuple[str, str, str, str]:
    if c.refused is not None:
        r = c.refused
        what = r.event or r.kind
        return c.id, c.state[0] + " -> ?", "", f"refused at record {r.seq} ({what}): {r.code}"
    state = f"{c.state[0]} -> {c.state[1]}" if c.state_differs else c.state[0]
    due = _moved(c.deadline) if c.deadline is not None else ""
    fx = []
    for mark, effects in (("-", c.effects[0]), ("+", c.effects[1])):
        fx += [f"{mark}{n}({', '.join(f'{k}: {v}' for k, v in a.items())})" for n, a in effects]
    return c.id, state, due, " ".join(fx)


def _summary(report: Report) -> str:
    return (
        f"{report.assessed} open case(s) assessed, {len(report.cases)} differ: "
        f"{report.state} change state, {report.earlier} deadline(s) earlier, "
        f"{report.later} later, {report.effects} with different effects, "
        f"{report.refused} refused"
    )


def to_table(report: Report) -> str:
    """A plain-text table of the differing cases and the aggregate line."""
    rows = [("case", "state", "next deadline", "effects / refused"), *map(_line, report.cases)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    out = [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
        for r in rows
    ]
    return "\n".join([*(line.rstrip() for line in out), _summary(report)]) + "\n"


def to_markdown(report: Report, limit: int = 50) -> str:
    """A summary for a pull-request comment: counts first, then up to ``limit`` cases."""
    out = [
        f"### Impact of {report.new} on open cases (was {report.old})",
        "",
        "| assessed | differ | state changes | deadline earlier | deadline later "
        "| effects differ | refused |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {report.assessed} | {len(report.cases)} | {report.state} | {report.earlier} "
        f"| {report.later} | {report.effects} | {report.refused} |",
    ]
    if report.cases:
        out += ["", "| case | state | next deadline | effects / refused |", "|---|---|---|---|"]
        out += [
            "| " + " | ".join(cell.replace("|", "\\|") for cell in _line(c)) + " |"
            for c in report.cases[:limit]
        ]
        if len(report.cases) > limit:
            out.append(f"\n… and {len(report.cases) - limit} more (see the JSON report)")
    return "\n".join(out) + "\n"


def run(
    old: ir.Policy,
    new: ir.Policy,
    cases: Iterable[tuple[str, list[Record]]],
    now: datetime,
) -> Report:
    """Assess every (id, history) of ``cases`` (open cases only: the caller filters)."""
    report = Report(_label(old), _label(new), now)
    o, n = Engine(old), Engine(new)
    for case_id, history in cases:
        report.add(assess(o, n, case_id, history, now))
    return report


def _label(policy: ir.Policy) -> str:
    return f"{policy.name} {policy.version}" if policy.version else policy.name
