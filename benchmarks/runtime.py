"""``python -m benchmarks.runtime``: the runtime against state-machine libraries and a dict table.

Measured in one run and printed as one table (see benchmarks/README.md, "The runtime"):

1. events per second on one case cycling through a 5-state guarded machine
   (each state has one event ``next`` guarded by ``n < limit``, going to the
   next state; the fifth goes back to the first): rulekit's ``engine.send``,
   the same machine in ``transitions`` and in ``python-statemachine``, and a
   hand-written dict table (``state = table[state]["next"]`` behind the guard
   as a Python expression: the ceiling). Each engine's passes alternate with
   the ceiling's, so its ratio compares the same stretch of a noisy machine;
2. memory per live case: 100,000 open cases, tracemalloc, after a gc.collect;
3. time to open 100,000 cases;
4. deadlines at scale: a ``MemoryStore`` holding N cases whose 48-hour
   deadlines are spread over a week (N = 10,000, 100,000 and 1,000,000; the
   last not with ``--quick``), the time and memory to open them, and the time
   of ``store.advance(to)`` for a ``to`` that makes exactly K = 1,000
   deadlines due, which must grow with K and not with N.

Every figure is the best of its repetitions; history recording stays on (each
step appends its record). Targets are printed, never asserted.

Exit status: 0 when every engine followed the machine (the expected state
after every pass, a failing guard refused) and every advance fired exactly
the deadlines it should; 1 otherwise; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import random
import resource
import statistics
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import rulekit
from benchmarks.report import exit_status, load, machine_facts, rate, ratio, seconds

#: Every step happens at this time (the engine never reads the wall clock).
T = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
STATES = ("s0", "s1", "s2", "s3", "s4")
#: The guard is ``n < LIMIT``: true for the facts every case opens with.
LIMIT = 100

CYCLE_RK = """\
policy bench.cycle version "1"
facts {
  n: int
  limit: int
}
actors user
event next by user
workflow cycle {
  initial state s0 { on next when n < limit -> s1 }
  state s1 { on next when n < limit -> s2 }
  state s2 { on next when n < limit -> s3 }
  state s3 { on next when n < limit -> s4 }
  state s4 { on next when n < limit -> s0 }
}
"""

#: The deadline policy: 48 hours to answer, then a reminder state with a 30-day
#: deadline (so each fired deadline schedules the next one, as real ones do; it
#: falls due long after the week the benchmark advances through).
DEADLINES_RK = """\
policy bench.deadlines version "1"
facts {
  n: int
}
actors user
event answer by user
workflow w {
  initial state waiting {
    after 48h -> reminded
    on answer -> done
  }
  state reminded {
    after 30d -> expired
    on answer -> done
  }
  final state expired
  final state done
}
"""
REVIEW = timedelta(hours=48)
WEEK_MS = 7 * 24 * 3600 * 1000

# Targets (printed, never asserted) and figures measured earlier on this machine class.
TARGET_X_LIB = 5.0  # events/s, times the faster library (issue 14; the first goal was 10x)
TARGET_X_CEILING = 0.15  # events/s, times the dict table
TARGET_MEMORY_X_LIB = 0.10  # bytes per case, times the library's
TARGET_OPEN_SECONDS = 1.0  # to open 100,000 cases
TARGET_OPEN_CASES = 100_000
EARLIER_EVENTS = {
    "rulekit": 220_000,
    "transitions": 73_000,
    "python-statemachine": 7_700,
    "dict": 4_400_000,
}
EARLIER_BYTES = {
    "transitions: a Machine per model": 18_000,
    "python-statemachine: an instance each": 19_000,
    "(a) dict per case": 60,
}


def _progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


# -- the machines ------------------------------------------------------------------------------


class Refused(Exception):
    """The dict table's refusal: no transition, or its guard does not hold."""


@dataclass(frozen=True)
class Machine:
    """The 5-state cycle in one engine."""

    name: str
    #: distribution name ("" for the dict table)
    package: str
    #: (n, limit) -> a new case in s0
    make: Callable[[int, int], Any]
    #: send ``next`` to the case this many times
    run: Callable[[Any, int], None]
    state: Callable[[Any], str]
    #: make the guard false and send ``next``: True when refused and the state unchanged
    blocked: Callable[[Any], bool]
    #: ways to open many cases for the memory and open-time rows:
    #: (label, short label, prepare) where prepare() -> (i -> one new case), fresh per pass
    openers: tuple[tuple[str, str, Callable[[], Callable[[int], Any]]], ...]
    note: str = ""
    #: the case's history length (rulekit: it records every step, and that stays on)
    history: Callable[[Any], int] | None = None

    @property
    def label(self) -> str:
        version = _version(self.package) if self.package else ""
        return f"{self.name} {version}".strip()


@dataclass(frozen=True)
class Missing:
    name: str
    package: str


_TABLE = {s: {"next": STATES[(i + 1) % len(STATES)]} for i, s in enumerate(STATES)}


