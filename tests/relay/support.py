"""What the relay's tests deliver to and from: a real HTTP receiver, real stores, relay.yaml.

- :class:`Receiver`: an HTTP server on 127.0.0.1 (a thread per connection, keep-alive), which
  verifies every request's signature with :func:`rulekit.verify_signature`, records what it
  received, and answers as the test scripts it (:class:`Answer`, :class:`Hang`,
  :class:`Drip`, :class:`Close`);
- ``store_url`` (SQLite in tmp_path, and PostgreSQL in a schema of its own per test when
  RULEKIT_TEST_POSTGRES_DSN is set, as tests/stores/conftest.py and tests/service do), and
  :func:`open_refunds`, which opens Kuaishou fast-refund cases (one ``refund`` effect each);
- :func:`write_config`: a relay.yaml in tmp_path routing ``refund`` to a receiver.

Test modules import the fixtures (``from .support import store_url_fixture  # noqa: F401``;
pytest finds them by the name they declare, ``store_url``): tests/relay/conftest.py belongs
to the JetStream tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import rulekit
from rulekit.policy import Policy
from rulekit.runtime import Store
from rulekit.stores import open_store
from support import ROOT, postgres_schema

KUAISHOU = ROOT / "rules" / "kuaishou_after_sales.rk"
SECRET = "whsec-test-0123456789abcdef"
SECRET_ENV = "RULEKIT_TEST_WEBHOOK_SECRET"
#: an explicit time well in the past (effects are available at once); lag tests use now
T = datetime(2021, 3, 1, 4, 0, tzinfo=UTC)


# -- what the receiver answers ------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """A status (and headers, a body), after ``delay`` seconds."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


@dataclass(frozen=True)
class Hang:
    """Read the request, then say nothing for ``seconds`` (then answer 200: too late)."""

    seconds: float


@dataclass(frozen=True)
class Drip:
    """Answer 200 with a body promised long, sent a byte every ``every`` seconds."""

    seconds: float
    every: float = 0.1


@dataclass(frozen=True)
class Close:
    """Read the request and close the connection without a word."""


Action = Answer | Hang | Drip | Close
OK = Answer()


@dataclass(frozen=True)
class Received:
    key: str
    attempt: int
    body: bytes
    headers: Mapping[str, str]
    #: what verify_signature said (None: the signature verified)
    signature_error: str | None
    at: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 resets a burst of relays connecting

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A relay killed or giving up mid-request resets its connection: not worth a
        traceback on the test's output (anything else is)."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class Receiver:
    """A webhook receiver on 127.0.0.1 (port 0). ``plan(received) -> Action`` decides each
    answer (default: 200); :meth:`script` gives a sequence of answers, then 200."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self.plan: Callable[[Received], Action] = lambda r: OK
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    body = self.rfile.read(length)
                except OSError:
                    body = b""
                if len(body) < length:  # the sender died mid-request: nothing was delivered
                    self.close_connection = True
                    return
                receiver._answer(self, receiver._record(body, dict(self.headers.items())))

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port: int = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/rulekit"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, *actions: Action) -> None:
        """Answer the next requests with ``actions`` in turn, then 200."""
        queue = list(actions)
        lock = threading.Lock()

        def plan(r: Received) -> Action:
            with lock:
                return queue.pop(0) if queue else OK

        self.plan = plan

    def _record(self, body: bytes, headers: dict[str, str]) -> Received:
        error = None
        try:
            rulekit.verify_signature(body, headers.get("Rulekit-Signature"), self.secret)
        except rulekit.SignatureError as e:
            error = str(e)
        r = Received(
            headers.get("Rulekit-Effect-Key", ""),
            int(headers.get("Rulekit-Delivery-Attempt", "0")),
            body,
            headers,
            error,
            time.monotonic(),
        )
        with self._lock:
            self.received.append(r)
        return r

    def _answer(self, h: BaseHTTPRequestHandler, r: Received) -> None:
        action = self.plan(r)
        try:
            if isinstance(action, Close):
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            if isinstance(action, Hang):
                time.sleep(action.seconds)
                action = OK
            if isinstance(action, Drip):
                h.send_response(200)
                h.send_header("Content-Length", "1000000")
                h.end_headers()
                end = time.monotonic() + action.seconds
                while time.monotonic() < end:
                    h.wfile.write(b"x")
                    h.wfile.flush()
                    time.sleep(action.every)
                h.close_connection = True
                return
            time.sleep(action.delay)
            h.send_response(action.status)
            for k, v in action.headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(action.body)))
            h.end_headers()
            h.wfile.write(action.body)
        except OSError:  # the relay gave up on this request first
            h.close_connection = True

    # -- what it saw ----------------------------------------------------------------------------
    def keys(self) -> Counter[str]:
        """How many times each effect key was received."""
        with self._lock:
            return Counter(r.key for r in self.received)

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def bad_signatures(self) -> list[str]:
        with self._lock:
            return [f"{r.key}: {r.signature_error}" for r in self.received if r.signature_error]


def free_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- stores -------------------------------------------------------------------------------------
POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.postgresql)


@pytest.fixture(name="postgres_url")
def postgres_url_fixture() -> Iterator[str]:
    """A fresh schema on RULEKIT_TEST_POSTGRES_DSN's server, migrated, dropped afterwards.
    Without the variable: skipped, except in CI (``CI=true``), where it is a failure."""
    yield from postgres_schema("rk_relay", "the relay on PostgreSQL")


@pytest.fixture(name="store_url", params=["sqlite", POSTGRESQL])
def store_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty store of each kind, with the Kuaishou policy registered."""
    if request.param == "sqlite":
        url = str(tmp_path / "store.db")
    else:
        url = str(request.getfixturevalue("postgres_url"))
    with open_store(url, migrate=True) as store:
        store.register(kuaishou())
    return url


