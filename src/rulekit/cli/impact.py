"""``rulekit impact OLD NEW``: what NEW would do to the cases open today
(:mod:`rulekit.runtime.impact`; docs/live-changes.md, "Impact of a new version")."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError

if TYPE_CHECKING:
    from argparse import _SubParsersAction

    from rulekit.policy.ir import Policy
    from rulekit.runtime.impact import Report
    from rulekit.runtime.model import Record
    from rulekit.stores.export import ExportedCase


def _gate(text: str) -> str:
    from rulekit.runtime.impact import parse_gate

    try:
        return parse_gate(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no timezone (add Z or +08:00)")
    return t


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "impact",
        help="what a new policy version would do to the open cases",
        description="Replay each open case's history under OLD and under NEW and report the "
        "cases whose state, next deadline or past effects would differ, and those whose "
        "history NEW refuses.",
    )
    p.add_argument("old", metavar="OLD", help="the version the cases run on (a file or REV:path)")
    p.add_argument("new", metavar="NEW", help="the new version")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--store",
        metavar="URL",
        help="the store (default $RULEKIT_STORE or ./rulekit.db): a SQLite file or postgresql://...",
    )
    where.add_argument("--cases", metavar="FILE", help="a file written by `rulekit export`")
    p.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    p.add_argument(
        "--fail-on",
        type=_gate,
        action="append",
        default=[],
        metavar="GATE",
        help="exit 1 when: effects (a case's past effects differ), refused (NEW refuses a "
        "history), state>N (more than N cases change state); may be repeated",
    )
    p.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="only N of the open cases, the same ones for the same --seed",
    )
    p.add_argument("--seed", type=int, default=0, help="which sample (default 0)")
    p.add_argument("--at", type=_time, metavar="TIME", help="the time to compare at (default: now)")
    p.add_argument("--progress", action="store_true", help="a progress line on stderr")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rulekit.analysis import diff
    from rulekit.core.errors import RuleError
    from rulekit.runtime import impact
    from rulekit.stores import StoreError
    from rulekit.stores.export import ImportProblem

    if args.sample is not None and args.sample < 1:
        raise UsageError("--sample takes a number of cases, 1 or more")
    try:
        old, new = diff.read(args.old), diff.read(args.new)
    except diff.DiffInputError as e:
        raise UsageError(str(e)) from None
    now = args.at or datetime.now(UTC)
    name = args.cases
    try:
        if args.cases is not None:
            try:
                source = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115
            except OSError as e:
                raise UsageError(f"{name}: {e.strerror}") from None
            with source:
                report = _assess(args, old, new, _from_file(source, old), now, None)
        else:
            report = _from_store(args, old, new, now)
    except ImportProblem as e:
        print(f"{name}:{e.line}: error: {e.message}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as e:
        print(f"rulekit: error: {e.message}", file=sys.stderr)
        return EXIT_USAGE if e.code == "invalid_store_url" else EXIT_FAILED
    except RuleError as e:
        print(f"rulekit: error: {e} (is OLD the version these cases run on?)", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        sys.stdout.write(impact.dumps(report))
    elif args.format == "markdown":
        sys.stdout.write(impact.to_markdown(report))
    else:
        sys.stdout.write(impact.to_table(report))
    failed = impact.gate_failed(report, args.fail_on)
    for reason in failed:
        print(f"rulekit: impact gate failed: {reason}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _from_store(args: argparse.Namespace, old: Policy, new: Policy, now: datetime) -> Report:
    """The report over the store's open cases pinned to OLD (:func:`_pinned`)."""
    from rulekit.stores import DEFAULT_STORE, open_store
    from rulekit.stores.export import cases

    url = args.store or os.environ.get("RULEKIT_STORE") or DEFAULT_STORE
    with open_store(url) as store:
        versions = {p["hash"]: p["open_cases"] for p in store.policies() if p["name"] == old.name}
        if _pinned(old, versions):
            found = cases(store, open_only=True, version=old.hash)
            return _assess(args, old, new, found, now, versions[old.hash])
        found = cases(store, open_only=True, policy=old.name)
        return _assess(args, old, new, found, now, sum(versions.values()))


def _pinned(old: Policy, versions: Iterable[str]) -> bool:
    """Whether the cases to assess are those pinned to OLD itself: when the store (or the
    export) keeps OLD, the cases of other versions of the policy are not OLD's to replay;
    when it does not (OLD compiled from another source), those of every version, said on
    stderr."""
    if old.hash in versions:
        return True
    print(
        f"rulekit: note: OLD ({old.hash[:19]}) is not a version the cases are pinned to: "
        f"assessing the open cases of every version of {old.name}",
        file=sys.stderr,
    )
    return False


def _from_file(source: IO[bytes], old: Policy) -> Iterator[ExportedCase]:
    """The open cases of an export file pinned to OLD (:func:`_pinned`)."""
    from rulekit.stores.export import ExportedCase, bounded, read

    wanted: set[str] = set()
    for _line, item in read(bounded(source)):
        if isinstance(item, ExportedCase):
            if not item.final and item.data["policy"] in wanted:
                yield item
        else:
            names = {p["hash"]: p["name"] for p in item["policies"]}
            wanted = {h for h, n in names.items() if n == old.name}
            if _pinned(old, wanted):
                wanted = {old.hash}


def _assess(
    args: argparse.Namespace,
    old: Policy,
    new: Policy,
    found: Iterable[ExportedCase],
    now: datetime,
    total: int | None,
) -> Report:
    from rulekit.runtime import impact

    pairs: Iterator[tuple[str, list[Record]]] = ((c.id, c.history) for c in found)
    if args.progress:
        pairs = _progress(pairs, total)
    return impact.run(old, new, impact.sample(pairs, args.sample, args.seed), now)


def _progress(
    pairs: Iterator[tuple[str, list[Record]]], total: int | None
) -> Iterator[tuple[str, list[Record]]]:
    """``pairs`` as they are, with a line on stderr redrawn every 1,000 cases read."""
    n = 0
    of = f" of {total}" if total is not None else ""
    for n, pair in enumerate(pairs, 1):
        if n % 1000 == 0:
            print(f"\rimpact: {n}{of} cases read", end="", file=sys.stderr, flush=True)
        yield pair
    print(f"\rimpact: {n}{of} cases read", file=sys.stderr, flush=True)
