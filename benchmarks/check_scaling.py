"""``python -m benchmarks.check_scaling``: how long ``rulekit check`` takes on big policies.

Generates policies of 100, 1,000 and 10,000 states (5 transitions per state,
all four kinds, guards, effects and assignments) and times parsing and
checking them (``rulekit.analysis.check_source``, what ``rulekit check`` runs
per file). Prints one table: time per policy, time per transition, and that
per-transition time as a ratio of the smallest policy's, measured in the same
run: near 1.0x all the way down means checking grows linearly.
Target (printed, never asserted): 1,000 states and 5,000 transitions in under 1 s.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time

from rulekit.analysis import check_source

TARGET_STATES, TARGET_SECONDS = 1000, 1.0


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


def measure(text: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = check_source(text, "rk", "generated.rk")
        best = min(best, time.perf_counter() - start)
        if not result.ok:
            raise SystemExit(f"the generated policy does not check:\n{result.render()}")
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check_scaling", description=__doc__)
    parser.add_argument(
        "--sizes", default="100,1000,10000", help="numbers of states (comma-separated)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="best of this many runs (1 for the largest)"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print("rulekit check: time to parse and check generated policies")
    print(f"machine: python {platform.python_version()}, {platform.platform()}")
    check_source(generate(10), "rk", "warmup.rk")  # grammar construction is not part of the figures
    rows = []
    for states in sizes:
        text = generate(states)
        seconds = measure(text, 1 if states == max(sizes) and len(sizes) > 1 else args.repeats)
        rows.append((states, states * 5, text.count("\n"), seconds))
    base = rows[0][3] / rows[0][1]
    print()
    print(
        f"{'states':>8} {'transitions':>12} {'lines':>8} {'seconds':>9} {'µs/transition':>14} {'x smallest':>11}"
    )
    for states, transitions, lines, seconds in rows:
        per = seconds / transitions
        print(
            f"{states:>8,} {transitions:>12,} {lines:>8,} {seconds:>9.3f} {per * 1e6:>14.1f} {per / base:>10.2f}x"
        )
    for states, _, _, seconds in rows:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
