"""The exceptions of rulekit's public API (all importable from ``rulekit``)."""

from __future__ import annotations

from collections.abc import Sequence

from rulekit.core.diagnostics import Diagnostic, render


class RuleError(Exception):
    """Base class of every error rulekit raises on purpose."""


class CompileError(RuleError):
    """A rule file or expression does not parse or does not check.

    ``diagnostics`` lists every problem found, sorted by position; ``str()``
    renders them compiler-style with the source line and a caret.
    """

    def __init__(self, diagnostics: Sequence[Diagnostic], rendered: str | None = None) -> None:
        self.diagnostics = list(diagnostics)
        self.rendered = rendered or "\n\n".join(render(d, None) for d in self.diagnostics)
        super().__init__(self.rendered)


class EvaluationError(RuleError):
    """An expression failed at run time.

    ``expression`` is the failing sub-expression as written, ``values`` the
    values it read (by sub-expression text), ``source`` the whole expression.
    """

    def __init__(
        self,
        message: str,
        *,
        expression: str | None = None,
        values: dict[str, str] | None = None,
        source: str | None = None,
    ) -> None:
        self.message = message
        self.expression = expression
        self.values = dict(values or {})
        self.source = source
        super().__init__(self._format())

    def _format(self) -> str:
        text = self.message
        if self.expression is not None:
            text += f" in `{self.expression}`"
        if self.values:
            text += " (" + ", ".join(f"{k} = {v}" for k, v in self.values.items()) + ")"
        return text


#: The codes a step (an event, a fact update) or an opening can be refused with: the
#: error codes of the scenario contract (scenarios.md), counted by scenario coverage.
REFUSAL_CODES = (
    "unknown_event",
    "event_not_allowed",
    "actor_not_allowed",
    "guard_failed",
    "invalid_payload",
    "invalid_fact",
    "case_closed",
)


class StepRefused(RuleError):
    """An event or fact update was refused; ``code`` is a scenarios.md error code."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")
