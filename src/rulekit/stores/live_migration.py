"""Moving a store's open cases to a later policy version (docs/live-changes.md,
"Migrations"): what ``rulekit migrate`` and the service's admin endpoint run.

Each case moves in a transaction of its own (``migrate_case`` of a store), so a run
that stops half-way (a crash, a kill) leaves every case either moved or not, and
running it again moves the rest: a case already on the version is skipped.

Layer: imports :mod:`rulekit.core`, :mod:`rulekit.expr` and :mod:`rulekit.runtime`; works
on any store (:class:`rulekit.runtime.Store`), SQL or in memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rulekit.core.errors import CompileError, EvaluationError, StepRefused
from rulekit.expr.expression import Expression, compile_expression
from rulekit.runtime.store import Store, StoredCase, StoreError


@dataclass
class Moved:
    """What a run did (or, dry, would do)."""

    #: (case id, state before, state after), in id order
    moved: list[tuple[str, str, str]] = field(default_factory=list)
    #: open cases already on the version
    skipped: int = 0
    #: (case id, why) for cases the version's block refuses
    refused: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "moved": [{"case": c, "from": a, "to": b} for c, a, b in self.moved],
            "skipped": self.skipped,
            "refused": [{"case": c, "why": w} for c, w in self.refused],
        }


class InvalidFilter(ValueError):
    """A ``where`` condition that does not compile against a policy's facts, or fails."""


_STATE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Where:
    """``where``: a state's name, or a condition over a case's facts (checked against the
    facts of each version the cases are on, compiled once per version)."""

    def __init__(self, store: Store, text: str | None) -> None:
        self.store, self.text = store, text
        self.state = text if text is not None and _STATE.fullmatch(text) else None
        self.compiled: dict[str, Expression] = {}

    def holds(self, case: StoredCase) -> bool:
        if self.text is None:
            return True
        if self.state is not None:
            return case.state == self.state
        condition = self.compiled.get(case.policy)
        if condition is None:
            facts = self.store.engine(case.policy).policy.facts
            try:
                # enum facts are stored as their members' names: strings to a filter
                types = {
                    k: "string" if f.type.kind == "enum" else str(f.type) for k, f in facts.items()
                }
                condition = compile_expression(self.text, types)
            except CompileError as e:
                raise InvalidFilter(f"where {self.text!r}: {e.diagnostics[0].message}") from None
            if condition.type.kind != "bool":
                raise InvalidFilter(f"where {self.text!r} is {condition.type}, not a condition")
            self.compiled[case.policy] = condition
        try:
            return bool(condition.evaluate(case.facts, now=case.updated_at))
        except EvaluationError as e:
            raise InvalidFilter(f"where {self.text!r} on case {case.id}: {e}") from None


def version_hash(store: Store, version: str, name: str | None = None) -> str:
    """The hash of the registered policy version ``version`` (of policy ``name`` when
    given); a :class:`StoreError` ``unknown_policy`` when none or several match."""
    found = [
        p["hash"]
        for p in store.policies()
        if p["version"] == version and (name is None or p["name"] == name)
    ]
    if len(found) != 1:
        what = "no policy version" if not found else "several policies with version"
        raise StoreError("unknown_policy", f"{what} {version!r} in the store")
    return str(found[0])


def migrate(
    store: Store,
    to: str,
    *,
    workflow: str | None = None,
    where: str | None = None,
    batch: int = 100,
    dry_run: bool = False,
) -> Moved:
    """Move the open cases of ``to``'s policy (narrowed to ``workflow``, and by ``where``:
    a state's name, or a condition over the case's facts such as ``order.amount > 100``)
    to the version whose hash is ``to``, ``batch`` cases read at a time; ``dry_run``:
    change nothing, say what would move. Raises :class:`InvalidFilter` for a ``where``
    that is no condition over the facts."""
    target = store.engine(to).policy
    wanted = _Where(store, where)
    out = Moved()
    after: str | None = None
    while True:
        page = store.cases(workflow=workflow, state=wanted.state, after=after, limit=batch)
        if not page:
            return out
        after = page[-1].id
        for case in page:
            if case.final:
                continue
            if case.policy == to:
                out.skipped += 1
                continue
            if store.engine(case.policy).policy.name != target.name or not wanted.holds(case):
                continue
            try:
                if dry_run:
                    out.moved.append((case.id, case.state, _target(store, case.policy, to, case)))
                    continue
                record = store.migrate_case(case.id, to)
            except StepRefused as e:
                out.refused.append((case.id, e.message))
                continue
            if record is None:  # moved by someone else since the page was read
                out.skipped += 1
            else:
                assert record.source is not None and record.target is not None
                out.moved.append((case.id, record.source, record.target))


def _target(store: Store, old: str, new: str, case: StoredCase) -> str:
    """The state the block of ``new`` moves ``case`` (of version ``old``) to."""
    version = store.engine(old).policy.version or ""
    policy = store.engine(new).policy
    block = policy.migrations.get(version)
    if block is None:
        raise StepRefused(
            "cannot_migrate",
            f"version {policy.version} has no `migrate from` block for version {version}",
        )
    target = block.states.get(case.workflow, {}).get(case.state, case.state)
    if target not in policy.workflows[case.workflow].states:
        raise StepRefused(
            "cannot_migrate", f"state `{case.state}` has no place in version {policy.version}"
        )
    return str(target)
