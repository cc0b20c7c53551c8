"""Running the service under uvicorn: who may call, the listening socket, a graceful stop.

``rulekit serve`` (:mod:`rulekit.cli.serve`) loads the policies and opens the store,
then asks this module for the tokens (:func:`tokens_for`: without a tokens file,
development tokens on a loopback address only), a socket (:func:`listen`: a port
in use is one clear error) and to serve the app until SIGINT or SIGTERM
(:func:`serve`). Imports uvicorn: it needs the ``server`` extra.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import threading
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from rulekit.service.auth import DevTokens, Tokens, TokensError

log = logging.getLogger("rulekit")


class ServeError(Exception):
    """Why the service cannot start, in a sentence that names the place and the fix."""


def tokens_for(host: str, tokens_file: str | None, actors: set[str]) -> Tokens:
    """Who may call: the bearer tokens of ``tokens_file``; without one, development tokens
    (``dev:ACTOR[:PRINCIPAL]``, ``dev:admin``), which only a loopback address may use."""
    if tokens_file:
        try:
            return Tokens.load(tokens_file, actors)
        except TokensError as e:
            raise ServeError(str(e)) from None
    if not is_loopback(host):
        raise ServeError(
            f"listening on {host} needs --tokens FILE "
            "(without one, only loopback development tokens are accepted)"
        )
    log.warning(
        "no --tokens file: development mode, loopback only; send "
        "`Authorization: Bearer dev:ACTOR[:PRINCIPAL]` or `dev:admin`"
    )
    return DevTokens(actors)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost`` included)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything says it serves (a port in use is one clear
    error, not a "serving ..." line and then uvicorn's own)."""
    try:
        sock = _bound(host, port)
    except OSError as e:
        raise ServeError(
            f"cannot listen on {host}:{port}: {e.strerror or e} "
            "(is another server there? choose another --port)"
        ) from None
    sock.set_inheritable(True)
    return sock


def _bound(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def serve(app: ASGIApp, listening: socket.socket) -> bool:
    """Serve ``app`` on ``listening`` until SIGINT or SIGTERM, then stop gracefully; False
    when it never started (its lifespan's startup failed, and said why).

    The server runs in a thread of its own, where uvicorn installs no signal handlers
    (it does only on the main thread, and then raises the signal again once it has shut
    down, which killed the process with status -15 before the store was closed). Here
    the main thread takes the signals and asks the server to stop through its public
    ``should_exit`` (a second signal: ``force_exit``, as uvicorn does): the requests in
    flight, each one whole step, finish first (for at most 30 s); then the lifespan
    stops the worker.
    """
    host, port = listening.getsockname()[:2]
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)
    )

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
    return bool(server.started)
