"""A durable store behaves as the in-memory engine: a Hypothesis state machine.

Random sequences of open, send, update (with and without idempotency keys) and
advance (a worker's ``fire_due`` with an explicit ``now``) on the Kuaishou policy
run against a store and against :class:`rulekit.MemoryStore`, the model, through the
same calls (the store contract); after each step every case has the same state,
facts, next deadline, records and effects, the stores count the same deadlines and
effects, and a refused step has the same refusal code. Bounded: 25 examples of at
most 15 steps. SQL stores only: the model is the memory store.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from rulekit.core.errors import StepRefused
from rulekit.policy import Policy
from rulekit.runtime import Engine, MemoryStore, StepResult, Store
from rulekit.runtime.store import StoredCase

from .backends import Backend
from .helpers import (
    REVIEW,
    D,
    H,
    S,
    T,
    effect_view,
    fast_refund,
    slow_refund,
    stored_view,
    views,
)

SENDS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("approve", "merchant", None),
    ("approve", "consumer", None),
    ("reject", "merchant", {"reason": "used"}),
    ("reject", "merchant", {}),
    ("withdraw", "consumer", None),
    ("reapply", "consumer", None),
    ("escalate", "consumer", None),
    ("escalate", "merchant", None),
    ("request_evidence", "platform", {"party": "consumer", "within": "1d"}),
    ("request_evidence", "platform", {"party": "merchant", "within": "2h"}),
    ("submit_evidence", "consumer", {"note": "photos"}),
    ("submit_evidence", "merchant", {"note": "receipt"}),
    *[("rule", "platform", {"decision": d}) for d in ("refund", "reject", "return", "arrange")],
    ("offer_offline", "merchant", {"service": "repair"}),
    ("accept_offline", "consumer", None),
    ("submit_waybill", "consumer", {"waybill_no": "SF1", "carrier": "SF"}),
    ("confirm_receipt", "merchant", None),
    ("reject_receipt", "merchant", {"reason": "broken"}),
    ("arrange", "merchant", {"service": "exchange"}),
    ("no_such_event", "consumer", None),
]
UPDATES: list[dict[str, Any]] = [
    {"order.shipped": False},
    {"order.shipped": True},
    {"order.amount": "99.50"},
    {"order.amount": "lots"},
    {"rejection.reason": None},
    {"order.colour": "red"},
]
OPENS: list[tuple[str, dict[str, Any]]] = [
    ("refund_only", slow_refund()),
    ("refund_only", fast_refund()),
    ("return_refund", slow_refund("299.99")),
    ("exchange_repair", {**slow_refund(), "order.after_sales_until": T + 20 * D}),
]
DELAYS = [timedelta(0), S, H, 47 * H, REVIEW, REVIEW + S, 7 * D, 10 * D]


def _view(result: StepResult) -> Any:
    return (
        views(result.records),
        result.state,
        result.final,
        [effect_view(e) for e in result.effects],
        result.repeated,
    )


def _step_view(step: tuple[StoredCase, StepResult]) -> Any:
    """What a step returns: the case as it left it, and its result."""
    case, result = step
    return (
        (case.state, case.final, case.outcome, case.facts, case.next_deadline),
        (case.version, case.records, case.updated_at, case.opened_at),
        _view(result),
    )


class StoreMatchesEngine(RuleBasedStateMachine):
    def __init__(self, backend: Backend, policy: Policy) -> None:
        super().__init__()
        backend.reset()
        self.store: Store = backend.open(register=policy)
        self.model = MemoryStore(Engine(policy))
        self.now = T
        self.ids: list[str] = []

    def teardown(self) -> None:
        self.store.close()

    def _tick(self, delay: int) -> None:
        self.now += DELAYS[delay]

    def _outcome(self, store_call: Any, model_call: Any) -> None:
        try:
            expected: Any = _step_view(model_call())
        except StepRefused as e:
            expected = e.code
        try:
            got: Any = _step_view(store_call())
        except StepRefused as e:
            got = e.code
        assert got == expected

    @initialize(which=st.integers(0, len(OPENS) - 1))
    def first_case(self, which: int) -> None:
        self.open_case(which, 0)

    @rule(which=st.integers(0, len(OPENS) - 1), delay=st.integers(0, len(DELAYS) - 1))
    def open_case(self, which: int, delay: int) -> None:
        self._tick(delay)
        workflow, facts = OPENS[which]
        case_id = f"c{len(self.ids)}"
        _, expected = self.model.open(workflow, facts, at=self.now, id=case_id)
        _, result = self.store.open(workflow, facts, id=case_id, at=self.now)
        assert _view(result) == _view(expected)
        self.ids.append(case_id)

    @rule(
        case=st.integers(0, 99),
        send=st.integers(0, len(SENDS) - 1),
        key=st.sampled_from([None, "k1", "k2"]),
        delay=st.integers(0, len(DELAYS) - 1),
    )
    def send(self, case: int, send: int, key: str | None, delay: int) -> None:
        self._tick(delay)
        case_id = self.ids[case % len(self.ids)]
        event, by, data = SENDS[send]
        self._outcome(
            lambda: self.store.send(case_id, event, by, data, key=key, at=self.now),
            lambda: self.model.send(case_id, event, by, data, key=key, at=self.now),
        )

    @rule(
        case=st.integers(0, 99),
        update=st.integers(0, len(UPDATES) - 1),
        delay=st.integers(0, len(DELAYS) - 1),
    )
    def update(self, case: int, update: int, delay: int) -> None:
        self._tick(delay)
        case_id = self.ids[case % len(self.ids)]
        changes = UPDATES[update]
        self._outcome(
            lambda: self.store.update(case_id, changes, at=self.now),
            lambda: self.model.update(case_id, changes, at=self.now),
        )

    @rule(delay=st.integers(0, len(DELAYS) - 1))
    def advance(self, delay: int) -> None:
        self._tick(delay)
        expected, got = (
            {f.case_id: _view(f.result) for f in s.fire_due(now=self.now, limit=1000) if f.result}
            for s in (self.model, self.store)
        )
        assert got == expected

    @rule(
        case=st.integers(0, 99),
        offset=st.sampled_from([-S, timedelta(0), timedelta(microseconds=1)]),
    )
    def advance_to_a_deadline(self, case: int, offset: timedelta) -> None:
        """Move the clock to just before, exactly at, or just after a case's next deadline."""
        due = self.model.get(self.ids[case % len(self.ids)]).next_deadline
        if due is not None and due + offset > self.now:
            self.now = due + offset
        self.advance(0)

    @invariant()
    def same_cases(self) -> None:
        for case_id in self.ids:
            assert stored_view(self.store, case_id) == stored_view(self.model, case_id)
            assert views(self.store.history(case_id)) == views(self.model.history(case_id))
            assert [effect_view(e) for e in self.store.effects(case_id=case_id)] == [
                effect_view(e) for e in self.model.effects(case_id=case_id)
            ]
        assert self.store.pending() == self.model.pending()


def test_a_store_behaves_as_the_in_memory_engine(sql_backend: Backend, kuaishou: Policy) -> None:
    run_state_machine_as_test(
        lambda: StoreMatchesEngine(sql_backend, kuaishou),
        settings=settings(
            max_examples=25,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
