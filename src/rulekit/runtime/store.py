"""The store contract: what every store of cases does, in memory or in a database.

:class:`Store` is the one protocol :class:`rulekit.MemoryStore` and the durable
:class:`rulekit.stores.SqlStore` (SQLite, PostgreSQL) both implement, with the same
arguments, results and errors, so code tested on one runs the same on the others
(tests/stores/ runs one contract suite against each). The values it passes
(:class:`StoredCase`, :class:`OutboxEffect`, :class:`Fired`) and its errors
(:class:`StoreError` and its stable codes, docs/service.md) live here, below both
kinds of store: the runtime never imports the SQL stores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from rulekit.core.errors import RuleError
from rulekit.expr.convert import to_data
from rulekit.policy import ir
from rulekit.runtime.engine import Engine
from rulekit.runtime.model import Case, Record, StepResult


class StoreError(RuleError):
    """A store cannot do what was asked. ``code`` is stable (docs/service.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CaseNotFound(StoreError):
    def __init__(self, case_id: str) -> None:
        super().__init__("case_not_found", f"no case {case_id!r}")


def effect_not_found(key: str) -> StoreError:
    return StoreError("effect_not_found", f"no effect {key!r} in the outbox")


@dataclass(frozen=True)
class StoredCase:
    """A case as the store keeps it: what a service shows of it."""

    id: str
    policy: str
    workflow: str
    state: str
    final: bool
    outcome: str | None
    facts: Mapping[str, Any]
    next_deadline: datetime | None
    #: how many steps changed it (optimistic concurrency and ETags)
    version: int
    #: who the case belongs to, per actor: {"merchant": "shop-1", "consumer": "c-7"}
    parties: Mapping[str, str]
    opened_at: datetime
    updated_at: datetime
    #: the number of history records
    records: int


@dataclass(frozen=True)
class OutboxEffect:
    """An effect waiting in the outbox. ``key`` is stable: consumers deduplicate on it."""

    id: int
    key: str
    case_id: str
    seq: int
    name: str
    args: Mapping[str, Any]
    at: datetime
    status: str
    attempts: int
    last_error: str | None = None
    #: the hash of the policy version whose step emitted it (None: stored before rulekit
    #: kept it, in a store upgraded since)
    policy: str | None = None

    def to_data(self) -> dict[str, Any]:
        """As plain JSON data, values as the HTTP API renders them (money as a decimal
        string, times in RFC 3339): what ``GET /effects`` and ``rulekit effects`` show."""
        return {
            "key": self.key,
            "case_id": self.case_id,
            "seq": self.seq,
            "name": self.name,
            "args": to_data(dict(self.args)),
            "at": self.at.isoformat(),
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "policy": self.policy,
        }


@dataclass(frozen=True)
class Fired:
    """What one due deadline did when a worker fired it.

    ``result`` None: it no longer applied (the case moved on), or firing it failed:
    ``error`` says why (a condition or effect argument that cannot be evaluated); the
    case is left as it was, the deadline is marked done with the error, and the case's
    next step meets the same error.
    """

    case_id: str
    due: datetime
    result: StepResult | None
    error: str | None = None


@dataclass(frozen=True)
class Key:
    """An idempotency key as a store keeps it: whose it is and what request it came with.

    ``caller``: who used it ('' for the Python API's single trusted caller): another
    caller's same key is another key. ``fingerprint``: a digest of the request ('' for
    none): the same caller's key with another fingerprint is ``idempotency_key_reused``;
    '' matches any request (keys the Python API writes, and those written before the
    store kept fingerprints).
    """

    key: str
    caller: str = ""
    fingerprint: str = ""

    @classmethod
    def of(cls, key: str | None, caller: str | None, fingerprint: str | None) -> Key | None:
        return None if key is None else cls(key, caller or "", fingerprint or "")

    def check(self, stored: str) -> None:
        """Refuse a request that is not the one this key was first used with."""
        if stored and self.fingerprint and stored != self.fingerprint:
            raise StoreError(
                "idempotency_key_reused",
                f"the idempotency key {self.key!r} was used with another request: "
                "use a new key for a new request",
            )


def current_version(
    latest: Mapping[str, str], name: str | None, stored: Callable[[str], bool] | None
) -> str:
    """What :meth:`Store.current` answers, from the hash registered last under each name
    (``latest``) and, when any stored version may be named, a test of a hash (``stored``)."""
    known = ", ".join(sorted(latest)) or "none registered"
    if name is None:
        if len(latest) != 1:
            raise StoreError("unknown_policy", f"name the policy (policies: {known})")
        return next(iter(latest.values()))
    if name in latest:
        return latest[name]
    if name in latest.values() or (stored is not None and stored(name)):
        return name  # a hash
    raise StoreError("unknown_policy", f"no policy {name!r} (policies: {known})")


class StepsOnCases(ABC):
    """``send`` and ``update``, written once for every store: each is a step on one case
    (:meth:`_step`: found, authorized by ``only_if``, keyed, run, kept whole or not at all),
    which each kind of store runs its own way. Each returns, as :meth:`Store.open` does, the
    case as the step left it and the step's result, both from the step itself: a service
    answers with them without reading the case again."""

    def send(
        self,
        case_id: str,
        event: str,
        by: str,
        data: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        at: datetime | None = None,
        only_if: Callable[[Mapping[str, str]], bool] | None = None,
        caller: str | None = None,
        fingerprint: str | None = None,
    ) -> tuple[StoredCase, StepResult]:
        """Deliver an event to a case (:meth:`Engine.send`): the step is kept whole or not at all.
        Returns the case as the step left it (as :meth:`Store.get` would read it then: for a
        repeated key, the case as it is now) and the step's result.

        ``only_if``: a test of the case's parties, made under the step's lock (a service's
        authorization); when it fails, the case is not found for this caller. ``key``,
        ``caller`` and ``fingerprint``: an idempotency key and whose it is (:class:`Key`).
        """
        return self._step(
            case_id,
            Key.of(key, caller, fingerprint),
            at,
            lambda e, c, t: e.send(c, event, by, data, at=t, key=key),
            only_if,
        )

    def update(
        self,
        case_id: str,
        changes: Mapping[str, Any],
        *,
        key: str | None = None,
        at: datetime | None = None,
        only_if: Callable[[Mapping[str, str]], bool] | None = None,
        caller: str | None = None,
        fingerprint: str | None = None,
        by: str | None = None,
    ) -> tuple[StoredCase, StepResult]:
        """Change facts of a case from outside (:meth:`Engine.update`, ``by`` as there); the
        rest, and what it returns, as for :meth:`send`."""
        return self._step(
            case_id,
            Key.of(key, caller, fingerprint),
            at,
            lambda e, c, t: e.update(c, changes, at=t, by=by),
            only_if,
        )

    @abstractmethod
    def _step(
        self,
        case_id: str,
        key: Key | None,
        at: datetime | None,
        run: Callable[[Engine, Case, datetime], StepResult],
        only_if: Callable[[Mapping[str, str]], bool] | None,
    ) -> tuple[StoredCase, StepResult]:
        """Run ``run`` on the case as one step of this store's kind: the case as it left
        it, and its result."""


class Store(Protocol):
    """Cases of any number of policy versions, their history, deadlines and outbox.

    Every method raises :class:`StoreError` with a stable code where the store refuses
    (``case_not_found`` as :class:`CaseNotFound`, ``case_exists``, ``unknown_policy``,
    ``unknown_workflow``, ``idempotency_key_reused``, ``effect_not_found``), and
    :class:`rulekit.StepRefused` for a step the policy refuses; a refused step changes
    nothing. A time left out (``at=``, ``now=``) is the store's clock: the database's
    for a durable store, the clock a :class:`rulekit.MemoryStore` was given.
    """

    #: deliveries of an effect before it moves to the dead letters
    max_attempts: int

    # -- policies
    def register(self, policy: ir.Policy) -> str:
        """Keep ``policy`` so cases can be pinned to it; returns its hash. The version
        registered last under a name is the one :meth:`open` uses."""
        ...

    def policies(self) -> list[dict[str, Any]]:
        """Every policy version kept, newest first, with how many open cases each has."""
        ...

    def engine(self, digest: str) -> Engine:
        """The engine of one policy version (``unknown_policy`` if the store has none)."""
        ...

    def current(self, name: str | None = None, *, any_version: bool = False) -> str:
        """The hash new cases of policy ``name`` are pinned to (None: the only policy)."""
        ...

    # -- cases
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
        """Open a case of ``workflow`` on ``policy`` (a name or a hash; None: the only one)."""
        ...

    def send(
        self,
        case_id: str,
        event: str,
        by: str,
        data: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        at: datetime | None = None,
        only_if: Callable[[Mapping[str, str]], bool] | None = None,
        caller: str | None = None,
        fingerprint: str | None = None,
    ) -> tuple[StoredCase, StepResult]:
        """Deliver an event to a case, whole or not at all: the case as the step left it
        (a repeated key: as it is now) and the step's result."""
        ...

    def update(
        self,
        case_id: str,
        changes: Mapping[str, Any],
        *,
        key: str | None = None,
        at: datetime | None = None,
        only_if: Callable[[Mapping[str, str]], bool] | None = None,
        caller: str | None = None,
        fingerprint: str | None = None,
        by: str | None = None,
    ) -> tuple[StoredCase, StepResult]:
        """Change facts of a case from outside; the rest as for :meth:`send`."""
        ...

    def fire_due(self, *, limit: int = 100, now: datetime | None = None) -> list[Fired]:
        """Fire the deadlines due before ``now``, earliest first, ``limit`` at most."""
        ...

    def migrate_case(self, case_id: str, to: str) -> Record | None:
        """Move one open case to the policy version ``to`` (a hash), as that version's
        `migrate from` block says, with a `migrated` record; None when the case is on
        ``to`` already or closed (docs/live-changes.md, "Migrations")."""
        ...

    def get(self, case_id: str) -> StoredCase: ...

    def history(self, case_id: str, *, after: int = -1, limit: int | None = None) -> list[Record]:
        """The case's history records (``after``: only those with a greater ``seq``)."""
        ...

    def allowed(self, case_id: str, *, at: datetime | None = None) -> dict[str, tuple[str, ...]]:
        """The events the case would accept now, each with the actors that may send it."""
        ...

    def cases(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        party: tuple[str, str] | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[StoredCase]:
        """Cases by workflow, state and party, in id order (``after``: the last id before)."""
        ...

    def count(self) -> dict[tuple[str, str], int]:
        """How many cases sit in each (workflow, state)."""
        ...

    def pending(self) -> dict[str, int]:
        """Deadlines waiting (``deadlines``) and effects by status (``effects_<status>``)."""
        ...

    # -- the outbox
    def claim(
        self,
        *,
        limit: int = 100,
        lease: timedelta = timedelta(seconds=60),
        names: Collection[str] | None = None,
    ) -> list[OutboxEffect]:
        """Claim effects to carry out, each for ``lease``; at least once, then dead letters.
        ``names``: only effects of those names."""
        ...

    def ack(self, key: str) -> OutboxEffect:
        """Mark an effect carried out (acknowledging it again changes nothing)."""
        ...

    def ack_many(self, keys: Collection[str]) -> int:
        """:meth:`ack` each of ``keys`` at once; how many were pending until now."""
        ...

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
        ``max_attempts`` (at once with ``dead``); stale (changing nothing) when ``attempt``
        is not the effect's latest claim."""
        ...

    def retry_dead(self, key: str) -> OutboxEffect:
        """Put a dead-lettered effect back in the outbox for another round of deliveries."""
        ...

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
        ...
