"""``python -m benchmarks.http``: the HTTP service under load, on loopback.

Starts ``rulekit serve`` on the shipped policy (SQLite in a temporary folder;
PostgreSQL too with ``--postgres DSN``) and, for the baseline, a bare
FastAPI/uvicorn application whose one endpoint parses the same JSON body and
answers a small JSON document: the floor the framework and the load generator
set on this machine. A load generator in another process (stdlib HTTP with
keep-alive connections, ``--clients`` threads) then measures, for a fixed
number of requests each:

1. opening cases (``POST /cases``, an idempotency key each);
2. sending an event (``POST /cases/{id}/events``: the merchant approves, a
   refund goes to the outbox), every request on a case of its own;
3. the baseline endpoint.

Printed: requests per second, p50 and p99 latency, and each rate as a ratio to
the baseline measured in the same run. Nothing is asserted; the exit status is
1 only if a request failed (any status other than the expected one).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from benchmarks.report import machine_facts, rate, ratio
from benchmarks.stores import pg_schema

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "rules" / "kuaishou_after_sales.rk"
ADMIN = "bench-admin-token-0123456789"
MERCHANT = "bench-merchant-token-0123456789"
FACTS = {
    "order": {"amount": 500, "paid_at": "2026-11-27T09:00:00+08:00", "shipped": True},
    "shop": {"fast_refund_enabled": True},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, process: subprocess.Popen[bytes], path: str = "/health") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not answer within 60 s")


# -- the baseline server ------------------------------------------------------------------------
class Body(BaseModel):
    event: str
    data: dict[str, Any] | None = None


def baseline_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/echo/{case_id}")
    def echo(case_id: str, body: Body) -> dict[str, Any]:
        return {"case": case_id, "event": body.event, "state": "done"}

    return app


def _serve_baseline(port: int) -> None:
    import uvicorn

    uvicorn.run(baseline_app(), host="127.0.0.1", port=port, log_level="warning")


# -- the load generator -------------------------------------------------------------------------
def _load(
    port: int, requests: list[tuple[str, str, bytes, dict[str, str]]], clients: int, expect: int
) -> dict[str, Any]:
    """Send ``requests`` over ``clients`` keep-alive connections; latencies in seconds."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    chunks = [requests[i::clients] for i in range(clients)]
    start_gate = threading.Barrier(clients + 1)

    def client(chunk: list[tuple[str, str, bytes, dict[str, str]]]) -> None:
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


def run_load(
    port: int, requests: list[tuple[str, str, bytes, dict[str, str]]], clients: int, expect: int
) -> dict[str, Any]:
    """The load generator runs in a process of its own, so it never shares the server's GIL."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        result: dict[str, Any] = pool.apply(_load_in_process, ((port, requests, clients, expect),))
    return result


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def measure_service(store: str, n: int, clients: int) -> dict[str, dict[str, Any]]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        tokens = Path(folder) / "tokens.yaml"
        tokens.write_text(
            "tokens:\n"
            f"  - token: {ADMIN}\n    admin: true\n"
            f"  - token: {MERCHANT}\n    actor: merchant\n    principal: shop-1\n",
            encoding="utf-8",
        )
        url = store if store != "sqlite" else str(Path(folder) / "bench.db")
        command = [sys.executable, "-c", "from rulekit.cli import main; raise SystemExit(main())"]
        command += ["serve", str(POLICY), "--store", url]
        command += ["--port", str(port), "--tokens", str(tokens), "--no-worker", "--migrate"]
        server = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        try:
            _wait(port, server)
            admin = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
            merchant = {"Authorization": f"Bearer {MERCHANT}", "Content-Type": "application/json"}
            run = uuid.uuid4().hex[:8]
            ids = [f"b{run}-{i}" for i in range(n)]
            opens = [
                (
                    "POST",
                    "/cases",
                    _json(
                        {
                            "workflow": "refund_only",
                            "id": case_id,
                            "facts": FACTS,
                            "parties": {"merchant": "shop-1", "consumer": "user-1"},
                        }
                    ),
                    {**admin, "Idempotency-Key": f"open-{case_id}"},
                )
                for case_id in ids
            ]
            sends = [
                ("POST", f"/cases/{case_id}/events", _json({"event": "approve"}), merchant)
                for case_id in ids
            ]
            return {
                "open a case": run_load(port, opens, clients, 201),
                "send an event": run_load(port, sends, clients, 200),
            }
        finally:
            server.terminate()
            server.wait(30)


def measure_baseline(n: int, clients: int) -> dict[str, Any]:
    port = _free_port()
    ctx = multiprocessing.get_context("spawn")
    server = ctx.Process(target=_serve_baseline, args=(port,), daemon=True)
    server.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the baseline server did not start") from None
                time.sleep(0.2)
        body = _json({"event": "approve"})
        headers = {"Content-Type": "application/json"}
        requests = [("POST", f"/echo/c{i}", body, headers) for i in range(n)]
        return run_load(port, requests, clients, 200)
    finally:
        server.terminate()
        server.join(10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument(
        "--requests", type=int, help="requests per measurement (default 3000; 600 with --quick)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive connections")
    parser.add_argument(
        "--postgres",
        metavar="DSN",
        default=os.environ.get("RULEKIT_BENCH_POSTGRES"),
        help="also measure on PostgreSQL (in a schema of its own, dropped afterwards)",
    )
    args = parser.parse_args(argv)
    n = args.requests or (600 if args.quick else 3000)
    print(
        f"HTTP service on loopback: {n} requests per figure, {args.clients} clients; {machine_facts()}"
    )
    baseline = measure_baseline(n, args.clients)
    rows = [("baseline: bare FastAPI endpoint", baseline)]
    for what, figures in measure_service("sqlite", n, args.clients).items():
        rows.append((f"rulekit on SQLite: {what}", figures))
    if args.postgres:
        with pg_schema(args.postgres) as dsn:
            for what, figures in measure_service(dsn, n, args.clients).items():
                rows.append((f"rulekit on PostgreSQL: {what}", figures))
    failed = 0
    print(f"{'':42} {'req/s':>9} {'ratio':>8} {'p50':>9} {'p99':>9}")
    for label, r in rows:
        failed += r["failed"]
        print(
            f"{label:42} {rate(r['rps']):>9} {ratio(r['rps'] / baseline['rps']):>8} "
            f"{r['p50'] * 1000:>7.2f}ms {r['p99'] * 1000:>7.2f}ms"
        )
        for failure in r["failures"]:
            print(f"    failed: {failure}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
