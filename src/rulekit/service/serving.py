"""The commands that run rulekit as a service: ``serve``, ``worker`` and ``db``.

Imported by the CLI only when one of them runs: checking and testing
policies never loads the HTTP stack or a database driver. ``serve`` and
``worker`` need the ``server`` extra (a core install says so and exits 2);
``db`` needs only the store's driver.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import logging
import signal
import socket
import sys
import threading
from types import FrameType
from typing import Any

from rulekit import policy
from rulekit.core.errors import CompileError
from rulekit.service.auth import DevTokens, Tokens, TokensError
from rulekit.stores import StoreError, describe, is_postgres, open_store, schema

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("rulekit")


#: What the service imports: the `server` extra (pyproject.toml), not in a core install.
SERVER_PACKAGES = ("fastapi", "pydantic", "starlette", "uvicorn", "prometheus_client")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="rulekit: %(message)s")
    if args.command != "db" and (missing := _missing(SERVER_PACKAGES)):
        print(
            f"rulekit: error: `rulekit {args.command}` needs the HTTP service's packages, "
            f"not installed here ({', '.join(missing)}): pip install 'rulekit[server]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "worker":
            return _worker(args)
        return _db(args)
    except StoreError as e:
        print(f"rulekit: error: {e.message}", file=sys.stderr)
        return EXIT_USAGE if e.code == "invalid_store_url" else EXIT_FAILED


def _missing(packages: tuple[str, ...]) -> list[str]:
    """Those of ``packages`` that cannot be imported (looked up, not imported: that is slow)."""
    return [name for name in packages if importlib.util.find_spec(name) is None]


def _db(args: argparse.Namespace) -> int:
    applied, version, wanted = schema(args.store, upgrade=args.db_command == "upgrade")
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
    print(f"{describe(args.store)}: schema version {version} (this rulekit: {wanted}), {state}")
    return EXIT_OK if version == wanted else EXIT_FAILED


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from rulekit.service.app import LIMITS, Service, create_app

    loaded = []
    for file in args.files:
        try:
            loaded.append(policy.load(file))
        except CompileError as e:
            print(e.rendered, file=sys.stderr)
            return EXIT_USAGE
        except OSError as e:
            print(f"rulekit: error: {file}: {e.strerror}", file=sys.stderr)
            return EXIT_USAGE
    names = [p.name for p in loaded]
    if len(set(names)) != len(names):
        print(
            "rulekit: error: two of the files are versions of the same policy: serve one",
            file=sys.stderr,
        )
        return EXIT_USAGE
    actors = {a for p in loaded for a in p.actors}
    if args.tokens:
        try:
            tokens: Tokens = Tokens.load(args.tokens, actors)
        except TokensError as e:
            print(f"rulekit: error: {e}", file=sys.stderr)
            return EXIT_USAGE
    else:
        if not _loopback(args.host):
            print(
                f"rulekit: error: listening on {args.host} needs --tokens FILE "
                "(without one, only loopback development tokens are accepted)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        log.warning(
            "no --tokens file: development mode, loopback only; send "
            "`Authorization: Bearer dev:ACTOR[:PRINCIPAL]` or `dev:admin`"
        )
        tokens = DevTokens(actors)
    try:
        listening = _listen(args.host, args.port)
    except OSError as e:
        print(
            f"rulekit: error: cannot listen on {args.host}:{args.port}: "
            f"{e.strerror or e} (is another server there? choose another --port)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    store = open_store(args.store, migrate=args.migrate or not is_postgres(args.store))
    try:
        service = Service(
            store,
            loaded,
            tokens,
            worker_interval=None if args.no_worker else args.worker_interval,
            max_body=args.max_body or LIMITS["max_body"],
        )
        log.info(
            "serving %s on %s from http://%s:%d (OpenAPI at /openapi.json)%s",
            ", ".join(names),
            describe(args.store),
            args.host,
            listening.getsockname()[1],
            "" if args.no_worker else ", deadline worker in-process",
        )
        # uvicorn stops on SIGINT/SIGTERM after the requests in flight (each a whole step) finish.
        config = uvicorn.Config(
            create_app(service),
            host=args.host,
            port=args.port,
            log_level="warning",
            timeout_graceful_shutdown=30,
        )
        _serve_until_stopped(uvicorn.Server(config), listening)
    finally:
        listening.close()
        store.close()
    return EXIT_OK


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything says it serves (a port in use is one clear
    error, not a "serving ..." line and then uvicorn's own)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _serve_until_stopped(server: Any, listening: socket.socket) -> None:
    """Serve until SIGINT or SIGTERM, then stop gracefully, with exit status 0.

    The server runs in a thread of its own, where uvicorn installs no signal handlers
    (it does only on the main thread, and then raises the signal again once it has shut
    down, which killed the process with status -15 before the store was closed). Here
    the main thread takes the signals and asks the server to stop through its public
    ``should_exit`` (a second signal: ``force_exit``, as uvicorn does): the requests in
    flight, each one whole step, finish first; then the lifespan stops the worker.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, stop) for sig in handled}
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listening]}, name="rulekit-http"
    )
    try:
        thread.start()
        while thread.is_alive():
            thread.join(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _worker(args: argparse.Namespace) -> int:
    from rulekit.stores.worker import Worker

    store = open_store(args.store)
    worker = Worker(store, interval=args.interval, batch=args.batch)
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
        log.info(
            "worker on %s: firing due deadlines every %ss", describe(args.store), args.interval
        )
        worker.run()
    finally:
        store.close()
    return EXIT_OK
