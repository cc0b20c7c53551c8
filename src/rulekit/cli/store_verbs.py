"""What the verbs that work on a store share (``serve``, ``worker``, ``db``): the ``--store``
option, log lines as ``rulekit: ...``, a store's errors in one line, and the check that
the ``server`` extra is installed."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import sys
from collections.abc import Callable

from rulekit.cli.exits import EXIT_FAILED, EXIT_USAGE

#: What the service imports: the `server` extra (pyproject.toml), not in a core install.
SERVER_PACKAGES = ("fastapi", "pydantic", "starlette", "uvicorn", "prometheus_client")


def add_store_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        metavar="URL",
        help="a SQLite file (default $RULEKIT_STORE or ./rulekit.db) or postgresql://user@host/db",
    )


def store_verb(
    run: Callable[[argparse.Namespace, str], int],
) -> Callable[[argparse.Namespace], int]:
    """A verb's run function given the store's URL (``--store``, else ``$RULEKIT_STORE``,
    else ./rulekit.db); a :class:`~rulekit.stores.StoreError` is printed in one line with
    exit status 2 for a URL rulekit cannot read, else 1."""

    @functools.wraps(run)
    def verb(args: argparse.Namespace) -> int:
        import logging

        from rulekit.stores import DEFAULT_STORE, StoreError

        logging.basicConfig(level=logging.INFO, format="rulekit: %(message)s")
        url = args.store if args.store is not None else os.environ.get("RULEKIT_STORE")
        try:
            return run(args, url if url is not None else DEFAULT_STORE)
        except StoreError as e:
            print(f"rulekit: error: {e.message}", file=sys.stderr)
            return EXIT_USAGE if e.code == "invalid_store_url" else EXIT_FAILED

    return verb


def server_extra_missing(command: str) -> bool:
    """Whether the ``server`` extra is missing, in which case it says which to install
    (the packages are looked up, not imported: that is slow)."""
    missing = [name for name in SERVER_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"rulekit: error: `rulekit {command}` needs the HTTP service's packages, "
            f"not installed here ({', '.join(missing)}): pip install 'rulekit[server]'",
            file=sys.stderr,
        )
    return bool(missing)
