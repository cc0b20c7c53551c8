"""``python -m benchmarks``: run the benchmark and print the table (see benchmarks/README.md).

Exit status: 0 when every engine agrees with the baseline and every generated
condition compiles (targets are printed, never asserted); 1 otherwise; 2 for
bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.compile_many import CompileMany, compile_many
from benchmarks.engines import Engine, Missing, Runner, all_engines
from benchmarks.measure import Passes, best_call_time, time_passes
from benchmarks.report import Row, load, machine_facts, rate, ratio, render_table, seconds
from benchmarks.workload import (
    DEFAULT_SEED,
    FAST_REFUND,
    NOW,
    Record,
    describe,
    make_records,
)

COMPILE_TARGET_SECONDS = 0.2
_SHOWN_MISMATCHES = 5


@dataclass
class Measured:
    engine: Engine
    compile_seconds: float = 0.0
    #: The baseline's compile time measured right before this engine's.
    baseline_compile_seconds: float = 0.0
    passes: Passes | None = None
    #: Indices of records where the engine's answer differs from the baseline's.
    mismatches: list[int] = field(default_factory=list)
    error: str | None = None


def _progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _measure(
    engine: Engine,
    baseline: tuple[Engine, Runner] | None,
    records: Sequence[Record],
    args: argparse.Namespace,
) -> Measured:
    """Compile time and passes of ``engine``, each alternated with the baseline's."""
    m = Measured(engine)
    try:
        if baseline is not None:
            base = baseline[0]
            m.baseline_compile_seconds = best_call_time(
                lambda: base.compile(base.source), args.reps
            )
        m.compile_seconds = best_call_time(lambda: engine.compile(engine.source), args.reps)
        run = engine.runner(engine.compile(engine.source))
        m.passes = time_passes(
            run,
            baseline[1] if baseline is not None else None,
            records,
            NOW,
            reps=args.reps,
            budget=args.budget,
            min_time=args.min_time,
        )
    except Exception as e:  # a peer's failure is a row, not a crash
        m.error = f"{type(e).__name__}: {e}".splitlines()[0][:70]
        traceback.print_exc(file=sys.stderr)
    return m


def _check(m: Measured, expected: list[Any]) -> None:
    assert m.passes is not None
    normalize = m.engine.normalize
    m.mismatches = [
        i
        for i, (got, want) in enumerate(zip(m.passes.outputs, expected, strict=True))
        if normalize(got) is not want
    ]


def _baseline_row(base: Measured, others: Sequence[Measured], n: int) -> Row:
    """(a)'s row: its best compile and pass over the whole run (it ran beside every engine)."""
    assert base.passes is not None
    done = [m for m in others if m.passes is not None]
    best = min([base.passes.best, *(m.passes.baseline_best for m in done if m.passes)])
    passes = base.passes.reps + sum(m.passes.baseline_reps for m in done if m.passes)
    compile_best = min(
        [base.compile_seconds, *(m.baseline_compile_seconds for m in others if m.compile_seconds)]
    )
    e = base.engine
    return Row(
        engine=e.name,
        compile=seconds(compile_best),
        compile_ratio=ratio(1.0),
        evals=rate(n / best),
        evals_ratio=ratio(1.0),
        goal="ceiling",
        passes=str(passes),
        mismatches="-",
    )


def _engine_row(m: Measured, n: int) -> Row:
    e = m.engine
    name = f"{e.name} {e.version}".strip()
    if m.error is not None or m.passes is None:
        return Row(name, goal=f"failed: {m.error}")
    per_second = n / m.passes.best
    # Ratios against (a) as timed in alternation with this engine.
    compile_ratio = ratio(m.baseline_compile_seconds / m.compile_seconds)
    ratio_value = m.passes.baseline_best / m.passes.best
    evals_ratio = ratio(ratio_value)
    goal = ""
    if e.target is not None:
        # Judged on the median over the alternated pairs: each pair shares one stretch
        # of the machine's load, where two best passes may come from different ones.
        median = m.passes.median_ratio
        verdict = "met" if median >= e.target else "MISSED"
        goal = f">= {e.target:.2f}x: {verdict} (median of the pairs {median:.3f}x)"
    elif e.reference is not None:
        goal = f"earlier ~{e.reference:g}x"
    return Row(
        engine=name,
        compile=seconds(m.compile_seconds),
        compile_ratio=compile_ratio,
        evals=rate(per_second),
        evals_ratio=evals_ratio,
        goal=goal,
        passes=str(m.passes.reps),
        mismatches=f"{len(m.mismatches):,}",
    )