@cache
def kuaishou() -> Policy:
    """The shipped policy (registered by every store object that opens cases: a store
    knows the policies registered through it)."""
    return rulekit.load(KUAISHOU)


def fast_refund(amount: str, at: datetime) -> dict[str, Any]:
    """Kuaishou facts a fast refund applies to as the case opens at ``at``."""
    return {
        "order": {"amount": Decimal(amount), "paid_at": at - timedelta(hours=2), "shipped": False},
        "shop": {"fast_refund_enabled": True},
    }


def open_refunds(
    url: str, n: int, *, prefix: str = "e", at: datetime | None = T, threads: int = 1
) -> list[str]:
    """Open ``n`` fast-refund cases (``{prefix}{i}``), each emitting one ``refund`` effect;
    returns their effect keys. ``at=None``: now (the effects' age is their lag)."""

    def part(ids: Sequence[int]) -> None:
        with open_store(url) as store:
            store.register(kuaishou())
            for i in ids:
                when = at or datetime.now(UTC)
                store.open(
                    "refund_only", fast_refund(f"{i % 299 + 1}.00", when), id=f"{prefix}{i}", at=at
                )

    if threads == 1:
        part(range(n))
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(part, [range(k, n, threads) for k in range(threads)]))
    return [f"{prefix}{i}/1/0" for i in range(n)]


def statuses(store: Store) -> Counter[str]:
    """How many effects are in each status."""
    counts = store.pending()
    return Counter(
        {
            s: counts.get(f"effects_{s}", 0)
            for s in ("pending", "done", "dead")
            if counts.get(f"effects_{s}")
        }
    )


def available_at(url: str, key: str) -> datetime:
    """When the outbox lets the effect be claimed again (its row's ``available_at``: no public
    API shows it, and a Retry-After's effect is exactly that)."""
    with open_store(url) as store:

        def read(cur: Any) -> Any:
            cur.execute("SELECT available_at FROM rk_effects WHERE key = ?", (key,))
            return cur.fetchone()[0]

        return store.dialect.time_value(store._run(read))


def done_keys(url: str) -> set[str]:
    with open_store(url) as store:
        return {e.key for e in store.effects(status="done", limit=1_000_000)}


# -- relay.yaml and the CLI ---------------------------------------------------------------------
def write_config(
    tmp_path: Path,
    url: str,
    *,
    name: str = "relay.yaml",
    effects: str = "[refund]",
    timeout: str = "5s",
    extra: str = "",
    webhook: str = "",
) -> Path:
    """A relay.yaml routing ``effects`` to ``url`` (the secret from $RULEKIT_TEST_WEBHOOK_SECRET);
    ``extra``: top-level settings, ``webhook``: more of the route's webhook settings."""
    text = (
        f"{extra}"
        "routes:\n"
        "  - name: hooks\n"
        f"    effects: {effects}\n"
        "    webhook:\n"
        f"      url: {url}\n"
        f"      secret_env: {SECRET_ENV}\n"
        f"      timeout: {timeout}\n"
        f"{webhook}"
    )
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def environ() -> dict[str, str]:
    """The environment a relay subprocess runs in: the secret set, rulekit importable."""
    return {**os.environ, SECRET_ENV: SECRET, "PYTHONPATH": str(ROOT / "src")}


def relay_process(config: Path, store: str, *args: str) -> subprocess.Popen[bytes]:
    """``python -m rulekit.cli relay`` in a subprocess (its output in files beside config)."""
    out = (config.parent / f"{config.stem}-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rulekit.cli",
            "relay",
            "--config",
            str(config),
            "--store",
            store,
            *args,
        ],
        env=environ(),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``check`` every 50 ms until it holds; fail saying ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds:g}s: {what}")
        time.sleep(0.05)
