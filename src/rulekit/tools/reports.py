"""Diagnostics in the formats CI systems read: GitHub workflow commands and SARIF 2.1.0."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rulekit.core import __version__
from rulekit.core.diagnostics import CODES, Diagnostic, Suppressed

_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github(diagnostics: Iterable[Diagnostic]) -> str:
    """GitHub Actions workflow commands: one annotation per diagnostic."""
    lines = []
    for d in diagnostics:
        props = (
            f"file={_escape_property(d.file)},line={d.line},col={d.column},endLine={d.end_line},"
            f"endColumn={d.end_column},title={_escape_property(d.code + ' ' + CODES.get(d.code, ''))}"
        )
        message = d.message + (f"\nhelp: {d.help}" if d.help else "")
        lines.append(f"::{_GITHUB_LEVEL[d.severity]} {props}::{_escape_data(message)}")
    return "\n".join(lines)


#: Where each code's documentation is: docs/diagnostics.md as the project publishes it.
#: ``rulekit check --docs-url URL`` (or ``RULEKIT_DOCS_URL``) points elsewhere, e.g. at a
#: copy on an intranet, or at a tag to match an older release.
DOCS_URL = "https://github.com/rulekit/rulekit/blob/main/docs/diagnostics.md"


def help_uri(code: str, base: str = DOCS_URL) -> str:
    """The address of ``code``'s section of docs/diagnostics.md under ``base``.

    The anchor is the one GitHub (and most Markdown renderers) give the section's heading,
    ``## RK0707: conditions that can both hold``: lower case, punctuation dropped, spaces
    as hyphens. tests/test_docs.py holds each heading to its code's title in CODES.

    >>> help_uri("RK0707")
    'https://github.com/rulekit/rulekit/blob/main/docs/diagnostics.md#rk0707-conditions-that-can-both-hold'
    """
    heading = f"{code}: {CODES.get(code, '')}".lower()
    return f"{base}#" + re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def sarif(
    diagnostics: list[Diagnostic],
    suppressed: Iterable[Suppressed] = (),
    docs_url: str = DOCS_URL,
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run: the rules used, each with a link to its
    documentation, and one result per diagnostic; the ``suppressed`` ones are results too,
    after the others, each with an in-source suppression and the author's reason as its
    justification (code-scanning tools show them as dismissed rather than lose them)."""
    silenced = {id(s.diagnostic): s for s in suppressed}
    every = [*diagnostics, *(s.diagnostic for s in silenced.values())]
    used = sorted({d.code for d in every})
    index = {code: i for i, code in enumerate(used)}
    rules = []
    for code in used:
        title = CODES.get(code, code)
        uri = help_uri(code, docs_url)
        rules.append(
            {
                "id": code,
                "name": title.title().replace(" ", ""),
                "shortDescription": {"text": title},
                "helpUri": uri,
                "help": {
                    "text": f"{code}: {title}. What it means and how to fix it: {uri}",
                    "markdown": f"[{code}: {title}]({uri}): what it means and how to fix it.",
                },
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "rulekit", "version": __version__, "rules": rules}},
                "results": [_result(d, index[d.code], silenced.get(id(d))) for d in every],
            }
        ],
    }


def _result(d: Diagnostic, rule: int, suppressed: Suppressed | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": d.code,
        "ruleIndex": rule,
        "level": _SARIF_LEVEL[d.severity],
        "message": {"text": d.message + (f" (help: {d.help})" if d.help else "")},
        "locations": [_location(d.file, d.line, d.column, d.end_line, max(d.end_column, d.column))],
    }
    if suppressed is not None:
        suppression: dict[str, Any] = {"kind": "inSource"}
        if suppressed.reason:
            suppression["justification"] = suppressed.reason
        suppression["location"] = _location(d.file, suppressed.line)
        result["suppressions"] = [suppression]
    return result


def _location(
    file: str,
    line: int,
    column: int = 1,
    end_line: int | None = None,
    end_column: int | None = None,
) -> dict[str, Any]:
    region: dict[str, int] = {"startLine": line, "startColumn": column}
    if end_line is not None and end_column is not None:
        region |= {"endLine": end_line, "endColumn": end_column}
    return {"physicalLocation": {"artifactLocation": {"uri": file}, "region": region}}