def _dict_send(case: dict[str, Any], event: str) -> None:
    facts = case["facts"]
    if not facts["n"] < facts["limit"]:
        raise Refused(event)
    case["state"] = _TABLE[case["state"]][event]


def dict_machine() -> Machine:
    def make(n: int, limit: int) -> dict[str, Any]:
        return {"state": "s0", "facts": {"n": n, "limit": limit}}

    def run(case: dict[str, Any], count: int) -> None:
        send = _dict_send
        for _ in range(count):
            send(case, "next")

    def blocked(case: dict[str, Any]) -> bool:
        before = case["state"]
        case["facts"] = {**case["facts"], "n": case["facts"]["limit"]}
        try:
            _dict_send(case, "next")
        except Refused:
            return case["state"] == before
        return False

    return Machine(
        name="(a) dict table",
        package="",
        make=make,
        run=run,
        state=lambda case: case["state"],
        blocked=blocked,
        openers=(
            (
                "(a) dict per case",
                "dict",
                lambda: lambda i: make(i % LIMIT, LIMIT),
            ),
        ),
        note='(a): `case["state"] = TABLE[case["state"]]["next"]` after `if not facts["n"] < facts["limit"]: raise`,'
        " in a function called once per event; a case is a dict holding the state and a dict of facts.",
    )


def rulekit_machine() -> Machine:
    engine = rulekit.Engine(rulekit.loads(CYCLE_RK, "rk"))

    def make(n: int, limit: int) -> Any:
        return engine.open("cycle", {"n": n, "limit": limit}, at=T)

    def run(case: Any, count: int) -> None:
        send = engine.send
        for _ in range(count):
            send(case, "next", "user", at=T)

    def blocked(case: Any) -> bool:
        before = case.state.name
        engine.update(case, {"n": LIMIT}, at=T)
        try:
            engine.send(case, "next", "user", at=T)
        except rulekit.StepRefused as e:
            return e.code == "guard_failed" and case.state.name == before
        return False

    return Machine(
        name="rulekit",
        package="rulekit",
        make=make,
        run=run,
        state=lambda case: case.state.name,
        blocked=blocked,
        history=lambda case: len(case.history),
        openers=(
            (
                "rulekit: engine.open",
                "rulekit",
                lambda: lambda i: make(i % LIMIT, LIMIT),
            ),
        ),
        note='rulekit: `engine.send(case, "next", "user", at=T)` on a case of a policy with `on next'
        " when n < limit -> s{i+1}` in each state; every step records its history entry (a fresh case"
        " each pass, so a pass of E events leaves E records).",
    )


#: The rulekit row with the garbage collector set as a long-running application may set it.
GC_TUNED = "rulekit, gc.freeze() + gc.set_threshold(10_000)"


def gc_tuned_machine() -> Machine:
    """rulekit again, each pass run after ``gc.freeze()`` (what is loaded stays out of the
    collector's way) and with the first generation's threshold at 10,000 (Python's default
    is 700): what an application keeping long histories in memory may choose. rulekit
    itself never changes the process's collector."""
    plain = rulekit_machine()

    def run(case: Any, count: int) -> None:
        thresholds = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(10_000, thresholds[1], thresholds[2])
        try:
            plain.run(case, count)
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()

    return Machine(
        name=GC_TUNED,
        package="",
        make=plain.make,
        run=run,
        state=plain.state,
        blocked=plain.blocked,
        history=plain.history,
        openers=(),
        note=f"{GC_TUNED}: the rulekit row again, each pass run after gc.freeze() and with"
        " gc.set_threshold(10_000) (restored after the pass): most of what a long history costs"
        " per event is Python's cycle collector walking the records again and again.",
    )


