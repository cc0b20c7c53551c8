"""``rulekit convert``: write a policy in its other form (rulekit.tools.convert)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError

if TYPE_CHECKING:
    from argparse import _SubParsersAction


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "convert",
        help="write a policy in the other form (.rk <-> YAML)",
        description="Write a .rk policy as YAML, or a YAML policy as .rk, in the target form's "
        "canonical layout, with the same content hash; comments are carried to the same "
        "declaration, state or transition (a comment that cannot be is named on stderr). "
        "Nothing is written if the policy has errors (shown as `rulekit check` shows them) or "
        "if the result would compile to another content hash. Exit 0 when written, 1 when "
        "the policy has errors or cannot be converted, 2 for usage errors.",
    )
    p.add_argument("file", metavar="FILE", help="a .rk or .yaml/.yml policy")
    p.add_argument("--to", required=True, choices=("yaml", "rk"), help="the form to write")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="where to write (default: standard output; '-' too)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rulekit import policy
    from rulekit.core import diagnostics as diag
    from rulekit.core.errors import CompileError
    from rulekit.core.source import Source
    from rulekit.tools.convert import ConvertError, convert

    try:
        text, fmt = policy.read(args.file)
    except CompileError as e:
        print(e.rendered, file=sys.stderr)
        return EXIT_USAGE
    if fmt == "json":
        raise UsageError(f"{args.file} is a compiled artifact: convert its .rk or YAML source")
    if fmt == args.to:
        raise UsageError(
            f"{args.file} is already in the {args.to} form (`rulekit fmt` lays it out)"
        )
    if (
        args.output not in (None, "-")
        and policy.FORMATS.get(Path(args.output).suffix.lower()) != args.to
    ):
        raise UsageError(
            f"--to {args.to} writes a {'.rk' if args.to == 'rk' else '.yaml'} file, not {args.output}"
        )
    try:
        result = convert(text, fmt, args.to, args.file)
    except ConvertError as e:
        if e.diagnostics:
            print(
                diag.render_all(e.diagnostics, {args.file: Source(text, args.file)}),
                file=sys.stderr,
            )
        print(str(e), file=sys.stderr)
        return EXIT_FAILED
    for line, column, comment in result.dropped:
        print(
            f"{args.file}:{line}:{column}: comment not carried: {comment} (the {args.to} form "
            "has no place for a comment inside an expression's string outside the expression)",
            file=sys.stderr,
        )
    if args.output in (None, "-"):
        sys.stdout.write(result.text)
        return EXIT_OK
    try:
        Path(args.output).write_text(result.text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {args.output}: {e.strerror}") from None
    print(f"wrote {args.output}", file=sys.stderr)
    return EXIT_OK
