"""Inline suppression: ``// rulekit: ignore RK0707 -- reason`` silences a warning where it
is written, and the directive itself is checked.

A directive is a comment (``//`` in a .rk file, ``#`` in YAML) that starts with
``rulekit:``. ``ignore CODE[, CODE...] -- reason`` on a line of its own applies to the
next line that holds code; written after code, to its own line; in YAML, to the whole
node that line starts (the lines below it indented deeper). ``ignore-file`` applies
to the whole file and stands before its first line of code. A diagnostic is silenced
when a directive naming its code applies to the line its header names. Only the codes
of :data:`~rulekit.core.diagnostics.SUPPRESSIBLE` (the analyses' warnings and notes)
can be silenced: an error never is.

Silenced diagnostics move from ``CheckResult.diagnostics`` to
``CheckResult.suppressed``, with the reason, so reports can still list them. The
directives' own problems are warnings: RK0750 (malformed), RK0751 (no reason), RK0752
(unknown code), RK0753 (a code that cannot be silenced) and RK0754 (nothing to
silence; reported only when the policy has no errors, since the analyses run only then).

Everything here is one pass over the comments and one over the diagnostics, with
dictionaries between them: linear in the size of the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field

from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import CODES, SUPPRESSIBLE, Diagnostic, Suppressed
from rulekit.core.source import Source, Span
from rulekit.policy import CheckResult, parser

__all__ = ["apply"]

#: A comment that may be a directive: the cheap test that lets a file without one skip
#: the search for comments.
_MAYBE = re.compile(r"(?://|#)[ \t]*rulekit\b")
#: A directive, after the comment's marker: ``rulekit:`` then the rest.
_DIRECTIVE = re.compile(r"[ \t]*rulekit[ \t]*:[ \t]*")
#: What was surely meant as one, without its colon: ``rulekit ignore``, ``rulekit-ignore``.
_ALMOST = re.compile(r"[ \t]*rulekit[ \t-]+ignore\b")
_VERB = re.compile(r"[\w-]*")
_CODE = re.compile(r"RK\d{4}")
_VERBS = ("ignore", "ignore-file")


def _runs(codes: frozenset[str]) -> str:
    """``RK0701-RK0709, RK0711-RK0713``: the codes, consecutive ones as ranges."""
    numbers = sorted(int(c[2:]) for c in codes)
    runs: list[list[int]] = []
    for n in numbers:
        if runs and runs[-1][-1] == n - 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"RK{r[0]:04d}" + (f"-RK{r[-1]:04d}" if len(r) > 1 else "") for r in runs)


_IGNORABLE = _runs(SUPPRESSIBLE)


@dataclass
class _Directive:
    line: int  # where it is written
    target: int | None  # the line it applies to; None: the whole file, or no line follows
    file_wide: bool
    reason: str
    codes: dict[str, Span] = field(default_factory=dict)  # the codes it may silence
    used: set[str] = field(default_factory=set)


def apply(result: CheckResult, format: str) -> CheckResult:
    """``result`` with the diagnostics its file's directives silence moved to
    ``suppressed``, and the directives' own problems added."""
    source = result.source
    text = source.text
    if format not in ("rk", "yaml") or not _MAYBE.search(text):
        return result
    if format == "rk":
        spans = parser.comment_spans(text)
    else:
        from rulekit.policy import yaml_form  # here: checking a .rk file never loads YAML

        spans = yaml_form.comment_spans(text)
    problems: list[Diagnostic] = []
    directives = _read(source, spans, "//" if format == "rk" else "#", problems)
    if not directives:
        return dataclasses.replace(result, diagnostics=_sorted(result.diagnostics, problems))
    by_file: dict[str, _Directive] = {}
    for d in directives:
        for code in d.codes:
            if d.file_wide:
                by_file.setdefault(code, d)
    # What each directive covers: its target line, and in YAML every line of the node
    # that line starts (a transition's `when:` is part of its `- on:` item).
    ends = _node_ends(text, spans) if format == "yaml" else None
    covers = sorted(
        (
            (d.target, ends[d.target - 1] if ends is not None else d.target, n, d)
            for n, d in enumerate(directives)
            if not d.file_wide and d.target is not None
        ),
        key=lambda c: (c[0], -c[1], c[2]),
    )
    found_at = _covering(covers, result.diagnostics, source.file)
    kept: list[Diagnostic] = []
    suppressed = list(result.suppressed)
    for i, found in enumerate(result.diagnostics):
        directive = found_at.get(i) or (
            by_file.get(found.code)
            if found.file == source.file and found.severity != "error"  # never an error
            else None
        )
        if directive is None:
            kept.append(found)
            continue
        directive.used.add(found.code)
        suppressed.append(Suppressed(found, directive.reason, directive.line))
    if result.ok:  # otherwise the analyses did not run: nothing could have been used
        for d in directives:
            for code, span in d.codes.items():
                if code not in d.used:
                    problems.append(_unused(code, d, source, span))
    return dataclasses.replace(result, diagnostics=_sorted(kept, problems), suppressed=suppressed)


