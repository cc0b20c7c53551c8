"""``python -m benchmarks.relay``: the effect relay's throughput and lag, against a plain loop.

One receiver (stdlib HTTP, a thread per keep-alive connection, in a process of its own)
answers every POST with 200. On it, turn by turn:

- **the relay**: ``--effects`` Kuaishou fast refunds opened in a fresh store (SQLite in a
  temporary folder; PostgreSQL in a schema of its own with ``--postgres`` or
  RULEKIT_TEST_POSTGRES_DSN), then 1 or 2 ``rulekit relay`` processes (16 deliveries in
  flight each, the defaults otherwise) deliver them: claim, sign, POST, acknowledge. Timed
  from the receiver's first request until the store has every effect ``done``;
- **the baseline**: the same bodies, signed the same way, POSTed by as many processes of a
  plain aiohttp loop (the relay's HTTP client) with the same concurrency, and no store: what
  delivering costs without the outbox. ``x base`` is the relay's rate over it, measured in the same round; each
  figure is the median of ``--rounds`` rounds (the ratios' range in brackets).

Then the lag under load: one relay runs while cases are opened at a steady ``--rate`` for
``--seconds``; the age of the oldest pending effect (what ``rulekit_relay_lag_seconds``
reports, read every 100 ms rather than every 5 s) is sampled, p50 and max printed.

Nothing is asserted; the exit status is 1 only if an effect was not delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.report import load, machine_facts, rate, ratio
from benchmarks.stores import pg_schema

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "rules" / "kuaishou_after_sales.rk"
SECRET = "bench-webhook-secret-0123456789"
SECRET_ENV = "RULEKIT_BENCH_WEBHOOK_SECRET"
CONCURRENCY = 16
#: opened cases' time: in the past, so each effect is claimable at once
T = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


# -- the receiver -------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 resets a burst of clients connecting


def _serve(port: Any, first: Any) -> None:
    """Answer every POST with 200 (keep-alive); ``first``: when the first POST since the last
    ``DELETE`` arrived (time.time(); 0 until then)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if first.value == 0:
                first.value = time.time()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_DELETE(self) -> None:
            first.value = 0
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = _Server(("127.0.0.1", 0), Handler)
    port.value = server.server_address[1]
    server.serve_forever()


class Receiver:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.first = ctx.Value("d", 0.0)
        port = ctx.Value("i", 0)
        self.process = ctx.Process(target=_serve, args=(port, self.first), daemon=True)
        self.process.start()
        while port.value == 0:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port.value}/hooks"

    def reset(self) -> None:
        import httpx

        httpx.delete(self.url).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        self.process.join()


# -- the baseline: a plain aiohttp loop, no store ------------------------------------------------
def _post_all(
    url: str, bodies: list[bytes], concurrency: int, ready: Any, go: Any, ends: Any, i: int
) -> None:
    """POST every body, signed, ``concurrency`` at a time, with the HTTP client the relay
    uses (aiohttp: httpx's pool managed a ninth of its rate here, a baseline that slow
    would hide the outbox's cost). Starts when ``go`` is set (the loops start together,
    not as each process is spawned); its end time goes in ``ends[i]``."""
    import aiohttp

    from rulekit.relay.signing import sign

    async def run() -> None:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
            slots = asyncio.Semaphore(concurrency)

            async def one(body: bytes) -> None:
                async with slots:
                    headers = {
                        "Content-Type": "application/json",
                        "Rulekit-Signature": sign(body, [SECRET], int(time.time())),
                    }
                    async with session.post(url, data=body, headers=headers) as answer:
                        answer.raise_for_status()
                        await answer.read()

            ready.release()
            go.wait()
            await asyncio.gather(*(one(b) for b in bodies))
            ends[i] = time.time()

    asyncio.run(run())


