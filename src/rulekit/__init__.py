"""rulekit: a declarative rule-configuration engine.

Public API (every name below; documented in docs/api.md):

- :func:`load` / :func:`loads`: a policy (.rk, .yaml, compiled .json) -> :class:`Policy`.
- :func:`check`: a policy file -> :class:`CheckResult`, with every diagnostic (warnings too),
  and the warnings inline directives silenced (:class:`Suppressed`).
- :class:`Engine` (and :class:`MemoryStore`): run cases (:class:`Case`) of a policy, one atomic
  step at a time; a step's :class:`StepResult` lists the history :class:`Record` entries it
  appended and the :class:`Effect` list they emitted.
- :func:`open_store`: a durable store (SQLite or PostgreSQL); it raises :class:`StoreError`.
- :func:`compile_expression` and :class:`Expression`: CEL conditions, checked and compiled.
- :func:`verify_signature`: check a webhook delivery from ``rulekit relay``
  (:class:`SignatureError` when it does not verify).
- :class:`Diagnostic` and the errors :class:`RuleError`, :class:`CompileError`,
  :class:`EvaluationError`, :class:`StepRefused`.

The names are loaded on first use (PEP 562), so a program that imports one part
of rulekit, as each ``rulekit`` command does, loads only that part.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rulekit.analysis import check
    from rulekit.core import __version__
    from rulekit.core.diagnostics import Diagnostic, Suppressed
    from rulekit.core.errors import CompileError, EvaluationError, RuleError, StepRefused
    from rulekit.expr.expression import Expression, compile_expression
    from rulekit.expr.interpreter import Clause, Explanation
    from rulekit.policy import CheckResult, Policy, load, loads
    from rulekit.relay.signing import SignatureError, verify_signature
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

#: Each public name -> the module it is defined in.
_EXPORTS = {
    "Case": "rulekit.runtime",
    "CaseNotFound": "rulekit.stores",
    "Cause": "rulekit.runtime",
    "CheckResult": "rulekit.policy",
    "Clause": "rulekit.expr.interpreter",
    "CompileError": "rulekit.core.errors",
    "Diagnostic": "rulekit.core.diagnostics",
    "Effect": "rulekit.runtime",
    "Engine": "rulekit.runtime",
    "EvaluationError": "rulekit.core.errors",
    "Explanation": "rulekit.expr.interpreter",
    "Expression": "rulekit.expr.expression",
    "MemoryStore": "rulekit.runtime",
    "Policy": "rulekit.policy",
    "Record": "rulekit.runtime",
    "RuleError": "rulekit.core.errors",
    "SignatureError": "rulekit.relay.signing",
    "SimulatedClock": "rulekit.runtime",
    "StepRefused": "rulekit.core.errors",
    "StepResult": "rulekit.runtime",
    "Store": "rulekit.runtime.store",
    "StoreError": "rulekit.stores",
    "Suppressed": "rulekit.core.diagnostics",
    "__version__": "rulekit.core",
    "check": "rulekit.analysis",
    "compile_expression": "rulekit.expr.expression",
    "load": "rulekit.policy",
    "loads": "rulekit.policy",
    "open_store": "rulekit.stores",
    "verify_signature": "rulekit.relay.signing",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module the first time it is asked for."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rulekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


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
    "SignatureError",
    "SimulatedClock",
    "StepRefused",
    "StepResult",
    "Store",
    "StoreError",
    "Suppressed",
    "__version__",
    "check",
    "compile_expression",
    "load",
    "loads",
    "open_store",
    "verify_signature",
]
