"""Scenario coverage: what of a policy its scenarios exercised (`rulekit test --coverage`).

Counted from what the engine records while the scenarios run, never worked out again
from the policy: the history records of each step (states entered, transitions taken,
deadlines fired), the guards the engine tells :attr:`Engine.guard_seen` it evaluated
(each seen true and false), the codes of the steps it refused, and the deadlines a case
had pending when an event was accepted (the side of a deadline's boundary before it).

Reports: a table (:func:`table`), versioned JSON (:func:`to_json`, ``FORMAT``/``VERSION``),
LCOV (:func:`lcov`) and Cobertura XML (:func:`cobertura`), whose line numbers are the
policy's own, so generic coverage viewers show them over the ``.rk`` file.
docs/scenarios.md, "Coverage", says what each figure means.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from rulekit.core import __version__
from rulekit.core.errors import REFUSAL_CODES
from rulekit.policy import ir
from rulekit.runtime.model import Case, Record

#: the JSON report's ``format`` and ``version`` (a new version when its shape changes)
FORMAT = "rulekit-coverage"
VERSION = 1
#: transition kinds that are deadlines: taken because time passed
DEADLINE_KINDS = ("after", "at", "soon", "expiry")


@dataclass
class Transition:
    """One transition of a workflow (a copy per state for `every state` blocks) and what the
    scenarios did with it."""

    workflow: str
    #: the state it leaves ("" for a clock's expiry, which leaves whatever state the case is in)
    source: str
    tr: ir.Transition
    #: for a clock's expiry: the clock
    clock: str | None = None
    taken: int = 0
    #: its guard evaluated by a step: held, did not hold
    guard_true: int = 0
    guard_false: int = 0
    #: a deadline: an event accepted in its state while it was pending (at or before its
    #: due time), and the deadline coming due (it fired, or its guard did not hold then)
    before: int = 0
    after: int = 0

    @property
    def deadline(self) -> bool:
        return self.tr.kind in DEADLINE_KINDS

    @property
    def line(self) -> int:
        return self.tr.at.line if self.tr.at is not None else 0

    @property
    def file(self) -> str:
        return self.tr.at.file if self.tr.at is not None else ""

    @property
    def label(self) -> str:
        """The transition as an author recognizes it: ``on approve -> refunded``."""
        target = f"-> {self.tr.target}" if self.tr.target is not None else "stay"
        t = self.tr
        if t.kind == "event":
            head = f"on {t.event}" + (f" when {t.guard.text}" if t.guard is not None else "")
        elif t.kind == "auto":
            head = f"when {t.guard.text if t.guard is not None else ''}"
        elif t.kind == "soon":
            head = f"as soon as {t.guard.text if t.guard is not None else ''}"
        elif t.kind == "expiry":
            head = f"clock {self.clock} runs out"
        else:
            head = t.written + (f" when {t.guard.text}" if t.guard is not None else "")
        where = f" (in {self.source})" if self.source else ""
        return " ".join(f"{head} {target}{where}".split())


@dataclass
class Workflow:
    """What the scenarios did in one workflow."""

    name: str
    wf: ir.Workflow
    transitions: list[Transition]
    #: state -> times entered (opening in it included)
    entered: dict[str, int]
    #: code -> times a step was refused with it
    refusals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REFUSAL_CODES, 0))
    cases: int = 0

    def figures(self) -> dict[str, tuple[int, int]]:
        """Each figure as (covered, total), in the order reports show them."""
        moves = [t for t in self.transitions if not t.deadline]
        deadlines = [t for t in self.transitions if t.deadline]
        guarded = [t for t in self.transitions if t.tr.guard is not None]
        return {
            "states": (sum(n > 0 for n in self.entered.values()), len(self.entered)),
            "transitions": (sum(t.taken > 0 for t in moves), len(moves)),
            "deadlines": (sum(t.taken > 0 for t in deadlines), len(deadlines)),
            "boundaries": (
                sum((t.before > 0) + (t.after > 0) for t in deadlines),
                2 * len(deadlines),
            ),
            "guards": (
                sum((t.guard_true > 0) + (t.guard_false > 0) for t in guarded),
                2 * len(guarded),
            ),
            "refusals": (sum(n > 0 for n in self.refusals.values()), len(self.refusals)),
        }


class Coverage:
    """Coverage of one policy, filled in by the scenario runner as its steps run."""

    def __init__(self, policy: ir.Policy) -> None:
        self.policy = policy
        self.workflows: dict[str, Workflow] = {}
        #: (workflow, source state, rule position, kind class) -> transition; expiries
        #: under source ""
        self._by_rule: dict[tuple[str, str, str, str], Transition] = {}
        #: id of the compiled transition -> its entry (what guard_seen is told about)
        self._by_id: dict[int, Transition] = {}
        for wf in policy.workflows.values():
            items: list[Transition] = []
            for state in wf.states.values():
                for t in state.transitions:
                    items.append(Transition(wf.name, state.name, t))
            for clock in wf.clocks.values():
                items.append(Transition(wf.name, "", clock.expiry, clock=clock.name))
            for item in items:
                self._by_id[id(item.tr)] = item
                rule = str(item.tr.at) if item.tr.at is not None else ""  # as records say
                self._by_rule[(wf.name, item.source, rule, _kind_class(item.tr.kind))] = item
            self.workflows[wf.name] = Workflow(wf.name, wf, items, {name: 0 for name in wf.states})

    # -- what the runner tells it ------------------------------------------------------------
    def guard_seen(self, transition: ir.Transition, held: bool) -> None:
        """:attr:`Engine.guard_seen`: a step evaluated ``transition``'s guard."""
        item = self._by_id.get(id(transition))
        if item is None:
            return
        if held:
            item.guard_true += 1
        else:
            item.guard_false += 1
            if transition.kind in ("after", "at"):
                item.after += 1  # it came due, and its guard decided it does not fire

    def opened(self, workflow: str) -> None:
        if workflow in self.workflows:
            self.workflows[workflow].cases += 1

    def refused(self, workflow: str, code: str) -> None:
        """A step (or the opening) of a case of ``workflow`` was refused with ``code``."""
        wf = self.workflows.get(workflow)
        if wf is not None:
            wf.refusals[code] = wf.refusals.get(code, 0) + 1

    def recorded(self, case: Case, records: Sequence[Record], pending: Pending) -> None:
        """The records one step appended to ``case``'s history; ``pending``: the case's
        deadlines and running clocks before the step (:func:`pending`)."""
        wf = self.workflows.get(case.workflow.name)
        if wf is None:
            return
        moved_by_time = False
        for r in records:
            if r.kind == "open" and r.target is not None:
                wf.entered[r.target] += 1
                continue
            if r.kind not in ("event", "auto", "deadline", "expiry"):
                continue
            source = "" if r.kind == "expiry" else r.source or ""
            item = self._by_rule.get((wf.name, source, r.rule or "", _kind_class(r.kind)))
            if item is not None:
                item.taken += 1
                if item.deadline:
                    item.after += 1  # it came due and fired
            if r.target is not None:
                wf.entered[r.target] += 1
            if r.kind in ("deadline", "expiry") or (item is not None and item.tr.kind == "soon"):
                moved_by_time = True
            elif r.kind == "event" and not moved_by_time:
                # Deadlines due before the event fired first (and there were none here),
                # so the ones pending before the step were pending when it was accepted.
                for due, t, states in pending:
                    if due >= r.at and (r.source in states):
                        self._by_id[id(t)].before += 1


