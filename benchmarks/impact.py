"""``python -m benchmarks.impact``: ``rulekit impact`` over many stored cases (issue 18).

A SQLite store is filled with ``--cases`` (default 100,000) cases of the Kuaishou policy
(rules/kuaishou_after_sales.rk, workflow ``refund_only``) on five timelines, one case in
five each: waiting 30h, waiting 10h, 400 yuan unshipped, rejected at 1h (all open) and
approved (closed, not assessed). NEW is the policy with the review window cut to 24h and
the fast-refund limit raised to 500 (docs/live-changes.md). Printed:

1. the time of the impact report over the store's open cases (read a page at a time,
   replayed under OLD and NEW, compared), against the baseline: reading the same cases
   and replaying them under OLD alone, the least any replay-based report costs;
2. the peak memory the report allocates (tracemalloc, separate runs, so the timing is
   not slowed by it), at a tenth of the cases and at all of them, and at all of them with
   OLD against itself: streaming keeps memory from growing with the store; what grows is
   the differing cases the report keeps (the x column is against the tenth).

Exit status: 0 when the report counts what the timelines make (every waiting-30h and
400-yuan case changes state, the rejected ones do not); 1 otherwise; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import rulekit
from benchmarks.report import exit_status, machine_facts, ratio, seconds
from rulekit.policy import Policy
from rulekit.runtime import impact
from rulekit.runtime.engine import Engine
from rulekit.stores import SqlStore, open_store
from rulekit.stores import export as ex
from rulekit.stores.base import Cursor, _record_json

POLICY = Path(__file__).resolve().parent.parent / "rules" / "kuaishou_after_sales.rk"
T = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
H = timedelta(hours=1)
NOW = T + 30 * H
BATCH = 5000


def _progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def new_version(old: Path, folder: Path) -> Path:
    text = old.read_text(encoding="utf-8")
    path = folder / "kuaishou_new.rk"
    path.write_text(
        text.replace("const REVIEW_WINDOW = 48h ", "const REVIEW_WINDOW = 24h ").replace(
            "const FAST_REFUND_LIMIT = 300 ", "const FAST_REFUND_LIMIT = 500 "
        ),
        encoding="utf-8",
    )
    return path


def _facts(amount: str, shipped: bool, opened: datetime) -> dict[str, Any]:
    return {
        "order": {"amount": Decimal(amount), "paid_at": opened - 2 * H, "shipped": shipped},
        "shop": {"fast_refund_enabled": True},
    }


def timelines(engine: Engine, digest: str, n: int) -> Iterator[ex.ExportedCase]:
    """``n`` cases on the five timelines, rebuilt as an import would write them."""
    for i in range(n):
        kind = i % 5
        opened = NOW - (10 * H if kind == 1 else 30 * H)
        amount, shipped = ("400.00", False) if kind == 2 else ("500.00", True)
        case = engine.open(
            "refund_only", _facts(amount, shipped, opened), at=opened, id=f"c{i:07d}"
        )
        if kind == 3:
            engine.send(case, "reject", "merchant", {"reason": "used"}, at=opened + H)
        elif kind == 4:
            engine.send(case, "approve", "merchant", {}, at=opened + H)
        yield ex.ExportedCase(
            {
                "id": case.id,
                "policy": digest,
                "workflow": "refund_only",
                "version": len(case.history),
                "parties": {},
                "case_time": case.now,
                "opened_at": opened,
                "updated_at": case.now,
            },
            case.history,
        )


def fill(store: SqlStore, policy: Policy, n: int) -> None:
    digest = store.register(policy)
    engine = Engine(policy)
    batch: list[ex.ExportedCase] = []

    def write(cur: Cursor) -> None:
        for c in batch:
            ex.insert(store, cur, c, _rebuilt(engine, c), [_record_json(r) for r in c.history])

    for c in timelines(engine, digest, n):
        batch.append(c)
        if len(batch) == BATCH:
            store._run(write, write=True)
            batch = []
    if batch:
        store._run(write, write=True)


def _rebuilt(engine: Engine, c: ex.ExportedCase) -> Any:
    return engine.replay(c.history, id=c.id)


def report(store: SqlStore, old: Policy, new: Policy, limit: int | None) -> impact.Report:
    found = ex.cases(store, open_only=True, policy=old.name)
    pairs = ((c.id, c.history) for c in found)
    if limit is not None:
        pairs = (p for i, p in enumerate(pairs) if i < limit)
    return impact.run(old, new, pairs, NOW)


def baseline(store: SqlStore, old: Policy) -> int:
    engine, n = Engine(old), 0
    for c in ex.cases(store, open_only=True, policy=old.name):
        engine.replay(c.history, id=c.id)
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument("--quick", action="store_true", help="5,000 cases")
    args = p.parse_args(argv)
    n = 5000 if args.quick else args.cases
    if n < 10:
        p.error("--cases: at least 10")
    old = rulekit.load(POLICY)
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        new = rulekit.load(new_version(POLICY, Path(tmp)))
        with open_store(str(Path(tmp) / "cases.db"), migrate=True) as store:
            _progress(f"filling a SQLite store with {n:,} cases")
            started = time.perf_counter()
            fill(store, old, n)
            _progress(f"filled in {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            opened = baseline(store, old)
            base = time.perf_counter() - started
            _progress(f"baseline: {base:.1f} s")
            started = time.perf_counter()
            r = report(store, old, new, None)
            took = time.perf_counter() - started
            _progress(f"impact: {took:.1f} s")
            peaks = []
            # the last: OLD against itself, nothing differs, nothing is kept: what streaming costs
            for limit, against in ((opened // 10, new), (None, new), (None, old)):
                tracemalloc.start()
                report(store, old, against, limit)
                peaks.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
    expected_state = 2 * (n // 5) + sum(1 for i in range(n - n % 5, n) if i % 5 in (0, 2))
    if r.assessed != opened or r.state != expected_state:
        problems.append(
            f"assessed {r.assessed} of {opened}, {r.state} change state (expected {expected_state})"
        )
    print(f"rulekit impact over {n:,} stored cases ({opened:,} open), SQLite; {machine_facts()}")
    print()
    rows = [
        ("figure", "value", "x (baseline)"),
        ("baseline: read + replay under OLD", seconds(base), "1.00x"),
        ("impact: read + replay OLD and NEW + compare", seconds(took), ratio(took / base)),
        ("impact per open case", seconds(took / opened), ""),
        (f"peak memory, {opened // 10:,} cases", f"{peaks[0] / 2**20:.1f} MiB", ""),
        (
            f"peak memory, {opened:,} cases",
            f"{peaks[1] / 2**20:.1f} MiB",
            ratio(peaks[1] / peaks[0]),
        ),
        (
            f"peak memory, {opened:,} cases, none differ",
            f"{peaks[2] / 2**20:.1f} MiB",
            ratio(peaks[2] / peaks[0]),
        ),
        ("cases that differ (kept by the report)", f"{len(r.cases):,}", ""),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(
            f"{row[0].ljust(widths[0])}  {row[1].rjust(widths[1])}  {row[2].rjust(widths[2])}".rstrip()
        )
    return exit_status(problems)


if __name__ == "__main__":
    sys.exit(main())
