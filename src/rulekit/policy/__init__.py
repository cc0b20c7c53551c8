"""The rule language: reading rule files (.rk, .yaml) and compiled artifacts (.json).

``load``/``loads`` run the whole front half of the pipeline: a front end
(:mod:`.parser` for .rk, :mod:`.yaml_form` for YAML, :mod:`.artifact` for
JSON) to the AST (:mod:`.ast`), then :mod:`.checker` to the compiled policy
(:mod:`.ir`), which :mod:`.artifact` also writes as JSON.

Layer: imports :mod:`rulekit.core` and :mod:`rulekit.expr` only. The lints that
``rulekit check`` adds as warnings are analysis, one layer up
(:func:`rulekit.analysis.check`).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import Diagnostic, Suppressed
from rulekit.core.errors import CompileError
from rulekit.core.source import Source, Span, read_text
from rulekit.policy import ast, checker, parser
from rulekit.policy.ir import Policy

__all__ = [
    "FORMATS",
    "CheckResult",
    "Policy",
    "compile_source",
    "format_of",
    "load",
    "loads",
    "read",
]

#: File suffix -> format name.
FORMATS = {".rk": "rk", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}


@dataclass(frozen=True)
class CheckResult:
    """Everything checking one file found: the policy (None on errors) and all diagnostics."""

    source: Source
    policy: Policy | None
    diagnostics: list[Diagnostic]
    #: the syntax tree the policy was checked from (None for artifacts and text that did
    #: not parse): what analyses and editor tools read for names and places
    tree: ast.Policy | None = None
    #: the warnings inline directives silenced (``// rulekit: ignore RK0707 -- why``),
    #: with their reasons: out of ``diagnostics``, kept for reports (SARIF, counts)
    suppressed: list[Suppressed] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def render(self) -> str:
        return diag.render_all(self.diagnostics, {self.source.file: self.source})


def compile_source(text: str, format: str, filename: str) -> CheckResult:
    """Parse and type-check a policy given as text; never raises for problems in it.

    The result holds the errors and the checker's own warnings; the lints are
    :func:`rulekit.analysis.check_source`'s.
    """
    # The front end allocates many small objects and no reference cycles; the
    # cyclic collector would only rescan them again and again (quadratic on
    # large policies), so it waits until checking is done.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _compile_source(text, format, filename)
    finally:
        if enabled:
            gc.enable()


def _compile_source(text: str, format: str, filename: str) -> CheckResult:
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
        from rulekit.policy import artifact  # only JSON needs it (and loads(), for the hash)

        # Artifacts are machine-written: diagnostics name the place in words, not a source line.
        shown = Source("", filename)
        try:
            return CheckResult(shown, artifact.from_json(data, source), [])
        except CompileError as e:
            return CheckResult(shown, None, e.diagnostics)
    if format == "rk":
        tree, problems = parser.parse(source)
    elif format == "yaml":
        from rulekit.policy import yaml_form  # PyYAML: only for YAML policies

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
        return CheckResult(source, None, sorted(problems, key=diag.sort_key), tree)
    policy, found = checker.check(tree)
    return CheckResult(source, policy, sorted([*problems, *found], key=diag.sort_key), tree)


def loads(text: str, format: str = "rk", filename: str = "<string>") -> Policy:
    """A policy from text: ``format`` is ``rk``, ``yaml`` or ``json``.

    Raises :class:`CompileError` listing every problem found.
    """
    if format not in ("rk", "yaml", "json"):
        raise ValueError(f"format must be 'rk', 'yaml' or 'json', not {format!r}")
    result = compile_source(text, format, filename)
    if result.policy is None or not result.ok:
        raise CompileError(result.diagnostics, result.render())
    if result.policy.hash:
        return result.policy
    from rulekit.policy import artifact

    return dataclasses.replace(result.policy, hash=artifact.to_json(result.policy)["hash"])


def format_of(path: str | os.PathLike[str]) -> str:
    """The format (``rk``, ``yaml`` or ``json``) a policy file's name says it is in; raises
    :class:`CompileError` (RK0001) for a name that is no kind of policy file."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise CompileError(
            [
                diag.make(
                    "RK0001",
                    f"unknown kind of policy file `{p.suffix or p.name}`",
                    Source("", str(path)),
                    Span(0, 0),
                    help="policies are .rk, .yaml/.yml (rule files) or .json (compiled artifacts)",
                )
            ]
        )
    return fmt


def read(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(text, format) of a policy file; raises :class:`CompileError` (RK0001) saying why
    it cannot be read."""
    fmt = format_of(path)
    try:
        return read_text(path), fmt
    except FileNotFoundError:
        problem = "no such file"
    except (OSError, UnicodeDecodeError) as e:
        problem = f"cannot read the file: {e}"
    raise CompileError([diag.make("RK0001", problem, Source("", str(path)), Span(0, 0))])


def load(path: str | os.PathLike[str]) -> Policy:
    """A policy from a file: ``.rk``, ``.yaml``/``.yml`` or a compiled ``.json``.

    >>> policy = load("rules/kuaishou_after_sales.rk")  # doctest: +SKIP
    """
    text, fmt = read(path)
    return loads(text, fmt, str(path))
