"""rulekit: a declarative rule-configuration engine.

Public API (every name below; documented in docs/api.md):

- :func:`load` / :func:`loads`: a policy (.rk, .yaml, compiled .json) -> :class:`Policy`.
- :func:`check`: a policy file -> :class:`CheckResult`, with every diagnostic (warnings too).
- :class:`Engine` (and :class:`MemoryStore`): run cases (:class:`Case`) of a policy, one atomic
  step at a time; a step's :class:`StepResult` lists the history :class:`Record` entries it
  appended and the :class:`Effect` list they emitted.
- :func:`open_store`: a durable store (SQLite or PostgreSQL); it raises :class:`StoreError`.
- :func:`compile_expression` and :class:`Expression`: CEL conditions, checked and compiled.
- :class:`Diagnostic` and the errors :class:`RuleError`, :class:`CompileError`,
  :class:`EvaluationError`, :class:`StepRefused`.
"""

from rulekit.analysis import check
from rulekit.core import __version__
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.errors import CompileError, EvaluationError, RuleError, StepRefused
from rulekit.expr.expression import Expression, compile_expression
from rulekit.expr.interpreter import Clause, Explanation
from rulekit.policy import CheckResult, Policy, load, loads
from rulekit.runtime import (
    Case,
    Cause,
    Effect,
    Engine,
    MemoryStore,
    Record,
    SimulatedClock,
    StepResult,
)
from rulekit.runtime.store import Store
from rulekit.stores import CaseNotFound, StoreError, open_store

__all__ = [
    "Case",
    "CaseNotFound",
    "Cause",
    "CheckResult",
    "Clause",
    "CompileError",
    "Diagnostic",
    "Effect",
    "Engine",
    "EvaluationError",
    "Explanation",
    "Expression",
    "MemoryStore",
    "Policy",
    "Record",
    "RuleError",
    "SimulatedClock",
    "StepRefused",
    "StepResult",
    "Store",
    "StoreError",
    "__version__",
    "check",
    "compile_expression",
    "load",
    "loads",
    "open_store",
]
