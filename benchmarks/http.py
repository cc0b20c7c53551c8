"""``python -m benchmarks.http``: the HTTP service under load, on loopback, against a fair baseline.

Three servers, each in a process of its own, on the same machine:

- **rulekit**: ``rulekit serve`` on the shipped policy, a SQLite store in a
  temporary folder, no in-process worker;
- **the fair baseline**: FastAPI + raw SQL doing the same durable work. The same
  uvicorn settings as ``rulekit serve`` (the same ``uvicorn.Config`` arguments,
  a listening socket bound the same way, a sync handler run in the thread
  pool), SQLite with rulekit's own schema and PRAGMAs (WAL,
  ``synchronous=FULL``, ``foreign_keys``, ``BEGIN IMMEDIATE``) and one
  process-wide writer lock as rulekit's SQLite store holds, writing the very
  rows rulekit wrote for a template case (benchmarks/stores.py's raw steps).
  Sending an event is one transaction: read the case row, the guarded UPDATE,
  INSERT the history row, INSERT the outbox row, mark the pending deadline
  done, COMMIT. Opening a case: the case row, its parties, its ``open``
  record, its deadline and its idempotency key;
- **a bare endpoint**: FastAPI parsing the same JSON body and answering a small
  document, no I/O: what the framework and the load generator cost (context).

A load generator in another process (stdlib HTTP, ``--clients`` keep-alive
connections) sends a fixed number of requests per figure: opening cases
(``POST /cases``, an idempotency key each) and sending an event to each
(``POST /cases/{id}/events``: the merchant approves, a refund goes to the
outbox). The servers take turns round by round, the order reversed each
round, so that load from elsewhere on the machine falls on all of them; each
figure is the median of ``--rounds`` rounds, and rulekit's ratio to the fair
baseline the median of the rounds' ratios (their range in brackets).

Nothing is asserted; the exit status is 1 only if a request failed (any
status other than the expected one).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from benchmarks.report import machine_facts, rate, ratio
from benchmarks.stores import Backend, Raw, RawCursor, Write, capture, pg_schema, raw_open, raw_step

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "rules" / "kuaishou_after_sales.rk"
ADMIN = "bench-admin-token-0123456789"
MERCHANT = "bench-merchant-token-0123456789"
FACTS = {
    "order": {"amount": 500, "paid_at": "2026-11-27T09:00:00+08:00", "shipped": True},
    "shop": {"fast_refund_enabled": True},
}
PARTIES = {"merchant": "shop-1", "consumer": "user-1"}
GOAL = 0.8  # rulekit's send-event rate as a share of the fair baseline's (issue 14)

Requests = list[tuple[str, str, bytes, dict[str, str]]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, alive: Callable[[], bool], path: str = "/health") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not alive():
            raise SystemExit("a server exited before it answered")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("a server did not answer within 60 s")


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


# -- the servers compared with rulekit ----------------------------------------------------------
class Body(BaseModel):
    event: str
    data: dict[str, Any] | None = None


class OpenBody(BaseModel):
    workflow: str
    id: str
    facts: dict[str, Any]
    parties: dict[str, str]


def bare_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/echo/{case_id}")
    def echo(case_id: str, body: Body) -> dict[str, Any]:
        return {"case": case_id, "event": body.event, "state": "done"}

    return app


@dataclass(frozen=True)
class Templates:
    """The rows rulekit wrote opening a case (``opened``) and approving it (``approved``)."""

    opened: Write
    approved: Write


def make_templates(path: str) -> Templates:
    """Open a case of the shipped policy and approve it with rulekit's store, on the fair
    baseline's database, and capture the rows it wrote."""
    from rulekit import load
    from rulekit.stores import open_store

    with open_store(path, migrate=True) as store:
        store.register(load(POLICY))
        store.open("refund_only", FACTS, id="template", parties=PARTIES)
        raw = Raw(Backend("sqlite", path))
        try:
            opened = capture(raw, "template", None)
            store.send("template", "approve", "merchant")
            approved = capture(raw, "template", opened.row)
        finally:
            raw.close()
    return Templates(opened, approved)


