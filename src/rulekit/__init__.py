"""rulekit: a declarative rule-configuration engine.

Public API (see docs/ and the README):

- :func:`load` / :func:`loads`: a policy (.rk, .yaml, compiled .json) -> :class:`Policy`.
- :func:`compile_expression` and :class:`Expression`: CEL conditions, checked and compiled.
- :class:`Diagnostic` and the errors :class:`RuleError`, :class:`CompileError`,
  :class:`EvaluationError`, :class:`StepRefused`.
"""

from rulekit.diagnostics import Diagnostic
from rulekit.errors import CompileError, EvaluationError, RuleError, StepRefused
from rulekit.expr.interpreter import Clause, Explanation
from rulekit.expression import Expression, compile_expression
from rulekit.policy import Policy, load, loads

__all__ = [
    "Clause",
    "CompileError",
    "Diagnostic",
    "EvaluationError",
    "Explanation",
    "Expression",
    "Policy",
    "RuleError",
    "StepRefused",
    "compile_expression",
    "load",
    "loads",
]

__version__ = "0.1.0"