def _compile_many_rows(c: CompileMany) -> list[Row]:
    def goal(total: float) -> str:
        # The target is for 1,000 conditions; other counts are scaled to it.
        per_thousand = total * 1000 / c.count
        verdict = "met" if per_thousand <= COMPILE_TARGET_SECONDS else "MISSED"
        if c.count == 1000:
            return f"total {total:.3f} s (<= {COMPILE_TARGET_SECONDS} s: {verdict})"
        return f"total {total:.3f} s ({per_thousand:.3f} s per 1,000; <= {COMPILE_TARGET_SECONDS} s: {verdict})"

    label = f"rulekit x{c.count:,} distinct"
    return [
        Row(
            f"{label}: parse_and_check",
            compile=seconds(c.check_seconds / c.count),
            goal=goal(c.check_seconds),
            passes=str(c.check_reps),
            mismatches=f"{len(c.failures)} failed",
        ),
        Row(
            f"{label}: Lark alone",
            compile=seconds(c.lark_seconds / c.count),
            goal=f"total {c.lark_seconds:.3f} s; parse_and_check is {c.check_seconds / c.lark_seconds:.2f}x this",
            passes=str(c.check_reps),
        ),
        Row(
            f"{label}: + .compile()",
            compile=seconds(c.full_seconds / c.count),
            goal=goal(c.full_seconds),
            passes=str(c.full_reps),
            mismatches=f"{len(c.disagreements)} differ",
        ),
    ]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="rulekit against hand-written Python and peer engines on the fast-refund condition.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 5,000 records, 3 repetitions, 0.5 s minimum, 10 s budget",
    )
    p.add_argument("--records", type=int, help="number of records (default 100,000)")
    p.add_argument(
        "--reps", type=int, help="repetitions per figure at least; the best is kept (default 5)"
    )
    p.add_argument(
        "--min-time",
        type=float,
        help="seconds that the repetitions of a fast figure add up to at least (default 2)",
    )
    p.add_argument(
        "--budget",
        type=float,
        help="seconds of timed passes per engine before it stops early (default 60)",
    )
    p.add_argument(
        "--conditions",
        type=int,
        default=1000,
        help="distinct conditions to compile (default 1,000)",
    )
    p.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    # `./dev bench ARGS` passes the same arguments to benchmarks.stores, which alone uses this.
    p.add_argument("--postgres", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick
    args.records = args.records if args.records is not None else (5_000 if quick else 100_000)
    args.reps = args.reps if args.reps is not None else (3 if quick else 5)
    args.budget = args.budget if args.budget is not None else (10.0 if quick else 60.0)
    args.min_time = args.min_time if args.min_time is not None else (0.5 if quick else 2.0)
    if min(args.records, args.reps, args.conditions) < 1 or args.budget <= 0 or args.min_time < 0:
        p.error("--records, --reps, --conditions and --budget must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    records = make_records(args.records, args.seed)
    print(
        "rulekit benchmark: the fast-refund condition on every engine, and compile time of many conditions"
    )
    print(f"machine: {machine_facts()}")
    print(
        f"workload: {len(records):,} records (seed {args.seed}), now = {NOW.isoformat()}; {describe(records)}"
    )
    print(
        f"figures: best of >= {args.reps} repetitions adding up to >= {args.min_time:g} s"
        f" (a slow engine stops after {args.budget:g} s of passes); every engine alternates"
        " with (a)"
    )
    print(flush=True)

    measured: list[Measured] = []
    missing: list[Missing] = []
    rows: list[Row | None] = []  # None: a measured engine's row, filled in below
    base: Measured | None = None
    base_runner: tuple[Engine, Runner] | None = None
    for engine in all_engines():
        if isinstance(engine, Missing):
            missing.append(engine)
            rows.append(Row(engine.name, goal=f"not installed (pip install {engine.package})"))
            continue
        _progress(f"{engine.name}: compiling and timing {len(records):,} records")
        m = _measure(engine, base_runner, records, args)
        rows.append(None)
        if base is None:
            if m.passes is None:
                print(
                    f"the baseline failed ({m.error}); nothing to compare against", file=sys.stderr
                )
                return 1
            base, base_runner = m, (engine, engine.runner(engine.compile(engine.source)))
            continue
        if m.passes is not None and base.passes is not None:
            _check(m, base.passes.outputs)
        measured.append(m)
    assert base is not None
    filled = iter(
        [_baseline_row(base, measured, len(records))]
        + [_engine_row(m, len(records)) for m in measured]
    )
    table = [r if r is not None else next(filled) for r in rows]

    _progress(f"rulekit: compiling {args.conditions:,} distinct conditions")
    many = compile_many(args.conditions, args.seed, args.reps, args.min_time, NOW)
    separator = len(table)
    table.extend(_compile_many_rows(many))

    print(render_table(table, separator_before=[separator]))
    print(f"(at the end: {load()}; compare with the machine line above)")
    print()
    print(
        textwrap.fill(
            "How to read: x (a) is speed relative to (a), timed in alternation with that engine in"
            " this run ((a)'s time / the engine's time): 1.00x is the ceiling, 0.50x twice as"
            " slow. compile/cond is one compile of the condition (last three rows: the mean over the"
            " distinct conditions, the total beside it). evals/s is records / the fastest pass,"
            " input conversion included; passes counts them, and (a) ran beside every engine."
            " mismatches are records where the engine's answer differs from (a)'s. Targets are"
            " printed, not asserted.",
            width=100,
        )
    )
    print()
    notes = [f"{m.engine.name}: {m.engine.note}" for m in [base, *measured]]
    notes += [
        f"{miss.name}: not installed; `pip install {miss.package}` (or ./dev bench) to measure it"
        for miss in missing
    ]
    notes.append(
        f"{many.count:,} distinct conditions ({many.shapes:,} distinct shapes once literals and field"
        f" names are blanked; {many.mean_chars:.0f} characters on average, the fast-refund condition"
        f" has {len(FAST_REFUND)}), seeded, over bool/int/money/time/duration/string/list fields;"
        " warmed up on other conditions first; rulekit.expr.expression.parse_and_check (uncached) for each."
        " Its baseline, timed in alternation with it: Lark alone parsing the same text with the same"
        " grammar into its own parse tree (Lark's contextual lexer, no rulekit callbacks), the floor of"
        " any parser built on Lark."
    )
    notes.append(
        f"cross-check: each condition's generated code against the reference interpreter (explain) on"
        f" {many.crosschecked:,} evaluations ({many.errors:,} ended in an evaluation error on both sides):"
        f" {len(many.disagreements)} differ."
    )
    print("Notes:")
    for text in notes:
        print(textwrap.fill(text, width=100, initial_indent="- ", subsequent_indent="  "))

    failed = False
    for m in measured:
        if m.error is not None:
            failed = True
        if not m.mismatches:
            continue
        failed = True
        print()
        print(
            f"MISMATCHES: {m.engine.name} differs from (a) on {len(m.mismatches):,} of {len(records):,} records:"
        )
        assert m.passes is not None and base is not None and base.passes is not None
        for i in m.mismatches[:_SHOWN_MISMATCHES]:
            got = m.engine.normalize(m.passes.outputs[i])
            print(
                f"  record {i}: (a) {base.passes.outputs[i]!r}, {m.engine.name} {got!r}: {records[i]!r}"
            )
    if many.failures:
        failed = True
        print()
        print(
            f"COMPILE FAILURES: {len(many.failures)} of {many.count:,} generated conditions did not compile:"
        )
        for source, message in many.failures[:_SHOWN_MISMATCHES]:
            print(f"  {source}\n    {message}")
    if many.disagreements:
        failed = True
        print()
        print(
            f"CROSS-CHECK: generated code and interpreter differ on {len(many.disagreements)} evaluations:"
        )
        for text in many.disagreements[:_SHOWN_MISMATCHES]:
            print(f"  {text}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
