"""``rulekit demo``: rulekit's main job, start to finish, on the shipped policy."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argparse import _SubParsersAction


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "demo",
        help="rulekit's main job, start to finish, on the shipped policy",
        description="Check the shipped Kuaishou after-sales policy, explain a condition, then run "
        "a case of each workflow durably in a temporary SQLite store and print the timelines.",
    )
    p.add_argument(
        "policy",
        nargs="?",
        metavar="FILE",
        help="the policy to run (default: the shipped kuaishou_after_sales.rk)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rulekit.tools import demo

    return demo.main([args.policy] if args.policy else [])
