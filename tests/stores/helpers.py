"""Typed helpers shared by the store tests: fixed times, the policies, comparable views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from rulekit.runtime import Store
from rulekit.runtime.model import Case, Effect, Record
from rulekit.stores import OutboxEffect
from support import ROOT, TESTS

KUAISHOU = ROOT / "rules" / "kuaishou_after_sales.rk"
VALUES = TESTS / "policies" / "store_values.rk"
PROVENANCE = TESTS / "policies" / "provenance.rk"
WORKER = Path(__file__).resolve().parent / "worker.py"

CST = timezone(timedelta(hours=8))
#: every test runs on explicit times, well before any database clock (so effects are
#: available at once and a step without at= never goes back in time)
T = datetime(2021, 3, 1, 12, 0, tzinfo=CST)
S = timedelta(seconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)
REVIEW = 48 * H  # kuaishou's REVIEW_WINDOW


def slow_refund(amount: str = "500.00") -> dict[str, Any]:
    """Kuaishou facts no fast refund applies to: the merchant reviews, 48h at most."""
    return {
        "order": {"amount": Decimal(amount), "paid_at": T - 3 * H, "shipped": True},
        "shop": {"fast_refund_enabled": True},
    }


def fast_refund(amount: str = "128.00") -> dict[str, Any]:
    """Kuaishou facts a fast refund applies to as the case opens."""
    return {
        "order": {"amount": Decimal(amount), "paid_at": T - 2 * H, "shipped": False},
        "shop": {"fast_refund_enabled": True},
    }


def typed(value: Any) -> Any:
    """A value with its exact type spelled out, so ``==`` compares types too (and money's digits)."""
    if isinstance(value, Mapping):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [typed(v) for v in value]
    if isinstance(value, Decimal):
        return ("money", str(value))
    if isinstance(value, datetime):
        return ("time", value.isoformat())
    return (type(value).__name__, value)


def record_view(r: Record) -> dict[str, Any]:
    """What a store must keep of a record, typed."""
    return typed(
        {
            "seq": r.seq,
            "at": r.at,
            "kind": r.kind,
            "source": r.source,
            "target": r.target,
            "event": r.event,
            "actor": r.actor,
            "data": dict(r.data) if r.data is not None else None,
            "key": r.key,
            "cite": r.cite,
            "guard": r.cause.guard if r.cause is not None else None,
            "effects": [effect_view(e) for e in r.effects],
            "workflow": r.workflow,
            "sets": [list(s) for s in r.sets],
        }
    )


def effect_view(e: Effect | OutboxEffect) -> dict[str, Any]:
    """An effect, typed; its time as an instant (the outbox keeps times in UTC)."""
    return {"name": e.name, "args": typed(dict(e.args)), "at": e.at, "seq": e.seq}


def case_view(case: Case) -> dict[str, Any]:
    """The in-memory case as :func:`stored_view` shows a stored one."""
    return {
        "state": case.state.name,
        "final": case.final,
        "outcome": case.outcome,
        "facts": typed(case.facts),
        "next_deadline": case.next_deadline,
        "records": case.base + len(case.history),
    }


def stored_view(store: Store, case_id: str) -> dict[str, Any]:
    c = store.get(case_id)
    return {
        "state": c.state,
        "final": c.final,
        "outcome": c.outcome,
        "facts": typed(c.facts),
        "next_deadline": c.next_deadline,
        "records": c.records,
    }


def everything(store: Store, case_id: str) -> dict[str, Any]:
    """All a store holds of one case: what a refused step must leave exactly as it was."""
    c = store.get(case_id)
    return {
        "case": c,
        "typed_facts": typed(c.facts),
        "history": [record_view(r) for r in store.history(case_id)],
        "outbox": [
            (e.key, e.status, e.attempts, effect_view(e))
            for e in store.effects(case_id=case_id, limit=10_000)
        ],
        "pending": store.pending(),
    }


def views(records: Sequence[Record]) -> list[dict[str, Any]]:
    return [record_view(r) for r in records]
