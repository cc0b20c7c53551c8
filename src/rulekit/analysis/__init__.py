"""Analysis: what rulekit can say about a checked policy without running it.

:mod:`.lint` (the warnings ``rulekit check`` adds: unreachable states, dead
transitions, overlapping guards...), :mod:`.guards` (deciding whether
conditions can hold together), :mod:`.times` (worst-case times to an outcome),
:mod:`.diff` (what changed between two versions) and :mod:`.graph` (diagrams).
:func:`check` is the whole check: the rule language's errors plus the lints, less the
warnings the file's inline directives silence (:mod:`.suppression`).

Layer: imports :mod:`rulekit.core`, :mod:`rulekit.expr` and :mod:`rulekit.policy`.
"""

from __future__ import annotations

import gc
import os

from rulekit.analysis import suppression
from rulekit.analysis.lint import lint
from rulekit.core import diagnostics as diag
from rulekit.core.errors import CompileError
from rulekit.core.source import Source
from rulekit.policy import CheckResult, compile_source, read

__all__ = ["check", "check_source"]


def check_source(text: str, format: str, filename: str) -> CheckResult:
    """Parse, check and lint a policy given as text, then apply its inline suppressions
    (:mod:`.suppression`: the warnings they silence move to ``suppressed``); never raises
    for problems in it."""
    return suppression.apply(_check_source(text, format, filename), format)


def _check_source(text: str, format: str, filename: str) -> CheckResult:
    result = compile_source(text, format, filename)
    if result.policy is None or result.tree is None:
        return result
    enabled = gc.isenabled()
    gc.disable()  # as in compile_source: no cycles to find, only objects to rescan
    try:
        found = lint(result.tree, result.policy)
    finally:
        if enabled:
            gc.enable()
    if not found:
        return result
    problems = sorted([*result.diagnostics, *found], key=diag.sort_key)
    return CheckResult(result.source, result.policy, problems, result.tree)


def check(path: str | os.PathLike[str]) -> CheckResult:
    """Check a policy file and return everything found, warnings included (``load`` keeps
    only the policy); never raises for problems in the file, an unreadable one included.

    >>> result = check("rules/kuaishou_after_sales.rk")  # doctest: +SKIP
    >>> result.ok, [d.code for d in result.diagnostics]  # doctest: +SKIP
    (True, [])
    """
    try:
        text, fmt = read(path)
    except CompileError as e:
        return CheckResult(Source("", str(path)), None, e.diagnostics)
    return check_source(text, fmt, str(path))
