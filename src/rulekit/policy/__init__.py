"""Policies: reading rule files (.rk, .yaml) and compiled artifacts (.json).

``load``/``loads`` run the whole front half of the pipeline: a front end
(:mod:`.parser` for .rk, :mod:`.yaml_form` for YAML, :mod:`.artifact` for
JSON) to the AST, then :mod:`.checker` to the compiled :class:`Policy`.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
from dataclasses import dataclass
from pathlib import Path

from rulekit import diagnostics as diag
from rulekit.diagnostics import Diagnostic
from rulekit.errors import CompileError
from rulekit.policy import artifact, checker, parser, yaml_form
from rulekit.policy.ir import Policy
from rulekit.source import Source, Span, read_text

__all__ = ["FORMATS", "CheckResult", "Policy", "check", "check_source", "load", "loads"]

#: File suffix -> format name.
FORMATS = {".rk": "rk", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}


@dataclass(frozen=True)
class CheckResult:
    """Everything checking one file found: the policy (None on errors) and all diagnostics."""

    source: Source
    policy: Policy | None
    diagnostics: list[Diagnostic]

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def render(self) -> str:
        return diag.render_all(self.diagnostics, {self.source.file: self.source})


def check_source(text: str, format: str, filename: str) -> CheckResult:
    """Parse and check a policy given as text; never raises for problems in it."""
    # The front end allocates many small objects and no reference cycles; the
    # cyclic collector would only rescan them again and again (quadratic on
    # large policies), so it waits until checking is done.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _check_source(text, format, filename)
    finally:
        if enabled:
            gc.enable()


def _check_source(text: str, format: str, filename: str) -> CheckResult:
    source = Source(text, filename)
    if format == "json":
        try:
            data = json.loads(text)
        except RecursionError:
            return CheckResult(
                source,
                None,
                [
                    diag.make(
                        "RK0501",
                        "not a valid compiled artifact: nested too deeply",
                        source,
                        Span(0, 1),
                    )
                ],
            )
        except json.JSONDecodeError as e:
            return CheckResult(
                source,
                None,
                [diag.make("RK0501", f"not valid JSON: {e.msg}", source, Span(e.pos, e.pos + 1))],
            )
        # Artifacts are machine-written: diagnostics name the place in words, not a source line.
        shown = Source("", filename)
        try:
            return CheckResult(shown, artifact.from_json(data, source), [])
        except CompileError as e:
            return CheckResult(shown, None, e.diagnostics)
    if format == "rk":
        tree, problems = parser.parse(source)
    elif format == "yaml":
        try:
            tree, problems = yaml_form.parse(source)
        except RecursionError:
            return CheckResult(
                source,
                None,
                [diag.make("RK0401", "not valid YAML: nested too deeply", source, Span(0, 1))],
            )
    else:
        raise ValueError(f"unknown policy format {format!r} (rk, yaml or json)")
    if tree is None or any(d.severity == "error" for d in problems):
        return CheckResult(source, None, sorted(problems, key=diag.sort_key))
    policy, found = checker.check(tree)
    return CheckResult(source, policy, sorted([*problems, *found], key=diag.sort_key))


def loads(text: str, format: str = "rk", filename: str = "<string>") -> Policy:
    """A policy from text: ``format`` is ``rk``, ``yaml`` or ``json``.

    Raises :class:`CompileError` listing every problem found.
    """
    if format not in ("rk", "yaml", "json"):
        raise ValueError(f"format must be 'rk', 'yaml' or 'json', not {format!r}")
    result = check_source(text, format, filename)
    if result.policy is None or not result.ok:
        raise CompileError(result.diagnostics, result.render())
    if result.policy.hash:
        return result.policy
    return dataclasses.replace(result.policy, hash=artifact.to_json(result.policy)["hash"])


def read(path: str | os.PathLike[str]) -> tuple[str, str] | Diagnostic:
    """(text, format) of a policy file, or a diagnostic saying why it cannot be read."""
    p = Path(path)
    where = Source("", str(path))
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        return diag.make(
            "RK0001",
            f"unknown kind of policy file `{p.suffix or p.name}`",
            where,
            Span(0, 0),
            help="policies are .rk, .yaml/.yml (rule files) or .json (compiled artifacts)",
        )
    try:
        return read_text(p), fmt
    except FileNotFoundError:
        return diag.make("RK0001", "no such file", where, Span(0, 0))
    except (OSError, UnicodeDecodeError) as e:
        return diag.make("RK0001", f"cannot read the file: {e}", where, Span(0, 0))


def check(path: str | os.PathLike[str]) -> CheckResult:
    """Check a policy file and return everything found, warnings included (``load`` keeps
    only the policy); never raises for problems in the file, an unreadable one included.

    >>> result = check("rules/kuaishou_after_sales.rk")  # doctest: +SKIP
    >>> result.ok, [d.code for d in result.diagnostics]  # doctest: +SKIP
    (True, [])
    """
    got = read(path)
    if isinstance(got, Diagnostic):
        return CheckResult(Source("", str(path)), None, [got])
    text, fmt = got
    return check_source(text, fmt, str(path))


def load(path: str | os.PathLike[str]) -> Policy:
    """A policy from a file: ``.rk``, ``.yaml``/``.yml`` or a compiled ``.json``.

    >>> policy = load("rules/kuaishou_after_sales.rk")  # doctest: +SKIP
    """
    got = read(path)
    if isinstance(got, Diagnostic):
        raise CompileError([got])
    text, fmt = got
    return loads(text, fmt, str(path))
