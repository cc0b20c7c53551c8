"""Diagnostics in the formats CI systems read: GitHub workflow commands and SARIF 2.1.0."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rulekit.core import __version__
from rulekit.core.diagnostics import CODES, Diagnostic

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


def sarif(diagnostics: list[Diagnostic]) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run: the rules used, and one result per diagnostic."""
    used = sorted({d.code for d in diagnostics})
    index = {code: i for i, code in enumerate(used)}
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "rulekit",
                        "version": __version__,
                        "rules": [
                            {
                                "id": code,
                                "name": CODES.get(code, code).title().replace(" ", ""),
                                "shortDescription": {"text": CODES.get(code, code)},
                                "help": {"text": f"See {code} in rulekit's docs/diagnostics.md."},
                            }
                            for code in used
                        ],
                    }
                },
                "results": [
                    {
                        "ruleId": d.code,
                        "ruleIndex": index[d.code],
                        "level": _SARIF_LEVEL[d.severity],
                        "message": {"text": d.message + (f" (help: {d.help})" if d.help else "")},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": d.file},
                                    "region": {
                                        "startLine": d.line,
                                        "startColumn": d.column,
                                        "endLine": d.end_line,
                                        "endColumn": max(d.end_column, d.column),
                                    },
                                }
                            }
                        ],
                    }
                    for d in diagnostics
                ],
            }
        ],
    }