def _covering(
    covers: list[tuple[int, int, int, _Directive]], found: list[Diagnostic], file: str
) -> dict[int, _Directive]:
    """For each diagnostic (by index) that a line directive silences, that directive: the
    innermost one naming its code whose lines cover the diagnostic's line. ``covers`` is
    (first line, last line, order, directive) sorted by first line, longest first; the
    ranges nest (a line, or a YAML node and the nodes inside it), so one sweep with a
    stack per code finds them all: linear in the directives and the diagnostics."""
    order = sorted(
        (i for i, d in enumerate(found) if d.file == file and d.severity != "error"),
        key=lambda i: found[i].line,
    )
    active: list[tuple[int, _Directive]] = []  # (last line, directive), innermost last
    by_code: dict[str, list[_Directive]] = {}
    out: dict[int, _Directive] = {}
    k = 0

    def leave(before: int) -> None:
        while active and active[-1][0] < before:
            _, d = active.pop()
            for code in d.codes:
                by_code[code].pop()

    for i in order:
        line = found[i].line
        leave(line)
        while k < len(covers) and covers[k][0] <= line:
            first, last, _, d = covers[k]
            k += 1
            leave(first)
            if last >= line:
                active.append((last, d))
                for code in d.codes:
                    by_code.setdefault(code, []).append(d)
        stack = by_code.get(found[i].code)
        if stack:
            out[i] = stack[-1]
    return out


def _sorted(found: list[Diagnostic], more: list[Diagnostic]) -> list[Diagnostic]:
    return sorted([*found, *more], key=diag.sort_key) if more else found


def _read(
    source: Source, spans: list[Span], marker: str, problems: list[Diagnostic]
) -> list[_Directive]:
    """The directives among the comments ``spans`` (each starting with ``marker``); the
    problems of malformed ones go to ``problems``."""
    text = source.text
    comments = [(s, text[s.start + len(marker) : s.end].rstrip()) for s in spans]
    wanted = [
        (s, body)
        for s, body in comments
        if _DIRECTIVE.match(body) is not None or _ALMOST.match(body) is not None
    ]
    if not wanted:
        return []
    code_lines = _code_lines(text, spans)
    first_code = next((n for n, code in enumerate(code_lines) if code), len(code_lines)) + 1
    following = _next_code_lines(code_lines)
    directives: list[_Directive] = []
    for span, body in wanted:
        line = source.position(span.start).line
        trailing = _code_before(text, span.start)
        directive = _parse(source, line, span, marker, body, problems)
        if directive is None:
            continue
        if directive.file_wide:
            if trailing or line > first_code:
                problems.append(
                    _warning(
                        "RK0750",
                        "`ignore-file` must stand before the file's first line of code",
                        source,
                        span,
                        "move it to the top of the file, or use `ignore` for the next line",
                    )
                )
                continue
        else:
            directive.target = line if trailing else following[line - 1]
        directives.append(directive)
    return directives


def _parse(
    source: Source, line: int, whole: Span, marker: str, body: str, problems: list[Diagnostic]
) -> _Directive | None:
    """One directive from the comment at ``whole`` (on ``line``), whose text after its
    ``marker`` is ``body``; None, with the problem reported, when it is malformed."""
    at = whole.start + len(marker)
    form = f"{marker} rulekit: ignore RK0707 -- why it is fine here"
    m = _DIRECTIVE.match(body)
    if m is None:
        problems.append(
            _warning("RK0750", "a `rulekit:` directive needs its colon", source, whole, form)
        )
        return None
    pos = m.end()
    verb = _VERB.match(body, pos)
    word = verb.group() if verb is not None else ""
    if word not in _VERBS:
        close = difflib.get_close_matches(word, _VERBS, n=1, cutoff=0.5)
        shown = f"`{word}`" if word else "nothing"
        problems.append(
            _warning(
                "RK0750",
                f"unknown directive {shown}: a `rulekit:` comment says `ignore` or `ignore-file`",
                source,
                Span(at + pos, at + pos + max(1, len(word))),
                f"did you mean `{close[0]}`?" if close else form,
            )
        )
        return None
    pos += len(word)
    dashes = body.find("--", pos)
    listed = body[pos:] if dashes < 0 else body[pos:dashes]
    reason = "" if dashes < 0 else body[dashes + 2 :].strip()
    directive = _Directive(line, None, word == "ignore-file", reason)
    items = list(re.finditer(r"[^,]+", listed))
    if (
        not listed.strip()
        or any(not i.group().strip() for i in items)
        or listed.count(",") >= len(items)
    ):
        problems.append(
            _warning(
                "RK0750",
                f"`{word}` names no code, or an empty one between commas",
                source,
                whole,
                "name the codes to ignore, separated by commas: " + form,
            )
        )
        return None
    for item in items:
        code = item.group().strip()
        start = at + pos + item.start() + (len(item.group()) - len(item.group().lstrip()))
        span = Span(start, start + len(code))
        if _CODE.fullmatch(code) is None:
            problems.append(_not_a_code(code, source, span, form))
            return None
        if code not in CODES:
            problems.append(
                _warning(
                    "RK0752",
                    f"there is no diagnostic code {code}",
                    source,
                    span,
                    f"the codes that can be ignored are {_IGNORABLE} (docs/diagnostics.md)",
                )
            )
        elif code not in SUPPRESSIBLE:
            problems.append(_cannot(code, source, span))
        else:
            directive.codes.setdefault(code, span)
    if not reason:
        problems.append(
            _warning(
                "RK0751",
                f"this `{word}` gives no reason",
                source,
                whole,
                "say why the warning does not apply here, after ` -- `: " + form,
            )
        )
    return directive


