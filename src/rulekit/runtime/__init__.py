"""The runtime: running cases of a compiled policy, one atomic step at a time.

:mod:`.engine` (steps: open, send, update, advance), :mod:`.model` (cases,
records, effects, clocks), :mod:`.timeline` (a case's history as people read
it), :mod:`.explain` (why a case is where it is, from its history), :mod:`.store` (the ``Store`` contract every store keeps) and
:mod:`.memory` (the in-memory store, for libraries and tests).

Layer: imports :mod:`rulekit.core`, :mod:`rulekit.expr` and :mod:`rulekit.policy`.
"""

from rulekit.runtime.engine import Engine
from rulekit.runtime.memory import MemoryStore
from rulekit.runtime.model import Case, Cause, Effect, Record, SimulatedClock, StepResult
from rulekit.runtime.store import Store

__all__ = [
    "Case",
    "Cause",
    "Effect",
    "Engine",
    "MemoryStore",
    "Record",
    "SimulatedClock",
    "StepResult",
    "Store",
]