def transitions_machine() -> Machine | Missing:
    try:
        from transitions import Machine as TMachine
    except ImportError:
        return Missing("transitions", "transitions")

    spec = [
        {"trigger": "next", "source": s, "dest": STATES[(i + 1) % len(STATES)], "conditions": "ok"}
        for i, s in enumerate(STATES)
    ]

    class Model:
        def __init__(self, n: int, limit: int) -> None:
            self.n = n
            self.limit = limit

        def ok(self) -> bool:
            return self.n < self.limit

    def own_machine(n: int, limit: int) -> Any:
        model = Model(n, limit)
        TMachine(
            model=model, states=list(STATES), transitions=spec, initial="s0", auto_transitions=False
        )
        return model

    def run(model: Any, count: int) -> None:
        fire = model.next
        for _ in range(count):
            fire()

    def blocked(model: Any) -> bool:
        before = model.state
        model.n = model.limit
        return model.next() is False and model.state == before

    class StaticModel:
        """transitions' FAQ way for thousands of models ("memory footprint is too large ... and
        adding models takes too long"): one class-level Machine that knows no model; each model
        holds its state, and a missing attribute named after an event becomes its trigger."""

        machine = TMachine(
            model=None, states=list(STATES), transitions=spec, initial=None, auto_transitions=False
        )

        def __init__(self, n: int, limit: int) -> None:
            self.state = "s0"
            self.n = n
            self.limit = limit

        def ok(self) -> bool:
            return self.n < self.limit

        def __getattribute__(self, item: str) -> Any:
            try:
                return super().__getattribute__(item)
            except AttributeError:
                events = StaticModel.machine.events
                if item in events:
                    return partial(events[item].trigger, self)
                raise

    return Machine(
        name="transitions",
        package="transitions",
        make=own_machine,
        run=run,
        state=lambda model: model.state,
        blocked=blocked,
        openers=(
            (
                "transitions: a Machine per model",
                "Machine per model",
                lambda: lambda i: own_machine(i % LIMIT, LIMIT),
            ),
            (
                "transitions: one class-level Machine (FAQ)",
                "class-level Machine",
                lambda: lambda i: StaticModel(i % LIMIT, LIMIT),
            ),
        ),
        note="transitions: `Machine(model=m, states=..., transitions=[{trigger: next, source, dest,"
        ' conditions: "ok"}], initial="s0", auto_transitions=False)` where `m.ok()` returns `m.n < m.limit`;'
        " events are `m.next()`. auto_transitions=False keeps it the same machine (the default adds a"
        " `to_<state>` trigger per state, which costs more memory). Memory and opening rows: one"
        " Machine per model (the plain way), and transitions' FAQ way for thousands of models (one"
        " class-level Machine with model=None; each model keeps its `state` attribute and its"
        " `__getattribute__` turns a missing `next` into `partial(machine.events['next'].trigger,"
        " self)`). Its other way, one Machine and `add_model` for each model, is left out: it checks"
        " `model not in self.models` (a list), so opening 100,000 takes about a minute (quadratic).",
    )


def statemachine_machine() -> Machine | Missing:
    try:
        from statemachine import State, StateMachine
    except ImportError:
        return Missing("python-statemachine", "python-statemachine")

    class Cycle(StateMachine):  # type: ignore[misc]
        s0 = State(initial=True)
        s1 = State()
        s2 = State()
        s3 = State()
        s4 = State()
        next = (
            s0.to(s1, cond="ok")
            | s1.to(s2, cond="ok")
            | s2.to(s3, cond="ok")
            | s3.to(s4, cond="ok")
            | s4.to(s0, cond="ok")
        )

        def __init__(self, n: int, limit: int) -> None:
            self.n = n
            self.limit = limit
            super().__init__()

        def ok(self) -> bool:
            return self.n < self.limit

    def run(sm: Any, count: int) -> None:
        fire = sm.next
        for _ in range(count):
            fire()

    def blocked(sm: Any) -> bool:
        before = sm.current_state_value
        sm.n = sm.limit
        try:
            sm.next()
        except sm.TransitionNotAllowed:
            return bool(sm.current_state_value == before)
        return False

    return Machine(
        name="python-statemachine",
        package="python-statemachine",
        make=Cycle,
        run=run,
        state=lambda sm: sm.current_state_value,
        blocked=blocked,
        openers=(
            (
                "python-statemachine: an instance each",
                "python-statemachine",
                lambda: lambda i: Cycle(i % LIMIT, LIMIT),
            ),
        ),
        note='python-statemachine: a StateMachine class with `next = s0.to(s1, cond="ok") | ... |'
        " s4.to(s0, ...)` and `ok()` returning `self.n < self.limit`; events are `sm.next()`; one"
        " instance per case (the library keeps a machine's state in the instance or its model).",
    )


# -- timing ------------------------------------------------------------------------------------


@dataclass
class Alternated:
    """Passes of an engine, each preceded by a pass of the baseline."""

    best: float = float("inf")
    base_best: float = float("inf")
    passes: int = 0
    #: (the baseline's seconds / this pass's seconds) of each alternated pair
    pair_ratios: list[float] = field(default_factory=list)

    def median_ratio(self) -> float:
        return statistics.median(self.pair_ratios) if self.pair_ratios else 1.0


def alternate(
    one: Callable[[], float],
    base: Callable[[], float] | None,
    *,
    reps: int,
    min_time: float,
    budget: float,
    max_passes: int = 100,
) -> Alternated:
    """Call ``base`` then ``one`` (each returns the seconds of its timed part) until ``reps``
    passes of ``one`` add up to ``min_time``; stop early when another pass would take ``one``'s
    passes past ``budget`` seconds (at least one pass always runs)."""
    out = Alternated()
    spent = 0.0
    while True:
        base_elapsed = 0.0
        if base is not None:
            base_elapsed = base()
            out.base_best = min(out.base_best, base_elapsed)
        elapsed = one()
        out.pair_ratios.append(base_elapsed / elapsed)
        out.best = min(out.best, elapsed)
        out.passes += 1
        spent += elapsed
        if out.passes >= max_passes or spent + out.best > budget:
            break
        if out.passes >= reps and spent >= min_time:
            break
    return out


