"""The contract of a store, run against every store alike: MemoryStore, SQLite and
PostgreSQL (issues 7 and 13), so code tested in memory behaves the same on a database.

A store runs the in-memory engine's steps, so for the same inputs it must give the
same results; what it adds is keeping them: values typed back exactly, refused steps
leaving no trace, idempotency keys, policy versions cases stay pinned to, history
and case listings, deadlines fired by workers, an outbox of effects, a versioned schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

import rulekit
from rulekit.core.errors import StepRefused
from rulekit.policy import Policy
from rulekit.runtime import Store
from rulekit.runtime.engine import Engine
from rulekit.runtime.model import Case, StepResult
from rulekit.stores import SqlStore, StoreError, open_store

from .backends import Backend
from .helpers import (
    KUAISHOU,
    PROVENANCE,
    REVIEW,
    VALUES,
    D,
    H,
    S,
    T,
    case_view,
    effect_view,
    everything,
    fast_refund,
    slow_refund,
    stored_view,
    typed,
    views,
)

# -- values typed back exactly ---------------------------------------------------------------

IST = timezone(timedelta(hours=5, minutes=30))
VALUE_FACTS: dict[str, Any] = {
    "amount": Decimal("1234.50"),
    "paid_at": datetime(2021, 2, 28, 23, 59, 59, 123456, tzinfo=IST),
    "window": timedelta(days=2, seconds=3, microseconds=7),
    "blob": b"\x00\xffbinary\n",
    "count": 7,
    "ratio": 0.25,
    "label": 'a "quoted" label, with {"$rk": "money", "v": "1"} inside',
    "flag": True,
}


@pytest.fixture
def values_store(backend: Backend) -> Store:
    return backend.open(register=rulekit.load(VALUES))


def test_open_reads_every_fact_type_back_exactly(values_store: Store, backend: Backend) -> None:
    engine = Engine(rulekit.load(VALUES))
    expected = engine.open("ticket", VALUE_FACTS, at=T, id="v1")
    stored, result = values_store.open("ticket", VALUE_FACTS, id="v1", at=T)
    assert typed(stored.facts) == typed(expected.facts)
    assert typed(stored.facts)["amount"] == ("money", "1234.50")
    assert typed(stored.facts)["paid_at"] == ("time", "2021-02-28T23:59:59.123456+05:30")
    assert views(result.records) == views(expected.history)
    # read back by another store object: nothing came from a cache
    again = backend.open()
    assert typed(again.get("v1").facts) == typed(expected.facts)
    assert views(again.history("v1")) == views(expected.history)
    assert again.get("v1").next_deadline == T + VALUE_FACTS["window"]


def test_payloads_and_effect_arguments_keep_their_types(values_store: Store) -> None:
    engine = Engine(rulekit.load(VALUES))
    case = engine.open("ticket", VALUE_FACTS, at=T, id="v1")
    values_store.open("ticket", VALUE_FACTS, id="v1", at=T)
    data = {
        "amount": Decimal("0.10"),
        "at": datetime(2021, 3, 1, 1, 2, 3, tzinfo=timezone(timedelta(hours=-7))),
        "window": timedelta(hours=5),
        "blob": b"\x01\x02",
    }
    expected = engine.send(case, "amend", "client", data, at=T + H)
    _, got = values_store.send("v1", "amend", "client", data, at=T + H)
    assert views(got.records) == views(expected.records)
    assert [effect_view(e) for e in values_store.effects(case_id="v1")] == [
        effect_view(e) for e in case.effects
    ]
    assert typed(values_store.get("v1").facts) == typed(case.facts)
    # the deadline (window counted from the entry) fires with the amended values
    values_store.fire_due(now=T + 6 * H)
    engine.advance(case, T + 6 * H)
    assert stored_view(values_store, "v1") == case_view(case)
    assert views(values_store.history("v1")) == views(case.history)
    assert [effect_view(e) for e in values_store.effects(case_id="v1")] == [
        effect_view(e) for e in case.effects
    ]


# -- the same results as the in-memory engine --------------------------------------------------

Step = tuple[Any, ...]  # ("send", event, by, data, at) | ("update", changes, at) | ("advance", at)


@dataclass(frozen=True)
class Run:
    name: str
    workflow: str
    facts: dict[str, Any]
    steps: tuple[Step, ...]


RUNS = [
    Run(
        "merchant approves",
        "refund_only",
        slow_refund(),
        (("send", "approve", "merchant", None, T + H),),
    ),
    Run("fast refund as it opens", "refund_only", fast_refund(), ()),
    Run(
        "merchant silence: 48h exactly, then after",
        "refund_only",
        slow_refund(),
        (("advance", T + REVIEW), ("advance", T + REVIEW + S), ("advance", T + 30 * D)),
    ),
    Run(
        "rejection, resubmission, dispute, evidence, ruling",
        "refund_only",
        slow_refund("299.99"),
        (
            ("send", "reject", "merchant", {"reason": "used"}, T + H),
            ("send", "reapply", "consumer", None, T + 2 * H),
            ("send", "escalate", "consumer", None, T + 3 * H),
            (
                "send",
                "request_evidence",
                "platform",
                {"party": "merchant", "within": "24h"},
                T + 4 * H,
            ),
            ("advance", T + 4 * H + D + S),
            ("send", "rule", "platform", {"decision": "refund"}, T + 2 * D),
        ),
    ),
    Run(
        "rejection closes after its grace",
        "refund_only",
        slow_refund(),
        (("send", "reject", "merchant", {"reason": "late"}, T + H), ("advance", T + 9 * D)),
    ),
    Run(
        "an event after an unfired deadline: the deadline first",
        "return_refund",
        slow_refund(),
        (
            ("send", "escalate", "consumer", None, T + 49 * H),
            ("send", "rule", "platform", {"decision": "return"}, T + 50 * H),
            (
                "send",
                "submit_waybill",
                "consumer",
                {"waybill_no": "SF1", "carrier": "SF"},
                T + 51 * H,
            ),
            ("advance", T + 60 * D),
        ),
    ),
    Run(
        "offline offer accepted",
        "return_refund",
        slow_refund(),
        (
            ("send", "offer_offline", "merchant", {"service": "repair"}, T + H),
            ("send", "offer_offline", "merchant", {"service": "exchange"}, T + 2 * H),
            ("send", "accept_offline", "consumer", None, T + 3 * H),
        ),
    ),
    Run(
        "an update makes the fast refund apply",
        "refund_only",
        {**fast_refund(), "order": {**fast_refund()["order"], "shipped": True}},
        (("update", {"order.shipped": False, "rejection.reason": "n/a"}, T + H),),
    ),
    Run(
        "exchange or repair: eligible, then the platform steps in",
        "exchange_repair",
        {**slow_refund(), "order.after_sales_until": T + 30 * D},
        (("advance", T + 3 * D), ("send", "rule", "platform", {"decision": "arrange"}, T + 4 * D)),
    ),
    Run(
        "exchange or repair: not eligible any more",
        "exchange_repair",
        {**slow_refund(), "order.after_sales_until": T - S},
        (),
    ),
]


def _engine_step(engine: Engine, case: Case, step: Step) -> StepResult | None:
    if step[0] == "send":
        return engine.send(case, step[1], step[2], step[3], at=step[4])
    if step[0] == "update":
        return engine.update(case, step[1], at=step[2])
    if case.next_deadline is None or case.next_deadline >= step[1]:
        return None  # nothing due: a worker has nothing to fire either
    return engine.advance(case, step[1])


def _store_step(store: Store, case_id: str, step: Step) -> StepResult | None:
    if step[0] in ("send", "update"):
        if step[0] == "send":
            case, result = store.send(case_id, step[1], step[2], step[3], at=step[4])
        else:
            case, result = store.update(case_id, step[1], at=step[2])
        # the case a step returns, from its own transaction, is the case a read then gives
        assert case == store.get(case_id)
        return result
    fired = store.fire_due(now=step[1])
    assert len(fired) <= 1
    return fired[0].result if fired else None


def _result_view(result: StepResult | None) -> Any:
    if result is None:
        return None
    return (
        views(result.records),
        result.state,
        result.final,
        [effect_view(e) for e in result.effects],
        result.repeated,
    )


@pytest.mark.parametrize("run", RUNS, ids=[r.name for r in RUNS])
def test_steps_give_the_engines_results(store: Store, kuaishou: Policy, run: Run) -> None:
    engine = Engine(kuaishou)
    case = engine.open(run.workflow, run.facts, at=T, id="c1")
    _stored, opened = store.open(run.workflow, run.facts, id="c1", at=T)
    assert _result_view(opened) == _result_view(
        StepResult(tuple(case.history), case.state.name, case.final, tuple(case.effects))
    )
    assert stored_view(store, "c1") == case_view(case)
    for step in run.steps:
        assert _result_view(_store_step(store, "c1", step)) == _result_view(
            _engine_step(engine, case, step)
        )
        assert stored_view(store, "c1") == case_view(case)
        t = step[-1]
        assert store.allowed("c1", at=t) == engine.allowed(case, t)
    assert views(store.history("c1")) == views(case.history)
    assert [effect_view(e) for e in store.effects(case_id="c1")] == [
        effect_view(e) for e in case.effects
    ]
    # the history replays to the stored case (what an audit does)
    assert case_view(engine.replay(store.history("c1"), id="c1")) == stored_view(store, "c1")
    assert store.get("c1").version == 1 + sum(1 for s in run.steps if s[0] != "advance") + sum(
        1 for r in case.history if r.kind == "advance"
    )


# -- refused steps ------------------------------------------------------------------------------

Refusal = tuple[str, tuple[Step, ...], Step, str]
REFUSALS: list[Refusal] = [
    ("unknown_event", (), ("send", "nope", "consumer", None, T + H), "unknown_event"),
    (
        "event_not_allowed",
        (),
        ("send", "submit_waybill", "consumer", {"waybill_no": "1", "carrier": "SF"}, T + H),
        "event_not_allowed",
    ),
    ("actor_not_allowed", (), ("send", "approve", "consumer", None, T + H), "actor_not_allowed"),
    ("system is no actor", (), ("send", "approve", "system", None, T + H), "actor_not_allowed"),
    (
        "invalid_payload: missing field",
        (),
        ("send", "reject", "merchant", {}, T + H),
        "invalid_payload",
    ),
    (
        "invalid_payload: undeclared field",
        (),
        ("send", "reject", "merchant", {"reason": "x", "why": "y"}, T + H),
        "invalid_payload",
    ),
    (
        "invalid_payload: not in the enum",
        (("send", "escalate", "consumer", None, T + H),),
        ("send", "rule", "platform", {"decision": "maybe"}, T + 2 * H),
        "invalid_payload",
    ),
    (
        "guard_failed",
        (("send", "escalate", "consumer", None, T + H),),
        ("send", "rule", "platform", {"decision": "return"}, T + 2 * H),
        "guard_failed",
    ),
    (
        "guard_failed: not the party asked",
        (
            ("send", "escalate", "consumer", None, T + H),
            (
                "send",
                "request_evidence",
                "platform",
                {"party": "consumer", "within": "1d"},
                T + 2 * H,
            ),
        ),
        ("send", "submit_evidence", "merchant", {"note": "n"}, T + 3 * H),
        "guard_failed",
    ),
    ("invalid_fact: undeclared", (), ("update", {"order.colour": "red"}, T + H), "invalid_fact"),
    ("invalid_fact: wrong type", (), ("update", {"order.amount": "lots"}, T + H), "invalid_fact"),
    (
        "invalid_fact: removing a required fact",
        (),
        ("update", {"order.amount": None}, T + H),
        "invalid_fact",
    ),
    (
        "case_closed: send",
        (("send", "approve", "merchant", None, T + H),),
        ("send", "approve", "merchant", None, T + 2 * H),
        "case_closed",
    ),
    (
        "case_closed: update",
        (("send", "withdraw", "consumer", None, T + H),),
        ("update", {"order.shipped": False}, T + 2 * H),
        "case_closed",
    ),
    # the deadline due before the step fired inside it and closed the case: that is rolled
    # back with the refusal, so the deadline is still pending afterwards
    (
        "case_closed by an unfired deadline",
        (),
        ("send", "reject", "merchant", {"reason": "late"}, T + REVIEW + S),
        "case_closed",
    ),
    (
        "unknown_event wins over case_closed",
        (("send", "approve", "merchant", None, T + H),),
        ("send", "nope", "merchant", None, T + 2 * H),
        "unknown_event",
    ),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_refused_step_changes_nothing(store: Store, kuaishou: Policy, refusal: Refusal) -> None:
    _name, setup, step, code = refusal
    engine = Engine(kuaishou)
    case = engine.open("refund_only", slow_refund(), at=T, id="c1")
    store.open("refund_only", slow_refund(), id="c1", at=T)
    for s in setup:
        _store_step(store, "c1", s)
        _engine_step(engine, case, s)
    before = everything(store, "c1")
    with pytest.raises(StepRefused) as refused:
        _store_step(store, "c1", (*step[:-1], step[-1]) if step[0] != "send" else step)
    assert refused.value.code == code
    with pytest.raises(StepRefused) as model:
        _engine_step(engine, case, step)
    assert model.value.code == code
    assert everything(store, "c1") == before
    # with an idempotency key too: a refused step does not use its key up
    key_step = store.send if step[0] == "send" else None
    if key_step is not None:
        with pytest.raises(StepRefused):
            key_step("c1", step[1], step[2], step[3], key="k-refused", at=step[4])
        assert everything(store, "c1") == before


def test_a_refused_open_leaves_no_case(store: Store) -> None:
    facts = slow_refund()
    del facts["order"]["amount"]
    with pytest.raises(StepRefused) as refused:
        store.open("refund_only", facts, id="c1", at=T)
    assert refused.value.code == "invalid_fact"
    with pytest.raises(StepRefused):
        store.open("refund_only", {**slow_refund(), "order.colour": "red"}, id="c1", at=T)
    assert store.cases() == []
    assert store.pending() == {"deadlines": 0}
    with pytest.raises(StoreError) as unknown:
        store.open("no_such_workflow", slow_refund(), at=T)
    assert unknown.value.code == "unknown_workflow"


def test_a_refused_key_can_be_used_by_a_later_step(store: Store) -> None:
    store.open("refund_only", slow_refund(), id="c1", at=T)
    with pytest.raises(StepRefused):
        store.send("c1", "approve", "consumer", key="k1", at=T + H)
    _, result = store.send("c1", "approve", "merchant", key="k1", at=T + H)
    assert not result.repeated and result.state == "refunded"


# -- idempotency keys -------------------------------------------------------------------------


def test_the_same_key_gives_the_same_result_and_writes_nothing(store: Store) -> None:
    store.open("refund_only", slow_refund(), id="c1", at=T)
    _, first = store.send("c1", "approve", "merchant", key="k1", at=T + H)
    before = everything(store, "c1")
    _, again = store.send("c1", "approve", "merchant", key="k1", at=T + 2 * H)
    assert again.repeated and not first.repeated
    assert _result_view(again)[:4] == _result_view(first)[:4]
    # another event under a key already used is still the first step's result
    _, other = store.send("c1", "withdraw", "consumer", key="k1", at=T + 3 * H)
    assert other.repeated and views(other.records) == views(first.records)
    assert everything(store, "c1") == before
    assert [e.name for e in store.effects(case_id="c1")] == ["refund"]


def test_a_step_returns_the_case_as_it_left_it(store: Store) -> None:
    parties = {"merchant": "shop-1", "consumer": "user-1"}
    opened, _ = store.open("refund_only", slow_refund(), id="c1", parties=parties, at=T)
    case, result = store.update("c1", {"rejection.reason": "first"}, key="u1", at=T + H)
    assert case == store.get("c1") and case.version == opened.version + 1
    assert (case.state, case.facts["rejection"]) == (result.state, {"reason": "first"})
    assert (case.parties, case.opened_at, case.updated_at) == (parties, opened.opened_at, T + H)
    # a repeated key: the first step's result, and the case as it is now
    store.update("c1", {"order.shipped": False}, at=T + 2 * H)
    again, repeated = store.update("c1", {"rejection.reason": "first"}, key="u1", at=T + 3 * H)
    assert repeated.repeated and again == store.get("c1") and again.version == case.version + 1
    case, result = store.send("c1", "approve", "merchant", key="k1", at=T + 4 * H)
    assert case == store.get("c1") and (case.state, case.final) == ("refunded", True)
    assert (case.next_deadline, case.records) == (None, len(store.history("c1")))


def test_update_keys(store: Store) -> None:
    store.open("refund_only", slow_refund(), id="c1", at=T)
    _, first = store.update("c1", {"rejection.reason": "first"}, key="u1", at=T + H)
    before = everything(store, "c1")
    _, again = store.update("c1", {"rejection.reason": "second"}, key="u1", at=T + 2 * H)
    assert again.repeated and views(again.records) == views(first.records)
    assert everything(store, "c1") == before
    assert store.get("c1").facts["rejection"] == {"reason": "first"}


def test_open_with_an_id_and_a_key_twice(store: Store) -> None:
    stored, first = store.open("refund_only", slow_refund(), id="c1", key="o1", at=T)
    before = everything(store, "c1")
    again_case, again = store.open("refund_only", slow_refund("1.00"), id="c1", key="o1", at=T + H)
    assert again.repeated and views(again.records) == views(first.records)
    assert again_case == stored
    assert everything(store, "c1") == before
    for key in ("another", None):
        with pytest.raises(StoreError) as exists:
            store.open("refund_only", slow_refund(), id="c1", key=key, at=T)
        assert exists.value.code == "case_exists"
    assert everything(store, "c1") == before


# (caller, fingerprint, the service offered, what comes back: "new", "repeated" or an error code)
KEYED_SENDS: list[tuple[str | None, str | None, str, str]] = [
    ("merchant:shop-1", "f1", "repair", "new"),
    ("merchant:shop-1", "f1", "exchange", "repeated"),  # the same request: its first result
    ("merchant:shop-1", "f2", "exchange", "idempotency_key_reused"),  # another request
    ("merchant:shop-1", None, "exchange", "repeated"),  # no fingerprint matches any request
    ("merchant:shop-2", "f1", "exchange", "new"),  # another caller's same key: another key
    ("merchant:shop-2", "f1", "repair", "repeated"),
    (None, None, "repair", "new"),  # the Python API's single trusted caller
]


def test_a_key_belongs_to_its_caller_and_its_request(store: Store) -> None:
    store.open("return_refund", slow_refund(), id="c1", at=T)
    offered = None
    for i, (caller, fingerprint, service, expected) in enumerate(KEYED_SENDS):
        before = everything(store, "c1")
        request: dict[str, Any] = {"caller": caller, "fingerprint": fingerprint, "at": T + i * H}
        data = {"service": service}
        if expected in ("new", "repeated"):
            _, result = store.send("c1", "offer_offline", "merchant", data, key="k1", **request)
            assert result.repeated == (expected == "repeated"), KEYED_SENDS[i]
            offered = service if expected == "new" else offered
        else:
            with pytest.raises(StoreError) as refused:
                store.send("c1", "offer_offline", "merchant", data, key="k1", **request)
            assert refused.value.code == expected
        if expected != "new":
            assert everything(store, "c1") == before
        assert store.get("c1").facts["offer"]["service"] == offered


def test_a_keyed_open_without_an_id(store: Store) -> None:
    facts = slow_refund()
    del facts["order"]["amount"]
    with pytest.raises(StepRefused):  # refused: the key is not used up
        store.open("refund_only", facts, key="o1", caller="a", fingerprint="f", at=T)
    first, opened = store.open(
        "refund_only", slow_refund(), key="o1", caller="a", fingerprint="f", at=T
    )
    again, repeated = store.open(
        "refund_only", slow_refund(), key="o1", caller="a", fingerprint="f", at=T + H
    )
    assert (again, repeated.repeated, views(repeated.records)) == (
        first,
        True,
        views(opened.records),
    )
    with pytest.raises(StoreError) as reused:
        store.open("refund_only", slow_refund(), key="o1", caller="a", fingerprint="g", at=T)
    assert reused.value.code == "idempotency_key_reused"
    other, _ = store.open("refund_only", slow_refund(), key="o1", caller="b", at=T)
    assert len({first.id, other.id}) == 2
    assert sorted(c.id for c in store.cases()) == sorted([first.id, other.id])


def test_by_supplies_only_the_facts_the_policy_lets_that_actor_supply(store: Store) -> None:
    store.register(rulekit.load(PROVENANCE))
    order = {"order": {"amount": Decimal("120.00"), "paid_at": T - H}}
    with pytest.raises(StepRefused) as opening:
        store.open("w", order, policy="t.provenance", id="p0", by="consumer", at=T)
    assert opening.value.code == "fact_not_allowed"
    assert store.cases() == []
    store.open("w", order, policy="t.provenance", id="p1", at=T)
    before = everything(store, "p1")
    with pytest.raises(StepRefused) as updating:
        store.update("p1", {"request.reason": "mine"}, by="merchant", at=T + H)
    assert updating.value.code == "fact_not_allowed"
    assert everything(store, "p1") == before
    store.update("p1", {"request.reason": "broken"}, by="consumer", at=T + H)
    assert store.get("p1").facts["request"]["reason"] == "broken"


def test_case_not_found(store: Store) -> None:
    calls = [
        lambda: store.get("nope"),
        lambda: store.history("nope"),
        lambda: store.allowed("nope", at=T),
        lambda: store.send("nope", "approve", "merchant", at=T),
        lambda: store.update("nope", {"order.shipped": False}, at=T),
    ]
    for call in calls:
        with pytest.raises(StoreError) as missing:
            call()
        assert missing.value.code == "case_not_found"


# -- policy versions ----------------------------------------------------------------------------


def _shorter_review(kuaishou_text: str) -> Policy:
    text = kuaishou_text.replace("const REVIEW_WINDOW = 48h", "const REVIEW_WINDOW = 24h")
    assert text != kuaishou_text
    return rulekit.loads(text, filename="kuaishou_b.rk")


def test_cases_stay_pinned_to_the_version_they_opened_on(
    store: Store, backend: Backend, kuaishou: Policy
) -> None:
    b = _shorter_review(KUAISHOU.read_text(encoding="utf-8"))
    assert b.name == kuaishou.name and b.hash != kuaishou.hash
    old, _ = store.open("refund_only", slow_refund(), id="old", at=T)
    assert store.register(b) == b.hash
    new, _ = store.open("refund_only", slow_refund(), id="new", at=T)
    assert (old.policy, new.policy) == (kuaishou.hash, b.hash)
    assert (old.next_deadline, new.next_deadline) == (T + 48 * H, T + 24 * H)
    listed = {p["hash"]: p for p in store.policies()}
    assert listed[kuaishou.hash]["open_cases"] == 1 and not listed[kuaishou.hash]["current"]
    assert listed[b.hash]["open_cases"] == 1 and listed[b.hash]["current"]

    # a fresh store object (another process, a restart) reads version A back from the store
    fresh = backend.open()
    fired = fresh.fire_due(now=T + 30 * H)
    assert [(f.case_id, f.due) for f in fired] == [("new", T + 24 * H)]
    assert fresh.get("old").state == "awaiting_merchant"
    assert (
        fresh.send("old", "reject", "merchant", {"reason": "r"}, at=T + 47 * H)[1].state
        == "merchant_rejected"
    )
    assert fresh.engine(kuaishou.hash).policy.hash == kuaishou.hash
    assert fresh.get("old").policy == kuaishou.hash
    # and new cases in the fresh store pin to what it registers
    fresh.register(b)
    assert fresh.open("refund_only", slow_refund(), id="newer", at=T)[0].policy == b.hash


def test_one_store_several_policies(store: Store) -> None:
    values = rulekit.load(VALUES)
    store.register(values)
    with pytest.raises(StoreError) as which:
        store.open("refund_only", slow_refund(), at=T)
    assert which.value.code == "unknown_policy"
    a, _ = store.open("refund_only", slow_refund(), policy="kuaishou.after_sales", at=T)
    v, _ = store.open("ticket", VALUE_FACTS, policy=values.hash, at=T)
    assert (store.get(a.id).workflow, store.get(v.id).workflow) == ("refund_only", "ticket")
    with pytest.raises(StoreError) as unknown:
        store.open("ticket", VALUE_FACTS, policy="nope", at=T)
    assert unknown.value.code == "unknown_policy"


# -- reading: history pages, case listings ------------------------------------------------------


def test_history_pages(store: Store) -> None:
    store.open("refund_only", slow_refund(), id="c1", at=T)
    for i in range(4):
        store.send("c1", "reject", "merchant", {"reason": f"r{i}"}, at=T + (2 * i + 1) * H)
        store.send("c1", "reapply", "consumer", at=T + (2 * i + 2) * H)
    everything_ = store.history("c1")
    assert [r.seq for r in everything_] == list(range(9))
    pages = [
        ({}, list(range(9))),
        ({"after": 3}, [4, 5, 6, 7, 8]),
        ({"limit": 2}, [0, 1]),
        ({"after": 2, "limit": 3}, [3, 4, 5]),
        ({"after": 7, "limit": 5}, [8]),
        ({"after": 8}, []),
        ({"after": 100, "limit": 1}, []),
        ({"limit": 0}, []),
    ]
    for kwargs, seqs in pages:
        assert [r.seq for r in store.history("c1", **kwargs)] == seqs, kwargs
    # walking the pages gives the whole history
    walked, after = [], -1
    while page := store.history("c1", after=after, limit=4):
        walked += page
        after = page[-1].seq
    assert views(walked) == views(everything_)


def test_cases_by_workflow_state_and_party(store: Store) -> None:
    specs = [
        ("a1", "refund_only", slow_refund(), {"merchant": "shop-1", "consumer": "c-1"}),
        ("a2", "refund_only", fast_refund(), {"merchant": "shop-1", "consumer": "c-2"}),
        ("a3", "return_refund", slow_refund(), {"merchant": "shop-2", "consumer": "c-1"}),
        ("a4", "refund_only", slow_refund(), {"merchant": "shop-2", "consumer": "c-3"}),
        ("a5", "return_refund", slow_refund(), {}),
    ]
    for case_id, workflow, facts, parties in specs:
        store.open(workflow, facts, id=case_id, parties=parties, at=T)
    assert store.get("a1").parties == {"merchant": "shop-1", "consumer": "c-1"}

    def ids(**kwargs: Any) -> list[str]:
        return [c.id for c in store.cases(**kwargs)]

    table: list[tuple[dict[str, Any], list[str]]] = [
        ({}, ["a1", "a2", "a3", "a4", "a5"]),
        ({"workflow": "refund_only"}, ["a1", "a2", "a4"]),
        ({"workflow": "refund_only", "state": "awaiting_merchant"}, ["a1", "a4"]),
        ({"state": "refunded"}, ["a2"]),
        ({"party": ("merchant", "shop-1")}, ["a1", "a2"]),
        ({"party": ("consumer", "c-1")}, ["a1", "a3"]),
        ({"party": ("consumer", "shop-1")}, []),
        ({"party": ("merchant", "shop-2"), "workflow": "return_refund"}, ["a3"]),
        ({"limit": 2}, ["a1", "a2"]),
        ({"after": "a2", "limit": 2}, ["a3", "a4"]),
        ({"after": "a4"}, ["a5"]),
        ({"after": "a5"}, []),
        ({"workflow": "refund_only", "after": "a1", "limit": 1}, ["a2"]),
    ]
    for kwargs, expected in table:
        assert ids(**kwargs) == expected, kwargs
    assert store.count() == {
        ("refund_only", "awaiting_merchant"): 2,
        ("refund_only", "refunded"): 1,
        ("return_refund", "awaiting_merchant"): 2,
    }


# -- deadlines -------------------------------------------------------------------------------------


def test_deadlines_fire_at_their_due_time_and_only_after_it(store: Store) -> None:
    store.open("return_refund", slow_refund(), id="c1", at=T)
    assert store.pending()["deadlines"] == 1
    assert store.fire_due(now=T + REVIEW) == []  # 48h exactly: still in time
    [fired] = store.fire_due(now=T + 30 * D)
    assert (fired.case_id, fired.due) == ("c1", T + REVIEW)
    assert fired.result is not None
    # both deadlines of the chain, each at its own due time, then the worker's advance record
    assert [(r.kind, r.at, r.target) for r in fired.result.records] == [
        ("deadline", T + REVIEW, "awaiting_return"),
        ("deadline", T + REVIEW + 10 * D, "return_expired"),
        ("advance", T + 30 * D, None),
    ]
    assert store.get("c1").next_deadline is None and store.pending()["deadlines"] == 0
    assert store.fire_due(now=T + 60 * D) == []


def test_a_deadline_at_an_events_time_fires_after_the_event(store: Store) -> None:
    store.open("return_refund", slow_refund(), id="c1", at=T)
    # the merchant acts at the 48th hour exactly: in time, and the case stays in review
    store.send("c1", "offer_offline", "merchant", {"service": "repair"}, at=T + REVIEW)
    assert store.get("c1").state == "awaiting_merchant"
    # a worker at that same instant fires nothing; at the first moment after, it fires
    assert store.fire_due(now=T + REVIEW) == []
    [fired] = store.fire_due(now=T + REVIEW + timedelta(microseconds=1))
    assert fired.result is not None
    kinds = [(r.seq, r.kind, r.at) for r in store.history("c1")]
    assert kinds[1:3] == [(1, "event", T + REVIEW), (2, "deadline", T + REVIEW)]


def test_a_stale_deadline_is_a_no_op(sql_store: SqlStore) -> None:
    """SQL only: a deadline row no case waits for cannot be made in memory."""
    sql_store.open("refund_only", slow_refund(), id="c1", at=T)
    # a deadline row the case no longer waits for (left over, say, by an older release)
    with sql_store.dialect.transaction(True) as cur:
        cur.execute(
            "INSERT INTO rk_deadlines (case_id, due) VALUES (?, ?)",
            ("c1", sql_store.dialect.time_param(T + H)),
        )
    before = everything(sql_store, "c1")
    [stale] = sql_store.fire_due(now=T + 2 * H)
    assert (stale.case_id, stale.due, stale.result) == ("c1", T + H, None)
    after = everything(sql_store, "c1")
    assert after["case"] == before["case"] and after["history"] == before["history"]
    assert after["pending"]["deadlines"] == before["pending"]["deadlines"] - 1
    assert sql_store.fire_due(now=T + 2 * H) == []


def test_fire_due_honours_its_limit_in_due_order(store: Store) -> None:
    for i in range(5):
        store.open("refund_only", slow_refund(), id=f"c{i}", at=T + (4 - i) * H)
    now = T + 10 * D
    first = store.fire_due(now=now, limit=2)
    assert [f.case_id for f in first] == ["c4", "c3"]
    second = store.fire_due(now=now, limit=2)
    assert [f.case_id for f in second] == ["c2", "c1"]
    assert [f.case_id for f in store.fire_due(now=now, limit=2)] == ["c0"]
    assert store.fire_due(now=now) == []
    assert all(store.get(f"c{i}").state == "refunded" for i in range(5))


POISON = """\
policy poison version "1"
facts {
  n: int
}
actors user
event go by user
effect pay(amount: int)
workflow w {
  initial state waiting {
    on go -> done
    after 1h -> done emit pay(amount: 100 / n)
  }
  final state done
}
"""


def test_a_deadline_that_fails_is_recorded_and_holds_back_no_other(backend: Backend) -> None:
    store = backend.open(register=rulekit.loads(POISON))
    store.open("w", {"n": 0}, id="bad", at=T)  # 100 / 0 when its deadline fires
    for i in range(3):
        store.open("w", {"n": 4}, id=f"ok{i}", at=T + timedelta(minutes=i + 1))
    fired = store.fire_due(now=T + D)
    assert [(f.case_id, f.result is not None) for f in fired] == [
        ("bad", False),
        ("ok0", True),
        ("ok1", True),
        ("ok2", True),
    ]
    assert fired[0].error is not None and "division by zero" in fired[0].error
    assert store.get("bad").state == "waiting" and len(store.history("bad")) == 1
    assert [e.args for e in store.effects()] == [{"amount": 25}] * 3
    assert store.fire_due(now=T + 2 * D) == []  # the failed deadline is not claimed again
    # the case's next step meets the same error, and is refused whole
    with pytest.raises(rulekit.EvaluationError):
        store.send("bad", "go", "user", at=T + 2 * D)
    assert store.get("bad").state == "waiting"


def test_a_step_fires_what_is_due_before_it_and_the_worker_then_has_nothing(
    store: Store,
) -> None:
    store.open("return_refund", slow_refund(), id="c1", at=T)
    _, result = store.send("c1", "escalate", "consumer", at=T + 3 * D)
    assert [(r.kind, r.at, r.target) for r in result.records] == [
        ("deadline", T + REVIEW, "awaiting_return"),
        ("event", T + 3 * D, "platform_review"),
    ]
    assert store.fire_due(now=T + 30 * D) == []
    assert store.pending()["deadlines"] == 0


# -- the outbox -----------------------------------------------------------------------------------


def _refunds(store: Store, n: int) -> list[str]:
    for i in range(n):
        store.open("refund_only", fast_refund(f"{i + 1}.00"), id=f"e{i}", at=T)
    return [e.key for e in store.effects(limit=1000)]


def test_claim_ack_and_lease_expiry(store: Store) -> None:
    keys = _refunds(store, 3)
    assert keys == ["e0/1/0", "e1/1/0", "e2/1/0"]
    [first] = store.claim(limit=1, lease=timedelta(hours=1))
    assert (first.key, first.attempts, first.status, first.name) == (
        "e0/1/0",
        1,
        "pending",
        "refund",
    )
    assert (first.case_id, first.seq, first.at) == ("e0", 1, T)
    assert typed(first.args) == typed({"amount": Decimal("1.00")})
    # leased: the next claim gets the others only
    assert [e.key for e in store.claim(limit=1, lease=timedelta(0))] == ["e1/1/0"]
    assert [e.key for e in store.claim(limit=1, lease=timedelta(hours=1))] == ["e2/1/0"]
    # a lease that has run out (here: one of no length) delivers again, one attempt more
    [again] = store.claim(lease=timedelta(hours=1))
    assert (again.key, again.attempts) == ("e1/1/0", 2)
    assert store.claim() == []
    done = store.ack("e0/1/0")
    assert (done.status, done.attempts) == ("done", 1)
    assert store.ack("e0/1/0") == done  # acknowledging again changes nothing
    assert store.pending()["effects_done"] == 1
    with pytest.raises(StoreError) as missing:
        store.ack("nope")
    assert missing.value.code == "effect_not_found"


def test_fail_retries_later_then_dead_letters(store: Store) -> None:
    store.max_attempts = 2
    _refunds(store, 2)
    [e0, e1] = store.claim(lease=timedelta(hours=1))
    later = store.fail(e0.key, "timeout", retry_in=timedelta(hours=1))
    assert (later.status, later.last_error, later.attempts) == ("pending", "timeout", 1)
    assert store.claim() == []  # not before its retry time (and e1 is leased)
    now = store.fail(e1.key, "503", retry_in=timedelta(0))
    assert now.status == "pending"
    [e1_again] = store.claim(lease=timedelta(0))
    assert (e1_again.key, e1_again.attempts) == (e1.key, 2)
    # the last allowed delivery failed: a dead letter, which blocks nothing else
    dead = store.fail(e1.key, "503 again")
    assert (dead.status, dead.last_error) == ("dead", "503 again")
    assert store.effects(status="dead") == [dead]
    assert store.claim() == []
    # a fresh case's effect goes out although a dead letter sits before it
    store.open("refund_only", fast_refund("9.00"), id="e9", at=T)
    assert [e.key for e in store.claim(lease=timedelta(hours=1))] == ["e9/1/0"]
    # put back by hand: delivered again from the first attempt
    retried = store.retry_dead(e1.key)
    assert (retried.status, retried.attempts) == ("pending", 0)
    assert [(e.key, e.attempts) for e in store.claim(lease=timedelta(hours=1))] == [(e1.key, 1)]
    assert store.ack(e1.key).status == "done"
    assert store.retry_dead(e1.key).status == "done"  # only dead letters are put back


def test_an_unacknowledged_effect_dead_letters_after_its_last_lease(store: Store) -> None:
    store.max_attempts = 2
    _refunds(store, 1)
    assert [e.attempts for e in store.claim(lease=timedelta(0))] == [1]
    assert [e.attempts for e in store.claim(lease=timedelta(0))] == [2]
    assert store.claim(lease=timedelta(0)) == []
    [dead] = store.effects(status="dead")
    assert (dead.attempts, dead.last_error) == (2, "not acknowledged within its lease")


def test_a_claim_takes_only_the_names_asked_for(store: Store) -> None:
    """A relay claims only the effects it has routes for; the rest wait for another."""
    _refunds(store, 2)
    assert store.claim(names=["notify"]) == []
    assert store.claim(names=[]) == []
    assert [e.key for e in store.claim(names={"refund", "notify"}, limit=1)] == ["e0/1/0"]
    assert [e.key for e in store.claim(names=("refund",))] == ["e1/1/0"]


def test_a_refusal_for_good_dead_letters_at_once(store: Store) -> None:
    _refunds(store, 1)
    [e] = store.claim(lease=timedelta(hours=1))
    dead = store.fail(e.key, "HTTP 410 Gone", dead=True)
    assert (dead.status, dead.attempts, dead.last_error) == ("dead", 1, "HTTP 410 Gone")
    assert store.fail(e.key, "again", dead=True).last_error == "HTTP 410 Gone"  # settled


def test_a_failure_reported_after_the_effect_was_claimed_again_changes_nothing(
    store: Store,
) -> None:
    """A relay whose lease ran out reports its failure late: the delivery in flight now
    (claimed again) keeps its lease, so no third relay takes the effect meanwhile."""
    _refunds(store, 1)
    [first] = store.claim(lease=timedelta(0))
    [second] = store.claim(lease=timedelta(hours=1))
    assert (first.attempts, second.attempts) == (1, 2)
    stale = store.fail(first.key, "timeout", attempt=first.attempts)
    assert (stale.attempts, stale.last_error, stale.status) == (2, None, "pending")
    assert store.claim() == []  # still leased to the second delivery
    assert store.fail(first.key, "refused", dead=True, attempt=1).status == "pending"
    assert store.fail(second.key, "503", attempt=2).last_error == "503"


def test_an_effect_keeps_the_policy_version_that_emitted_it(store: Store) -> None:
    _refunds(store, 1)
    [e] = store.effects()
    assert e.policy == store.get("e0").policy
    assert [c.policy for c in store.claim()] == [e.policy]


# -- the schema ---------------------------------------------------------------------------------


def test_schema_versions(sql_backend: Backend) -> None:
    """SQL only: a database's schema and its migrations."""
    from rulekit.stores.migrations import latest

    with sql_backend.empty() as url:
        with pytest.raises(StoreError) as behind:
            open_store(url)
        assert behind.value.code == "schema_behind"
        assert "rulekit db upgrade" in behind.value.message
        with open_store(url, migrate=True) as migrated:
            assert migrated.dialect.migrate() == []  # type: ignore[attr-defined]
            assert migrated.dialect.schema_version() == latest(sql_backend.name)  # type: ignore[attr-defined]
        with open_store(url, migrate=True) as again:  # migrating again is a no-op
            assert again.cases() == []
            with again.dialect.transaction(True) as cur:
                cur.execute(
                    "INSERT INTO rk_schema (version, name, applied_at) VALUES (?, ?, ?)",
                    (999, "future", again.dialect.time_param(T)),
                )
        with pytest.raises(StoreError) as ahead:
            open_store(url)
        assert ahead.value.code == "schema_ahead"


def test_only_if_refuses_a_step_on_a_case_the_test_rejects_as_not_found(store: Store) -> None:
    store.open("refund_only", slow_refund(), id="c1", parties={"merchant": "shop-1"}, at=T)
    before = everything(store, "c1")

    def other_shop(parties: Mapping[str, str]) -> bool:
        return parties.get("merchant") == "shop-2"

    for step in (
        lambda: store.send("c1", "approve", "merchant", at=T + H, only_if=other_shop),
        lambda: store.update("c1", {"order.shipped": False}, at=T + H, only_if=other_shop),
    ):
        with pytest.raises(StoreError) as refused:
            step()
        assert refused.value.code == "case_not_found"
    assert everything(store, "c1") == before
    _, result = store.send(
        "c1", "approve", "merchant", at=T + H, only_if=lambda p: p["merchant"] == "shop-1"
    )
    assert result.state == "refunded"
