"""The real CLI in subprocesses, on loopback: serve, worker, db, shutdown and crashes.

Every wait is bounded and polls for a state (the server answers, the process
exited); nothing asserts how long anything took.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rulekit import policy as policies
from rulekit.stores import SqlStore, open_store
from rulekit.stores.migrations import latest

from .service_support import (
    PARTIES_A,
    POLICY_FILE,
    TOKENS_FILE,
    auth,
    free_port,
    refund_facts,
)

START_TIMEOUT = 30.0  # seconds for a server to answer /health
EXIT_TIMEOUT = 30.0  # seconds for a process to exit once told to


def rulekit(*args: str) -> list[str]:
    return [sys.executable, "-m", "rulekit.cli", *args]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("RULEKIT_STORE", None)
    return env


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        rulekit(*args),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=environment(),
        check=False,
    )


@dataclass
class Server:
    """A `rulekit serve` process on a free loopback port (started by :meth:`start`)."""

    args: list[str]
    cwd: Path
    proc: subprocess.Popen[str] | None = None
    port: int = 0
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.cwd / "serve.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        for _ in range(3):  # a port picked free may be taken before the server binds it
            self.port = free_port()
            with self.log.open("a") as log:
                self.proc = subprocess.Popen(
                    rulekit("serve", str(POLICY_FILE), "--port", str(self.port), *self.args),
                    cwd=self.cwd,
                    env=environment(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            if self._wait_healthy():
                return self
            if "address already in use" not in self.output():
                break
        pytest.fail(f"rulekit serve did not start:\n{self.output()}")

    def _wait_healthy(self) -> bool:
        assert self.proc is not None
        deadline = _now() + START_TIMEOUT
        while _now() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            threading.Event().wait(0.1)
        return False

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=EXIT_TIMEOUT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=EXIT_TIMEOUT)


def _now() -> float:
    import time

    return time.monotonic()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start servers with ``serve(*args)``; every one still running is killed at the end."""
    started: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(list(args), tmp_path).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump(TOKENS_FILE), encoding="utf-8")
    return path


# -- serve ---------------------------------------------------------------------------------
def test_serve_starts_from_just_the_policy_file(serve: Any, tmp_path: Path) -> None:
    # the default store: ./rulekit.db, dev tokens, the in-process worker (a small body limit)
    server = serve("--max-body", "4096")
    health = httpx.get(f"{server.url}/health", timeout=5).json()
    assert (health["status"], health["store"]) == ("ok", "sqlite")
    assert (tmp_path / "rulekit.db").exists()
    body = {"workflow": "refund_only", "facts": refund_facts(), "parties": {"consumer": "user-1"}}
    consumer = {"Authorization": "Bearer dev:consumer:user-1"}
    integration = {"Authorization": "Bearer dev:admin"}
    r = httpx.post(f"{server.url}/cases", json=body, headers=integration, timeout=10)
    assert r.status_code == 201, r.text
    # the order's facts are the integration's to give (the policy's fact provenance)
    r = httpx.post(f"{server.url}/cases", json=body, headers=consumer, timeout=10)
    assert (r.status_code, r.json()["code"]) == (403, "fact_not_allowed")
    body["facts"]["order"]["note"] = "x" * 4096
    r = httpx.post(f"{server.url}/cases", json=body, headers=consumer, timeout=10)
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")
    assert httpx.get(f"{server.url}/policies", timeout=5).status_code == 401
    assert "development mode" in server.output()
    server.signal(signal.SIGTERM)
    assert server.wait() == 0


def test_serve_on_another_host_needs_tokens(tmp_path: Path) -> None:
    r = run("serve", str(POLICY_FILE), "--host", "0.0.0.0", "--port", "1", cwd=tmp_path)
    assert r.returncode == 2
    assert "rulekit: error: listening on 0.0.0.0 needs --tokens FILE" in r.stderr
    assert not (tmp_path / "rulekit.db").exists()  # refused before opening anything


def test_serve_refuses_a_bad_tokens_file(tmp_path: Path) -> None:
    bad = tmp_path / "tokens.yaml"
    bad.write_text("tokens:\n  - token: short\n    admin: true\n", encoding="utf-8")
    r = run("serve", str(POLICY_FILE), "--tokens", str(bad), "--port", "1", cwd=tmp_path)
    assert r.returncode == 2
    assert "a token must be a string of 16 characters or more" in r.stderr
    bad.write_text("tokens:\n  - token: courier-token-0123456\n    actor: courier\n", "utf-8")
    r = run("serve", str(POLICY_FILE), "--tokens", str(bad), "--port", "1", cwd=tmp_path)
    assert r.returncode == 2
    assert (
        "`courier` is not an actor of the served policies (consumer, merchant, platform)"
        in r.stderr
    )


