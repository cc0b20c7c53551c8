"""``rulekit diff``: what changed between two versions of a policy, breaking changes marked."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, UsageError

if TYPE_CHECKING:
    from argparse import _SubParsersAction


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "diff",
        help="what changed between two versions of a policy",
        description="Compare two policies (.rk, .yaml, compiled .json, or REV:path from git) and say what "
        "changed, marking the changes that can break live cases or the clients that send events.",
    )
    p.add_argument("old", metavar="OLD", help="the old version (a file, or e.g. HEAD~1:rules/x.rk)")
    p.add_argument("new", metavar="NEW", help="the new version")
    p.add_argument(
        "--fail-on", choices=("breaking", "any"), help="exit 1 when there are such changes"
    )
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rulekit.analysis import diff

    try:
        old, new = diff.read(args.old), diff.read(args.new)
    except diff.DiffInputError as e:
        raise UsageError(str(e)) from None
    changes = diff.compare(old, new)
    breaking = [c for c in changes if c.breaking]
    if args.format == "json":
        print(
            json.dumps(
                {
                    "changes": [
                        {"where": c.where, "what": c.what, "breaking": c.breaking} for c in changes
                    ],
                    "breaking": len(breaking),
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        for c in changes:
            print(c)
        print(
            f"{len(changes)} change{'s' * (len(changes) != 1)}, {len(breaking)} breaking"
            if changes
            else "no changes"
        )
    failed = (args.fail_on == "breaking" and breaking) or (args.fail_on == "any" and changes)
    return EXIT_FAILED if failed else EXIT_OK
