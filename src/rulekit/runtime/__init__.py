"""Running cases: the engine and what it works on (see :mod:`.engine`)."""

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