def baseline(receiver: Receiver, bodies: list[bytes], processes: int) -> float:
    """Effects/s of ``processes`` plain loops POSTing ``bodies`` between them."""
    receiver.reset()
    ctx = multiprocessing.get_context("spawn")
    ready, go, ends = ctx.Semaphore(0), ctx.Event(), ctx.Array("d", processes)
    procs = [
        ctx.Process(
            target=_post_all,
            args=(receiver.url, bodies[i::processes], CONCURRENCY, ready, go, ends, i),
        )
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    go.set()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit("a baseline loop failed")
    return len(bodies) / (max(ends) - receiver.first.value)


# -- the relay ----------------------------------------------------------------------------------
def _facts(amount: str, at: datetime) -> dict[str, Any]:
    return {
        "order": {"amount": Decimal(amount), "paid_at": at - timedelta(hours=2), "shipped": False},
        "shop": {"fast_refund_enabled": True},
    }


def open_cases(url: str, n: int, prefix: str) -> list[bytes]:
    """Open ``n`` fast refunds (one effect each); the bodies the relay will send."""
    import rulekit
    from rulekit.relay.message import body
    from rulekit.stores import open_store

    with open_store(url, migrate=True) as store:
        store.register(rulekit.load(POLICY))
        for i in range(n):
            store.open("refund_only", _facts(f"{i % 299 + 1}.00", T), id=f"{prefix}{i}", at=T)
        return [body(e) for e in store.effects(status="pending", limit=n)]


def _config(folder: Path, url: str, poll: str = "100ms") -> Path:
    path = folder / "relay.yaml"
    path.write_text(
        f"concurrency: {CONCURRENCY}\npoll: {poll}\nroutes:\n  - name: bench\n"
        f"    effects: [refund]\n    webhook:\n      url: {url}\n      secret_env: {SECRET_ENV}\n",
        encoding="utf-8",
    )
    return path


@contextmanager
def relays(config: Path, store: str, count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {**os.environ, SECRET_ENV: SECRET}
    command = [sys.executable, "-m", "rulekit.cli", "relay", "--config", str(config)]
    procs = [
        subprocess.Popen([*command, "--store", store], env=env, stderr=subprocess.DEVNULL)
        for _ in range(count)
    ]
    try:
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)


def _until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@contextmanager
def done(url: str) -> Iterator[Callable[[], int]]:
    """How many effects the store has acknowledged, asked anew at each call."""
    from rulekit.stores import open_store

    with open_store(url) as store:
        yield lambda: store.pending().get("effects_done", 0)


def relay_rate(receiver: Receiver, folder: Path, url: str, n: int, count: int) -> float | None:
    """Effects/s of ``count`` relays delivering ``n`` effects opened beforehand (None: not
    all were delivered within two minutes)."""
    config = _config(folder, receiver.url)
    receiver.reset()
    with done(url) as delivered, relays(config, url, count):
        if not _until(lambda: delivered() == n, 120):
            return None
        end = time.time()
    return n / (end - receiver.first.value)


# -- lag under load -----------------------------------------------------------------------------
def lag_under_load(
    receiver: Receiver, folder: Path, url: str, per_second: float, seconds: float
) -> tuple[list[float], float, bool]:
    """Lag samples (s) while cases open at ``per_second`` with one relay running; the rate
    achieved; whether every effect was delivered afterwards."""
    import rulekit
    from rulekit.stores import open_store

    config = _config(folder, receiver.url)
    opener = open_store(url, migrate=True)
    opener.register(rulekit.load(POLICY))
    reader = open_store(url)
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            oldest = reader.effects(status="pending", limit=1)
            age = (datetime.now(UTC) - oldest[0].at).total_seconds() if oldest else 0.0
            samples.append(max(age, 0.0))

    with relays(config, url, 1):
        time.sleep(2)  # the relay has started (imports, first claim)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        n = int(per_second * seconds)
        started = time.monotonic()
        for i in range(n):
            wait = started + i / per_second - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            now = datetime.now(UTC)
            opener.open("refund_only", _facts(f"{i % 299 + 1}.00", now), id=f"lag{i}")
        achieved = n / (time.monotonic() - started)
        stop.set()
        sampler.join()
        with done(url) as delivered:
            ok = _until(lambda: delivered() == n, 60)
    opener.close()
    reader.close()
    return samples, achieved, ok


# -- the run ------------------------------------------------------------------------------------
def measure(
    label: str, make_url: Callable[[str], Any], args: argparse.Namespace, receiver: Receiver
) -> tuple[list[str], bool]:
    lines: list[str] = []
    ok = True
    for count in (1, 2):
        relay_rates: list[float] = []
        base_rates: list[float] = []
        for r in range(args.rounds):
            with tempfile.TemporaryDirectory() as folder, make_url(folder) as url:
                _progress(f"{label}, {count} relay(s), round {r + 1}: opening {args.effects}")
                bodies = open_cases(url, args.effects, f"r{r}c")
                base_rates.append(baseline(receiver, bodies, count))
                got = relay_rate(receiver, Path(folder), url, args.effects, count)
            if got is None:
                ok = False
                lines.append(f"{label}, {count} relay(s): not every effect was delivered")
                break
            relay_rates.append(got)
        if not relay_rates:
            continue
        ratios = sorted(a / b for a, b in zip(relay_rates, base_rates, strict=False))
        per_relay = statistics.median(relay_rates) / count
        lines.append(
            f"{label + f', {count} relay' + 's' * (count > 1):34} "
            f"{rate(statistics.median(relay_rates)):>8} {rate(per_relay):>10} "
            f"{rate(statistics.median(base_rates)):>9} "
            f"{ratio(statistics.median(ratios))} ({ratio(ratios[0])}-{ratio(ratios[-1])})"
        )
    with tempfile.TemporaryDirectory() as folder, make_url(folder) as url:
        _progress(f"{label}: lag at {args.rate:g} cases/s for {args.seconds:g}s")
        samples, achieved, delivered = lag_under_load(
            receiver, Path(folder), url, args.rate, args.seconds
        )
    ok = ok and delivered
    if samples:
        lines.append(
            f"{label}: lag while {achieved:,.0f} cases/s open (one relay, poll 100ms): "
            f"p50 {statistics.median(samples) * 1000:,.0f}ms, max {max(samples) * 1000:,.0f}ms "
            f"({len(samples)} samples)" + ("" if delivered else "; NOT all delivered after")
        )
    return lines, ok


@contextmanager
def _sqlite(folder: str) -> Iterator[str]:
    yield str(Path(folder) / "relay.db")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.relay", description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer effects, one round, shorter lag")
    p.add_argument("--effects", type=int, help="effects per figure (default 4000; 1500 --quick)")
    p.add_argument("--rounds", type=int, help="rounds per figure (default 3; 1 with --quick)")
    p.add_argument("--rate", type=float, default=100.0, help="cases opened per second (lag)")
    p.add_argument("--seconds", type=float, help="how long cases open (lag; default 10, 4 quick)")
    p.add_argument(
        "--postgres",
        metavar="DSN",
        default=os.environ.get("RULEKIT_BENCH_POSTGRES")
        or os.environ.get("RULEKIT_TEST_POSTGRES_DSN"),
        help="also measure on PostgreSQL (in a schema of its own, dropped afterwards)",
    )
    args = p.parse_args(argv)
    args.effects = args.effects or (1500 if args.quick else 4000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.seconds = args.seconds or (4.0 if args.quick else 10.0)
    print(
        f"Effect relay to a local webhook receiver: {args.effects} effects per figure, "
        f"{CONCURRENCY} deliveries in flight per relay, medians of {args.rounds} rounds; "
        f"{machine_facts()}"
    )
    receiver = Receiver()
    lines: list[str] = []
    ok = True
    try:
        stores: list[tuple[str, Callable[[str], Any]]] = [("SQLite", _sqlite)]
        if args.postgres:
            dsn = args.postgres
            stores.append(("PostgreSQL", lambda _folder: pg_schema(dsn)))
        for label, make_url in stores:
            got, good = measure(label, make_url, args, receiver)
            lines += got
            ok = ok and good
    finally:
        receiver.stop()
    print(f"{'':34} {'effects/s':>8} {'per relay':>10} {'baseline':>9} x base")
    print("\n".join(lines))
    print(f"(at the end: {load()})")
    print(
        "How to read: baseline is a plain aiohttp loop (as many processes as relays, the same"
        " concurrency) signing and POSTing the same bodies to the same receiver with no store;"
        " x base is the relay's rate over it in the same round: the outbox's cost (claim and"
        " acknowledge, a transaction each) on top of the HTTP."
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