# -- db -------------------------------------------------------------------------------------
def check_db_commands(store: str, name: str) -> None:
    wanted = latest(name)
    r = run("db", "status", "--store", store)
    assert r.returncode == 1, r.stderr
    assert (
        f"schema version 0 (this rulekit: {wanted}), behind: run `rulekit db upgrade`" in r.stdout
    )

    r = run("db", "upgrade", "--store", store)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("applied 0001_")
    assert len([x for x in lines if x.startswith("applied ")]) == wanted
    assert lines[-1].endswith(f"schema version {wanted} (this rulekit: {wanted}), up to date")

    r = run("db", "upgrade", "--store", store)
    assert r.returncode == 0
    assert r.stdout.strip().endswith("up to date, nothing to apply")
    assert "applied" not in r.stdout
    r = run("db", "status", "--store", store)
    assert r.returncode == 0
    assert r.stdout.strip().endswith(
        f"schema version {wanted} (this rulekit: {wanted}), up to date"
    )


def test_db_upgrade_and_status_on_sqlite(tmp_path: Path) -> None:
    check_db_commands(str(tmp_path / "fresh.db"), "sqlite")


def test_db_upgrade_and_status_on_postgresql(postgres_dsn: str) -> None:
    check_db_commands(postgres_dsn, "postgresql")
    r = run("db", "status", "--store", postgres_dsn)
    assert "password" not in r.stdout


# -- worker ---------------------------------------------------------------------------------
def test_worker_once_fires_a_due_deadline(tmp_path: Path) -> None:
    db = tmp_path / "cases.db"
    past = datetime.now(UTC) - timedelta(days=3)
    with open_store(db, migrate=True) as store:
        store.register(policies.load(POLICY_FILE))
        paid = (past - timedelta(hours=1)).isoformat()
        store.open("refund_only", refund_facts(paid_at=paid), id="overdue", at=past)
        store.open("refund_only", refund_facts(), id="not-yet")

    r = run("worker", "--store", str(db), "--once")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "fired 1 due deadline"
    with open_store(db) as store:
        assert store.get("overdue").state == "refunded"
        assert store.get("not-yet").state == "awaiting_merchant"
        [effect] = store.effects(case_id="overdue")
        assert (effect.name, str(effect.args["amount"])) == ("refund", "500")
    r = run("worker", "--store", str(db), "--once")
    assert (r.returncode, r.stdout.strip()) == (0, "fired 0 due deadlines")


# -- shutdown and crashes -----------------------------------------------------------------------
@dataclass
class Sent:
    """One request a client thread sent, and what came back (None: no answer)."""

    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    status: int | None = None
    answer: dict[str, Any] | None = None


class Load(threading.Thread):
    """Sends ``requests`` in order, each with its own Idempotency-Key, until one gets no answer."""

    def __init__(self, url: str, requests: list[Sent], answered: threading.Semaphore) -> None:
        super().__init__(daemon=True)
        self.url, self.requests, self.answered = url, requests, answered

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=20) as client:
            for sent in self.requests:
                try:
                    r = client.request(sent.method, sent.path, json=sent.body, headers=sent.headers)
                except httpx.TransportError:
                    return  # the server went away: this request has no answer
                sent.status = r.status_code
                sent.answer = (
                    r.json()
                    if r.headers.get("content-type", "").startswith("application/json")
                    else None
                )
                self.answered.release()


def run_load(threads: list[Load], answered: threading.Semaphore, until: int) -> None:
    """Start the threads and return once ``until`` requests in all have been answered."""
    for t in threads:
        t.start()
    for _ in range(until):
        assert answered.acquire(timeout=60), "the server stopped answering"


def keyed_records(store: SqlStore, case_id: str) -> list[str | None]:
    return [r.key for r in store.history(case_id)]


