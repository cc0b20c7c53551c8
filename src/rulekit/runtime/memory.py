"""The in-memory store: many live cases and one index of their deadlines.

For library use and tests. Cases are kept by id; their next deadlines sit in
a heap, so moving the clock costs in proportion to the deadlines that fall
due, never to the number of open cases. Durable stores (SQLite,
PostgreSQL) keep the same contract on disk.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from rulekit.runtime.engine import Engine
from rulekit.runtime.model import Case, StepResult


class MemoryStore:
    """Open cases, run steps on them by id, and fire due deadlines across all of them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cases: dict[str, Case] = {}
        # (due, tie-breaker, case id): may hold stale entries, checked when popped.
        self._due: list[tuple[datetime, int, str]] = []
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self._cases.values())

    def get(self, case_id: str) -> Case:
        try:
            return self._cases[case_id]
        except KeyError:
            raise KeyError(f"no case {case_id!r}") from None

    def remove(self, case_id: str) -> Case:
        """Take a case out of the store (a closed case a service has archived, say)."""
        case = self._cases.pop(case_id, None)
        if case is None:
            raise KeyError(f"no case {case_id!r}")
        return case  # its heap entries are dropped as stale when they come up

    def _index(self, case: Case) -> None:
        due = case.next_deadline
        if due is not None:
            assert case.id is not None
            heapq.heappush(self._due, (due, next(self._ids), case.id))

    def open(
        self,
        workflow: str,
        facts: Mapping[str, Any],
        *,
        at: datetime | None = None,
        id: str | None = None,
        by: str | None = None,
    ) -> Case:
        case_id = id if id is not None else f"c{next(self._ids)}"
        if case_id in self._cases:
            raise KeyError(f"case {case_id!r} exists already")
        case = self.engine.open(workflow, facts, at=at, id=case_id, by=by)
        self._cases[case_id] = case
        self._index(case)
        return case

    def send(
        self,
        case_id: str,
        event: str,
        by: str,
        data: Mapping[str, Any] | None = None,
        *,
        at: datetime | None = None,
        key: str | None = None,
    ) -> StepResult:
        case = self.get(case_id)
        before = case.next_deadline
        result = self.engine.send(case, event, by, data, at=at, key=key)
        if case.next_deadline != before:
            self._index(case)
        return result

    def update(
        self,
        case_id: str,
        changes: Mapping[str, Any],
        *,
        at: datetime | None = None,
        by: str | None = None,
    ) -> StepResult:
        case = self.get(case_id)
        before = case.next_deadline
        result = self.engine.update(case, changes, at=at, by=by)
        if case.next_deadline != before:
            self._index(case)
        return result

    def advance(self, to: datetime) -> list[tuple[str, StepResult]]:
        """Fire every deadline due before ``to`` in every case; returns what each case did."""
        fired: list[tuple[str, StepResult]] = []
        while self._due and self._due[0][0] < to:
            due, _, case_id = heapq.heappop(self._due)
            case = self._cases.get(case_id)
            if case is None or case.next_deadline != due:
                continue  # stale: the case moved on since this entry was made
            result = self.engine.advance(case, max(to, case.now))
            fired.append((case_id, result))
            self._index(case)
        return fired
