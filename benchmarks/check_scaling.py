"""``python -m benchmarks.check_scaling``: how long ``rulekit check`` takes, on big
policies and from a cold start.

Generates policies of 100, 1,000 and 10,000 states (5 transitions per state,
all four kinds, guards, effects and assignments) and times parsing, checking and
linting them (``rulekit.analysis.check_source``, what ``rulekit check`` runs per
file), each run in alternation with its baseline: Lark alone parsing the same text
with the same grammar into its own parse tree (Lark's contextual lexer, no rulekit
callbacks), the floor of any parser built on Lark. Prints one table: the median
time per policy, time per transition, that per-transition time as a ratio of the
smallest policy's (near 1.0x all the way down means checking grows linearly), and
the time as a ratio of the baseline's.

Then the cold start: ``rulekit check`` on the shipped policy in a new process,
alternating with a bare ``python -c pass`` (the interpreter's own start), median
wall-clock times, with Python's bytecode cache in use as in an installed package
(``PYTHONDONTWRITEBYTECODE`` is dropped for these runs, and each command runs once
first). The figures printed, never asserted: 1,000 states and 5,000 transitions
in under 1 s, and a cold start within 0.15 s.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lark

from rulekit.analysis import check_source
from rulekit.core.grammars import grammar_text

TARGET_STATES, TARGET_SECONDS = 1000, 1.0
COLD_TARGET_SECONDS = 0.15
SHIPPED = Path(__file__).resolve().parent.parent / "rules" / "kuaishou_after_sales.rk"


def generate(states: int, per_state: int = 5, seed: int = 1) -> str:
    """A valid policy of ``states`` states with ``per_state`` transitions each."""
    r = random.Random(seed)
    lines = [
        'policy bench.generated version "1"',
        "facts {",
        "  order.amount: money",
        "  order.paid_at: time",
        "  order.shipped: bool",
        "  count: int",
        "}",
        "actors consumer, merchant",
        "event approve by merchant",
        "event reject(reason: string) by merchant",
        "event poke by consumer",
        "effect refund(amount: money)",
        "workflow w {",
    ]
    for i in range(states):
        lines.append(f"  {'initial ' if i == 0 else ''}state s{i} {{")
        for j in range(per_state):
            n = r.randrange(states + 1)
            target = f"s{n}" if n < states else "done"
            lines.append(
                [
                    f"    on approve when order.amount < {r.randint(1, 999)} -> {target} emit refund(amount: order.amount)",
                    f"    on reject when size(event.reason) > {j} -> {target}",
                    f'    after {r.randint(1, 99)}h -> {target} cite "clause {j}"',
                    f"    when count == {r.randint(0, 10**6)} and not order.shipped -> {target} set count = count + 1",
                    f"    on poke by consumer when since(order.paid_at) <= {r.randint(1, 48)}h -> {target}",
                ][j % 5]
            )
        lines.append("  }")
    lines += ["  final state done", "}"]
    return "\n".join(lines) + "\n"


def _timed(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(text: str, repeats: int, bare: lark.Lark) -> tuple[float, float]:
    """Median seconds of checking ``text`` and of Lark alone parsing it, in alternation."""
    checks, parses = [], []

    def check() -> None:
        result = check_source(text, "rk", "generated.rk")
        if not result.ok:
            raise SystemExit(f"the generated policy does not check:\n{result.render()}")

    for _ in range(repeats):
        parses.append(_timed(lambda: bare.parse(text)))
        checks.append(_timed(check))
    return statistics.median(checks), statistics.median(parses)


def cold_start(runs: int) -> tuple[float, float]:
    """Median wall-clock seconds of ``rulekit check`` on the shipped policy in a new process,
    and of ``python -c pass``, run in alternation."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    check = [sys.executable, "-m", "rulekit.cli", "check", str(SHIPPED)]
    bare = [sys.executable, "-c", "pass"]

    def run(argv: list[str]) -> float:
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
        return elapsed

    run(check)  # writes the bytecode cache and the parser cache, as a first start does
    run(bare)
    checks, bares = [], []
    for _ in range(runs):
        checks.append(run(check))
        bares.append(run(bare))
    return statistics.median(checks), statistics.median(bares)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check_scaling", description=__doc__)
    parser.add_argument(
        "--sizes", default="100,1000,10000", help="numbers of states (comma-separated)"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="the median of this many runs (3 for the largest)"
    )
    parser.add_argument(
        "--cold-runs", type=int, default=11, help="the median of this many cold starts"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print("rulekit check: time to parse, check and lint generated policies, and a cold start")
    print(f"machine: python {platform.python_version()}, {platform.platform()}")
    check_source(generate(10), "rk", "warmup.rk")  # grammar construction is not part of the figures
    rules = grammar_text("rules.lark") + "\n" + grammar_text("cel.lark")
    bare = lark.Lark(rules, parser="lalr", lexer="contextual", start="policy")
    rows = []
    for states in sizes:
        text = generate(states)
        repeats = min(args.repeats, 3) if states == max(sizes) and len(sizes) > 1 else args.repeats
        seconds, lark_seconds = measure(text, repeats, bare)
        rows.append((states, states * 5, text.count("\n"), seconds, lark_seconds))
    base = rows[0][3] / rows[0][1]
    print()
    print(
        f"{'states':>8} {'transitions':>12} {'lines':>8} {'seconds':>9} {'µs/transition':>14}"
        f" {'x smallest':>11} {'Lark alone':>11} {'x Lark':>7}"
    )
    for states, transitions, lines, seconds, lark_seconds in rows:
        per = seconds / transitions
        print(
            f"{states:>8,} {transitions:>12,} {lines:>8,} {seconds:>9.3f} {per * 1e6:>14.1f}"
            f" {per / base:>10.2f}x {lark_seconds:>11.3f} {seconds / lark_seconds:>6.2f}x"
        )
    for states, _, _, seconds, _ in rows:
        if states == TARGET_STATES:
            verdict = "met" if seconds < TARGET_SECONDS else "MISSED"
            print(
                f"\ntarget: {TARGET_STATES:,} states / {TARGET_STATES * 5:,} transitions in < {TARGET_SECONDS:.0f} s:"
                f" {verdict} ({seconds:.2f} s)"
            )
    growth = (rows[-1][3] / rows[-1][1]) / base
    print(
        f"growth: per-transition time at {rows[-1][0]:,} states is {growth:.2f}x that at {rows[0][0]:,}"
        f" ({'near linear' if growth < 2 else 'SUPERLINEAR'})"
    )
    if args.cold_runs > 0:
        check, python = cold_start(args.cold_runs)
        verdict = "met" if check <= COLD_TARGET_SECONDS else "MISSED"
        print(
            f"\ncold start: `rulekit check {SHIPPED.name}` {check * 1e3:.0f} ms,"
            f" `python -c pass` {python * 1e3:.0f} ms ({check / python:.1f}x; medians of"
            f" {args.cold_runs}, alternating)"
        )
        print(
            f"target: cold start within {COLD_TARGET_SECONDS * 1e3:.0f} ms: {verdict}"
            f" ({check * 1e3:.0f} ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