def traced_bytes(build: Callable[[], object]) -> tuple[int, object]:
    """Bytes allocated by ``build()`` and still held when it returns (tracemalloc, after a
    gc.collect on both sides); returns them and what ``build`` made (to be dropped by the
    caller, after the measurement)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        made = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, made


# -- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    what: str
    figure: str = ""
    x_base: str = ""
    x_lib: str = ""
    goal: str = ""
    runs: str = ""


@dataclass(frozen=True)
class Section:
    title: str


HEADER = Row("what", "figure", "x base", "x lib", "target / earlier", "runs")


def render(rows: Sequence[Row | Section]) -> str:
    plain = [r for r in rows if isinstance(r, Row)]
    names = list(Row.__dataclass_fields__)
    widths = {f: max(len(getattr(r, f)) for r in [HEADER, *plain]) for f in names}
    right = {"figure", "x_base", "x_lib", "runs"}

    def line(r: Row) -> str:
        cells = [
            getattr(r, f).rjust(widths[f]) if f in right else getattr(r, f).ljust(widths[f])
            for f in names
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * widths[f] for f in names)
    out = [line(HEADER), rule]
    for r in rows:
        if isinstance(r, Section):
            if len(out) > 2:
                out.append(rule)
            out.append(r.title)
        else:
            out.append(line(r))
    return "\n".join(out)


def nbytes(b: float) -> str:
    """Bytes with a unit for their size (KB = 1,000 bytes)."""
    if b < 10_000:
        return f"{b:,.0f} B"
    if b < 1e6:
        return f"{b / 1e3:.1f} KB"
    if b < 1e9:
        return f"{b / 1e6:.1f} MB"
    return f"{b / 1e9:.2f} GB"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# -- 1. events per second ----------------------------------------------------------------------


@dataclass
class Speed:
    machine: Machine
    timing: Alternated | None = None
    error: str | None = None


def _event_pass(m: Machine, events: int, problems: list[str]) -> Callable[[], float]:
    expected = STATES[events % len(STATES)]

    def one() -> float:
        case = m.make(0, LIMIT)
        gc.collect()
        start = time.perf_counter()
        m.run(case, events)
        elapsed = time.perf_counter() - start
        got = m.state(case)
        if got != expected:
            problems.append(
                f"{m.name}: in `{got}` after {events:,} events from s0, expected `{expected}`"
            )
        if m.history is not None and m.history(case) != events + 1:
            problems.append(
                f"{m.name}: {m.history(case):,} history records after opening and {events:,}"
                " events, expected one each"
            )
        return elapsed

    return one


def check_machine(m: Machine, problems: list[str]) -> None:
    """Untimed: 7 events from s0 end in s2, and a failing guard is refused."""
    case = m.make(0, LIMIT)
    m.run(case, 7)
    if m.state(case) != "s2":
        problems.append(f"{m.name}: in `{m.state(case)}` after 7 events, expected `s2`")
    if not m.blocked(case):
        problems.append(f"{m.name}: `next` was not refused with n == limit (state {m.state(case)})")


def measure_events(
    machines: Sequence[Machine], ceiling: Machine, args: argparse.Namespace, problems: list[str]
) -> list[Speed]:
    base = _event_pass(ceiling, args.ceiling_events, problems)
    out = []
    for m in machines:
        _progress(f"events/s: {m.name}, {args.events:,} events a pass")
        s = Speed(m)
        try:
            check_machine(m, problems)
            warm = m.make(0, LIMIT)
            m.run(warm, 1000)
            if m is ceiling:
                s.timing = alternate(
                    base, None, reps=args.reps, min_time=args.min_time, budget=args.budget
                )
                s.timing.base_best = s.timing.best
            else:
                s.timing = alternate(
                    _event_pass(m, args.events, problems),
                    base,
                    reps=args.reps,
                    min_time=args.min_time,
                    budget=args.budget,
                )
        except Exception as e:  # a peer's failure is a row, not a crash
            s.error = f"{type(e).__name__}: {e}".splitlines()[0][:70]
            problems.append(f"{m.name}: {s.error}")
        out.append(s)
        gc.collect()
    return out


def event_rows(speeds: Sequence[Speed], args: argparse.Namespace) -> list[Row]:
    done = [s for s in speeds if s.timing is not None]
    ceiling = next(s for s in done if s.machine.name.startswith("(a)"))
    assert ceiling.timing is not None
    # The ceiling's best over the whole run: it ran beside every engine.
    ceiling_best = min(s.timing.base_best for s in done if s.timing is not None)
    ceiling_best /= args.ceiling_events

    def x_ceiling(s: Speed) -> float:
        assert s.timing is not None
        return (s.timing.base_best / args.ceiling_events) / (s.timing.best / args.events)

    def median_x_ceiling(s: Speed) -> float:
        assert s.timing is not None
        return s.timing.median_ratio() * args.events / args.ceiling_events

    libs = [s for s in done if s.machine.name in ("transitions", "python-statemachine")]
    fastest = max(libs, key=x_ceiling) if libs else None
    rows = []
    for s in speeds:
        m = s.machine
        if s.timing is None:
            rows.append(Row(m.label, goal=f"failed: {s.error}"))
            continue
        if s is ceiling:
            x = 1.0
            per_second = 1 / ceiling_best
            passes = sum(t.timing.passes for t in done if t.timing is not None)
        else:
            x = x_ceiling(s)
            per_second = args.events / s.timing.best
            passes = s.timing.passes
        x_lib = x / x_ceiling(fastest) if fastest is not None else None
        key = "dict" if s is ceiling else m.name
        earlier = f"earlier ~{EARLIER_EVENTS[key]:,}/s" if key in EARLIER_EVENTS else ""
        goal = "ceiling; " + earlier if s is ceiling else earlier
        if m.name == "rulekit":
            parts = []
            # Judged on the medians over the alternated pairs (each pair shares one
            # stretch of the machine's load); the columns show the best passes.
            if fastest is not None:
                median = median_x_ceiling(s) / median_x_ceiling(fastest)
                parts.append(
                    f">= {TARGET_X_LIB:g}x lib: {verdict(median >= TARGET_X_LIB)}"
                    f" (medians {median:.2f}x)"
                )
            median = median_x_ceiling(s)
            parts.append(
                f">= {TARGET_X_CEILING:g}x (a): {verdict(median >= TARGET_X_CEILING)}"
                f" (median {median:.3f}x)"
            )
            goal = "; ".join(parts) + f"; {earlier}"
        elif m.name == GC_TUNED:
            goal = "an application's choice, not rulekit's (docs/runtime.md)"
        rows.append(
            Row(
                m.label,
                f"{rate(per_second)}/s",
                ratio(x),
                ratio(x_lib) if x_lib is not None else "",
                goal,
                str(passes),
            )
        )
    return rows


# -- 2 and 3. memory per case, time to open ----------------------------------------------------


@dataclass
class Opened:
    label: str
    engine: str
    short: str
    bytes_per_case: float | None = None
    timing: Alternated | None = None
    error: str | None = None


def measure_open(
    machines: Sequence[Machine], ceiling: Machine, args: argparse.Namespace
) -> list[Opened]:
    n = args.cases

    def open_pass(prepare: Callable[[], Callable[[int], Any]]) -> Callable[[], float]:
        def one() -> float:
            make = prepare()
            make(0)  # first-use caches
            slots: list[Any] = [None] * n
            gc.collect()
            start = time.perf_counter()
            for i in range(n):
                slots[i] = make(i)
            elapsed = time.perf_counter() - start
            del slots
            gc.collect()
            return elapsed

        return one

    base = open_pass(ceiling.openers[0][2])
    out = []
    for m in machines:
        for label, short, prepare in m.openers:
            o = Opened(label, m.name, short)
            try:
                case = prepare()(0)
                m.run(case, 7)
                if m.state(case) != "s2":
                    raise RuntimeError(f"in `{m.state(case)}` after 7 events, expected `s2`")
                _progress(f"open {n:,} cases: {label}")
                if m is ceiling:
                    o.timing = alternate(base, None, reps=args.reps, min_time=0, budget=args.budget)
                    o.timing.base_best = o.timing.best
                else:
                    o.timing = alternate(
                        open_pass(prepare), base, reps=args.reps, min_time=0, budget=args.budget
                    )
                _progress(f"memory of {n:,} cases (tracemalloc): {label}")
                make = prepare()
                make(0)

                def build(make: Callable[[int], Any] = make) -> list[Any]:
                    slots: list[Any] = [None] * n  # the list is counted: 8 bytes a case
                    for i in range(n):
                        slots[i] = make(i)
                    return slots

                total, made = traced_bytes(build)
                del made, make
                gc.collect()
                o.bytes_per_case = total / n
            except Exception as e:
                o.error = f"{type(e).__name__}: {e}".splitlines()[0][:70]
            out.append(o)
    return out


def open_rows(opened: Sequence[Opened], args: argparse.Namespace) -> tuple[list[Row], list[Row]]:
    n = args.cases
    ok = [o for o in opened if o.error is None and o.timing is not None]
    ceiling = next(o for o in ok if o.label.startswith("(a)"))
    libs = [o for o in ok if o.engine in ("transitions", "python-statemachine")]
    leanest = min(libs, key=lambda o: o.bytes_per_case or 0.0) if libs else None
    quickest = max(libs, key=lambda o: _x_open(o)) if libs else None
    ceiling_best = min(o.timing.base_best for o in ok if o.timing is not None)
    memory, opening = [], []
    for o in opened:
        if o.error is not None or o.timing is None or o.bytes_per_case is None:
            memory.append(Row(o.label, goal=f"failed: {o.error}"))
            opening.append(Row(o.label, goal=f"failed: {o.error}"))
            continue
        assert ceiling.bytes_per_case is not None
        b = o.bytes_per_case
        x_lib = b / leanest.bytes_per_case if leanest and leanest.bytes_per_case else None
        goal = f"earlier ~{nbytes(EARLIER_BYTES[o.label])}" if o.label in EARLIER_BYTES else ""
        if o.engine == "rulekit" and leanest is not None and x_lib is not None:
            # one verdict per library way: they differ by two orders of magnitude
            goal = f"<= {TARGET_MEMORY_X_LIB:g}x lib: " + "; ".join(
                f"{verdict(r <= TARGET_MEMORY_X_LIB)} vs {other.short} ({r:.3g}x)"
                for other in libs
                if other.bytes_per_case
                for r in [b / other.bytes_per_case]
            )
        memory.append(
            Row(
                o.label,
                nbytes(b),
                ratio(b / ceiling.bytes_per_case),
                ratio(x_lib) if x_lib is not None else "",
                goal,
                "1",
            )
        )
        # opening: speed ratios (the baseline's time / this one's)
        best = ceiling_best if o is ceiling else o.timing.best
        x = 1.0 if o is ceiling else _x_open(o)
        x_lib_open = x / _x_open(quickest) if quickest is not None else None
        goal = ""
        if o.engine == "rulekit":
            scaled = best * TARGET_OPEN_CASES / n
            goal = f"< {TARGET_OPEN_SECONDS:g} s for {TARGET_OPEN_CASES:,}: {verdict(scaled < TARGET_OPEN_SECONDS)}"
            goal += f" ({scaled:.2f} s" + (")" if n == TARGET_OPEN_CASES else ", scaled)")
        opening.append(
            Row(
                o.label,
                f"{seconds(best)} ({seconds(best / n)}/case)",
                ratio(x),
                ratio(x_lib_open) if x_lib_open is not None else "",
                goal,
                str(o.timing.passes),
            )
        )
    return memory, opening


def _x_open(o: Opened) -> float:
    assert o.timing is not None
    return o.timing.base_best / o.timing.best


# -- 4. deadlines at scale ---------------------------------------------------------------------


@dataclass
class Scale:
    n: int
    open_seconds: float = 0.0
    open_passes: int = 0
    open_bytes: int = 0
    advance_seconds: float = float("inf")
    windows: int = 0
    #: (k, best seconds) of the x10 window, at the largest N only
    bigger: tuple[int, float] | None = None
    error: str | None = None


def deadline_times(n: int, seed: int) -> list[datetime]:
    """``n`` distinct opening times (whole milliseconds) spread over the week after ``T``."""
    offsets = random.Random(seed).sample(range(WEEK_MS), n)
    return [T + timedelta(milliseconds=o) for o in offsets]


def open_store(engine: rulekit.Engine, ats: Sequence[datetime]) -> rulekit.MemoryStore:
    store = rulekit.MemoryStore(engine)
    open_ = store.open
    for i, at in enumerate(ats):
        open_("w", {"n": i % LIMIT}, at=at, id=f"c{i}")
    return store


def measure_deadlines(args: argparse.Namespace, problems: list[str]) -> list[Scale]:
    engine = rulekit.Engine(rulekit.loads(DEADLINES_RK, "rk"))
    open_store(engine, deadline_times(10, args.seed))  # first-use caches
    out = []
    for n in args.sizes:
        s = Scale(n)
        out.append(s)
        try:
            _measure_scale(engine, s, args, problems)
        except Exception as e:
            s.error = f"{type(e).__name__}: {e}".splitlines()[0][:70]
            problems.append(f"deadlines N={n:,}: {s.error}")
        gc.collect()
    return out


def _measure_scale(
    engine: rulekit.Engine, s: Scale, args: argparse.Namespace, problems: list[str]
) -> None:
    n, k = s.n, args.k
    ats = deadline_times(n, args.seed)
    dues = sorted(at + REVIEW for at in ats)
    _progress(f"deadlines: memory of {n:,} cases in a MemoryStore (tracemalloc)")
    total, made = traced_bytes(lambda: open_store(engine, ats))
    s.open_bytes = total
    del made
    gc.collect()

    _progress(f"deadlines: opening {n:,} cases")
    store: rulekit.MemoryStore | None = None

    def one() -> float:
        nonlocal store
        store = None
        gc.collect()
        start = time.perf_counter()
        store = open_store(engine, ats)
        return time.perf_counter() - start

    # a 1,000,000-case pass is long and steady: once is enough
    timing = alternate(
        one, None, reps=1 if n >= 1_000_000 else args.reps, min_time=0, budget=args.budget
    )
    s.open_seconds, s.open_passes = timing.best, timing.passes

    _progress(f"deadlines: advancing through {n:,} cases, {k:,} deadlines at a time")
    fired = 0

    def advance(count: int) -> float:
        """Advance to just after the next ``count`` due times: exactly ``count`` fire."""
        nonlocal fired
        assert store is not None
        to = dues[fired + count - 1] + timedelta(microseconds=1)
        gc.collect()
        start = time.perf_counter()
        results = store.advance(to)
        elapsed = time.perf_counter() - start
        fired += count
        states = {r.state for _, r in results}
        if len(results) != count or states != {"reminded"}:
            problems.append(
                f"N={n:,}: advance to {to.isoformat()} fired {len(results):,} cases"
                f" (expected {count:,}), ending in {sorted(states)}"
            )
        return elapsed

    advance(k)  # warm-up window, untimed
    for _ in range(min(args.reps, n // k - 1)):
        s.advance_seconds = min(s.advance_seconds, advance(k))
        s.windows += 1
    if n == max(args.sizes) and fired + 2 * 10 * k <= n:
        s.bigger = (10 * k, min(advance(10 * k), advance(10 * k)))
    store = None


def deadline_rows(scales: Sequence[Scale], args: argparse.Namespace) -> list[Row]:
    ok = [s for s in scales if s.error is None]
    rows: list[Row] = []
    if not ok:
        return [Row(f"N={s.n:,}", goal=f"failed: {s.error}") for s in scales]
    small = ok[0]
    k = args.k
    for s in scales:
        if s.error is not None:
            rows.append(Row(f"N={s.n:,}", goal=f"failed: {s.error}"))
            continue
        rows.append(
            Row(
                f"N={s.n:,}: open (store.open each)",
                f"{seconds(s.open_seconds)} ({seconds(s.open_seconds / s.n)}/case)",
                ratio((s.open_seconds / s.n) / (small.open_seconds / small.n)),
                runs=str(s.open_passes),
            )
        )
        rows.append(
            Row(
                f"N={s.n:,}: memory of the store",
                f"{nbytes(s.open_bytes)} ({nbytes(s.open_bytes / s.n)}/case)",
                ratio((s.open_bytes / s.n) / (small.open_bytes / small.n)),
                runs="1",
            )
        )
        growth = s.advance_seconds / small.advance_seconds
        goal = ""
        if s is ok[-1] and s is not small:
            goal = (
                f"grows with K, not N: {verdict(growth < 2)} ({growth:.2f}x at {s.n // small.n:,}x"
                " the cases)"
            )
        rows.append(
            Row(
                f"N={s.n:,}: advance, K={k:,} due",
                f"{seconds(s.advance_seconds)} ({seconds(s.advance_seconds / k)}/deadline)",
                ratio(growth),
                goal=goal,
                runs=str(s.windows),
            )
        )
        if s.bigger is not None:
            big_k, big_s = s.bigger
            rows.append(
                Row(
                    f"N={s.n:,}: advance, K={big_k:,} due",
                    f"{seconds(big_s)} ({seconds(big_s / big_k)}/deadline)",
                    goal=f"{big_s / s.advance_seconds:.1f}x the time of K={k:,} at the same N"
                    f" (grows with K: ~{big_k // k}x expected)",
                    runs="2",
                )
            )
    return rows


# -- main --------------------------------------------------------------------------------------


def _memory_total() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for text in f:
                if text.startswith("MemTotal:"):
                    return f"{int(text.split()[1]) / 1024**2:.1f} GiB memory"
    except OSError:
        pass
    return "memory unknown"


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.runtime",
        description="rulekit's runtime against transitions, python-statemachine and a dict table.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 20,000 events a pass, 10,000 cases for memory and opening, deadlines"
        " at N = 10,000 and 100,000, 3 repetitions, 5 s budget",
    )
    p.add_argument("--events", type=int, help="events a pass, per engine (default 100,000)")
    p.add_argument(
        "--cases", type=int, help="cases opened for memory and open time (default 100,000)"
    )
    p.add_argument(
        "--sizes",
        help="numbers of cases for the deadline rows, comma-separated"
        " (default 10000,100000,1000000)",
    )
    p.add_argument("--k", type=int, default=1000, help="deadlines due per advance (default 1,000)")
    p.add_argument(
        "--reps", type=int, help="repetitions per figure at least; the best is kept (default 5)"
    )
    p.add_argument(
        "--min-time",
        type=float,
        help="seconds an event figure's passes add up to at least (default 2)",
    )
    p.add_argument(
        "--budget",
        type=float,
        help="seconds of passes per figure before a slow engine stops early (default 20)",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    # `./dev bench ARGS` passes the same arguments to `python -m benchmarks` and to this
    # module: the options only that one has are accepted here and ignored.
    p.add_argument("--records", help=argparse.SUPPRESS)
    p.add_argument("--conditions", help=argparse.SUPPRESS)
    p.add_argument("--postgres", help=argparse.SUPPRESS)  # benchmarks.stores's
    args = p.parse_args(argv)
    quick = args.quick
    args.events = args.events if args.events is not None else (20_000 if quick else 100_000)
    args.ceiling_events = max(args.events, 200_000 if quick else 1_000_000)
    args.cases = args.cases if args.cases is not None else (10_000 if quick else 100_000)
    if args.sizes is None:
        args.sizes = "10000,100000" if quick else "10000,100000,1000000"
    try:
        args.sizes = sorted({int(x) for x in args.sizes.split(",")})
    except ValueError:
        p.error("--sizes takes numbers separated by commas")
    args.reps = args.reps if args.reps is not None else (3 if quick else 5)
    args.min_time = args.min_time if args.min_time is not None else (0.5 if quick else 2.0)
    args.budget = args.budget if args.budget is not None else (5.0 if quick else 20.0)
    if min(args.events, args.cases, args.k, args.reps, *args.sizes) < 1 or args.budget <= 0:
        p.error("--events, --cases, --sizes, --k, --reps and --budget must be positive")
    if min(args.sizes) < 2 * args.k:
        p.error("each of --sizes must be at least twice --k (a warm-up window and a timed one)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    print("rulekit runtime benchmark: steps, memory and opening against state-machine libraries;")
    print("deadlines at scale")
    print(f"machine: {machine_facts()}; {_memory_total()}")
    print(
        f"figures: best of >= {args.reps} repetitions (event passes adding up to >= {args.min_time:g} s;"
        f" a slow engine stops after {args.budget:g} s of passes); every engine alternates with (a)"
    )
    print(flush=True)

    problems: list[str] = []
    ceiling = dict_machine()
    machines: list[Machine] = [ceiling, rulekit_machine(), gc_tuned_machine()]
    missing: list[Missing] = []
    for peer in (transitions_machine(), statemachine_machine()):
        if isinstance(peer, Missing):
            missing.append(peer)
        else:
            machines.append(peer)

    speeds = measure_events(machines, ceiling, args, problems)
    opened = measure_open(machines, ceiling, args)
    for o in opened:
        if o.error is not None:
            problems.append(f"{o.label}: {o.error}")
    scales = measure_deadlines(args, problems)

    missing_rows = [Row(m.name, goal=f"not installed (pip install {m.package})") for m in missing]
    memory, opening = open_rows(opened, args)
    rows: list[Row | Section] = [
        Section(
            f"1. events/s: one case cycling through 5 guarded states, {args.events:,} events a"
            f" pass ((a): {args.ceiling_events:,})"
        ),
        *event_rows(speeds, args),
        *missing_rows,
        Section(
            f"2. memory per live case: {args.cases:,} open cases (tracemalloc after gc.collect)"
        ),
        *memory,
        *missing_rows,
        Section(f"3. time to open {args.cases:,} cases"),
        *opening,
        *missing_rows,
        Section(
            f"4. deadlines: a MemoryStore of N cases due over a week; store.advance(to) making"
            f" exactly K={args.k:,} due"
        ),
        *deadline_rows(scales, args),
    ]
    print(render(rows))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"(at the end: {load()}; compare with the machine line above; peak RSS {nbytes(peak)})")
    print()
    print(
        textwrap.fill(
            "How to read: figures are the best of the runs shown (passes, or advance windows)."
            " All ratios come from this run. 1 and 3: x base is speed relative to (a), the dict"
            " table, timed in alternation with that engine (a pass of (a), a pass of the engine),"
            " so it holds when the machine's load changes; x lib is speed relative to the faster"
            " library (1) or the quickest library way (3). 2: x base is bytes relative to (a)'s,"
            " x lib bytes relative to the leanest library way's (lower is leaner). 4: x base is"
            f" the time per case (open), bytes per case (memory) or time per advance relative to"
            f" N={min(args.sizes):,}'s: near 1.00x all the way down means it does not grow with N."
            " Absolute figures do not compare across machines. Targets are printed, never asserted.",
            width=100,
        )
    )
    print()
    notes = [m.note for m in machines]
    notes.append(
        f"memory and opening: a case each of {args.cases:,}, kept in a preallocated list (8 B a"
        " case, counted); facts n = i % 100, limit = 100 (small ints, shared by every engine)."
        " The open time is measured without tracemalloc, in a separate pass."
    )
    largest = max(args.sizes)
    notes.append(
        f"deadlines: opening times are {largest:,} distinct milliseconds (seeded) over the week"
        " after T; each case is opened with `store.open('w', {'n': ...}, at=..., id=f'c{i}')`"
        " (ids counted in memory); the policy's waiting state has `after 48h -> reminded`, and"
        " `reminded` has `after 30d -> expired`, so each fired deadline pushes the next into the"
        " heap. Each advance is timed from a fresh gc.collect; a first window is a warm-up. The"
        " memory is tracemalloc's over a separate opening of the same cases."
        + (
            ""
            if 1_000_000 in args.sizes
            else " (N = 1,000,000 runs only in the full run, not with --quick.)"
        )
    )
    print("Notes:")
    for text in notes:
        print(textwrap.fill(text, width=100, initial_indent="- ", subsequent_indent="  "))
    for m in missing:
        print(
            f"- {m.name}: not installed; `pip install {m.package}` (or ./dev bench) to measure it"
        )
    return exit_status(problems)


if __name__ == "__main__":
    sys.exit(main())
