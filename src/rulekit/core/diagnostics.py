"""Diagnostics: what every phase reports, and how it is shown.

Codes are a public API (documented in docs/diagnostics.md, tested to stay in
step with :data:`CODES`). A phase never raises on a user error: it appends a
:class:`Diagnostic` and carries on, so one run reports every problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from rulekit.core.source import Source, Span

Severity = Literal["error", "warning", "info"]

#: Every diagnostic code rulekit emits, with a one-line title.
#: docs/diagnostics.md explains each one with an example and the fix.
CODES: dict[str, str] = {
    # Files
    "RK0001": "cannot read the file",
    # Expressions: syntax
    "RK0101": "syntax error",
    "RK0102": "unexpected character",
    "RK0103": "unterminated string or unexpected end of input",
    "RK0104": "`=` used where `==` was meant",
    "RK0105": "invalid escape sequence",
    "RK0106": "literal out of range",
    "RK0107": "reserved word used as a name",
    "RK0108": "unsupported literal",
    "RK0109": "invalid macro call",
    "RK0110": "expression nested too deeply",
    # Expressions: names and types
    "RK0201": "undeclared name",
    "RK0202": "no such field",
    "RK0203": "no matching overload",
    "RK0204": "unknown function",
    "RK0205": "condition is not a bool",
    "RK0206": "invalid declaration",
    "RK0207": "invalid constant argument",
    "RK0208": "not a value of the enum",
    "RK0209": "invalid regular expression",
    "RK0210": "expression may cost too much to evaluate",
    "RK0211": "calendar period where it is ambiguous",
    "RK0212": "unknown calendar",
    "RK0220": "not an optional value",
    "RK0213": "which calendar?",
    # Policies: names and structure
    "RK0301": "duplicate name",
    "RK0302": "unknown state",
    "RK0303": "unknown event",
    "RK0304": "unknown actor",
    "RK0305": "actor may not send this event",
    "RK0306": "no initial state, or more than one",
    "RK0307": "transition out of a final state",
    "RK0308": "deadline of the wrong type",
    "RK0309": "value of the wrong type",
    "RK0310": "unknown fact",
    "RK0311": "unknown effect or wrong effect arguments",
    "RK0312": "automatic transitions loop forever",
    "RK0313": "unknown fragment",
    "RK0314": "invalid constant",
    "RK0315": "invalid policy header",
    "RK0316": "unknown type",
    "RK0317": "reserved name",
    "RK0318": "attribute does not fit the state",
    "RK0319": "invalid cost limit",
    "RK0330": "unknown clock",
    "RK0331": "invalid use of a clock",
    "RK0332": "cannot schedule `as soon as`",
    "RK0333": "named conditions or values in a cycle",
    "RK0334": "named condition or value reads the event",
    "RK0335": "invalid fact default",
    "RK0338": "`reschedule` not on a `stay`",
    "RK0340": "migration names an unknown workflow or state",
    "RK0341": "migration leaves an old state unmapped",
    "RK0342": "invalid `migrate from` block",
    "RK0343": "migration does not fit the old version",
    # Analyses (warnings)
    "RK0701": "unreachable state",
    "RK0702": "state with no way out",
    "RK0703": "a case can wait forever",
    "RK0704": "fact never used",
    "RK0705": "event never taken",
    "RK0706": "deadline that can never fire",
    "RK0707": "conditions that can both hold",
    "RK0708": "transition that can never be taken",
    "RK0709": "conditions the analysis cannot decide",
    "RK0710": "may stay open too long",
    "RK0711": "a `when` that waits for time",
    "RK0712": "a `stay` that keeps a deadline its facts moved",
    "RK0713": "a fallback a fact default would say",
    "RK0730": "state left out of --max-open",
    # Inline suppression directives (warnings)
    "RK0750": "malformed suppression directive",
    "RK0751": "suppression without a reason",
    "RK0752": "unknown code in a suppression",
    "RK0753": "code that cannot be suppressed",
    "RK0754": "unused suppression",
    # The effect relay's configuration (relay.yaml)
    "RK0901": "invalid relay configuration",
    "RK0902": "secret not in the environment",
    # YAML form
    "RK0401": "not valid YAML",
    "RK0402": "invalid policy structure",
    "RK0403": "duplicate key",
    # Compiled artifacts
    "RK0501": "invalid compiled artifact",
    # Scenario files
    "RK0601": "invalid scenario file",
}

#: The codes an inline directive (``// rulekit: ignore RK0707 -- reason``) may silence:
#: the warnings and notes of the analyses ``rulekit check`` runs. Every other code is an
#: error (fix it instead), or, as RK0730 (``--max-open``'s own note) and RK0750-RK0754
#: (the directives' own problems), not something a directive in the file could answer.
SUPPRESSIBLE: frozenset[str] = frozenset(
    {
        *("RK0701", "RK0702", "RK0703", "RK0704", "RK0705", "RK0706", "RK0707", "RK0708"),
        *("RK0709", "RK0711", "RK0712", "RK0713"),
    }
)


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a source, with its place.

    Lines and columns are 1-based; ``end_line``/``end_column`` point one past
    the last character of the spot (as SARIF and LSP do).
    """

    code: str
    severity: Severity
    message: str
    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    help: str | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}:{self.column}: {self.severity}[{self.code}]: {self.message}"
        )