def test_sigterm_lets_requests_in_flight_finish(
    serve: Any, tmp_path: Path, tokens_file: Path
) -> None:
    db = tmp_path / "cases.db"
    server = serve("--store", str(db), "--tokens", str(tokens_file), "--no-worker")
    cases = [f"stay-{i}" for i in range(3)]
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for case_id in cases:
            r = c.post(
                "/cases",
                json={
                    "workflow": "return_refund",
                    "facts": refund_facts(),
                    "parties": PARTIES_A,
                    "id": case_id,
                },
                headers=auth("admin"),
            )
            assert r.status_code == 201, r.text
    # offer_offline stays where it is: each thread can send it to its case as often as it likes
    streams = [
        [
            Sent(
                "POST",
                f"/cases/{case_id}/events",
                {"event": "offer_offline", "data": {"service": "repair"}},
                {**auth("merchant"), "Idempotency-Key": f"{case_id}-{n}"},
            )
            for n in range(2000)
        ]
        for case_id in cases
    ]
    answered = threading.Semaphore(0)
    threads = [Load(server.url, s, answered) for s in streams]
    run_load(threads, answered, until=30)

    server.signal(signal.SIGTERM)  # with the three clients still sending
    assert server.wait() == 0, server.output()
    for t in threads:
        t.join(timeout=EXIT_TIMEOUT)
        assert not t.is_alive()

    with open_store(db) as store:
        for case_id, stream in zip(cases, streams, strict=True):
            keys = keyed_records(store, case_id)
            ok = [s.headers["Idempotency-Key"] for s in stream if s.status == 200]
            assert ok, "every client got some answers"
            for key in ok:
                assert keys.count(key) == 1, key
            assert all(s.status in (200, None) for s in stream), {s.status for s in stream}
            # nothing was applied that was not answered, beyond the one request in flight
            assert len([k for k in keys if k is not None]) - len(ok) <= 1


def test_kill_9_under_load_loses_and_repeats_nothing(
    serve: Any, tmp_path: Path, tokens_file: Path
) -> None:
    db = tmp_path / "cases.db"
    args = ("--store", str(db), "--tokens", str(tokens_file), "--no-worker")
    server = serve(*args)

    def steps(prefix: str, n: int) -> list[Sent]:
        out = []
        for i in range(n):
            case_id = f"{prefix}{i:04d}"
            out.append(
                Sent(
                    "POST",
                    "/cases",
                    {
                        "workflow": "refund_only",
                        "facts": refund_facts(),
                        "parties": PARTIES_A,
                        "id": case_id,
                    },
                    {**auth("admin"), "Idempotency-Key": f"open-{case_id}"},
                )
            )
            out.append(
                Sent(
                    "POST",
                    f"/cases/{case_id}/events",
                    {"event": "approve"},
                    {**auth("merchant"), "Idempotency-Key": f"approve-{case_id}"},
                )
            )
        return out

    streams = [steps("a", 60), steps("b", 60)]
    answered = threading.Semaphore(0)
    threads = [Load(server.url, s, answered) for s in streams]
    run_load(threads, answered, until=40)
    server.signal(signal.SIGKILL)
    assert server.wait() == -signal.SIGKILL
    for t in threads:
        t.join(timeout=EXIT_TIMEOUT)
        assert not t.is_alive()
    sent = [s for stream in streams for s in stream]
    acknowledged = [s for s in sent if s.status is not None]
    assert all(s.status in (200, 201) for s in acknowledged), {s.status for s in acknowledged}

    # every acknowledged step is in the history exactly once
    with open_store(db) as store:
        for s in acknowledged:
            case_id = s.body.get("id") or s.path.split("/")[2]
            history = store.history(case_id)
            if s.path == "/cases":
                assert [r.kind for r in history].count("open") == 1
            else:
                assert [r.key for r in history].count(s.headers["Idempotency-Key"]) == 1

    # restarted, every request sent again with its key: repeated, or applied now, never twice
    server = serve(*args)
    with httpx.Client(base_url=server.url, timeout=20) as c:
        for s in sent:  # in order: a case's open before its approve
            r = c.request(s.method, s.path, json=s.body, headers=s.headers)
            assert r.status_code in (200, 201), (s.path, r.text)
            if s.status is not None:
                assert r.json()["repeated"] is True, (s.path, r.json())
                assert r.json()["state"] == s.answer["state"]  # type: ignore[index]
    server.signal(signal.SIGTERM)
    assert server.wait() == 0

    with open_store(db) as store:
        for stream in streams:
            for s in stream[::2]:
                case_id = s.body["id"]
                history = store.history(case_id)
                assert [(r.kind, r.key) for r in history] == [
                    ("open", None),
                    ("event", f"approve-{case_id}"),
                ], case_id
                [effect] = store.effects(case_id=case_id)
                assert effect.name == "refund"
        assert len(store.effects(limit=10000)) == sum(len(s) // 2 for s in streams)
