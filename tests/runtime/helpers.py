"""Shared by the engine tests in this folder: fixed times, an engine per inline policy,
positions in a policy, snapshots of a case, and the policies more than one file runs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

import pytest

import rulekit
from rulekit.runtime import Engine

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=CST)
US = timedelta(microseconds=1)
S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)
FILE = "inline.rk"


@cache
def engine_for(text: str) -> Engine:
    return Engine(rulekit.loads(text, "rk", filename=FILE))


def position(text: str, snippet: str) -> str:
    """`inline.rk:LINE:COL` of the first line containing ``snippet`` (its first non-blank)."""
    for n, line in enumerate(text.splitlines(), 1):
        if snippet in line:
            return f"{FILE}:{n}:{len(line) - len(line.lstrip()) + 1}"
    raise AssertionError(f"{snippet!r} not in the policy")


def snapshot(case: Any) -> tuple[Any, ...]:
    """Everything a step may change, as deep copies."""
    return (
        case.state.name,
        case.final,
        copy.deepcopy(case.facts),
        # (due, order, transition, ...): the transition by identity, the rest by value
        [tuple(x if isinstance(x, datetime | int) else id(x) for x in d) for d in case.deadlines],
        copy.deepcopy(case.effects),
        copy.deepcopy(case.history),
        case.now,
        dict(case.keys or {}),
        dict(case.clocks),
    )


@contextmanager
def refused(code: str) -> Iterator[pytest.ExceptionInfo[rulekit.StepRefused]]:
    with pytest.raises(rulekit.StepRefused) as info:
        yield info
    assert info.value.code == code, f"refused with {info.value.code}, expected {code}: {info.value}"


def names(effects: Any) -> list[str]:
    return [e.name for e in effects]


def kinds(case: Any) -> list[str]:
    return [r.kind for r in case.history]


# -- policies that several files run ------------------------------------------------

#: deadlines: a timer, a chain of timers, several timers in one state
TIMERS = """
policy t.timers
facts {
  n: int
}
actors consumer, merchant
event approve by merchant
event note by consumer
event remind by consumer
effect timeout
effect noted
effect e1
effect e1b
effect e2
effect e3
workflow review {
  initial state waiting {
    after 48h -> timed_out emit timeout
    on approve -> approved
    on note stay set n = n + 1 emit noted
    on remind -> waiting
  }
  final state timed_out
  final state approved
}
workflow chain {
  initial state s1 { after 1h -> s2 }
  state s2 { after 1h -> s3 }
  state s3 { after 1h -> done }
  final state done
}
workflow many {
  initial state a {
    after 3h stay emit e3
    after 1h stay emit e1
    after 2h stay emit e2
    after 1h stay emit e1b
    on note stay set n = n + 1 emit noted
  }
}
"""


#: one transition for each reason a step may be refused
REFUSE = """
policy t.refuse
facts {
  amount: money
  reason.text: string?
  paid_at: time
}
enum Kind { goods, service }
actors consumer, merchant, platform
event approve by merchant
event reject(reason: string, kind: Kind) by merchant
event cancel by consumer
event escalate by consumer
event decide(amount: money, at: time, wait: duration) by platform
effect refund(amount: money)
workflow w {
  initial state open {
    on approve when amount < 100 -> done emit refund(amount: amount)
    on reject when event.reason != "" -> done set reason.text = event.reason
    on cancel by consumer -> done
    on decide when event.amount <= amount -> done emit refund(amount: event.amount)
    after 2h stay emit refund(amount: 1)
  }
  final state done
}
"""


OK_REJECT = {"reason": "broken", "kind": "goods"}


#: money added in a guard, a payload and an effect
MONEY_SUM = """
policy t.sum
facts {
  a: money
  b: money
}
actors merchant
event pay(extra: money) by merchant
effect refund(amount: money)
workflow w {
  initial state s {
    on pay when a + b + event.extra == money("0.6") -> done emit refund(amount: a + b + event.extra)
  }
  final state done
}
"""


def compare_with_replay(engine: Engine, case: Any) -> None:
    rebuilt = engine.replay(case.history)
    if rebuilt.now < case.now:  # an advance that fired nothing is not recorded
        engine.advance(rebuilt, case.now)
    assert rebuilt.state.name == case.state.name
    assert (rebuilt.final, rebuilt.outcome) == (case.final, case.outcome)
    assert rebuilt.facts == case.facts
    assert rebuilt.effects == case.effects
    assert rebuilt.history == case.history
    assert rebuilt.deadlines == case.deadlines
    assert rebuilt.clocks == case.clocks
    assert rebuilt.next_deadline == case.next_deadline
