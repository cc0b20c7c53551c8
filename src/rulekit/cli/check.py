"""``rulekit check``: parse, validate and check policies, reporting every problem found."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, UsageError

if TYPE_CHECKING:
    from argparse import _SubParsersAction
    from datetime import timedelta

    from rulekit.analysis import times
    from rulekit.core.diagnostics import Diagnostic
    from rulekit.policy import CheckResult
    from rulekit.policy.ir import Policy


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "check",
        help="parse, validate and check rule files",
        description="Check policies (.rk, .yaml, compiled .json). Folders are searched for .rk files "
        "and YAML files with a top-level `policy` key (scenario files, with a `scenarios` key, are "
        "skipped: `rulekit test` runs them). Exit 0 when clean, 1 when there are errors (or, "
        "with --strict, warnings). A warning is silenced where it does not apply by a comment "
        "such as `// rulekit: ignore RK0707 -- reason` (docs/diagnostics.md).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="rule files or folders")
    p.add_argument(
        "--format",
        choices=("text", "json", "github", "sarif"),
        default="text",
        help="text (default), json, github (workflow annotations) or sarif (SARIF 2.1.0)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="warnings fail the check too (exit 1), as in CI; silence one that does not apply "
        "with `// rulekit: ignore CODE -- reason`",
    )
    p.add_argument(
        "--docs-url",
        metavar="URL",
        help="where docs/diagnostics.md is published, for the links to each code in "
        "--format sarif (default: $RULEKIT_DOCS_URL, else rulekit's own on GitHub)",
    )
    p.add_argument(
        "--explain-times",
        action="store_true",
        help="print, per workflow and per state, the worst-case time a case stays open if nobody "
        "acts, with a path that reaches it (text, or `times` in --format json)",
    )
    p.add_argument(
        "--max-open",
        metavar="DURATION",
        help="an error (RK0710) for each workflow where a case may stay open longer than this "
        "if nobody acts, e.g. 30d",
    )
    p.add_argument(
        "--migrating-from",
        metavar="OLD",
        help="also check each policy's `migrate from` block against the earlier version OLD "
        "(a policy file): every state a case can wait in is mapped, new required facts are "
        "given values (RK0341, RK0343)",
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text output (auto: only on a terminal, and not when NO_COLOR is set)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rulekit import analysis
    from rulekit.analysis import times
    from rulekit.core import diagnostics as diag
    from rulekit.policy.checker import check_migration

    limit = _max_open(args.max_open)
    if args.explain_times and args.format in ("github", "sarif"):
        raise UsageError("--explain-times prints text or JSON: use --format text or json")
    files = _policy_files(args.paths)
    if not files:
        raise UsageError("no policy files found in " + ", ".join(args.paths))
    old = _old_version(args.migrating_from)
    results: list[tuple[Path, CheckResult, list[Diagnostic]]] = []
    explained: dict[Path, list[times.WorkflowTimes]] = {}
    names: dict[Path, list[times.Named]] = {}
    for path in files:
        result = analysis.check(path)
        found = result.diagnostics
        if result.policy is not None and result.ok:
            if args.explain_times:
                explained[path] = times.worst_case_times(result.policy)
                names[path] = times.named(result.policy)
            if limit is not None:
                found = sorted([*found, *times.max_open(result.policy, limit)], key=diag.sort_key)
            if old is not None:
                moved = check_migration(result.policy, old, result.source)
                found = sorted([*found, *moved], key=diag.sort_key)
        results.append((path, result, found))
    errors = sum(d.severity == "error" for _, _, ds in results for d in ds)
    warnings = sum(d.severity == "warning" for _, _, ds in results for d in ds)
    silenced = [s for _, r, _ in results for s in r.suppressed]
    quiet = sum(s.diagnostic.severity == "warning" for s in silenced)
    everything = [d for _, _, ds in results for d in ds]
    failed = bool(errors) or (args.strict and bool(warnings))
    summary = (
        f"checked {len(files)} file{'s' * (len(files) != 1)}: {errors} error{'s' * (errors != 1)}, "
        f"{warnings} warning{'s' * (warnings != 1)}"
        + (f", {quiet} warning{'s' * (quiet != 1)} suppressed" if quiet else "")
        + ("; failed: --strict makes warnings fail the check" if failed and not errors else "")
    )
    if args.format == "github":
        from rulekit.tools import reports

        if everything:
            print(reports.github(everything))
        print(summary)
    elif args.format == "sarif":
        from rulekit.tools import reports

        docs = args.docs_url or os.environ.get("RULEKIT_DOCS_URL") or reports.DOCS_URL
        log = reports.sarif(everything, silenced, docs_url=docs.split("#")[0])
        print(json.dumps(log, indent=2, ensure_ascii=False))
    elif args.format == "json":
        print(
            json.dumps(
                {
                    "files": [
                        {
                            "file": str(p),
                            "ok": not any(d.severity == "error" for d in ds),
                            "diagnostics": [d.to_dict() for d in ds],
                            "suppressed": [s.to_dict() for s in checked.suppressed],
                        }
                        | (
                            {
                                "named": [n.to_dict() for n in names.get(p, [])],
                                "times": [w.to_dict() for w in explained.get(p, [])],
                            }
                            if args.explain_times
                            else {}
                        )
                        for p, checked, ds in results
                    ],
                    "errors": errors,
                    "warnings": warnings,
                    "suppressed": len(silenced),
                    "failed": failed,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        color = _use_color(args.color)
        for _, checked, ds in results:
            sources = {checked.source.file: checked.source}
            for d in ds:
                src = sources.get(d.file)
                text = diag.render(d, src.line_text(d.line) if src is not None else None)
                print((diag.colorize(text) if color else text) + "\n")
        for path, figures in explained.items():
            if names[path]:
                print(f"{path}: named values and conditions")
                print("\n".join(f"  {n}" for n in names[path]) + "\n")
            print(f"{path}: worst-case time a case stays open if nobody acts")
            print(times.render(figures) + "\n")
        print(summary)
    return EXIT_FAILED if failed else EXIT_OK


def _policy_files(paths: list[str]) -> list[Path]:
    """The files to check: those named, and the policies under the folders named."""
    from rulekit.core.source import find_files
    from rulekit.policy import FORMATS

    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if FORMATS.get(path.suffix.lower()) == "yaml":
            from rulekit.tools.scenarios import is_scenario_file

            if is_scenario_file(path):
                raise UsageError(
                    f"{raw} is a scenario file (it has a top-level `scenarios` key), not a "
                    f"policy: run it with `rulekit test {raw}`"
                )
        try:
            files += find_files([raw], is_policy_file)
        except FileNotFoundError:
            raise UsageError(f"no such file or folder: {raw}") from None
    return files


def is_policy_file(path: Path) -> bool:
    """Whether a file found in a folder is a policy: a .rk file, or a YAML file with a
    `policy` key at its top level that is not a scenario file (scenario files name their
    policy with a `policy` key too: `rulekit test` runs them)."""
    from rulekit.core.source import read_text
    from rulekit.policy import FORMATS

    kind = FORMATS.get(path.suffix.lower())
    if kind != "yaml":
        return kind == "rk"
    from rulekit.tools.scenarios import is_scenario_file, top_level_keys

    if is_scenario_file(path):
        return False
    try:
        keys = top_level_keys(read_text(path))
    except (OSError, UnicodeDecodeError):
        return True  # let the checker report what is wrong with it
    return keys is None or "policy" in keys


def _old_version(path: str | None) -> Policy | None:
    """The policy ``--migrating-from`` names, which must itself check (exit 2 if not)."""
    if path is None:
        return None
    from rulekit import analysis

    result = analysis.check(path)
    if result.policy is None or not result.ok:
        raise UsageError(f"--migrating-from {path}: the old version does not check")
    return result.policy


def _use_color(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _max_open(text: str | None) -> timedelta | None:
    if text is None:
        return None
    from datetime import timedelta

    from rulekit.expr import stdlib

    try:
        limit = stdlib.parse_duration(text)
    except stdlib.CelError as e:
        raise UsageError(f"--max-open: {e}") from None
    if limit < timedelta(0):
        raise UsageError(f"--max-open: {text!r} is negative: give how long a case may stay open")
    return limit
