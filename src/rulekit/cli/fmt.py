"""``rulekit fmt``: lay out policies the one canonical way: .rk files (rulekit.tools.formatter)
and YAML policies (rulekit.tools.convert, which prints the canonical YAML form)."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, UsageError

if TYPE_CHECKING:
    from argparse import _SubParsersAction


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "fmt",
        help="lay out .rk and YAML policies the canonical way",
        description="Rewrite .rk files and YAML policies (folders are searched for them: "
        "YAML files with a top-level `policy` key that are not scenario files) in the "
        "canonical layout of their form, keeping every comment, the blank lines between items "
        "and each expression as written. "
        "A file with syntax errors is left as it is and its errors are shown; a file is never "
        "written if its formatted text would compile to another content hash. `-` reads a "
        "policy from standard input and writes it formatted to standard output (for editors). "
        "Exit 0 when done, 1 when a file has errors (or, with --check, would change).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="rule files or folders, or - (stdin)")
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; list the files that would change and exit 1 if there are any",
    )
    p.add_argument(
        "--diff", action="store_true", help="write nothing; print what would change as a diff"
    )
    p.add_argument(
        "--stdin-format",
        choices=("rk", "yaml"),
        default="rk",
        help="the form of the policy read from - (default: rk)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rulekit.core.source import find_files, read_text

    if "-" in args.paths and len(args.paths) > 1:
        raise UsageError("- (standard input) is formatted alone: give no other PATH with it")
    if args.paths == ["-"]:
        return _one(sys.stdin.read(), "<stdin>", args, None)
    from rulekit.cli.check import is_policy_file
    from rulekit.policy import FORMATS

    try:
        files = find_files(args.paths, is_policy_file)
    except FileNotFoundError as e:
        raise UsageError(f"no such file or folder: {e.args[0]}") from None
    if not files:
        raise UsageError("no policies (.rk or YAML) found in " + ", ".join(args.paths))
    status = EXIT_OK
    for path in files:
        if FORMATS.get(path.suffix.lower()) == "yaml" and not is_policy_file(path):
            # named (by pre-commit, say) but a scenario file or other YAML: not a policy
            print(f"{path}: skipped: not a policy", file=sys.stderr)
            continue
        try:
            text = read_text(path)
        except (OSError, UnicodeDecodeError) as e:
            print(f"{path}: cannot read it: {e}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        status = max(status, _one(text, str(path), args, path))
    return status


def _one(text: str, name: str, args: argparse.Namespace, path: Path | None) -> int:
    """Format one policy; its exit status."""
    from rulekit.core import diagnostics as diag
    from rulekit.core.source import Source
    from rulekit.policy import FORMATS
    from rulekit.tools.formatter import FormatError, format_checked

    form = args.stdin_format if path is None else FORMATS.get(path.suffix.lower(), "rk")
    try:
        if form == "yaml":
            from rulekit.tools.convert import format_yaml_checked

            out = format_yaml_checked(text, name)
        else:
            out = format_checked(text, name)
    except FormatError as e:
        if e.diagnostics:
            print(diag.render_all(e.diagnostics, {name: Source(text, name)}), file=sys.stderr)
        print(str(e), file=sys.stderr)
        if path is None and not (args.check or args.diff):
            sys.stdout.write(text)  # an editor replaces the buffer with stdout: keep it whole
        return EXIT_FAILED
    changed = out != text
    if args.diff and changed:
        sys.stdout.writelines(
            difflib.unified_diff(
                text.splitlines(keepends=True),
                out.splitlines(keepends=True),
                f"{name} (original)",
                f"{name} (formatted)",
            )
        )
    if args.check:
        if changed and not args.diff:
            print(f"{name}: would be reformatted")
        return EXIT_FAILED if changed else EXIT_OK
    if args.diff:
        return EXIT_OK
    if path is None:
        sys.stdout.write(out)
    elif changed:
        path.write_text(out, encoding="utf-8")
        print(f"formatted {name}")
    return EXIT_OK
