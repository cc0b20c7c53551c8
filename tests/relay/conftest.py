"""NATS for the relay's tests: the machine's JetStream server (``nats_url``), and private
``nats-server`` processes a test may stop and start again (``nats_server``).

Without a reachable server (or without the ``nats-server`` binary) these tests skip, with
how to run them, except in CI (``CI=true``), where that is a failure: the JetStream
destination would go untested.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

NATS_ENV = "RULEKIT_TEST_NATS_URL"
NATS_SERVER_ENV = "RULEKIT_TEST_NATS_SERVER"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


def _unavailable(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what}; CI must run the JetStream tests (the relay would go untested)")
    pytest.skip(what)


def _address(url: str) -> tuple[str, int]:
    hostport = url.split("://", 1)[-1].rsplit("@", 1)[-1]
    host, _, port = hostport.rpartition(":")
    return host or "127.0.0.1", int(port or 4222)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port nothing listens on now (the OS's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The shared JetStream server: $RULEKIT_TEST_NATS_URL, else 127.0.0.1:4222. Tests give
    their streams and subjects unique names and delete their streams."""
    url = os.environ.get(NATS_ENV, "").strip() or DEFAULT_NATS_URL
    if not _listening(*_address(url)):
        _unavailable(
            f"no NATS server at {url} (start one with JetStream: nats-server -js, or set {NATS_ENV})"
        )
    return url


class NatsServer:
    """A private ``nats-server -js`` on a port of its own, its store in a folder that
    outlives a restart (so does the port)."""

    def __init__(self, binary: str, store: Path) -> None:
        self.binary = binary
        self.store = store
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        #: more options (``--auth TOKEN``, say): set them, then stop() and start()
        self.args: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None, "already running"
        command = [
            self.binary,
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.store),
            *self.args,
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not _listening("127.0.0.1", self.port):
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                self.process = None
                pytest.fail(f"nats-server exited at start: {err[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail("nats-server did not listen within 30s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Kill it (SIGKILL: a crash, not a shutdown) and wait until it is gone."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait(timeout=30)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A running private JetStream server, killed at the end of the test."""
    binary = (
        os.environ.get(NATS_SERVER_ENV) or shutil.which("nats-server") or "/usr/sbin/nats-server"
    )
    if not Path(binary).is_file():
        _unavailable(
            f"nats-server is not installed ({binary}; apt-get install nats-server, or set {NATS_SERVER_ENV})"
        )
    server = NatsServer(binary, tmp_path / "jetstream")
    server.start()
    try:
        yield server
    finally:
        server.stop()
