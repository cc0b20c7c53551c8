"""The fast-refund workload: the condition, its declarations and seeded records.

Every engine starts from the same plain Python records (``Decimal`` money,
aware ``datetime`` times, ``bool`` flags) and the same fixed ``NOW``; the wall
clock is never read, so two runs with one seed evaluate identical data.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

#: A record as a caller hands it to rulekit: nested plain dicts.
Record = dict[str, Any]

#: The fixed "current time" of every evaluation (never the wall clock).
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

FAST_REFUND = (
    "shop.fast_refund_enabled and since(order.paid_at) <= 6h"
    " and order.amount < 300 and not order.shipped"
)
FAST_REFUND_DECLARATIONS = {
    "shop.fast_refund_enabled": "bool",
    "order.paid_at": "time",
    "order.amount": "money",
    "order.shipped": "bool",
}

DEFAULT_SEED = 20260301

_SIX_HOURS_MS = 6 * 3600 * 1000
_TWELVE_HOURS_MS = 12 * 3600 * 1000
# Some payments carry the shop's local offset instead of UTC: every engine
# must compare instants, not wall-clock readings.
_SHOP_ZONE = timezone(timedelta(hours=8))


def _amount(rng: random.Random) -> Decimal:
    """Two-decimal amounts: mostly 0.01..600.00, plus 300.00 and its neighbours."""
    roll = rng.random()
    if roll < 0.02:
        cents = 30000  # exactly 300.00: not < 300
    elif roll < 0.04:
        cents = rng.choice((29999, 30001))
    else:
        cents = rng.randint(1, 60000)
    return Decimal(cents).scaleb(-2)


def _paid_at(rng: random.Random) -> datetime:
    """Within the last 12 hours at millisecond resolution, with the 6h edge well covered."""
    roll = rng.random()
    if roll < 0.02:
        ago_ms = _SIX_HOURS_MS  # exactly 6h: since() <= 6h holds
    elif roll < 0.04:
        ago_ms = _SIX_HOURS_MS + rng.choice((-1000, -1, 1, 1000))
    else:
        ago_ms = rng.randint(0, _TWELVE_HOURS_MS)
    paid = NOW - timedelta(milliseconds=ago_ms)
    return paid.astimezone(_SHOP_ZONE) if rng.random() < 0.1 else paid


def make_records(n: int, seed: int = DEFAULT_SEED) -> list[Record]:
    """``n`` fast-refund records from ``random.Random(seed)``.

    About 80% of shops enable fast refunds and 30% of orders have shipped, so
    the condition short-circuits at different clauses across the records and
    roughly one in seven is true.
    """
    rng = random.Random(seed)
    records: list[Record] = []
    for _ in range(n):
        records.append(
            {
                "shop": {"fast_refund_enabled": rng.random() < 0.8},
                "order": {
                    "amount": _amount(rng),
                    "paid_at": _paid_at(rng),
                    "shipped": rng.random() < 0.3,
                },
            }
        )
    return records


def describe(records: list[Record]) -> str:
    """A one-line profile of the records (so the reader sees the mix)."""
    n = len(records) or 1
    enabled = sum(r["shop"]["fast_refund_enabled"] for r in records)
    shipped = sum(r["order"]["shipped"] for r in records)
    below = sum(r["order"]["amount"] < 300 for r in records)
    exact = sum(r["order"]["amount"] == 300 for r in records)
    recent = sum(NOW - r["order"]["paid_at"] <= timedelta(hours=6) for r in records)
    return (
        f"enabled {enabled / n:.0%}, shipped {shipped / n:.0%}, amount < 300 {below / n:.0%}"
        f" (== 300.00: {exact}), paid <= 6h ago {recent / n:.0%}"
    )
