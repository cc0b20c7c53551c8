"""``rulekit export`` and ``rulekit import``: cases as JSON Lines, from one store to another
(:mod:`rulekit.stores.export`; docs/live-changes.md, "Export and import")."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_OK, EXIT_USAGE
from rulekit.cli.store_verbs import add_store_option, store_verb

if TYPE_CHECKING:
    from argparse import _SubParsersAction


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "export",
        help="write a store's cases and their histories as JSON Lines",
        description="Write the policy versions and then each case with its whole history, "
        "one JSON object a line (the rulekit-export/1 format), for `rulekit import` or "
        "`rulekit impact --cases`.",
    )
    add_store_option(p)
    p.add_argument("--out", metavar="FILE", default="-", help="where to write (default -: stdout)")
    p.add_argument("--open-only", action="store_true", help="only the cases not yet final")
    p.add_argument("--policy", metavar="NAME", help="only the cases of this policy")
    p.set_defaults(run=run_export)

    p = verbs.add_parser(
        "import",
        help="read cases written by `rulekit export` into a store",
        description="Read an export file into a store, each case in its own transaction. "
        "A case already there with the same history is skipped; with another history it "
        "is an error. Each case is rebuilt from its history before it is written.",
    )
    add_store_option(p)
    p.add_argument("file", metavar="FILE", help="the export file (- for stdin)")
    p.set_defaults(run=run_import)


@store_verb
def run_export(args: argparse.Namespace, url: str) -> int:
    from rulekit.stores import open_store
    from rulekit.stores.export import export

    with open_store(url) as store:
        if args.out == "-":
            n = export(store, sys.stdout, open_only=args.open_only, policy=args.policy)
        else:
            with open(args.out, "w", encoding="utf-8") as out:
                n = export(store, out, open_only=args.open_only, policy=args.policy)
    print(f"rulekit: exported {n} case{'s' * (n != 1)}", file=sys.stderr)
    return EXIT_OK


@store_verb
def run_import(args: argparse.Namespace, url: str) -> int:
    from rulekit.stores import open_store
    from rulekit.stores.export import ImportProblem, bounded, import_file

    name = "<stdin>" if args.file == "-" else args.file
    try:
        source = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as e:
        print(f"rulekit: error: {name}: {e.strerror}", file=sys.stderr)
        return EXIT_USAGE
    with source, open_store(url, migrate=True) as store:
        try:
            written, skipped = import_file(store, bounded(source))
        except ImportProblem as e:
            print(f"{name}:{e.line}: error: {e.message}", file=sys.stderr)
            return EXIT_USAGE
    print(f"rulekit: imported {written} case(s), {skipped} already there", file=sys.stderr)
    return EXIT_OK
