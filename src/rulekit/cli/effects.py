"""``rulekit effects``: the outbox from a shell: list effects (the dead letters above all)
and put dead letters back for the relay (docs/effects.md, "Dead letters").

The store alone, no extra needed: an operator replays dead letters with the service down.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from rulekit.cli.store_verbs import add_store_option, store_verb

if TYPE_CHECKING:
    from argparse import _SubParsersAction
    from collections.abc import Iterator

    from rulekit.runtime.store import Store

#: Dead letters read per page by ``retry --all``.
_PAGE = 500


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "effects",
        help="list the outbox's effects, and put dead letters back",
        description="The outbox as the relay sees it: `list` shows effects oldest first "
        "(`--status dead`: the dead letters, each with why its last delivery failed); "
        "`retry` puts dead letters back in the outbox, attempts at 0, for the relay to "
        "deliver again under the same key.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = actions.add_parser("list", help="effects in the outbox, oldest first")
    add_store_option(ls)
    ls.add_argument("--status", choices=("pending", "done", "dead"), help="only these")
    ls.add_argument("--case", metavar="ID", help="only this case's")
    ls.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    ls.add_argument("--format", choices=("text", "json"), default="text")
    ls.set_defaults(run=run_list)
    retry = actions.add_parser("retry", help="put dead letters back in the outbox")
    add_store_option(retry)
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("keys", nargs="*", default=[], metavar="KEY", help="effect keys")
    which.add_argument("--all", action="store_true", help="every dead letter (of --name)")
    retry.add_argument("--name", metavar="EFFECT", help="with --all: only effects of this name")
    retry.set_defaults(run=run_retry)


@store_verb
def run_list(args: argparse.Namespace, url: str) -> int:
    from rulekit.stores import open_store

    with open_store(url) as store:
        found = store.effects(status=args.status, case_id=args.case, limit=max(args.limit, 0))
    if args.format == "json":
        print(json.dumps([e.to_data() for e in found], ensure_ascii=False, indent=2))
        return EXIT_OK
    for e in found:
        line = f"{e.key}  {e.name}  {e.status}  attempts {e.attempts}  emitted {e.at.isoformat()}"
        print(line + (f"\n    last error: {e.last_error}" if e.last_error else ""))
    print(f"{len(found)} effect{'s' * (len(found) != 1)}", file=sys.stderr)
    return EXIT_OK


@store_verb
def run_retry(args: argparse.Namespace, url: str) -> int:
    from rulekit.runtime.store import StoreError
    from rulekit.stores import open_store

    if args.name is not None and not args.all:
        print("rulekit: error: --name goes with --all", file=sys.stderr)
        return EXIT_USAGE
    failed = put_back = 0
    with open_store(url) as store:
        dead = list(_all_dead(store, args.name))  # oldest first
        known = set(dead)
        for key in dead if args.all else args.keys:
            try:
                after = store.retry_dead(key)  # changes nothing unless it is a dead letter
            except StoreError as e:  # effect_not_found: say which, go on with the rest
                print(f"rulekit: error: {key}: {e.message}", file=sys.stderr)
                failed += 1
                continue
            if key in known:
                put_back += 1
            else:
                print(f"rulekit: {key} is {after.status}, not a dead letter: left as it is")
    print(f"put {put_back} dead letter{'s' * (put_back != 1)} back in the outbox")
    return EXIT_FAILED if failed else EXIT_OK


def _all_dead(store: Store, name: str | None) -> Iterator[str]:
    """Every dead letter's key (of ``name``), oldest first, read a page at a time."""
    after: int | None = None
    while page := store.effects(status="dead", limit=_PAGE, after=after):
        yield from (e.key for e in page if name is None or e.name == name)
        after = page[-1].id
