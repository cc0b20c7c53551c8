"""The end of ``rulekit demo``: the relay delivers the demo's refunds to their consumer.

A payment service stand-in listens on a free local port and verifies each delivery's
signature with :func:`rulekit.verify_signature`, as a real receiver does; the relay (the
code ``rulekit relay --once`` runs) delivers the outbox's refunds to it, signed with a
secret generated for the run, and acknowledges each in the outbox once it answered 2xx.
Then, when a NATS server is reachable, one more refund goes to NATS JetStream through a
JetStream route. Neither part may make the demo fail: without the ``relay`` extra, or
without NATS, the part is skipped with a line that says how to run it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.util import find_spec
from typing import Any
from urllib.parse import urlsplit

from rulekit.core.errors import RuleError
from rulekit.relay.config import RelayConfig, loads_config
from rulekit.relay.signing import SIGNATURE_HEADER, SignatureError, verify_signature
from rulekit.runtime.store import Store

#: The receiver's path, as a payment service would mount it.
HOOK_PATH = "/hooks/rulekit"
#: The environment variable the demo's relay.yaml names (set only in the demo's own mapping).
SECRET_ENV = "DEMO_WEBHOOK_SECRET"
#: Where the broker part looks for NATS when $RULEKIT_NATS_URL is not set.
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
#: How long the broker part waits for NATS to accept a connection before skipping.
NATS_PROBE_SECONDS = 0.5
INSTALL_HINT = "pip install 'rulekit[relay]'"


@dataclass
class Delivery:
    """One request the receiver took: what it read, and what verifying it said."""

    request_line: str
    signature: str
    body: bytes
    verdict: str
    #: what the receiver answered
    status: int


@dataclass
class _Receiver:
    secret: str
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                header = self.headers.get(SIGNATURE_HEADER) or ""
                try:
                    verify_signature(body, header, receiver.secret)
                    verdict, status = "signature verified", 200
                except SignatureError as e:
                    verdict, status = f"signature REFUSED: {e}", 400
                with receiver.lock:
                    receiver.deliveries.append(
                        Delivery(self.requestline, header, body, verdict, status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the demo prints what the receiver took, not an access log."""

        return Handler


@contextmanager
def _receiving(secret: str) -> Iterator[tuple[str, _Receiver]]:
    """A receiver on a free port of 127.0.0.1, in a thread; yields its URL."""
    receiver = _Receiver(secret)
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
    thread = threading.Thread(target=server.serve_forever, name="demo-receiver", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{HOOK_PATH}", receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _config(routes: str, secret: str = "") -> RelayConfig:
    """The demo's relay.yaml, read by the relay's own reader (the secret from a mapping
    standing for the environment)."""
    return loads_config(f"routes:\n{routes}", "<demo relay.yaml>", {SECRET_ENV: secret})


async def _run_once(store: Store, config: RelayConfig) -> None:
    from rulekit.relay.core import Relay

    async with Relay(store, config) as relay:
        await relay.run_once()


def main(store: Store, case_id: str, at: datetime, facts: dict[str, Any]) -> None:
    """Deliver the store's pending refunds to a local webhook, then (NATS permitting) one
    more refund, of a case opened here as ``case_id`` with ``facts``, to JetStream."""
    print("\n== The relay: effects delivered to the systems that carry them out")
    if find_spec("aiohttp") is None:
        print(f"   (skipped: the relay needs the `relay` extra: {INSTALL_HINT})")
        return
    _webhook(store)
    _broker(store, case_id, at, facts)


def _webhook(store: Store) -> None:
    secret = secrets.token_hex(32)
    with _receiving(secret) as (url, receiver):
        print(
            f"   A payment service listens on {url}; relay.yaml routes `refund` there, "
            "signed with a secret generated for this run."
        )
        routes = f"  - name: payments\n    effects: [refund]\n    webhook:\n      url: {url}\n"
        config = _config(routes + f"      secret_env: {SECRET_ENV}\n", secret)
        asyncio.run(_run_once(store, config))
        deliveries = list(receiver.deliveries)
    if not deliveries:
        print("   The outbox had no refund to deliver.")
        return
    outbox = store.effects(limit=1000)  # oldest first
    # delivered concurrently: shown in the outbox's order, the same on every run
    rank = {e.key: i for i, e in enumerate(outbox)}
    deliveries.sort(key=lambda d: rank.get(_key(d.body), len(rank)))
    first = deliveries[0]
    print(f"\n   {first.request_line}")
    print(f"   {SIGNATURE_HEADER}: {first.signature}")
    print(f"   {first.body.decode()}")
    print(f"   -> the receiver: {first.verdict}; it answers {first.status}")
    for d in deliveries[1:]:
        print(f"   {d.request_line}: {_key(d.body)}, {d.verdict}")
    delivered = {_key(d.body) for d in deliveries}
    status = ", ".join(f"{e.key} {e.status}" for e in outbox if e.key in delivered)
    print(f"   The outbox after the relay's run: {status}.")


def _broker(store: Store, case_id: str, at: datetime, facts: dict[str, Any]) -> None:
    url = os.environ.get("RULEKIT_NATS_URL", "").strip() or DEFAULT_NATS_URL
    how = (
        "start one (`nats-server -js`) or point $RULEKIT_NATS_URL at one, "
        "and run the demo again to see effects published to JetStream"
    )
    if find_spec("nats") is None:
        print(f"\n   NATS JetStream: skipped (nats-py is missing: {INSTALL_HINT}).")
        return
    if not _reachable(url):
        print(
            f"\n   NATS JetStream: no NATS server is reachable at {_where(url)}, "
            f"so that part is skipped: {how}."
        )
        return
    store.open("refund_only", facts, id=case_id, at=at)
    subject = "rulekit.demo.{name}"
    routes = (
        f"  - name: events\n    effects: '*'\n    jetstream:\n      servers: [{url}]\n"
        f"      subject: {subject}\n      stream: RULEKIT_DEMO\n      create: true\n"
    )
    config = _config(routes)
    print(
        f"\n   Another fast refund ({case_id}); this relay.yaml routes every effect to NATS "
        f"JetStream at {_where(url)}: subject {subject}, stream RULEKIT_DEMO (created if missing)."
    )
    try:
        asyncio.run(_run_once(store, config))
    except (RuleError, OSError, TimeoutError) as e:  # refused the stream, or went away
        print(f"   JetStream: skipped ({e}).")
        return
    effects = store.effects(case_id=case_id)
    if not effects:
        print(f"   ({case_id} emitted no effect: nothing to publish.)")
    for effect in effects:
        subject_of = subject.format(name=effect.name)
        acked = "JetStream acknowledged it (PubAck): " if effect.status == "done" else ""
        print(
            f"   published {effect.key} to {subject_of} (Nats-Msg-Id: {effect.key}); "
            f"{acked}the outbox says {effect.status}"
            + (f" ({effect.last_error})" if effect.last_error else "")
        )


def _reachable(url: str) -> bool:
    """Whether something accepts connections where ``url`` points (a quick TCP check)."""
    split = urlsplit(url)
    try:
        with socket.create_connection(
            (split.hostname or "127.0.0.1", split.port or 4222), timeout=NATS_PROBE_SECONDS
        ):
            return True
    except (OSError, ValueError):
        return False


def _where(url: str) -> str:
    """The server's address without credentials a URL may carry."""
    split = urlsplit(url)
    return f"{split.scheme}://{split.hostname}:{split.port or 4222}"


def _key(body: bytes) -> str:
    key: str = json.loads(body)["key"]
    return key