@dataclass(frozen=True)
class Suppressed:
    """A warning an inline directive silenced, kept so reports can still show it: SARIF
    lists it with the author's reason as its justification, the text output counts it."""

    diagnostic: Diagnostic
    #: the reason written after ``--`` ("" when none was given: RK0751 says so)
    reason: str
    #: the line of the directive that silenced it
    line: int

    def to_dict(self) -> dict[str, object]:
        return self.diagnostic.to_dict() | {
            "justification": self.reason,
            "directive_line": self.line,
        }


def make(
    code: str,
    message: str,
    source: Source,
    span: Span,
    *,
    help: str | None = None,
    notes: Iterable[str] = (),
    severity: Severity = "error",
) -> Diagnostic:
    """Build a diagnostic for ``span`` of ``source`` (positions mapped to the host file)."""
    assert code in CODES, code
    start = source.position(span.start)
    end = source.position(max(span.start, span.end))
    return Diagnostic(
        code=code,
        severity=severity,
        message=message,
        file=source.file,
        line=start.line,
        column=start.column,
        end_line=end.line,
        end_column=end.column,
        help=help,
        notes=tuple(notes),
    )


def render(diag: Diagnostic, line_text: str | None) -> str:
    """Compiler-style text: header, the source line, a caret under the spot, help.

    ``line_text`` is the text of ``diag.line`` (None when not available).
    """
    out = [str(diag)]
    if line_text:
        gutter = f"{diag.line:>4} | "
        out.append(gutter + line_text.expandtabs(1))
        width = 1
        if diag.end_line == diag.line and diag.end_column > diag.column:
            width = diag.end_column - diag.column
        width = max(1, min(width, len(line_text) - diag.column + 2))
        out.append(" " * (len(gutter) - 2) + "| " + " " * (diag.column - 1) + "^" * width)
    for note in diag.notes:
        out.append(f"  note: {note}")
    if diag.help:
        out.append(f"  help: {diag.help}")
    return "\n".join(out)


_COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "info": "\033[1;36m"}


def colorize(text: str) -> str:
    """ANSI colours for a rendered diagnostic: the severity word and the caret line."""
    lines = text.split("\n")
    for sev, code in _COLORS.items():
        lines[0] = lines[0].replace(f" {sev}[", f" {code}{sev}\033[0m[", 1)
    return "\n".join(
        f"\033[1;32m{line}\033[0m" if line.strip().startswith("|") and "^" in line else line
        for line in lines
    )


def render_all(diags: Iterable[Diagnostic], sources: dict[str, Source] | None = None) -> str:
    """Render diagnostics, looking up source lines by file name in ``sources``."""
    parts = []
    for d in diags:
        src = (sources or {}).get(d.file)
        parts.append(render(d, src.line_text(d.line) if src is not None else None))
    return "\n\n".join(parts)


def to_json(diags: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_dict() for d in diags], indent=2, ensure_ascii=False)


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.file, d.line, d.column, d.code)
