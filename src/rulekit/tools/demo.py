"""``rulekit demo`` (``./dev demo``): rulekit's main job on the shipped policy, start to finish.

Checks the rule files, shows the fast-refund condition explained, then runs a
case of each Kuaishou after-sales workflow durably, in the embedded store (a
SQLite file, no server to install): events are sent, a deadline worker fires
what falls due, and each case's timeline is read back from the store with the
cause and citation of every transition. Then the relay delivers the outbox's
effects (refunds) to a local webhook that verifies their signatures, and to NATS
JetStream when a server is reachable (:mod:`.relay_demo`). Times are given explicitly so the story is the same on
every run; a service uses the database's clock.

The example policy ships in the wheel (``rulekit/rules/``), so ``rulekit demo``
runs from an installed copy as well as from a checkout.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from rulekit.analysis import check_source
from rulekit.core.grammars import shipped_dir
from rulekit.core.source import read_text
from rulekit.policy import FORMATS, load
from rulekit.runtime.timeline import render
from rulekit.stores import SqlStore, open_store
from rulekit.tools import relay_demo

SHANGHAI = timezone(timedelta(hours=8))
START = datetime(2026, 3, 1, 12, 0, tzinfo=SHANGHAI)
POLICY_FILE = "kuaishou_after_sales.rk"


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


def _show(title: str, store: SqlStore, case_id: str) -> None:
    print(f"\n== {title}")
    print("   " + render(store.history(case_id), SHANGHAI).replace("\n", "\n   "))
    effects = ", ".join(
        f"{e.name}({', '.join(f'{k}: {v}' for k, v in e.args.items())})"
        for e in store.effects(case_id=case_id)
    )
    case = store.get(case_id)
    outcome = f"closed, outcome {case.outcome}" if case.final else f"open, in `{case.state}`"
    print(f"   => {outcome}; effects in the outbox: {effects or 'none'}")


def _shipped_policy() -> Path:
    """The example policy: ``rules/`` of the checkout, or the copy in the installed package."""
    path = shipped_dir("rules", POLICY_FILE) / POLICY_FILE
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def path_hint(rules: Path) -> str:
    """How to run `rulekit` next (on the folder ``rules``): it may be installed where the
    shell does not look, as `./dev` installs it in .venv."""
    on_path = shutil.which("rulekit")
    scripts = Path(sys.executable).absolute().parent
    if on_path is not None and Path(on_path).absolute().parent == scripts:
        return f"Next: `rulekit check {rules}/`, and the other commands in README.md."
    return (
        f"Next: the `rulekit` command is installed in {scripts}, which is not on your PATH.\n"
        f"  activate the environment:  . {scripts / 'activate'}  (then: rulekit check {rules}/)\n"
        f"  or call it by its path:    {scripts / 'rulekit'} check {rules}/\n"
        "  or, from the repository, install it for your user: pipx install ."
    )


def main(argv: Sequence[str] | None = None) -> int:
    path = Path(argv[0]) if argv else _shipped_policy()
    print(f"rulekit check {path.parent}/")
    for rule_file in sorted(p for p in path.parent.iterdir() if p.suffix in FORMATS):
        result = check_source(read_text(rule_file), FORMATS[rule_file.suffix], str(rule_file))
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

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "rulekit.db"
        with open_store(db, migrate=True) as store:
            print(f"\nCases run in the embedded store: {db} (SQLite, WAL, synchronous=FULL)")
            store.register(policy)
            _run(store)
    print("\n" + path_hint(path.parent))
    return 0


def _run(store: SqlStore) -> None:
    t = START

    def at(**delta: float) -> datetime:
        return t + timedelta(**delta)

    case, _ = store.open("refund_only", _facts("128.00", 2, False), id="fast-refund", at=t)
    _show(
        "refund only: a small unshipped order paid 2h ago is refunded at once (fast refund)",
        store,
        case.id,
    )

    case, _ = store.open("refund_only", _facts("500.00", 30, True), id="silent-merchant", at=t)
    # The deadline worker: what falls due is fired at its due time, however late it runs.
    store.fire_due(now=at(hours=48))
    fired = store.fire_due(now=at(hours=49))
    print(f"\n(the deadline worker, an hour after 48h: fired {len(fired)} deadline(s))")
    _show("refund only: the merchant stays silent; 48h later the system refunds", store, case.id)

    case, _ = store.open("return_refund", _facts("899.00", 50, True), id="return", at=t)
    store.send(case.id, "approve", "merchant", at=at(hours=3))
    # A retried request with the same idempotency key changes nothing the second time.
    waybill = {"waybill_no": "SF1234567890", "carrier": "SF Express"}
    store.send(case.id, "submit_waybill", "consumer", waybill, key="waybill-1", at=at(days=2))
    _, again = store.send(
        case.id, "submit_waybill", "consumer", waybill, key="waybill-1", at=at(days=2)
    )
    store.fire_due(now=at(days=12, seconds=1))
    _show(
        "return and refund: approved, goods shipped back, receipt never confirmed "
        f"(the waybill sent twice with one key: the second {'repeated' if again.repeated else 'APPLIED'})",
        store,
        case.id,
    )

    case, _ = store.open("return_refund", _facts("899.00", 50, True), id="dispute", at=t)
    store.send(case.id, "reject", "merchant", {"reason": "used goods"}, at=at(hours=5))
    store.send(case.id, "escalate", "consumer", at=at(hours=8))
    evidence = {"party": "consumer", "within": "24h"}
    store.send(case.id, "request_evidence", "platform", evidence, at=at(days=1))
    note = {"note": "photos of the unopened box"}
    store.send(case.id, "submit_evidence", "consumer", note, at=at(days=1, hours=3))
    store.send(case.id, "rule", "platform", {"decision": "return"}, at=at(days=2))
    _show(
        "a dispute: rejected, escalated, evidence asked and given, the platform rules 'return'",
        store,
        case.id,
    )

    late = _facts("2399.00", 400, True, after_sales_until="2026-02-20T00:00:00+08:00")
    case, _ = store.open("exchange_repair", late, id="exchange", at=t)
    _show("exchange/repair after the validity period", store, case.id)

    # The outbox: each step wrote its effects with the step; the relay delivers them.
    pending = store.effects(status="pending")
    print(
        f"\nThe outbox holds {len(pending)} effect(s), written with the steps that emitted them, "
        f"each with a stable key to deduplicate on ({', '.join(e.key for e in pending)})."
    )
    print(
        "Each case is pinned to the policy version it started on and replayable from its history."
    )
    relay_demo.main(store, "broker-refund", t, _facts("86.00", 1, False))
