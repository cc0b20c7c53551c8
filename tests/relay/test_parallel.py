"""Several relays on one store deliver every effect exactly once between them: each claim
takes an effect for one relay (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on
SQLite), and with a lease longer than any delivery nothing is claimed twice. Each relay is
``rulekit relay`` in a process of its own; the receiver counts receipts per key."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rulekit.stores import open_store

from .support import (  # noqa: F401  (the fixture postgres_url: found by name)
    Receiver,
    done_keys,
    open_refunds,
    postgres_url_fixture,
    relay_process,
    statuses,
    wait_until,
    write_config,
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _deliver_in_parallel(
    url: str, receiver: Receiver, tmp_path: Path, *, n: int, relays: int
) -> float:
    """Open ``n`` refunds, run ``relays`` relays until all are done; the wall time it took."""
    opened = time.monotonic()
    keys = open_refunds(url, n, threads=4)
    print(f"opened {n} cases in {time.monotonic() - opened:.1f}s")
    config = write_config(
        tmp_path, receiver.url, extra="concurrency: 16\nbatch: 50\nlease: 5m\npoll: 100ms\n"
    )
    started = time.monotonic()
    procs = [relay_process(config, url) for _ in range(relays)]
    try:
        wait_until(lambda: receiver.count() >= n, 300, f"{n} effects received")
        wait_until(lambda: len(done_keys(url)) == n, 60, f"{n} effects acknowledged")
        took = time.monotonic() - started
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(30) for p in procs]
    logs = "\n".join(f.read_text(errors="replace")[-3000:] for f in sorted(tmp_path.glob("*.log")))
    assert codes == [0] * relays, logs
    assert receiver.keys() == dict.fromkeys(keys, 1)  # every effect, each exactly once
    assert receiver.bad_signatures() == []
    with open_store(url) as store:
        assert statuses(store) == {"done": n}
        assert {e.attempts for e in store.effects(status="done", limit=n)} == {1}
    print(f"{n} effects, {relays} relays: {took:.1f}s, {n / took:,.0f} effects/s")
    return took


@pytest.mark.postgresql
def test_four_relays_deliver_10000_effects_once_on_postgresql(
    postgres_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    _deliver_in_parallel(postgres_url, receiver, tmp_path, n=10_000, relays=4)


def test_two_relays_deliver_2000_effects_once_on_sqlite(receiver: Receiver, tmp_path: Path) -> None:
    url = str(tmp_path / "store.db")
    from .support import kuaishou

    with open_store(url, migrate=True) as store:
        store.register(kuaishou())
    _deliver_in_parallel(url, receiver, tmp_path, n=2_000, relays=2)
