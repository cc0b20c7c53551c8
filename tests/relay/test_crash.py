"""A relay killed with SIGKILL mid-batch loses nothing: ``rulekit relay`` runs in a process of
its own against a receiver that answers slowly (so deliveries are in flight), is killed after
the receiver saw some effects but not all, and is started again. Every effect ends ``done``,
every key was received at least once, and only effects of the store were received (a
duplicate is the same key again: what the receiver deduplicates on)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rulekit.stores import open_store

from .support import (  # noqa: F401  (the fixtures store_url, postgres_url: found by name)
    Answer,
    Receiver,
    done_keys,
    open_refunds,
    postgres_url_fixture,
    relay_process,
    statuses,
    store_url_fixture,
    wait_until,
    write_config,
)

N = 300


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        r.plan = lambda _: Answer(delay=0.15)
        yield r


def test_kill_9_mid_batch_loses_nothing(store_url: str, receiver: Receiver, tmp_path: Path) -> None:
    keys = open_refunds(store_url, N)
    config = write_config(
        tmp_path, receiver.url, extra="concurrency: 16\nbatch: 16\nlease: 2s\npoll: 100ms\n"
    )
    first = relay_process(config, store_url)
    try:
        wait_until(lambda: receiver.count() >= 60, 60, "the first relay delivered 60 effects")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    seen_before = receiver.count()
    assert seen_before < N, "the relay finished before it was killed: make the receiver slower"
    with open_store(store_url) as store:
        assert statuses(store)["done"] < N

    started = time.monotonic()
    second = relay_process(config, store_url)
    try:
        wait_until(lambda: len(done_keys(store_url)) == N, 120, f"all {N} effects done")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    received = receiver.keys()
    assert set(received) == set(keys)  # nothing lost, and nothing the store does not hold
    assert receiver.bad_signatures() == []
    with open_store(store_url) as store:
        assert statuses(store) == {"done": N}
        attempts = {e.key: e.attempts for e in store.effects(limit=N)}
    # a key received twice was delivered twice by the outbox's count, never acknowledged twice
    assert all(received[k] <= attempts[k] for k in keys)
    redelivered = sum(n - 1 for n in received.values())
    print(
        f"killed after {seen_before} receipts; {redelivered} redelivered; "
        f"the second relay took {time.monotonic() - started:.1f}s"
    )
