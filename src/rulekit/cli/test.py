"""``rulekit test``: run scenario files (../shared/contracts/scenarios.md)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError

if TYPE_CHECKING:
    from argparse import _SubParsersAction
    from pathlib import Path

    from rulekit.policy import Policy
    from rulekit.tools.scenarios import Result, ScenarioFileError


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "test",
        help="run scenario files",
        description="Run scenario files (a folder: every YAML file under it with a top-level `scenarios` key). "
        "Exit 0 when all pass, 1 when any fails, 2 when a file is invalid.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rulekit.core.errors import CompileError
    from rulekit.tools import scenarios

    try:
        files = scenarios.discover(args.paths)
    except FileNotFoundError as e:
        raise UsageError(f"no such file or folder: {e.args[0]}") from None
    if not files:
        raise UsageError("no scenario files found in " + ", ".join(args.paths))
    results: list[Result] = []
    policies: dict[Path, Policy] = {}
    for path in files:
        try:
            sf = scenarios.read(path)
            try:
                results.extend(scenarios.run_file(sf, policies))
            except CompileError as e:
                _print_scenario_error(path, scenarios.load_error(sf, e))
                print("\n" + e.rendered, file=sys.stderr)
                return EXIT_USAGE
        except scenarios.ScenarioFileError as e:
            _print_scenario_error(path, e)
            return EXIT_USAGE
    print(scenarios.report_json(results) if args.json else scenarios.report_text(results))
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


def _print_scenario_error(path: Path, e: ScenarioFileError) -> None:
    from rulekit.core import diagnostics as diag

    print(diag.render(e.diagnostic, _line(path, e.diagnostic.line)), file=sys.stderr)


def _line(path: Path, line: int) -> str | None:
    from rulekit.core.source import read_text

    try:
        lines = read_text(path).splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[line - 1] if 0 < line <= len(lines) else None