#: what :meth:`Coverage.recorded` needs of a case before a step: for each pending deadline
#: and running clock, (due, its transition, the states where it applies)
Pending = list[tuple[datetime, ir.Transition, frozenset[str]]]


def pending(case: Case) -> Pending:
    """The deadlines ``case`` has pending and the clocks whose expiry would apply: what was
    in force when an event is accepted."""
    out: Pending = [(due, t, frozenset((t.source,))) for due, _, t, _ in case.deadlines]
    for name, state in case.clocks.items():
        clock = case.workflow.clocks[name]
        if state.status == "running" and state.due is not None:
            states = frozenset(clock.expiry_in) or frozenset(
                s.name for s in case.workflow.states.values() if not s.final
            )
            out.append((state.due, clock.expiry, states))
    return out


def _kind_class(kind: str) -> str:
    """A record's kind and a transition's, on one scale: `as soon as` is recorded as `auto`."""
    return {"soon": "auto", "after": "deadline", "at": "deadline"}.get(kind, kind)


# -- figures --------------------------------------------------------------------------------


def _percent(covered: int, total: int) -> float:
    return 100.0 if total == 0 else round(100.0 * covered / total, 1)


def total(coverages: Iterable[Coverage]) -> tuple[int, int]:
    """Transitions taken plus deadlines fired, of all transitions and deadlines: the figure
    ``--fail-under`` holds."""
    covered = count = 0
    for cov in coverages:
        for wf in cov.workflows.values():
            figures = wf.figures()
            for key in ("transitions", "deadlines"):
                covered += figures[key][0]
                count += figures[key][1]
    return covered, count


def percent(coverages: Iterable[Coverage]) -> float:
    """:func:`total` as a percentage (100 when there is nothing to cover)."""
    return _percent(*total(coverages))


# -- reports ---------------------------------------------------------------------------------

_COLUMNS = ("states", "transitions", "deadlines", "boundaries", "guards", "refusals")


