"""``rulekit serve``: the HTTP service for the given policies, on the embedded store by default.

Loads the policies and opens the store here; who may call, listening and stopping
gracefully are :mod:`rulekit.service.serving`'s. Needs the ``server`` extra: without
it, exit status 2 naming what to install.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from rulekit.cli.store_verbs import add_store_option, server_extra_missing, store_verb

if TYPE_CHECKING:
    from argparse import _SubParsersAction

    from rulekit.policy import Policy


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "serve",
        help="the HTTP service, on the embedded store by default",
        description="Serve cases of the given policies over HTTP (OpenAPI at /openapi.json), with a "
        "deadline worker in the same process. Without --tokens, only loopback development tokens "
        "(dev:ACTOR[:PRINCIPAL], dev:admin) are accepted.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="policies to serve (.rk, .yaml, .json)")
    add_store_option(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument(
        "--tokens", metavar="FILE", help="bearer tokens and who they are (YAML; docs/service.md)"
    )
    p.add_argument(
        "--no-worker",
        action="store_true",
        help="fire no deadlines here (run `rulekit worker` instead)",
    )
    p.add_argument(
        "--worker-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often the in-process worker looks for due deadlines (default 1)",
    )
    p.add_argument(
        "--relay",
        metavar="FILE",
        help="also deliver the outbox's effects here, as relay.yaml routes them "
        "(`rulekit relay` in this process; docs/effects.md)",
    )
    p.add_argument(
        "--migrate",
        action="store_true",
        help="bring a PostgreSQL schema up to date first (SQLite stores always are)",
    )
    p.add_argument(
        "--max-body",
        type=_positive_int,
        metavar="BYTES",
        help="refuse request bodies larger than this with 413 (default 1048576: 1 MiB)",
    )
    p.set_defaults(run=run)


def _positive_int(text: str) -> int:
    """A whole number of 1 or more (an argument's type)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return int(text)


@store_verb
def run(args: argparse.Namespace, store: str) -> int:
    if server_extra_missing("serve"):
        return EXIT_USAGE
    import logging

    from rulekit.service import serving
    from rulekit.service.app import LIMITS, Service, create_app
    from rulekit.stores import describe, is_postgres, open_store

    loaded = _policies(args.files)
    if loaded is None:
        return EXIT_USAGE
    relay = None
    if args.relay is not None:
        from rulekit.cli.relay import relay_packages_missing
        from rulekit.relay.config import ConfigError, load_config

        try:
            relay = load_config(args.relay)
        except ConfigError as e:
            print(str(e), file=sys.stderr)
            return EXIT_USAGE
        if relay_packages_missing(relay, metrics=False):
            return EXIT_USAGE
        import asyncio

        from rulekit.relay.core import reachable
        from rulekit.relay.destinations import DestinationError

        try:  # a broker down or a stream missing: said here, before the service starts
            asyncio.run(reachable(relay))
        except DestinationError as e:
            print(f"rulekit: error: {e}", file=sys.stderr)
            return EXIT_FAILED
    names = [p.name for p in loaded]
    try:
        tokens = serving.tokens_for(args.host, args.tokens, {a for p in loaded for a in p.actors})
        listening = serving.listen(args.host, args.port)
    except serving.ServeError as e:
        print(f"rulekit: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    opened = open_store(store, migrate=args.migrate or not is_postgres(store))
    try:
        service = Service(
            opened,
            loaded,
            tokens,
            worker_interval=None if args.no_worker else args.worker_interval,
            max_body=args.max_body or LIMITS["max_body"],
            relay=relay,
        )
        logging.getLogger("rulekit").info(
            "serving %s on %s from http://%s:%d (OpenAPI at /openapi.json)%s",
            ", ".join(names),
            describe(store),
            args.host,
            listening.getsockname()[1],
            "" if args.no_worker else ", deadline worker in-process",
        )
        if relay is not None:
            logging.getLogger("rulekit").info(
                "relaying effects as %s routes them (%d deliveries at once)",
                relay.path,
                relay.concurrency,
            )
        started = serving.serve(create_app(service), listening)
    finally:
        listening.close()
        opened.close()
    return EXIT_OK if started else EXIT_FAILED


def _policies(files: list[str]) -> list[Policy] | None:
    """The policies to serve, or None when one cannot be loaded or two are versions of one
    policy (said on stderr)."""
    from rulekit import policy
    from rulekit.core.errors import CompileError

    loaded = []
    for file in files:
        try:
            loaded.append(policy.load(file))
        except CompileError as e:
            print(e.rendered, file=sys.stderr)
            return None
        except OSError as e:
            print(f"rulekit: error: {file}: {e.strerror}", file=sys.stderr)
            return None
    names = [p.name for p in loaded]
    if len(set(names)) != len(names):
        print(
            "rulekit: error: two of the files are versions of the same policy: serve one",
            file=sys.stderr,
        )
        return None
    return loaded