def fair_app(path: str, templates: Templates) -> Any:
    """FastAPI + raw SQL: rulekit's durable work per request, nothing else."""
    from fastapi import FastAPI, Header, HTTPException

    app = FastAPI()
    backend = Backend("sqlite", path)
    local = threading.local()
    writer = threading.Lock()  # as rulekit's SQLite store: this process's writers queue here

    @contextmanager
    def write() -> Iterator[RawCursor]:
        raw = getattr(local, "raw", None)
        if raw is None:
            raw = local.raw = Raw(backend)  # a connection per thread, as the store keeps
        with writer, raw.tx() as cur:
            yield cur

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/cases", status_code=201)
    def open_case(body: OpenBody, key: str = Header(alias="Idempotency-Key")) -> dict[str, Any]:
        fingerprint = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
        row = templates.opened.row
        with write() as cur:
            raw_open(cur, body.id, templates.opened)
            cur.executemany(
                "INSERT INTO rk_parties (case_id, actor, principal) VALUES (?, ?, ?)",
                [(body.id, a, p) for a, p in body.parties.items()],
            )
            cur.execute(
                "INSERT INTO rk_keys (case_id, caller, key, fingerprint, first_seq, last_seq, "
                "state, final) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (body.id, "admin", key, fingerprint, 0, 0, row[3], row[4]),
            )
        return {"id": body.id, "state": row[3], "version": row[10]}

    @app.post("/cases/{case_id}/events")
    def send_event(case_id: str, body: Body) -> dict[str, Any]:
        with write() as cur:
            if not raw_step(cur, case_id, templates.approved):
                raise HTTPException(404)
        row = templates.approved.row
        return {"id": case_id, "state": row[3], "version": row[10]}

    return app


def _serve(app: Any, port: int) -> None:
    """Serve as ``rulekit serve`` does: the same ``uvicorn.Config`` arguments, on a socket
    bound beforehand as it binds its own (from ``getaddrinfo``: a socket made without its
    protocol, IPPROTO_TCP, gets no TCP_NODELAY from asyncio, and every response then waits
    some 40 ms for a delayed ACK)."""
    import uvicorn

    family, kind, proto, _, address = socket.getaddrinfo(
        "127.0.0.1", port, type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(2048)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=30
    )
    uvicorn.Server(config).run(sockets=[sock])


def _serve_bare(port: int) -> None:
    _serve(bare_app(), port)


def _serve_fair(port: int, path: str) -> None:
    _serve(fair_app(path, make_templates(path)), port)


# -- the load generator -------------------------------------------------------------------------
def _load(port: int, requests: Requests, clients: int, expect: int) -> dict[str, Any]:
    """Send ``requests`` over ``clients`` keep-alive connections; latencies in seconds."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    chunks = [requests[i::clients] for i in range(clients)]
    start_gate = threading.Barrier(clients + 1)

    def client(chunk: Requests) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        start_gate.wait()
        for method, path, body, headers in chunk:
            t0 = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            mine.append(time.perf_counter() - t0)
            if response.status != expect:
                with lock:
                    failures.append(f"{method} {path}: {response.status} {payload[:200]!r}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "rps": len(requests) / elapsed,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "failures": failures[:5],
        "failed": len(failures),
    }


def _load_in_process(args: tuple[Any, ...]) -> dict[str, Any]:
    return _load(*args)


def run_load(port: int, requests: Requests, clients: int, expect: int) -> dict[str, Any]:
    """The load generator runs in a process of its own, so it never shares a server's GIL."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        result: dict[str, Any] = pool.apply(_load_in_process, ((port, requests, clients, expect),))
    return result


def opens_and_sends(prefix: str, n: int, *, tokens: bool) -> tuple[Requests, Requests]:
    """``n`` cases to open and the event to send each (with rulekit's tokens, or none)."""
    admin = {"Content-Type": "application/json"}
    merchant = dict(admin)
    if tokens:
        admin["Authorization"] = f"Bearer {ADMIN}"
        merchant["Authorization"] = f"Bearer {MERCHANT}"
    ids = [f"{prefix}-{i}" for i in range(n)]
    body = {"workflow": "refund_only", "facts": FACTS, "parties": PARTIES}
    opens = [
        ("POST", "/cases", _json({**body, "id": i}), {**admin, "Idempotency-Key": f"open-{i}"})
        for i in ids
    ]
    event = _json({"event": "approve"})
    sends = [("POST", f"/cases/{i}/events", event, merchant) for i in ids]
    return opens, sends


# -- the servers, started once, measured in turns --------------------------------------------
class Server:
    """One server under test: how to start it, and the figures it is measured on."""

    def __init__(self, label: str, tokens: bool = False, bare: bool = False) -> None:
        self.label = label
        self.tokens = tokens
        self.bare = bare
        self.port = _free_port()
        self.stop: Callable[[], None] = lambda: None

    def figures(self, run: str, n: int) -> list[tuple[str, Requests, int]]:
        if self.bare:
            body = _json({"event": "approve"})
            headers = {"Content-Type": "application/json"}
            return [("echo", [("POST", f"/echo/{run}-{i}", body, headers) for i in range(n)], 200)]
        opens, sends = opens_and_sends(run, n, tokens=self.tokens)
        return [("open a case", opens, 201), ("send an event", sends, 200)]


