"""rulekit: a declarative rule-configuration engine.

Public API (see docs/ and the README):

- :func:`load` / :func:`loads`: a policy (.rk, .yaml, compiled .json) -> :class:`Policy`.
- :class:`Engine` (and :class:`MemoryStore`): run cases of a policy, one atomic step at a time.
- :func:`compile_expression` and :class:`Expression`: CEL conditions, checked and compiled.
- :class:`Diagnostic` and the errors :class:`RuleError`, :class:`CompileError`,
  :class:`EvaluationError`, :class:`StepRefused`.
"""

from rulekit.diagnostics import Diagnostic
from rulekit.errors import CompileError, EvaluationError, RuleError, StepRefused
from rulekit.expr.interpreter import Clause, Explanation
from rulekit.expression import Expression, compile_expression
from rulekit.policy import Policy, load, loads
from rulekit.runtime import Case, Engine, MemoryStore, SimulatedClock, StepResult
from rulekit.runtime.store import Store as Store  # the contract of MemoryStore and SqlStore

__all__ = [
    "Case",
    "Clause",
    "CompileError",
    "Diagnostic",
    "Engine",
    "EvaluationError",
    "Explanation",
    "Expression",
    "MemoryStore",
    "Policy",
    "RuleError",
    "SimulatedClock",
    "StepRefused",
    "StepResult",
    "compile_expression",
    "load",
    "loads",
]

__version__ = "0.1.0"
