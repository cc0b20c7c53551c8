"""Regression tests of the bugs the engine tests found (in 7a0467b and 08bf2df; fixed
since).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

import rulekit
from rulekit.runtime import Engine

from .helpers import (
    MONEY_SUM,
    T0,
    TIMERS,
    D,
    H,
    M,
    compare_with_replay,
    engine_for,
    refused,
    snapshot,
)

OVERDUE = """
policy t.overdue
facts {
  order.paid_at: time
  parcel.sent_at: time?
}
actors consumer
event ship(sent_at: time) by consumer
workflow w {
  initial state awaiting {
    at order.paid_at + 30d -> expired
    on ship -> in_transit set parcel.sent_at = event.sent_at
  }
  state in_transit {
    after 10d from parcel.sent_at -> late
  }
  final state late
  final state expired
}
workflow by_update {
  initial state awaiting {
    when has(parcel.sent_at) -> in_transit
  }
  state in_transit {
    after 10d from parcel.sent_at -> late
  }
  final state late
}
"""


def overdue_case(how: str) -> Any:
    """A case whose step at ``case.now`` entered a state with a deadline already due."""
    engine = engine_for(OVERDUE)
    if how == "open":
        # `at order.paid_at + 30d` was due a day before the case was opened
        return engine.open("w", {"order.paid_at": T0 - 31 * D}, at=T0)
    if how == "event":
        case = engine.open("w", {"order.paid_at": T0}, at=T0)
        # sent 11 days ago: `after 10d from parcel.sent_at` is overdue when entered
        engine.send(case, "ship", "consumer", {"sent_at": T0 - 11 * D}, at=T0 + H)
        return case
    case = engine.open("by_update", {"order.paid_at": T0}, at=T0)
    engine.update(case, {"parcel.sent_at": T0 - 11 * D}, at=T0 + H)  # -> in_transit, overdue
    return case


@pytest.mark.parametrize("how", ["open", "event", "update"])
def test_bug_a_deadline_overdue_on_entry_fires_in_the_same_step(how: str) -> None:
    """Was (7a0467b): the deadline stayed pending (next_deadline in the past) until some
    later step, so the state at T depended on whether a zero-length advance(case, T) was
    called."""
    engine = engine_for(OVERDUE)
    case = overdue_case(how)
    assert case.state.name == ("expired" if how == "open" else "late")
    assert case.history[-1].kind == "deadline"
    assert case.next_deadline is None
    before = snapshot(case)
    engine.advance(case, case.now)  # zero-length: nothing changes
    assert snapshot(case) == before
    compare_with_replay(engine, case)


@pytest.mark.parametrize("how", ["event", "update"])
def test_bug_an_overdue_deadline_fired_in_a_step_is_recorded_at_the_steps_time(
    how: str,
) -> None:
    """Was (08bf2df): recorded at max(due, the previous step's time), before the event or
    update that entered its state: the history's times went back."""
    case = overdue_case(how)
    entered, fired = case.history[-2], case.history[-1]
    assert (entered.at, entered.target) == (T0 + H, "in_transit")
    assert (fired.kind, fired.source, fired.target) == ("deadline", "in_transit", "late")
    assert fired.at == T0 + H  # was T0, an hour before the state was entered


NOTED = """
policy t.noted
facts {
  parcel.sent_at: time?
  late.noted_at: time?
}
actors consumer
event ship(sent_at: time) by consumer
workflow w {
  initial state awaiting {
    on ship -> in_transit set parcel.sent_at = event.sent_at
  }
  state in_transit {
    after 10d from parcel.sent_at -> late set late.noted_at = now
  }
  final state late
}
"""


@pytest.mark.parametrize(
    ("sent", "advance_to", "recorded"),
    [
        # due in the future: fires when the clock passes it, recorded at its due time
        (T0, T0 + 12 * D, T0 + 10 * D),
        # already due when its state is entered (at T0 + H): recorded at the entry, not before
        (T0 - 11 * D, T0 + H, T0 + H),
    ],
    ids=["due-later", "overdue-on-entry"],
)
def test_a_fired_deadline_is_recorded_and_sees_now_at_its_due_time_or_its_states_entry(
    sent: datetime, advance_to: datetime, recorded: datetime
) -> None:
    """runtime.md, steps 1 and 5: both sides of the one rule (never before the entry)."""
    engine = engine_for(NOTED)
    case = engine.open("w", {}, at=T0)
    engine.send(case, "ship", "consumer", {"sent_at": sent}, at=T0 + H)
    engine.advance(case, advance_to)
    fired = [r for r in case.history if r.kind == "deadline"]
    assert [(r.target, r.at) for r in fired] == [("late", recorded)]
    assert case.facts["late"]["noted_at"] == recorded  # `now` in its transition


TIME_ONLY = """
policy t.time_only
facts {
  order.paid_at: time
  order.note: string?
}
actors consumer
event poke by consumer
workflow w {
  initial state waiting {
    when since(order.paid_at) > 6h -> late
    on poke stay
  }
  final state late
}
"""


@pytest.mark.parametrize("step", ["advance", "update", "stay event"])
def test_automatic_transitions_are_checked_at_steps_never_because_time_passes(step: str) -> None:
    """language.md, "When automatic transitions are checked": time alone is not a step."""
    engine = engine_for(TIME_ONLY)
    case = engine.open("w", {"order.paid_at": T0}, at=T0)
    later = T0 + 7 * H
    if step == "advance":
        engine.advance(case, later)
        assert case.state.name == "waiting"  # seven hours passed, nothing checked it
        return
    if step == "update":
        engine.update(case, {"order.note": "any change"}, at=later)
    else:
        engine.send(case, "poke", "consumer", at=later)
    assert case.state.name == "late"


def test_bug_replay_of_an_overdue_deadline_fired_in_a_step() -> None:
    """Was (08bf2df), same cause: recorded at max(due, case.now), where case.now may come
    from an advance that fired nothing (not in the history): the replay differed."""
    engine = engine_for(OVERDUE)
    case = engine.open("w", {"order.paid_at": T0}, at=T0)
    engine.advance(case, T0 + 30 * M)  # fires nothing: not recorded
    engine.send(case, "ship", "consumer", {"sent_at": T0 - 11 * D}, at=T0 + 30 * M)
    assert case.history[-1].at == T0 + 30 * M
    rebuilt = engine.replay(case.history)
    assert rebuilt.history[-1].at == T0 + 30 * M  # was T0
    compare_with_replay(engine, case)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", ["open", "update", "payload"])
def test_bug_non_finite_float_money_is_refused(value: float, where: str) -> None:
    """Was: a float NaN/infinity was read as Decimal('NaN')/Decimal('Infinity')."""
    engine = engine_for(MONEY_SUM)
    if where == "open":
        with refused("invalid_fact"):
            engine.open("w", {"a": value, "b": 0}, at=T0)
        return
    case = engine.open("w", {"a": 0, "b": 0}, at=T0)
    if where == "update":
        with refused("invalid_fact"):
            engine.update(case, {"a": value}, at=T0)
    else:
        with refused("invalid_payload"):
            engine.send(case, "pay", "merchant", {"extra": value}, at=T0)


def test_bug_allowed_at_a_later_time_sees_the_deadlines_due_before_it() -> None:
    """Was: allowed(case, at) listed the events of the state before the deadline."""
    engine = engine_for(TIMERS)
    case = engine.open("review", {"n": 0}, at=T0)
    later = T0 + 49 * H  # the 48h deadline is due before it
    with refused("case_closed"):
        engine.send(case, "approve", "merchant", at=later)
    assert engine.allowed(case, later) == {}
    assert engine.allowed(case, T0 + 48 * H) == {
        "approve": ("merchant",),
        "note": ("consumer",),
        "remind": ("consumer",),
    }
    assert engine.allowed(case) == engine.allowed(case, T0 + 48 * H)
    assert case.state.name == "waiting" and case.history[-1].kind == "open"  # untouched


HAS_POLICY = """\
policy has version "1"
facts {
  order.amount: money
  offer.service: string?
  offer.note.text: string?
}
actors a
event go by a
workflow w {
  initial state s {
    on go when !has(offer.service) && !has(offer.note.text) -> unset
    on go when has(offer.service) -> set
  }
  final state unset
  final state set
}
"""


@pytest.mark.parametrize(
    ("facts", "state"),
    [
        ({"order.amount": 1}, "unset"),  # no fact of `offer` at all: has() is false, not an error
        ({"order.amount": 1, "offer.note.text": "x"}, "set_none"),
        ({"order.amount": 1, "offer.service": "repair"}, "set"),
    ],
)
def test_has_is_false_for_a_declared_fact_whose_group_has_nothing_set(
    facts: dict[str, object], state: str
) -> None:
    engine = Engine(rulekit.loads(HAS_POLICY))
    case = engine.open("w", facts, at=T0)
    if state == "set_none":
        with pytest.raises(rulekit.StepRefused) as refused:
            engine.send(case, "go", "a", at=T0)
        assert refused.value.code == "guard_failed"
        return
    assert engine.send(case, "go", "a", at=T0).state == state
