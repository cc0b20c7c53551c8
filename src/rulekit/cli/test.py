"""``rulekit test``: run scenario files (../shared/contracts/scenarios.md)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError

if TYPE_CHECKING:
    from argparse import _SubParsersAction
    from pathlib import Path

    from rulekit.policy import Policy
    from rulekit.tools.coverage import Coverage
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
    c = p.add_argument_group(
        "coverage",
        "what of each policy the scenarios exercised: states, transitions, deadlines and both "
        "sides of their boundaries, guard outcomes, refusal codes (docs/scenarios.md, Coverage)",
    )
    c.add_argument(
        "--coverage",
        action="store_true",
        help="report coverage after the results (with --json: under the key `coverage`)",
    )
    c.add_argument(
        "--coverage-format",
        choices=("table", "json"),
        help="how --coverage prints it: table (default) or json (implies --coverage)",
    )
    c.add_argument(
        "--coverage-output",
        metavar="FILE",
        help="also write coverage to FILE: LCOV (.info, .lcov), Cobertura XML (.xml) or JSON "
        "(.json), by its extension or --coverage-output-format",
    )
    c.add_argument(
        "--coverage-output-format",
        choices=OUTPUT_FORMATS,
        help="the format of --coverage-output, whatever its extension",
    )
    c.add_argument(
        "--fail-under",
        type=float,
        metavar="N",
        help="exit 1 when fewer than N percent of the transitions and deadlines were taken",
    )
    p.set_defaults(run=run)


OUTPUT_FORMATS = ("lcov", "cobertura", "json")
#: --coverage-output's format from its extension
_EXTENSIONS = {".info": "lcov", ".lcov": "lcov", ".xml": "cobertura", ".json": "json"}


def run(args: argparse.Namespace) -> int:
    from rulekit.core.errors import CompileError
    from rulekit.tools import coverage as cov
    from rulekit.tools import scenarios

    output_format = _output_format(args)
    if args.fail_under is not None and not 0 <= args.fail_under <= 100:
        raise UsageError(f"--fail-under takes a percentage from 0 to 100, not {args.fail_under:g}")
    shown = args.coverage or args.coverage_format is not None
    counting = shown or args.coverage_output is not None or args.fail_under is not None
    coverage: dict[Path, cov.Coverage] | None = {} if counting else None
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
                results.extend(scenarios.run_file(sf, policies, coverage))
            except CompileError as e:
                print_scenario_error(path, scenarios.load_error(sf, e))
                print("\n" + e.rendered, file=sys.stderr)
                return EXIT_USAGE
        except scenarios.ScenarioFileError as e:
            print_scenario_error(path, e)
            return EXIT_USAGE
    counted = list(coverage.values()) if coverage is not None else []
    if args.json:
        data = scenarios.report_data(results)
        if shown:
            data["coverage"] = cov.to_data(counted)
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(scenarios.report_text(results))
        if shown:
            json_out = args.coverage_format == "json"
            print("\n" + (cov.to_json(counted) if json_out else cov.table(counted)))
    if args.coverage_output is not None:
        _write(args.coverage_output, output_format, counted)
    status = EXIT_OK if all(r.passed for r in results) else EXIT_FAILED
    if args.fail_under is not None:
        covered, total = cov.total(counted)
        reached = cov.percent(counted)
        if reached < args.fail_under:
            print(
                f"rulekit: coverage failed: {reached:.1f}% of transitions and deadlines taken "
                f"({covered}/{total}), under --fail-under {args.fail_under:g}",
                file=sys.stderr,
            )
            status = EXIT_FAILED
    return status


def _output_format(args: argparse.Namespace) -> str | None:
    """--coverage-output's format: as given, or by the file's extension (a usage error when
    neither says)."""
    if args.coverage_output is None:
        if args.coverage_output_format is not None:
            raise UsageError("--coverage-output-format goes with --coverage-output FILE")
        return None
    if args.coverage_output_format is not None:
        return str(args.coverage_output_format)
    from pathlib import Path

    suffix = Path(args.coverage_output).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise UsageError(
            f"cannot tell the coverage format of {args.coverage_output} from its extension: "
            "name it .info or .lcov (LCOV), .xml (Cobertura) or .json, or give "
            "--coverage-output-format"
        )
    return _EXTENSIONS[suffix]


def _write(path: str, kind: str | None, counted: list[Coverage]) -> None:
    from rulekit.tools import coverage as cov

    text = (
        cov.lcov(counted)
        if kind == "lcov"
        else cov.cobertura(counted)
        if kind == "cobertura"
        else cov.to_json(counted) + "\n"
    )
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None


def print_scenario_error(path: Path, e: ScenarioFileError) -> None:
    from rulekit.core import diagnostics as diag

    print(diag.render(e.diagnostic, _line(path, e.diagnostic.line)), file=sys.stderr)


def _line(path: Path, line: int) -> str | None:
    from rulekit.core.source import read_text

    try:
        lines = read_text(path).splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[line - 1] if 0 < line <= len(lines) else None
