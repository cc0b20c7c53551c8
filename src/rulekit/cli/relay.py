"""``rulekit relay``: deliver the outbox's effects to webhooks and NATS JetStream.

Runs :class:`rulekit.relay.core.Relay` on the store alone (the service is never imported).
Needs the ``relay`` extra: without it, exit 2 naming what to install.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from rulekit.cli.store_verbs import add_store_option

if TYPE_CHECKING:
    from argparse import _SubParsersAction

    from rulekit.relay.config import RelayConfig
    from rulekit.relay.core import Relay, RelayStats
    from rulekit.runtime.store import Store


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "relay",
        help="deliver outbox effects to webhooks and NATS JetStream",
        description="Claim effects from the store's outbox and deliver each to the route "
        "relay.yaml gives its name: a signed webhook or a NATS JetStream subject. At least "
        "once, with the effect's stable key; retried with backoff; dead-lettered after too "
        "many tries. Runs until SIGINT or SIGTERM (then lets deliveries in flight finish), "
        "or with --once delivers what is claimable now and exits: 0 when every effect was "
        "delivered, 1 when some were put back for later or dead-lettered. See docs/effects.md.",
    )
    p.add_argument(
        "--config",
        default="relay.yaml",
        metavar="FILE",
        help="the relay's configuration (default: relay.yaml)",
    )
    add_store_option(p)
    p.add_argument("--once", action="store_true", help="deliver what is claimable now, then exit")
    p.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on this port (/metrics)",
    )
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="the metrics server's address (default 127.0.0.1)",
    )
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="the --once summary's format"
    )
    p.set_defaults(run=run)


#: The packages each kind of route (and the metrics server) needs: the `relay` extra.
_NEEDS = {"webhook": ("aiohttp",), "jetstream": ("nats",), "metrics": ("prometheus_client",)}


def run(args: argparse.Namespace) -> int:
    import logging

    from rulekit.relay.config import ConfigError, load_config
    from rulekit.stores import DEFAULT_STORE, StoreError

    logging.basicConfig(level=logging.INFO, format="rulekit: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    if relay_packages_missing(config, metrics=args.metrics_port is not None):
        return EXIT_USAGE
    url = args.store or config.store or os.environ.get("RULEKIT_STORE") or DEFAULT_STORE
    try:
        return _relay(args, config, url)
    except StoreError as e:
        print(f"rulekit: error: {e.message}", file=sys.stderr)
        return EXIT_USAGE if e.code == "invalid_store_url" else EXIT_FAILED


def relay_packages_missing(config: RelayConfig, *, metrics: bool) -> bool:
    """Whether a package the routes (and the metrics server) need is missing, in which case
    it says which extra to install (the packages are looked up, not imported)."""
    from rulekit.relay.config import WebhookTarget

    kinds = {
        "webhook" if isinstance(r.target, WebhookTarget) else "jetstream" for r in config.routes
    }
    if metrics:
        kinds.add("metrics")
    missing = sorted(
        {p for kind in kinds for p in _NEEDS[kind] if importlib.util.find_spec(p) is None}
    )
    if missing:
        print(
            f"rulekit: error: the relay needs packages not installed here "
            f"({', '.join(missing)}): pip install 'rulekit[relay]'",
            file=sys.stderr,
        )
    return bool(missing)


def _relay(args: argparse.Namespace, config: RelayConfig, url: str) -> int:
    import asyncio
    import logging

    from rulekit.relay.core import Relay
    from rulekit.relay.destinations import DestinationError
    from rulekit.stores import describe, open_store

    log = logging.getLogger("rulekit")
    registry = None
    if args.metrics_port is not None:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
        start_http_server(args.metrics_port, addr=args.metrics_host, registry=registry)
        log.info("relay metrics on http://%s:%d/metrics", args.metrics_host, args.metrics_port)
    store = open_store(url)
    try:
        warn_uncovered(store, config)
        relay = Relay(store, config, registry=registry)
        try:
            if args.once:
                stats = asyncio.run(_once(relay))
            else:
                log.info(
                    "relay on %s: %d route%s, %d deliveries at once",
                    describe(url),
                    len(config.routes),
                    "s" * (len(config.routes) != 1),
                    config.concurrency,
                )
                asyncio.run(_forever(relay))
                return EXIT_OK
        except DestinationError as e:
            print(f"rulekit: error: {e}", file=sys.stderr)
            return EXIT_FAILED
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(stats.to_dict()))
    else:
        print(
            f"delivered {stats.delivered}, retried later {stats.retried}, "
            f"dead-lettered {stats.dead}; oldest pending effect: {stats.lag_seconds:.1f}s"
        )
    return EXIT_OK if stats.retried == stats.dead == 0 else EXIT_FAILED


async def _once(relay: Relay) -> RelayStats:
    async with relay:
        return await relay.run_once()


async def _forever(relay: Relay) -> None:
    import asyncio
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with relay:
        await relay.run(stop)


def warn_uncovered(store: Store, config: RelayConfig) -> None:
    """Say which effects the store's policies emit that no route takes: they stay pending
    (another relay may take them), and their lag grows."""
    import logging

    if config.names is None:
        return
    emitted: set[str] = set()
    for p in store.policies():
        emitted |= set(store.engine(p["hash"]).policy.effects)
    for name in sorted(emitted - config.names):
        logging.getLogger("rulekit").warning(
            "no route in %s takes effect `%s`: it stays in the outbox for another relay",
            config.path,
            name,
        )
