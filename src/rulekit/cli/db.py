"""``rulekit db upgrade|status``: the store's schema. Needs the store's driver only."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK
from rulekit.cli.store_verbs import add_store_option, store_verb

if TYPE_CHECKING:
    from argparse import _SubParsersAction


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser("db", help="the store's schema: upgrade, status")
    actions = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, text in (
        ("upgrade", "apply the schema migrations not yet applied"),
        ("status", "show the schema version"),
    ):
        add_store_option(actions.add_parser(name, help=text, description=text.capitalize() + "."))
    p.set_defaults(run=run)


@store_verb
def run(args: argparse.Namespace, store: str) -> int:
    from rulekit.stores import describe, schema

    applied, version, wanted = schema(store, upgrade=args.db_command == "upgrade")
    for m in applied:
        print(f"applied {m.version:04d}_{m.name}")
    if version == wanted:
        state = "up to date" + (
            ", nothing to apply" if args.db_command == "upgrade" and not applied else ""
        )
    elif version < wanted:
        state = "behind: run `rulekit db upgrade`"
    else:
        state = "newer than this rulekit: upgrade rulekit"
    print(f"{describe(store)}: schema version {version} (this rulekit: {wanted}), {state}")
    return EXIT_OK if version == wanted else EXIT_FAILED