def table(coverages: Sequence[Coverage]) -> str:
    """The text report: a row of figures per workflow, then what was not covered."""
    lines: list[str] = []
    for cov in coverages:
        lines.append(f"coverage of {cov.policy.file} (policy {cov.policy.name})")
        rows: list[tuple[str, ...]] = [("workflow", "cases", *_COLUMNS)]
        for wf in cov.workflows.values():
            figures = wf.figures()
            rows.append(
                (wf.name, str(wf.cases), *(f"{figures[c][0]}/{figures[c][1]}" for c in _COLUMNS))
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            lines.append(
                "  "
                + "  ".join(
                    cell.ljust(w) if i == 0 else cell.rjust(w)
                    for i, (cell, w) in enumerate(zip(row, widths, strict=True))
                ).rstrip()
            )
        missed = _missed(cov)
        if missed:
            lines.append("  not covered:")
            lines.extend(f"    {m}" for m in missed)
        lines.append("")
    covered, count = total(coverages)
    lines.append(
        f"transitions and deadlines covered: {covered}/{count} ({_percent(covered, count):.1f}%)"
    )
    return "\n".join(lines)


def _missed(cov: Coverage) -> list[str]:
    """One line per thing not covered (transitions and deadlines first, as they count)."""
    out = []
    for wf in cov.workflows.values():
        for name, n in wf.entered.items():
            if n == 0:
                at = wf.wf.states[name].at
                out.append(f"{at.file}:{at.line}: {wf.name}: state {name} never entered")
        for t in wf.transitions:
            where = f"{t.file}:{t.line}: {wf.name}: {t.label}"
            if t.taken == 0:
                out.append(f"{where}: never {'fired' if t.deadline else 'taken'}")
            if t.deadline and t.before == 0:
                out.append(f"{where}: no event accepted while it was pending")
            if t.deadline and t.after == 0 and t.taken == 0 and t.tr.guard is not None:
                out.append(f"{where}: never came due")
            if t.tr.guard is not None:
                if t.guard_true == 0:
                    out.append(f"{where}: guard never seen true")
                if t.guard_false == 0:
                    out.append(f"{where}: guard never seen false")
        unseen = [c for c, n in wf.refusals.items() if n == 0]
        if unseen and wf.cases:
            out.append(f"{wf.name}: refusals never seen: {', '.join(unseen)}")
    return out


def to_data(coverages: Sequence[Coverage]) -> dict[str, Any]:
    """The JSON report (``format``, ``version``: docs/scenarios.md, "Coverage")."""
    covered, count = total(coverages)
    return {
        "format": FORMAT,
        "version": VERSION,
        "total": {"covered": covered, "total": count, "percent": _percent(covered, count)},
        "policies": [
            {
                "file": cov.policy.file,
                "policy": cov.policy.name,
                "hash": cov.policy.hash,
                "workflows": [_workflow_data(wf) for wf in cov.workflows.values()],
            }
            for cov in coverages
        ],
    }


def _workflow_data(wf: Workflow) -> dict[str, Any]:
    return {
        "name": wf.name,
        "cases": wf.cases,
        "summary": {
            name: {"covered": c, "total": n, "percent": _percent(c, n)}
            for name, (c, n) in wf.figures().items()
        },
        "states": [
            {"name": name, "line": wf.wf.states[name].at.line, "entered": n}
            for name, n in wf.entered.items()
        ],
        "transitions": [
            {
                "from": t.source or None,
                "kind": t.tr.kind,
                "event": t.tr.event,
                "clock": t.clock,
                "to": t.tr.target,
                "label": t.label,
                "file": t.file,
                "line": t.line,
                "column": t.tr.at.column if t.tr.at is not None else 0,
                "taken": t.taken,
                "guard": None
                if t.tr.guard is None
                else {
                    "text": t.tr.guard.text,
                    "line": t.tr.guard.at.line,
                    "true": t.guard_true,
                    "false": t.guard_false,
                },
                "boundary": {"before": t.before, "after": t.after} if t.deadline else None,
            }
            for t in wf.transitions
        ],
        "refusals": dict(wf.refusals),
    }


def to_json(coverages: Sequence[Coverage]) -> str:
    return json.dumps(to_data(coverages), indent=2, ensure_ascii=False)


@dataclass
class _Line:
    """One source line's hits and branches, for LCOV and Cobertura."""

    hits: int = 0
    #: (block, branch, times taken)
    branches: list[tuple[int, int, int]] = field(default_factory=list)


def _workflows(coverages: Iterable[Coverage]) -> list[Workflow]:
    return [wf for cov in coverages for wf in cov.workflows.values()]


def _lines(workflows: Iterable[Workflow]) -> dict[str, dict[int, _Line]]:
    """file -> line -> hits and branches: states (entered), transitions and deadlines
    (taken) on their first line; guards (true, false) and deadline boundaries (before,
    after) as two-way branches on the guard's and the deadline's line."""
    files: dict[str, dict[int, _Line]] = {}

    def at(file: str, line: int) -> _Line:
        return files.setdefault(file, {}).setdefault(line, _Line())

    block = 0
    for wf in workflows:
        for name, n in wf.entered.items():
            pos = wf.wf.states[name].at
            at(pos.file, pos.line).hits += n
        for t in wf.transitions:
            if t.tr.at is None:
                continue
            at(t.file, t.line).hits += t.taken
            if t.tr.guard is not None:
                g = t.tr.guard.at
                at(g.file, g.line).branches += [(block, 0, t.guard_true), (block, 1, t.guard_false)]
                block += 1
            if t.deadline:
                at(t.file, t.line).branches += [(block, 0, t.before), (block, 1, t.after)]
                block += 1
    return files


def lcov(coverages: Sequence[Coverage]) -> str:
    """An LCOV tracefile (`genhtml`, Codecov, editors' coverage gutters read it)."""
    out = ["TN:rulekit"]
    for file, lines in sorted(_lines(_workflows(coverages)).items()):
        out.append(f"SF:{file}")
        found = hit = 0
        for n, line in sorted(lines.items()):
            seen = {b for b, _, taken in line.branches if taken}
            for block, branch, taken in line.branches:
                # `-`: neither way of the branch was seen (LCOV's "never evaluated")
                out.append(f"BRDA:{n},{block},{branch},{taken if block in seen else '-'}")
                found += 1
                hit += taken > 0
        out.append(f"BRF:{found}")
        out.append(f"BRH:{hit}")
        for n, line in sorted(lines.items()):
            out.append(f"DA:{n},{line.hits}")
        out.append(f"LF:{len(lines)}")
        out.append(f"LH:{sum(line.hits > 0 for line in lines.values())}")
        out.append("end_of_record")
    return "\n".join(out) + "\n"


def cobertura(coverages: Sequence[Coverage], timestamp: int | None = None) -> str:
    """Cobertura XML (coverage-04.dtd): a package per policy, a class per workflow and file.

    ``timestamp``: milliseconds since the epoch (default: now)."""
    all_lines = _lines(_workflows(coverages))
    root = ET.Element("coverage")
    _rates(root, [line for lines in all_lines.values() for line in lines.values()])
    root.set("complexity", "0")
    root.set("version", f"rulekit {__version__}")
    root.set("timestamp", str(int(time.time() * 1000) if timestamp is None else timestamp))
    ET.SubElement(ET.SubElement(root, "sources"), "source").text = "."
    packages = ET.SubElement(root, "packages")
    for cov in coverages:
        mine = _lines(cov.workflows.values())
        package = ET.SubElement(packages, "package", name=cov.policy.name)
        _rates(package, [line for lines in mine.values() for line in lines.values()], counts=False)
        package.set("complexity", "0")
        classes = ET.SubElement(package, "classes")
        for wf in cov.workflows.values():
            for file, lines in sorted(_lines([wf]).items()):
                klass = ET.SubElement(classes, "class", name=wf.name, filename=file)
                _rates(klass, list(lines.values()), counts=False)
                klass.set("complexity", "0")
                ET.SubElement(klass, "methods")
                xml_lines = ET.SubElement(klass, "lines")
                for n, line in sorted(lines.items()):
                    e = ET.SubElement(xml_lines, "line", number=str(n), hits=str(line.hits))
                    if line.branches:
                        taken = sum(b[2] > 0 for b in line.branches)
                        e.set("branch", "true")
                        e.set(
                            "condition-coverage",
                            f"{round(100 * taken / len(line.branches))}% "
                            f"({taken}/{len(line.branches)})",
                        )
                    else:
                        e.set("branch", "false")
    ET.indent(root)
    return (
        '<?xml version="1.0" ?>\n'
        '<!DOCTYPE coverage SYSTEM "http://cobertura.sourceforge.net/xml/coverage-04.dtd">\n'
        + ET.tostring(root, encoding="unicode")
        + "\n"
    )


def _rates(element: ET.Element, lines: list[_Line], counts: bool = True) -> None:
    valid = len(lines)
    covered = sum(line.hits > 0 for line in lines)
    branches = sum(len(line.branches) for line in lines)
    taken = sum(b[2] > 0 for line in lines for b in line.branches)
    element.set("line-rate", f"{covered / valid if valid else 1:.4g}")
    element.set("branch-rate", f"{taken / branches if branches else 1:.4g}")
    if counts:
        element.set("lines-covered", str(covered))
        element.set("lines-valid", str(valid))
        element.set("branches-covered", str(taken))
        element.set("branches-valid", str(branches))
