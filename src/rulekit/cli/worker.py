"""``rulekit worker``: fire due deadlines of every case in the store (any number, any host).

Runs :class:`rulekit.stores.worker.Worker` on the store alone: the service is never
imported, so a core install (no ``server`` extra) runs workers.
"""

from __future__ import annotations

import argparse
import signal
from typing import TYPE_CHECKING

from rulekit.cli.exits import EXIT_OK
from rulekit.cli.store_verbs import add_store_option, store_verb

if TYPE_CHECKING:
    from argparse import _SubParsersAction
    from types import FrameType


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "worker",
        help="fire due deadlines (run any number, on any host)",
        description="Fire due deadlines of every case in the store, in due order, each once, "
        "recorded at its due time. Stops after the batch in flight on SIGINT or SIGTERM.",
    )
    add_store_option(p)
    p.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="pause when nothing is due"
    )
    p.add_argument("--batch", type=int, default=100, help="deadlines claimed per transaction")
    p.add_argument("--once", action="store_true", help="fire what is due now, then exit")
    p.set_defaults(run=run)


@store_verb
def run(args: argparse.Namespace, store: str) -> int:
    import logging

    from rulekit.stores import describe, open_store
    from rulekit.stores.worker import Worker

    log = logging.getLogger("rulekit")

    opened = open_store(store)
    worker = Worker(opened, interval=args.interval, batch=args.batch)
    try:
        if args.once:
            total = 0
            while True:
                claimed, fired = worker.run_once()
                total += fired
                if claimed < args.batch:
                    break
            print(f"fired {total} due deadline{'s' * (total != 1)}")
            return EXIT_OK

        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("stopping after the batch in flight")
            worker.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("worker on %s: firing due deadlines every %ss", describe(store), args.interval)
        worker.run()
    finally:
        opened.close()
    return EXIT_OK
