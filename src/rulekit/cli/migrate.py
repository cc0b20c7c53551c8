"""``rulekit migrate --to VERSION``: move a store's open cases to a later policy version,
as that version's `migrate from` block says (docs/live-changes.md, "Migrations")."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, UsageError
from rulekit.cli.store_verbs import add_store_option, store_verb

if TYPE_CHECKING:
    from argparse import _SubParsersAction


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "migrate",
        help="move a store's open cases to a later policy version",
        description="Move the open cases of a policy to a later version registered in the "
        "store, each in its own transaction with a `migrated` history record. Cases already "
        "on the version are skipped, so a run that stopped is resumed by running it again.",
    )
    add_store_option(p)
    p.add_argument("--to", required=True, metavar="VERSION", help="the version to move to")
    p.add_argument("--policy", metavar="NAME", help="the policy's name, if several have VERSION")
    p.add_argument("--workflow", metavar="NAME", help="only cases of this workflow")
    p.add_argument(
        "--where",
        metavar="STATE|CONDITION",
        help="only cases in this state, or for which this condition over the facts holds "
        "(e.g. 'order.amount > 100.00')",
    )
    p.add_argument(
        "--batch", type=int, default=100, metavar="N", help="cases read at a time (default 100)"
    )
    p.add_argument("--dry-run", action="store_true", help="change nothing: say what would move")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


@store_verb
def run(args: argparse.Namespace, url: str) -> int:
    from rulekit.stores import StoreError, open_store
    from rulekit.stores.live_migration import InvalidFilter, migrate, version_hash

    if args.batch < 1:
        raise UsageError("--batch must be at least 1")
    with open_store(url) as store:
        try:
            to = version_hash(store, args.to, args.policy)
        except StoreError as e:
            raise UsageError(f"--to {args.to}: {e.message}") from None
        try:
            done = migrate(
                store,
                to,
                workflow=args.workflow,
                where=args.where,
                batch=args.batch,
                dry_run=args.dry_run,
            )
        except InvalidFilter as e:
            raise UsageError(f"--{e}") from None
    if args.format == "json":
        print(json.dumps({"to": args.to, "dry_run": args.dry_run, **done.to_dict()}, indent=2))
    else:
        verb = "would move" if args.dry_run else "moved"
        for case, old, new in done.moved:
            print(f"{case}: {old} -> {new}")
        for case, why in done.refused:
            print(f"{case}: refused: {why}")
        print(
            f"{verb} {len(done.moved)} case{'s' * (len(done.moved) != 1)} to version {args.to}, "
            f"{done.skipped} already on it, {len(done.refused)} refused"
        )
    return EXIT_FAILED if done.refused else EXIT_OK
