"""``./dev demo``: rulekit's main job on the shipped policy, start to finish.

Checks the rule files, shows the fast-refund condition explained, then opens a
case of each Kuaishou after-sales workflow with a simulated clock, moves time,
and prints each case's timeline with the cause and citation of every
transition. Time is always given: the engine never reads the wall clock.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from rulekit import Engine, load
from rulekit.policy import FORMATS, check_source
from rulekit.runtime import Case
from rulekit.runtime.timeline import render

SHANGHAI = timezone(timedelta(hours=8))
START = datetime(2026, 3, 1, 12, 0, tzinfo=SHANGHAI)
POLICY = Path("rules/kuaishou_after_sales.rk")


def _facts(
    amount: str, paid_hours_ago: float, shipped: bool, fast_refund: bool = True, **extra: Any
) -> dict[str, Any]:
    order = {
        "amount": Decimal(amount),
        "paid_at": START - timedelta(hours=paid_hours_ago),
        "shipped": shipped,
    }
    order.update(extra)
    return {"order": order, "shop": {"fast_refund_enabled": fast_refund}}


def _show(title: str, case: Case) -> None:
    print(f"\n== {title}")
    print("   " + render(case.history, SHANGHAI).replace("\n", "\n   "))
    effects = ", ".join(
        f"{e.name}({', '.join(f'{k}: {v}' for k, v in e.args.items())})" for e in case.effects
    )
    outcome = f"closed, outcome {case.outcome}" if case.final else f"open, in `{case.state.name}`"
    print(f"   => {outcome}; effects: {effects or 'none'}")


def main(argv: list[str] | None = None) -> int:
    path = Path((argv or sys.argv[1:] or [str(POLICY)])[0])
    print(f"rulekit check {path.parent}/")
    for rule_file in sorted(p for p in path.parent.iterdir() if p.suffix in FORMATS):
        result = check_source(
            rule_file.read_text(encoding="utf-8"), FORMATS[rule_file.suffix], str(rule_file)
        )
        errors = sum(d.severity == "error" for d in result.diagnostics)
        print(f"  {rule_file}: {'ok' if result.ok else f'{errors} errors'}")
        if not result.ok:
            print(result.render())
            return 1
    policy = load(path)
    guard = policy.workflows["refund_only"].states["awaiting_merchant"].automatic[0].guard
    assert guard is not None
    print(
        f"\nThe fast-refund condition (clause 5), explained for a 412.50 yuan order paid 2h ago:\n  {guard.text}"
    )
    variables = _facts("412.50", 2, False)
    for line in str(guard.compiled.explain(variables, now=START)).splitlines():
        print(f"    {line}")

    engine = Engine(policy)
    case = engine.open("refund_only", _facts("128.00", 2, False), at=START)
    _show(
        "refund only: a small unshipped order paid 2h ago is refunded at once (fast refund)", case
    )

    case = engine.open("refund_only", _facts("500.00", 30, True), at=START)
    engine.advance(case, START + timedelta(hours=48))
    engine.advance(case, START + timedelta(hours=48, seconds=1))
    _show("refund only: the merchant stays silent; 48h later the system refunds", case)

    case = engine.open("return_refund", _facts("899.00", 50, True), at=START)
    engine.send(case, "approve", "merchant", at=START + timedelta(hours=3))
    engine.send(
        case,
        "submit_waybill",
        "consumer",
        {"waybill_no": "SF1234567890", "carrier": "SF Express"},
        at=START + timedelta(days=2),
    )
    engine.advance(case, START + timedelta(days=12, seconds=1))
    _show("return and refund: approved, goods shipped back, receipt never confirmed", case)

    case = engine.open("return_refund", _facts("899.00", 50, True), at=START)
    engine.send(case, "reject", "merchant", {"reason": "used goods"}, at=START + timedelta(hours=5))
    engine.send(case, "escalate", "consumer", at=START + timedelta(hours=8))
    engine.send(
        case,
        "request_evidence",
        "platform",
        {"party": "consumer", "within": "24h"},
        at=START + timedelta(days=1),
    )
    engine.send(
        case,
        "submit_evidence",
        "consumer",
        {"note": "photos of the unopened box"},
        at=START + timedelta(days=1, hours=3),
    )
    engine.send(case, "rule", "platform", {"decision": "return"}, at=START + timedelta(days=2))
    _show(
        "a dispute: rejected, escalated, evidence asked and given, the platform rules 'return'",
        case,
    )

    case = engine.open(
        "exchange_repair",
        _facts("2399.00", 400, True, after_sales_until="2026-02-20T00:00:00+08:00"),
        at=START,
    )
    _show("exchange/repair after the validity period", case)
    print(
        f"\nEach case is replayable from its history: {len(case.history)} record(s) here rebuild the same case."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
