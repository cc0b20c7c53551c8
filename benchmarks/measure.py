"""Timing primitives: best-of-N, because this machine is shared and noisy.

The minimum of several repetitions estimates the cost of the code itself;
slower repetitions measure the neighbours. Engines are timed in alternation
with the baseline, so each ratio compares the same stretch of time. Garbage
is collected before each repetition (not inside it), so one engine's
leftovers are not billed to the next.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from benchmarks.engines import Runner
from benchmarks.workload import Record


def _run_n(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - start


def best_call_time(fn: Callable[[], object], reps: int, min_time: float = 0.05) -> float:
    """Seconds per call of ``fn``: the best of ``reps`` rounds of at least ``min_time`` each."""
    fn()  # warm-up (first-call caches, lazy imports)
    number = 1
    while True:
        elapsed = _run_n(fn, number)
        if elapsed >= min_time or number >= 1_000_000:
            break
        number = max(number * 2, int(number * min_time / max(elapsed, 1e-9) * 1.2))
    best = elapsed / number
    for _ in range(reps - 1):
        gc.collect()
        best = min(best, _run_n(fn, number) / number)
    return best


@dataclass(frozen=True)
class Passes:
    """Timed passes of one engine over all the records, alternated with the baseline's."""

    #: Seconds of the engine's fastest pass.
    best: float
    #: How many passes ran (fewer than asked when the time budget ran out).
    reps: int
    #: The results of the first pass, one per record (for the answer check).
    outputs: list[Any]
    #: Seconds of the baseline's fastest pass in the same window (its ratio's denominator).
    baseline_best: float
    baseline_reps: int
    #: The median over the alternated pairs of (the baseline's pass / the engine's pass).
    median_ratio: float = 1.0


def _timed(run: Runner, records: Sequence[Record], now: datetime) -> tuple[float, list[Any]]:
    gc.collect()
    start = time.perf_counter()
    outputs = run(records, now)
    return time.perf_counter() - start, outputs


def time_passes(
    run: Runner,
    baseline: Runner | None,
    records: Sequence[Record],
    now: datetime,
    *,
    reps: int,
    budget: float,
    min_time: float,
    max_passes: int = 100,
) -> Passes:
    """Passes of ``run`` over all ``records``, each preceded by a pass of ``baseline``.

    Alternating puts the engine and the baseline in the same moments of a noisy
    machine, so their ratio holds even when the neighbours' load comes and goes.
    Passes go on until ``reps`` of them ran and they add up to ``min_time``
    seconds (at most ``max_passes``); a new pass starts only if it is expected
    to end within ``budget`` seconds of this engine's passes, so a very slow
    peer costs a minute, not an hour (its row shows how many passes ran).
    """
    warm = records[: min(len(records), 1000)]
    run(warm, now)  # warm-up: lazy code generation, first-use caches
    if baseline is not None:
        baseline(warm, now)
    best = base_best = float("inf")
    spent = 0.0
    done = base_done = 0
    outputs: list[Any] = []
    ratios: list[float] = []
    while True:
        base_elapsed = 0.0
        if baseline is not None:
            base_elapsed, _ = _timed(baseline, records, now)
            base_best = min(base_best, base_elapsed)
            base_done += 1
        elapsed, out = _timed(run, records, now)
        ratios.append(base_elapsed / elapsed)
        if done == 0:
            outputs = out
        best = min(best, elapsed)
        spent += elapsed
        done += 1
        wanted = done < reps or spent < min_time
        if not wanted or done >= max_passes or spent + best > budget:
            break
    if baseline is None:
        return Passes(best, done, outputs, best, done)
    return Passes(best, done, outputs, base_best, base_done, statistics.median(ratios))


def best_batch_time(
    fn: Callable[[], object], reps: int, min_time: float = 0.0
) -> tuple[float, int]:
    """Seconds of the fastest call of ``fn`` (one whole batch each), and the calls made:
    at least ``reps``, and more until they add up to ``min_time`` seconds (at most 100)."""
    best = float("inf")
    spent = 0.0
    done = 0
    while done < reps or (spent < min_time and done < 100):
        gc.collect()
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
        done += 1
    return best, done


def alternating_best(
    fns: Sequence[Callable[[], object]], reps: int, min_time: float = 0.0
) -> tuple[list[float], int]:
    """Seconds of the fastest call of each of ``fns`` (one whole batch each), called in
    turn so that each saw the same load, and the rounds run: at least ``reps``, and more
    until the last one's calls add up to ``min_time`` seconds (at most 100)."""
    best = [float("inf")] * len(fns)
    spent = 0.0
    done = 0
    while done < reps or (spent < min_time and done < 100):
        for i, fn in enumerate(fns):
            gc.collect()
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            best[i] = min(best[i], elapsed)
        spent += elapsed
        done += 1
    return best, done
