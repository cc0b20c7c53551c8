"""``./dev demo``: rulekit's main job on the shipped example, start to finish.

Checks and compiles the fast-refund condition of the Kuaishou after-sales
policy, evaluates it for a few orders at a fixed time (time is always given,
never read from the clock), and shows what authors see for a broken condition.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from rulekit import CompileError, compile_expression

FAST_REFUND = (
    "shop.fast_refund_enabled and since(order.paid_at) <= 6h "
    "and order.amount < 300 and not order.shipped"
)
DECLARATIONS = {
    "shop.fast_refund_enabled": "bool",
    "order.paid_at": "time",
    "order.amount": "money",
    "order.shipped": "bool",
}
SHANGHAI = timezone(timedelta(hours=8))
NOW = datetime(2026, 3, 1, 16, 0, tzinfo=SHANGHAI)


def _order(
    amount: str, paid_hours_ago: float, shipped: bool, enabled: bool = True
) -> dict[str, object]:
    return {
        "shop": {"fast_refund_enabled": enabled},
        "order": {
            "amount": Decimal(amount),
            "paid_at": NOW - timedelta(hours=paid_hours_ago),
            "shipped": shipped,
        },
    }


def main() -> int:
    condition = compile_expression(FAST_REFUND, DECLARATIONS)
    print(f"condition: {FAST_REFUND}")
    print(f"checked against {len(DECLARATIONS)} declared facts; result type: {condition.type}")
    print(f"now = {NOW.isoformat()}\n")
    cases = [
        ("small unshipped order paid 2h ago", _order("128.00", 2, False)),
        ("paid exactly 6h ago (6h is inclusive)", _order("128.00", 6, False)),
        ("amount 300.00 (must be under 300)", _order("300.00", 1, False)),
        ("already shipped", _order("99.90", 1, True)),
    ]
    for title, variables in cases:
        print(f"- {title}")
        for line in str(condition.explain(variables, now=NOW)).splitlines():
            print(f"    {line}")
    broken = 'shop.fast_refund_enabled and order.amount < "300" and order.shiped = false'
    print(f"\nA broken condition: {broken}")
    try:
        compile_expression(broken, DECLARATIONS)
    except CompileError as e:
        print(e.rendered)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
