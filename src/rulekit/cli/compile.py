"""``rulekit compile``: check a policy and write its compiled artifact (JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError

if TYPE_CHECKING:
    from argparse import _SubParsersAction


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "compile",
        help="write the compiled artifact (JSON)",
        description="Check a policy and write its compiled artifact, validated by the published JSON Schema.",
    )
    p.add_argument("file", metavar="FILE", help="a .rk or .yaml policy")
    p.add_argument(
        "-o", "--output", metavar="OUT.json", required=True, help="where to write ('-' for stdout)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rulekit import policy
    from rulekit.core.errors import CompileError
    from rulekit.policy import artifact

    try:
        text, fmt = policy.read(args.file)
    except CompileError as e:
        print(e.rendered, file=sys.stderr)
        return EXIT_USAGE
    if fmt == "json":
        raise UsageError(f"{args.file} is already a compiled artifact")
    result = policy.compile_source(text, fmt, args.file)
    if result.policy is None or not result.ok:
        print(result.render(), file=sys.stderr)
        return EXIT_FAILED
    data = artifact.to_json(result.policy)
    out = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if args.output == "-":
        sys.stdout.write(out)
    else:
        try:
            Path(args.output).write_text(out, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write {args.output}: {e.strerror}") from None
        print(f"wrote {args.output} ({data['hash']})", file=sys.stderr)
    return EXIT_OK