def _not_a_code(code: str, source: Source, span: Span, form: str) -> Diagnostic:
    if _CODE.fullmatch(code.upper()) is not None:
        fix = f"write codes in capitals: {code.upper()}"
    elif _CODE.match(code) is not None:
        fix = "separate codes with commas, and put the reason after ` -- `: " + form
    else:
        fix = "name codes as RK0707; put the reason after ` -- `: " + form
    return _warning("RK0750", f"`{code}` is not a diagnostic code", source, span, fix)


def _cannot(code: str, source: Source, span: Span) -> Diagnostic:
    if code in ("RK0730", *(c for c in CODES if c.startswith("RK075"))):
        message = f"{code} ({CODES[code]}) cannot be suppressed inline"
        fix = f"only the analyses' warnings and notes can be: {_IGNORABLE}"
    else:
        message = f"{code} ({CODES[code]}) is an error: an error cannot be suppressed"
        fix = "fix what it reports; only warnings can be ignored"
    return _warning("RK0753", message, source, span, fix)


def _unused(code: str, d: _Directive, source: Source, span: Span) -> Diagnostic:
    if d.file_wide:
        where = "in this file"
    elif d.target is None:
        where = "after it: no line of code follows"
    else:
        where = f"on line {d.target}"
    return _warning(
        "RK0754",
        f"nothing to ignore: {code} ({CODES[code]}) is not reported {where}",
        source,
        span,
        f"remove {code} from the directive (or the directive): what it silenced is gone",
    )


def _warning(code: str, message: str, source: Source, span: Span, help: str) -> Diagnostic:
    return diag.make(code, message, source, span, help=help, severity="warning")


def _code_lines(text: str, comments: list[Span]) -> list[bool]:
    """For each line of ``text``, whether it holds anything but blanks and comments."""
    parts = []
    pos = 0
    for s in comments:
        parts.append(text[pos : s.start])
        pos = s.end
    parts.append(text[pos:])
    return [bool(line.strip()) for line in "".join(parts).split("\n")]


def _next_code_lines(code_lines: list[bool]) -> list[int | None]:
    """For each line (0-based), the first line after it (1-based) that holds code."""
    out: list[int | None] = [None] * len(code_lines)
    upcoming: int | None = None
    for n in range(len(code_lines) - 1, -1, -1):
        out[n] = upcoming
        if code_lines[n]:
            upcoming = n + 1
    return out


def _node_ends(text: str, comments: list[Span]) -> list[int]:
    """For each line of a YAML text (0-based), the last line (1-based) of the node that
    starts on it: the following lines of code indented deeper belong to it (a `- ` item's
    indentation is its dash's)."""
    stripped = []
    pos = 0
    for s in comments:
        stripped.append(text[pos : s.start])
        pos = s.end
    stripped.append(text[pos:])
    lines = "".join(stripped).split("\n")
    ends = list(range(1, len(lines) + 1))
    open_: list[tuple[int, int]] = []  # (indentation, 0-based line), deepest last
    last_code = 0
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        while open_ and open_[-1][0] >= indent:
            ends[open_.pop()[1]] = last_code
        open_.append((indent, n))
        last_code = n + 1
    for _, n in open_:
        ends[n] = last_code
    return ends


def _code_before(text: str, offset: int) -> bool:
    """Whether the line of ``offset`` holds code before it."""
    start = text.rfind("\n", 0, offset) + 1
    return bool(text[start:offset].strip())