def start_rulekit(server: Server, store: str, folder: Path) -> None:
    tokens = folder / "tokens.yaml"
    tokens.write_text(
        "tokens:\n"
        f"  - token: {ADMIN}\n    admin: true\n"
        f"  - token: {MERCHANT}\n    actor: merchant\n    principal: shop-1\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-c", "from rulekit.cli import main; raise SystemExit(main())"]
    command += ["serve", str(POLICY), "--store", store, "--port", str(server.port)]
    command += ["--tokens", str(tokens), "--no-worker", "--migrate"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)

    def stop() -> None:
        process.terminate()
        process.wait(30)

    server.stop = stop
    _wait(server.port, lambda: process.poll() is None)


def start_in_process(server: Server, target: Callable[..., None], *args: Any) -> None:
    ctx = multiprocessing.get_context("spawn")
    process = ctx.Process(target=target, args=(server.port, *args), daemon=True)
    process.start()

    def stop() -> None:
        process.terminate()
        process.join(10)

    server.stop = stop
    _wait(server.port, process.is_alive)


def measure_rounds(
    servers: list[Server], n: int, clients: int, rounds: int
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(server, figure) -> its figures, one per round; the servers take turns, in an order
    reversed each round."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    tag = uuid.uuid4().hex[:6]
    for r in range(rounds):
        order = servers if r % 2 == 0 else servers[::-1]
        for server in order:
            for figure, requests, expect in server.figures(f"b{tag}r{r}", n):
                result = run_load(server.port, requests, clients, expect)
                out.setdefault((server.label, figure), []).append(result)
                print(
                    f"  round {r + 1}: {server.label}, {figure}: {rate(result['rps'])} req/s",
                    file=sys.stderr,
                    flush=True,
                )
    return out


def _median(results: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in results)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument(
        "--requests", type=int, help="requests per figure (default 3000; 600 with --quick)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive connections")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of turns (default 3)")
    parser.add_argument(
        "--postgres",
        metavar="DSN",
        default=os.environ.get("RULEKIT_BENCH_POSTGRES"),
        help="also measure rulekit on PostgreSQL (in a schema of its own, dropped afterwards)",
    )
    args = parser.parse_args(argv)
    n = args.requests or (600 if args.quick else 3000)
    print(
        f"HTTP service on loopback: {n} requests per figure, {args.clients} clients, "
        f"medians of {args.rounds} rounds; {machine_facts()}"
    )
    rulekit = Server("rulekit on SQLite", tokens=True)
    fair = Server("fair baseline: FastAPI + raw SQL")
    bare = Server("bare FastAPI endpoint", bare=True)
    servers = [rulekit, fair, bare]
    with tempfile.TemporaryDirectory() as folder:
        try:
            start_rulekit(rulekit, str(Path(folder) / "rulekit.db"), Path(folder))
            start_in_process(fair, _serve_fair, str(Path(folder) / "fair.db"))
            start_in_process(bare, _serve_bare)
            results = measure_rounds(servers, n, args.clients, args.rounds)
        finally:
            for server in servers:
                server.stop()
        if args.postgres:
            with pg_schema(args.postgres) as dsn:
                pg = Server("rulekit on PostgreSQL", tokens=True)
                start_rulekit(pg, dsn, Path(folder))
                try:
                    results.update(measure_rounds([pg], n, args.clients, 1))
                finally:
                    pg.stop()
    return report(results)


def report(results: dict[tuple[str, str], list[dict[str, Any]]]) -> int:
    echo = _median(results["bare FastAPI endpoint", "echo"], "rps")
    head = f"{'':52} {'req/s':>8} {'x fair':>18} {'x bare':>7} {'p50':>9} {'p99':>9}"
    print(head)
    failed = 0
    for (label, figure), rs in results.items():
        failed += sum(r["failed"] for r in rs)
        fair = results.get(("fair baseline: FastAPI + raw SQL", figure))
        against = ""
        if label.startswith("rulekit on SQLite") and fair is not None:
            per_round = sorted(a["rps"] / b["rps"] for a, b in zip(rs, fair, strict=True))
            against = (
                f"{ratio(statistics.median(per_round))} "
                f"({ratio(per_round[0])}-{ratio(per_round[-1])})"
            )
        print(
            f"{label + ': ' + figure:52} {rate(_median(rs, 'rps')):>8} {against:>18} "
            f"{ratio(_median(rs, 'rps') / echo):>7} "
            f"{_median(rs, 'p50') * 1000:>7.2f}ms {_median(rs, 'p99') * 1000:>7.2f}ms"
        )
        for r in rs:
            for failure in r["failures"]:
                print(f"    failed: {failure}")
    print(
        f"goal: rulekit's send-event rate >= {GOAL}x the fair baseline's (issue 14); x bare: "
        "against an endpoint that does no I/O (context: the framework's floor)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
