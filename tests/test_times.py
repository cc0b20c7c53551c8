"""The worst-case time a case stays open if nobody acts (rulekit.analysis.times).

- the analysis as data: small workflows, each with the figure expected per
  state (a bound and its path, or unbounded and why);
- the figures against the engine: for every workflow of the shipped policy
  and of the small ones, cases entering each state a case can reach, with
  facts drawn from a seeded sample, are left alone until the bound has
  passed: each must have closed by then. And a case opened with facts that
  make the reported path's conditions hold takes exactly that path, closing
  exactly at the bound.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

import rulekit
from rulekit.analysis.times import Figure, WorkflowTimes, max_open, worst_case_times
from rulekit.expr.types import Type
from rulekit.policy import ir
from rulekit.runtime import Engine
from rulekit.runtime.model import Record
from support import ROOT

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=CST)
US = timedelta(microseconds=1)
H = timedelta(hours=1)
D = timedelta(days=1)
SHIPPED = ROOT / "rules" / "kuaishou_after_sales.rk"

HEADER = """
policy t.times version "1"
facts {
  flag: bool
  other: bool
  since.at: time?
  wait.within: duration?
}
const GRACE = 7d
actors consumer, merchant
event approve by merchant
event nudge by consumer
"""

# name -> (workflow text, {state: (bound or None, the path, or a word of the reason)})
CASES: dict[str, tuple[str, dict[str, tuple[timedelta | None, str]]]] = {
    "a chain of deadlines adds up": (
        """
        initial state a { on approve -> done  after 48h -> b }
        state b { after GRACE -> done }
        final state done
        """,
        {
            "a": (9 * D, "a --after 48h--> b --after 7d (GRACE)--> done"),
            "b": (7 * D, "b --after 7d (GRACE)--> done"),
        },
    ),
    "a guarded shortest deadline may not fire: the next one counts": (
        """
        initial state a { after 1h when flag -> done  after 5h -> b }
        state b { after 2h -> done }
        final state done
        """,
        {"a": (7 * H, "a --after 5h--> b --after 2h--> done")},
    ),
    "an unconditional shorter deadline cuts off a longer one": (
        """
        initial state a { after 1h -> done  after 5h -> b }
        state b { after 2h -> done }
        final state done
        """,
        {"a": (H, "a --after 1h--> done")},
    ),
    "an automatic transition may lead to a longer way": (
        """
        initial state a { when flag -> b  after 1h -> done }
        state b { after 10h -> done }
        final state done
        """,
        {"a": (10 * H, "a --when flag--> b --after 10h--> done")},
    ),
    "a deadline that stays re-checks automatic transitions": (
        """
        initial state a {
          when other -> b
          after 1h stay set other = true
          after 3h -> done
        }
        state b { after 5h -> done }
        final state done
        """,
        {"a": (6 * H, "a --after 1h (stays)--> a --when other--> b --after 5h--> done")},
    ),
    "a constant condition is decided": (
        """
        initial state a { after 1h when false -> b  after 2h when true -> done  after 9h -> b }
        state b { after 10h -> done }
        final state done
        """,
        {"a": (2 * H, "a --after 2h when true--> done")},
    ),
    "a state that waits is unbounded": (
        """
        initial state a { on approve -> b  after 1h -> b }
        state b waits "the merchant decides" { on approve -> done  on nudge stay }
        final state done
        """,
        {
            "a": (None, '`b` waits for merchant (approve): "the merchant decides"'),
            "b": (None, '`b` waits for merchant (approve): "the merchant decides"'),
        },
    ),
    "a state that waits unbounded by design is unbounded here too": (
        """
        initial state a { on approve -> b  after 1h -> b }
        state b waits unbounded "the board decides" { on approve -> done }
        final state done
        """,
        {"a": (None, '"the board decides" (unbounded by design)')},
    ),
    "a state with no deadline is unbounded": (
        """
        initial state a { on approve -> done  on nudge -> done }
        final state done
        """,
        {"a": (None, "`a` waits for consumer or merchant (approve, nudge): no deadline")},
    ),
    "every way out guarded: the case may stay": (
        """
        initial state a { when flag -> done  after 1h when other -> done  on approve -> done }
        final state done
        """,
        {"a": (None, "`a` waits for merchant (approve) if none of its conditions holds")},
    ),
    "a cycle of deadlines is unbounded": (
        """
        initial state a { after 1h -> b }
        state b { after 1h when flag -> a  after 2h -> done }
        final state done
        """,
        {
            "a": (None, "back in `a`: the case can go round this cycle forever"),
            # found while looking from `a`: `b` leads back into `a`, which leads to `b`
            "b": (None, "back in `a`: the case can go round this cycle forever"),
        },
    ),
    "a deadline counted from a fact can be due at any time": (
        """
        initial state a { after 10d from since.at -> done  on approve -> done }
        final state done
        """,
        {"a": (None, "`after 10d from since.at` in `a` is due at a time the facts set")},
    ),
    "a deadline read from a fact is bounded by a fixed one that leaves first": (
        """
        initial state a { after wait.within -> b  after 2d -> done }
        state b { after 1h -> done }
        final state done
        """,
        {
            "a": (
                2 * D + H,
                "a --after wait.within (at most 2d: a fixed deadline leaves first)--> b --after 1h--> done",
            )
        },
    ),
}


def _workflow(name: str) -> ir.Policy:
    text, _ = CASES[name]
    return rulekit.loads(HEADER + "workflow w {" + text + "}", "rk", filename="times.rk")


@pytest.mark.parametrize("name", CASES)
def test_figures(name: str) -> None:
    (wf,) = worst_case_times(_workflow(name))
    got = {f.state: f for f in wf.states}
    for state, (bound, expected) in CASES[name][1].items():
        figure = got[state]
        assert figure.bound == bound, (state, str(figure))
        if bound is None:
            assert figure.reason is not None and expected in figure.reason, str(figure)
        else:
            assert str(figure).endswith(": " + expected), str(figure)


def test_the_workflow_figures() -> None:
    (wf,) = worst_case_times(_workflow("a chain of deadlines adds up"))
    assert wf.opened == wf.worst and wf.opened.state == "a" and wf.opened.bound == 9 * D
    (wf,) = worst_case_times(_workflow("a state that waits is unbounded"))
    assert (wf.opened.bound, wf.worst.state) == (None, "a")
    (wf,) = worst_case_times(_workflow("an unconditional shorter deadline cuts off a longer one"))
    # The worst over every state a case can reach: a case already in `b` may wait 2h.
    assert (wf.opened.bound, wf.worst.state, wf.worst.bound) == (H, "b", 2 * H)


def test_assumptions_are_shown_with_the_figures() -> None:
    policy = rulekit.load(ROOT / "tests" / "policies" / "library_loans.rk")
    (wf,) = worst_case_times(policy)
    figures = {f.state: str(f) for f in wf.states}
    assert figures["overdue"] == (
        "closes within 30d: overdue --after 30d (assumption: "
        '"the 30 days count from the day it fell overdue")--> lost'
    )
    assert figures["appeal_board"].endswith(
        '(assumption: "only the member appeals, never the librarian")'
    )


def test_max_open_leaves_out_the_states_that_wait_by_design() -> None:
    """--max-open stops measuring where a case waits with no deadline by design, and measures
    what comes after it: from `a`, 1h up to `b`; from `c` (after the board), 3d."""
    policy = rulekit.loads(
        HEADER
        + """workflow w {
          initial state a { on approve -> b  after 1h -> b }
          state b waits unbounded "the board decides" { on approve -> c }
          state c { on approve -> done  after 3d -> done }
          final state done
        }""",
        "rk",
        filename="times.rk",
    )
    (wf,) = worst_case_times(policy, by_design=True)
    figures = {f.state: f for f in wf.states}
    assert figures["a"].bound == H
    assert str(figures["a"]) == (
        "within 1h: a --after 1h--> b; `b` waits unbounded by design: left out of --max-open"
    )
    assert (wf.worst.state, wf.worst.bound) == ("c", 3 * D)
    found = max_open(policy, 2 * D)
    assert [(d.code, d.line) for d in found] == [("RK0710", 13), ("RK0730", 15)]
    assert [d.code for d in max_open(policy, 3 * D)] == ["RK0730"]


def test_the_shipped_policy() -> None:
    figures = {w.workflow: w for w in worst_case_times(rulekit.load(SHIPPED))}
    assert figures["refund_only"].opened.bound == 2 * D
    assert figures["return_refund"].opened.bound == 12 * D
    assert str(figures["return_refund"].opened) == (
        "closes within 12d: awaiting_merchant --after 48h (REVIEW_WINDOW)--> awaiting_return "
        "--after 10d (RETURN_WINDOW)--> return_expired"
    )
    for w in figures.values():
        assert w.worst.bound is None and w.worst.reason is not None
        assert "`platform_review` waits for platform" in w.worst.reason
    assert figures["exchange_repair"].opened.bound is None


# =====================================================================================
# Against the engine
# =====================================================================================
def _value(t: Type, rng: random.Random) -> Any:
    kind = t.kind
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.randint(-5, 500)
    if kind == "double":
        return rng.uniform(-5, 500)
    if kind == "money":
        return Decimal(rng.randint(0, 60000)) / 100
    if kind == "string":
        return rng.choice(["", "x", "consumer", "merchant"])
    if kind == "timestamp":
        return T0 + timedelta(minutes=rng.randint(-60 * 24 * 30, 60 * 24 * 30))
    if kind == "duration":
        return timedelta(minutes=rng.randint(0, 60 * 24 * 20))
    if kind == "enum":
        return rng.choice([name for name, _ in t.fields])
    raise AssertionError(f"no sample values for {t}")  # pragma: no cover


def _facts(policy: ir.Policy, wf: ir.Workflow, rng: random.Random) -> dict[str, Any]:
    return {
        path: _value(f.type, rng)
        for path, f in policy.facts.items()
        if not f.optional or path in wf.requires or rng.random() < 0.7
    }


def _closed_at(history: list[Record]) -> datetime:
    """When the last move the engine made by itself happened (the `advance` record is later)."""
    return [r.at for r in history if r.kind in ("deadline", "auto")][-1]


def _entering(policy: ir.Policy, wf: ir.Workflow, state: str) -> Engine:
    """An engine whose cases of ``wf`` open by entering ``state``: its entry, as a deadline
    or an automatic transition into it would make it."""
    moved = replace(wf, initial=state)
    return Engine(replace(policy, workflows={**policy.workflows, wf.name: moved}))


def _policies() -> list[tuple[str, ir.Policy]]:
    return [("shipped", rulekit.load(SHIPPED))] + [(name, _workflow(name)) for name in CASES]


@pytest.mark.parametrize(("label", "policy"), _policies(), ids=[n for n, _ in _policies()])
def test_no_case_stays_open_longer_than_its_bound(label: str, policy: ir.Policy) -> None:
    rng = random.Random(f"times {label}")
    for times in worst_case_times(policy):
        wf = policy.workflows[times.workflow]
        for figure in times.states:
            if figure.bound is None:
                continue
            engine = _entering(policy, wf, figure.state)
            for _ in range(40):
                facts = _facts(policy, wf, rng)
                case = engine.open(wf.name, facts, at=T0)
                engine.advance(case, T0 + figure.bound + US)
                assert case.state.final, (wf.name, figure.state, facts, str(figure))
                assert _closed_at(case.history) <= T0 + figure.bound


# (policy, workflow, facts that make the conditions on the reported path hold)
PATHS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "shipped",
        "refund_only",
        {
            "order": {"amount": 500, "paid_at": T0 - H, "shipped": True},
            "shop": {"fast_refund_enabled": False},
        },
    ),
    (
        "shipped",
        "return_refund",
        {
            "order": {"amount": 500, "paid_at": T0 - H, "shipped": True},
            "shop": {"fast_refund_enabled": False},
        },
    ),
    ("a chain of deadlines adds up", "w", {"flag": False, "other": False}),
    (
        "a guarded shortest deadline may not fire: the next one counts",
        "w",
        {"flag": False, "other": False},
    ),
    ("an automatic transition may lead to a longer way", "w", {"flag": True, "other": False}),
    (
        "a deadline that stays re-checks automatic transitions",
        "w",
        # `other` becomes true while the case waits: the deadline that stays sets it.
        {"flag": False, "other": False},
    ),
    ("a constant condition is decided", "w", {"flag": False, "other": False}),
]


def _figure_of(policy: ir.Policy, workflow: str) -> WorkflowTimes:
    return next(w for w in worst_case_times(policy) if w.workflow == workflow)


@pytest.mark.parametrize(("label", "workflow", "facts"), PATHS, ids=[p[0] for p in PATHS])
def test_the_reported_path_is_taken(label: str, workflow: str, facts: dict[str, Any]) -> None:
    policy = dict(_policies())[label]
    figure: Figure = _figure_of(policy, workflow).opened
    assert figure.bound is not None
    engine = Engine(policy)
    case = engine.open(workflow, facts, at=T0)
    engine.advance(case, T0 + figure.bound + US)
    moves = [
        (r.source, r.target or r.source) for r in case.history if r.kind in ("deadline", "auto")
    ]
    assert moves == [(s.source, s.target) for s in figure.path]
    assert case.state.final and _closed_at(case.history) == T0 + figure.bound


def test_a_chain_of_thousands_of_states_needs_no_deep_recursion() -> None:
    """The search keeps its own stack: a 3,000-state chain (Python's recursion limit is
    1,000 frames) and a cycle at its end are worked out, not a RecursionError."""
    n = 3_000
    states = ["  initial state s0 { after 1h -> s1 }"]
    states += [f"  state s{i} {{ after 1h -> s{i + 1} }}" for i in range(1, n)]
    chain = "\n".join([*states, f"  final state s{n}"])
    loop = chain.replace(f"after 1h -> s{n} }}", "after 1h -> s0 }")
    for body, bound in ((chain, timedelta(hours=n)), (loop, None)):
        policy = rulekit.loads(f'policy p version "1"\nactors a\nworkflow w {{\n{body}\n}}\n')
        [times] = worst_case_times(policy)
        assert times.opened.bound == bound
        assert len(times.states) == n
        if bound is None:
            assert times.opened.reason is not None and "cycle" in times.opened.reason
        else:
            assert len(times.opened.path) == n


CLOCKED = """
policy t.clocked
actors a
event e by a
workflow w {
  clock c = 1d starts at open paused in waiting on expiry in s -> stuck
  clock d = 1d starts at open on expiry -> done
  initial state s {
    after 2d -> done
    on e -> waiting
  }
  state waiting {
    after 3d -> done
  }
  state stuck { on e -> done }
  final state done
}
"""


def test_a_clock_expiry_is_one_more_way_out_of_the_states_it_runs_in() -> None:
    """`s` would close within 2d by its deadline, but clock `c` may run out first into a
    state that waits; in `waiting` (where `c` is paused and `d` leads to a final state) the
    figure is the state's own."""
    (wf,) = worst_case_times(rulekit.loads(CLOCKED, "rk", "clocked.rk"))
    figures = {f.state: f for f in wf.states}
    assert figures["s"].bound is None
    assert [s.trigger for s in figures["s"].path] == ["clock c runs out"]
    assert figures["waiting"].bound == timedelta(days=3)
