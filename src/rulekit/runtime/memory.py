"""The in-memory store: many live cases and one index of their deadlines.

For library use and tests. It keeps the store contract (:class:`rulekit.runtime.store.Store`)
as the durable stores (SQLite, PostgreSQL) keep it on disk: the same calls, results
and errors; policy versions cases stay pinned to; parties; idempotency keys per caller
with a request fingerprint; an outbox with leases and dead letters; paged history and
case listings. Cases are kept by id; their next deadlines sit in a heap, so moving the
clock costs in proportion to the deadlines that fall due, never to the number of open
cases.

Time: a call without ``at=``/``now=`` is timed by the store's clock, as a durable store
times it by its database's clock: the wall clock (UTC) unless another is given
(``MemoryStore(clock=...)``). The engine itself never reads it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rulekit.core.errors import EvaluationError, StepRefused
from rulekit.policy import ir
from rulekit.policy.artifact import content_hash, to_json
from rulekit.runtime.engine import Engine
from rulekit.runtime.model import Case, Record, StepResult
from rulekit.runtime.store import (
    CaseNotFound,
    Fired,
    Key,
    OutboxEffect,
    StepsOnCases,
    Store,
    StoredCase,
    StoreError,
    current_version,
    effect_not_found,
)

log = logging.getLogger("rulekit.stores")


def wall_clock() -> datetime:
    """The default clock of a :class:`MemoryStore`: now, in UTC."""
    return datetime.now(UTC)


@dataclass(slots=True)
class _KeyUse:
    """A step an idempotency key was used with: enough to answer it again."""

    fingerprint: str
    first: int
    last: int
    state: str
    final: bool


@dataclass(slots=True)
class _Entry:
    """One case and what the store keeps beside it."""

    case: Case
    engine: Engine
    policy: str
    parties: Mapping[str, str]
    opened_at: datetime
    updated_at: datetime
    version: int = 0
    #: the deadline the store will fire (None: none, or the last one failed): the case's
    #: next deadline as of the last step that changed it
    due: datetime | None = None
    #: (caller, key) -> the step it was used with
    keys: dict[tuple[str, str], _KeyUse] = field(default_factory=dict)


@dataclass(slots=True)
class _Outgoing:
    """An effect in the outbox, as :class:`OutboxEffect` shows it, and when it may be claimed."""

    id: int
    key: str
    case_id: str
    seq: int
    name: str
    args: Mapping[str, Any]
    at: datetime
    available_at: datetime
    policy: str
    status: str = "pending"
    attempts: int = 0
    last_error: str | None = None

    def view(self) -> OutboxEffect:
        return OutboxEffect(
            self.id,
            self.key,
            self.case_id,
            self.seq,
            self.name,
            self.args,
            self.at,
            self.status,
            self.attempts,
            self.last_error,
            self.policy,
        )


class MemoryStore(StepsOnCases):
    """Open cases, run steps on them by id, fire due deadlines across all of them, and hand
    out their effects: the :class:`~rulekit.runtime.store.Store` contract, in this process.

    ``engine``: a policy to register at once (its engine, reused as is). ``clock``: what
    times a call without ``at=``/``now=`` (default: the wall clock, see the module).

    >>> store = MemoryStore(Engine(policy))                                # doctest: +SKIP
    >>> case, result = store.open("refund_only", facts, at=start, id="R-1")  # doctest: +SKIP
    >>> store.send("R-1", "approve", "merchant", at=start + hour).state    # doctest: +SKIP
    'refunded'
    """

    #: deliveries of an effect before it moves to the dead letters
    max_attempts = 10

    def __init__(
        self, engine: Engine | None = None, *, clock: Callable[[], datetime] = wall_clock
    ) -> None:
        self._clock = clock
        self._cases: dict[str, _Entry] = {}
        # (due, tie-breaker, case id): may hold stale entries, checked when popped.
        self._due: list[tuple[datetime, int, str]] = []
        self._order = itertools.count(1)
        self._engines: dict[str, Engine] = {}
        self._registered: dict[str, datetime] = {}
        self._latest: dict[str, str] = {}  # policy name -> hash registered last
        #: (caller, key) -> (case id, fingerprint) of the keyed opens without an id
        self._open_keys: dict[tuple[str, str], tuple[str, str]] = {}
        self._outbox: dict[str, _Outgoing] = {}  # by key, in id order
        if engine is not None:
            self._add(engine)

    def __len__(self) -> int:
        return len(self._cases)

    def __iter__(self) -> Iterator[StoredCase]:
        return (self._stored(e) for e in self._cases.values())

    # -- policies --------------------------------------------------------------------------
    def register(self, policy: ir.Policy) -> str:
        """Keep ``policy`` so cases can be pinned to it; returns its hash (see :class:`Store`)."""
        digest = policy.hash or content_hash(to_json(policy))
        return self._add(self._engines.get(digest) or Engine(policy), digest)

    def _add(self, engine: Engine, digest: str | None = None) -> str:
        policy = engine.policy
        digest = digest or policy.hash or content_hash(to_json(policy))
        self._engines.setdefault(digest, engine)
        self._registered.setdefault(digest, self._clock())
        self._latest[policy.name] = digest
        return digest

    def policies(self) -> list[dict[str, Any]]:
        """Every policy version kept, newest first, with how many open cases each has."""
        open_cases = Counter(e.policy for e in self._cases.values() if not e.case.final)
        listed = [
            {
                "hash": digest,
                "name": engine.policy.name,
                "version": engine.policy.version,
                "registered_at": self._registered[digest],
                "open_cases": open_cases[digest],
                "current": self._latest.get(engine.policy.name) == digest,
            }
            for digest, engine in sorted(self._engines.items())
        ]
        return sorted(listed, key=lambda p: p["registered_at"], reverse=True)

    def engine(self, digest: str) -> Engine:
        """The engine of one policy version."""
        engine = self._engines.get(digest)
        if engine is None:
            raise StoreError("unknown_policy", f"no policy version {digest!r} in the store")
        return engine

    def current(self, name: str | None = None, *, any_version: bool = False) -> str:
        """The hash new cases of policy ``name`` are pinned to (as :meth:`SqlStore.current`)."""
        return current_version(
            self._latest, name, self._engines.__contains__ if any_version else None
        )

    # -- cases -----------------------------------------------------------------------------
    def open(
        self,
        workflow: str,
        facts: Mapping[str, Any],
        *,
        policy: str | None = None,
        id: str | None = None,
        parties: Mapping[str, str] | None = None,
        key: str | None = None,
        at: datetime | None = None,
        caller: str | None = None,
        fingerprint: str | None = None,
        any_version: bool = True,
        by: str | None = None,
    ) -> tuple[StoredCase, StepResult]:
        """Open a case of ``workflow``: the case as stored and the opening step's result.

        Ids, keys and versions as :meth:`rulekit.stores.SqlStore.open`: without an ``id``
        the case gets a random one; an ``id`` opened again is ``case_exists`` unless the
        same caller's ``key`` opened it (then the first open's result, ``repeated``).
        """
        digest = self.current(policy, any_version=any_version)
        engine = self._engines[digest]
        keyed = Key.of(key, caller, fingerprint)
        if workflow not in engine.policy.workflows:
            known = ", ".join(engine.policy.workflows)
            raise StoreError(
                "unknown_workflow", f"no workflow {workflow!r} in {engine.policy.name} ({known})"
            )
        case_id = id
        if case_id is None and keyed is not None:
            before = self._open_keys.get((keyed.caller, keyed.key))
            if before is not None:
                keyed.check(before[1])
                return self._exists(before[0], keyed)
        if case_id is None:
            case_id = uuid.uuid4().hex
        elif case_id in self._cases:
            return self._exists(case_id, keyed)
        t = at if at is not None else self._clock()
        case = engine.open(workflow, facts, at=t, id=case_id, by=by)
        entry = _Entry(case, engine, digest, dict(parties or {}), t, t)
        self._cases[case_id] = entry
        if id is None and keyed is not None:
            self._open_keys[keyed.caller, keyed.key] = (case_id, keyed.fingerprint)
        result = StepResult(tuple(case.history), case.state.name, case.final, tuple(case.effects))
        self._keep(entry, result, keyed, None, t)
        return self._stored(entry), result

    def _exists(self, case_id: str, keyed: Key | None) -> tuple[StoredCase, StepResult]:
        entry = self._entry(case_id)  # gone if it was removed since its key opened it
        repeated = self._repeated(entry, keyed) if keyed is not None else None
        if repeated is None:
            raise StoreError("case_exists", f"case {case_id!r} exists already")
        return self._stored(entry), repeated

    def _step(
        self,
        case_id: str,
        key: Key | None,
        at: datetime | None,
        run: Callable[[Engine, Case, datetime], StepResult],
        only_if: Callable[[Mapping[str, str]], bool] | None,
    ) -> tuple[StoredCase, StepResult]:
        entry = self._cases.get(case_id)
        if entry is None or (only_if is not None and not only_if(entry.parties)):
            raise CaseNotFound(case_id)
        if key is not None:
            repeated = self._repeated(entry, key)
            if repeated is not None:
                return self._stored(entry), repeated
        case = entry.case
        t = at if at is not None else max(self._clock(), case.now)
        before = case.next_deadline
        result = run(entry.engine, case, t)
        # The store answers repeated keys itself, per caller (_repeated); the engine's own
        # memory of keys knows no callers, so it must not answer for them.
        case.keys = None
        self._keep(entry, result, key, before, t)
        return self._stored(entry), result

    def migrate_case(self, case_id: str, to: str) -> Record | None:
        """As :meth:`rulekit.stores.SqlStore.migrate_case`: move one open case to the
        version ``to`` (None: it is on it already, or closed)."""
        entry = self._cases.get(case_id)
        if entry is None:
            raise CaseNotFound(case_id)
        if entry.policy == to or entry.case.final:
            return None
        engine = self.engine(to)
        t = max(self._clock(), entry.case.now)
        before = entry.case.next_deadline
        case = engine.migrate(entry.case, entry.engine.policy.version or "", t)
        entry.case, entry.engine, entry.policy = case, engine, to
        entry.version += 1
        entry.updated_at = t
        due = case.next_deadline
        if due != before:
            entry.due = due
            if due is not None:
                heapq.heappush(self._due, (due, next(self._order), case_id))
        return case.history[-1]

    def fire_due(self, *, limit: int = 100, now: datetime | None = None) -> list[Fired]:
        """Fire the deadlines due before ``now`` (default: the store's clock), ``limit`` at
        most, earliest first; each recorded at its due time. A deadline that fails is
        reported (:class:`Fired` ``error``), leaves its case as it was, and is not fired again.
        """
        return self._fire(now if now is not None else self._clock(), limit)

    def advance(self, to: datetime) -> list[tuple[str, StepResult]]:
        """Fire every deadline due before ``to`` in every case; returns what each case did
        (:meth:`fire_due` without a limit, less the deadlines that failed)."""
        return [(f.case_id, f.result) for f in self._fire(to, None) if f.result is not None]

    def _fire(self, t: datetime, limit: int | None) -> list[Fired]:
        fired: list[Fired] = []
        while self._due and self._due[0][0] < t and (limit is None or len(fired) < limit):
            due, _, case_id = heapq.heappop(self._due)
            entry = self._cases.get(case_id)
            if entry is None or entry.due != due:
                continue  # stale: the case moved on (or left) since this entry was made
            entry.due = None
            case = entry.case
            before = case.next_deadline
            try:
                result = entry.engine.advance(case, max(t, case.now))
            except (EvaluationError, StepRefused) as e:
                # the engine undid the step: the case stays as it was, this deadline is done
                log.error("case %s: the deadline due %s failed: %s", case_id, due, e)
                fired.append(Fired(case_id, due, None, error=str(e)))
                continue
            self._keep(entry, result, None, before, t)
            fired.append(Fired(case_id, due, result))
        return fired

    def _keep(
        self,
        entry: _Entry,
        result: StepResult,
        key: Key | None,
        due_before: datetime | None,
        t: datetime,
    ) -> None:
        """What a step leaves besides the case: its version, its key, its effects in the
        outbox, and the case's next deadline in the index."""
        case, policy = entry.case, entry.policy
        assert case.id is not None
        entry.version += 1
        entry.updated_at = t
        records = result.records
        if key is not None:
            entry.keys[key.caller, key.key] = _KeyUse(
                key.fingerprint,
                records[0].seq if records else -1,
                records[-1].seq if records else -2,
                result.state,
                result.final,
            )
        for r in records:
            for i, e in enumerate(r.effects):
                effect_key = f"{case.id}/{e.seq}/{i}"  # as a durable store's outbox keys it
                self._outbox[effect_key] = _Outgoing(
                    len(self._outbox) + 1,
                    effect_key,
                    case.id,
                    e.seq,
                    e.name,
                    dict(e.args),
                    e.at,
                    t,
                    policy,
                )
        due = case.next_deadline
        if due != due_before:
            entry.due = due
            if due is not None:
                heapq.heappush(self._due, (due, next(self._order), case.id))

    def _repeated(self, entry: _Entry, key: Key) -> StepResult | None:
        """The first result of the step ``key`` was used with (None: a new key), or
        ``idempotency_key_reused`` when this request is not the one it was used with."""
        used = entry.keys.get((key.caller, key.key))
        if used is None:
            return None
        key.check(used.fingerprint)
        records = tuple(entry.case.history[used.first : used.last + 1])
        effects = tuple(e for r in records for e in r.effects)
        return StepResult(records, used.state, used.final, effects, repeated=True)

    def get(self, case_id: str) -> StoredCase:
        return self._stored(self._entry(case_id))

    def remove(self, case_id: str) -> StoredCase:
        """Take a case out of the store (a closed case a service has archived, say)."""
        entry = self._cases.pop(case_id, None)
        if entry is None:
            raise CaseNotFound(case_id)
        return self._stored(entry)  # its heap entries are dropped as stale when they come up

    def history(self, case_id: str, *, after: int = -1, limit: int | None = None) -> list[Record]:
        """The case's history records (``after``: only those with a greater ``seq``)."""
        records = self._entry(case_id).case.history
        start = max(after + 1, 0)
        end = len(records) if limit is None else min(len(records), after + 1 + limit)
        return records[start:end]

    def allowed(self, case_id: str, *, at: datetime | None = None) -> dict[str, tuple[str, ...]]:
        """The events the case would accept now, each with the actors that may send it."""
        entry = self._entry(case_id)
        t = at if at is not None else self._clock()
        return entry.engine.allowed(entry.case, max(t, entry.case.now))

    def cases(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        party: tuple[str, str] | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[StoredCase]:
        """Cases by workflow and state, in id order (``after``: the last id of the page before).

        ``party`` (actor, principal): only the cases that principal is a party to.
        """
        found = sorted(
            (case_id, e)
            for case_id, e in self._cases.items()
            if (workflow is None or e.case.workflow.name == workflow)
            and (state is None or e.case.state.name == state)
            and (after is None or case_id > after)
            and (party is None or e.parties.get(party[0]) == party[1])
        )
        return [self._stored(e) for _, e in found[: max(limit, 0)]]

    def count(self) -> dict[tuple[str, str], int]:
        """How many cases sit in each (workflow, state): for metrics."""
        return dict(
            Counter((e.case.workflow.name, e.case.state.name) for e in self._cases.values())
        )

    def pending(self) -> dict[str, int]:
        """Deadlines waiting and effects by status: for metrics."""
        out = {"deadlines": sum(1 for e in self._cases.values() if e.due is not None)}
        statuses = Counter(e.status for e in self._outbox.values())
        out.update({f"effects_{s}": n for s, n in sorted(statuses.items())})
        return out

    # -- effects (the outbox) ----------------------------------------------------------------
    def claim(
        self,
        *,
        limit: int = 100,
        lease: timedelta = timedelta(seconds=60),
        names: Collection[str] | None = None,
    ) -> list[OutboxEffect]:
        """Claim effects to carry out; each stays claimed for ``lease`` (as
        :meth:`rulekit.stores.SqlStore.claim`: at least once, then the dead letters).
        ``names``: only effects of those names."""
        now = self._clock()
        ready = []
        for e in self._outbox.values():
            if e.status != "pending" or e.available_at > now:
                continue
            if names is not None and e.name not in names:
                continue
            if e.attempts >= self.max_attempts:
                e.status = "dead"
                e.last_error = e.last_error or "not acknowledged within its lease"
            else:
                ready.append(e)
        ready.sort(key=lambda e: (e.available_at, e.id))
        claimed = sorted(ready[: max(limit, 0)], key=lambda e: e.id)
        for e in claimed:
            e.attempts += 1
            e.available_at = now + lease
        return [e.view() for e in claimed]

    def ack(self, key: str) -> OutboxEffect:
        """Mark an effect carried out (acknowledging it again changes nothing)."""
        e = self._effect(key)
        if e.status == "pending":
            e.status = "done"
        return e.view()

    def ack_many(self, keys: Collection[str]) -> int:
        """:meth:`ack` each of ``keys``; returns how many were pending until now."""
        done = 0
        for key in set(keys):
            e = self._outbox.get(key)
            if e is not None and e.status == "pending":
                e.status, done = "done", done + 1
        return done

    def fail(
        self,
        key: str,
        error: str,
        *,
        retry_in: timedelta = timedelta(0),
        dead: bool = False,
        attempt: int | None = None,
    ) -> OutboxEffect:
        """Report a failed delivery: tried again after ``retry_in``, dead after
        :attr:`max_attempts` (at once with ``dead``: the receiver refused it for good);
        a report on an ``attempt`` claimed again since changes nothing."""
        e = self._effect(key)
        if e.status == "pending" and (attempt is None or attempt == e.attempts):
            e.last_error = error
            e.available_at = self._clock() + retry_in
            if dead or e.attempts >= self.max_attempts:
                e.status = "dead"
        return e.view()

    def retry_dead(self, key: str) -> OutboxEffect:
        """Put a dead-lettered effect back in the outbox for another round of deliveries."""
        e = self._effect(key)
        if e.status == "dead":
            e.status, e.attempts, e.available_at = "pending", 0, self._clock()
        return e.view()

    def effects(
        self,
        *,
        status: str | None = None,
        case_id: str | None = None,
        limit: int = 100,
        after: int | None = None,
    ) -> list[OutboxEffect]:
        """Effects in the outbox, oldest first (the dead letters: ``status="dead"``);
        ``after``: only those whose ``id`` is greater (the next page)."""
        found = (
            e
            for e in self._outbox.values()
            if (status is None or e.status == status)
            and (case_id is None or e.case_id == case_id)
            and (after is None or e.id > after)
        )
        return [e.view() for e in itertools.islice(found, max(limit, 0))]

    # -- cases as stored -------------------------------------------------------------------
    def _entry(self, case_id: str) -> _Entry:
        entry = self._cases.get(case_id)
        if entry is None:
            raise CaseNotFound(case_id)
        return entry

    def _effect(self, key: str) -> _Outgoing:
        effect = self._outbox.get(key)
        if effect is None:
            raise effect_not_found(key)
        return effect

    def _stored(self, entry: _Entry) -> StoredCase:
        # The facts are the case's own: the engine replaces them, never changes them in
        # place, so this view stays as it is when the case moves on.
        case = entry.case
        assert case.id is not None
        return StoredCase(
            id=case.id,
            policy=entry.policy,
            workflow=case.workflow.name,
            state=case.state.name,
            final=case.state.final,
            outcome=case.outcome,
            facts=case.facts,
            next_deadline=case.next_deadline,
            version=entry.version,
            parties=entry.parties,
            opened_at=entry.opened_at,
            updated_at=entry.updated_at,
            records=len(case.history),
        )


#: mypy checks here that MemoryStore keeps the contract (and SqlStore, in stores/base.py)
_contract: type[Store] = MemoryStore
