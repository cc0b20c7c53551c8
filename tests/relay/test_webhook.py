"""The relay delivering to a real HTTP receiver, on real stores (SQLite and PostgreSQL).

Each test opens fast-refund cases (one ``refund`` effect each), runs the relay
(:meth:`Relay.run_once` or :meth:`Relay.run`, and ``rulekit relay`` where the process
matters) against :class:`Receiver`, and checks what the receiver got and what the outbox
says. Backoffs are configured tiny, so "tried again later" is a second run after a short wait.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from rulekit.relay import message
from rulekit.relay.config import RelayConfig, RetryPolicy, load_config
from rulekit.relay.core import Relay, RelayStats
from rulekit.stores import open_store

from .support import (  # noqa: F401  (the fixtures store_url, postgres_url: found by name)
    SECRET,
    SECRET_ENV,
    Answer,
    Close,
    Drip,
    Hang,
    Receiver,
    available_at,
    environ,
    free_port,
    open_refunds,
    postgres_url_fixture,
    relay_process,
    statuses,
    store_url_fixture,
    wait_until,
    write_config,
)

TINY = RetryPolicy(initial=timedelta(milliseconds=50), maximum=timedelta(milliseconds=200))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def config(tmp_path: Path, url: str, **changes: object) -> RelayConfig:
    """relay.yaml routing refunds to ``url``, read as `rulekit relay` reads it; then ``changes``
    (RelayConfig's fields, or ``timeout``/``dead_after_4xx`` for the route)."""
    target_changes = {k: changes.pop(k) for k in ("timeout", "dead_after_4xx") if k in changes}
    c = load_config(write_config(tmp_path, url), environ={SECRET_ENV: SECRET})
    if target_changes:
        [route] = c.routes
        target = dataclasses.replace(route.target, **target_changes)  # type: ignore[arg-type]
        c = dataclasses.replace(c, routes=(dataclasses.replace(route, target=target),))
    return dataclasses.replace(c, **{"retry": TINY, **changes})  # type: ignore[arg-type]


def run_once(url: str, c: RelayConfig, registry: CollectorRegistry | None = None) -> RelayStats:
    async def go() -> RelayStats:
        with open_store(url) as store:
            async with Relay(store, c, registry=registry) as relay:
                return await relay.run_once()

    return asyncio.run(go())


def effect(url: str, key: str):  # type: ignore[no-untyped-def]
    with open_store(url) as store:
        [e] = [e for e in store.effects(limit=100_000) if e.key == key]
        return e


def test_every_effect_is_delivered_once_signed_and_byte_identical(
    store_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    keys = open_refunds(store_url, 200)
    stats = run_once(store_url, config(tmp_path, receiver.url))
    assert (stats.delivered, stats.retried, stats.dead) == (200, 0, 0)
    assert receiver.keys() == dict.fromkeys(keys, 1)
    assert receiver.bad_signatures() == []
    with open_store(store_url) as store:
        assert statuses(store) == {"done": 200}
        effects = {e.key: e for e in store.effects(limit=1000)}
    for r in receiver.received:
        e = effects[r.key]
        assert r.body == message.body(e)
        assert r.attempt == e.attempts == 1
        h = {k.lower(): v for k, v in r.headers.items()}
        assert h["idempotency-key"] == h["rulekit-effect-key"] == r.key
        assert h["content-type"] == "application/json"
        assert h["user-agent"] == message.USER_AGENT
        assert h["rulekit-delivery-attempt"] == "1"


def test_a_5xx_is_retried_later_and_then_delivered(
    store_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    [key] = open_refunds(store_url, 1)
    receiver.script(Answer(500, body=b"database down"))
    c = config(tmp_path, receiver.url)
    first = run_once(store_url, c)
    assert (first.delivered, first.retried, first.dead) == (0, 1, 0)
    failed = effect(store_url, key)
    assert (failed.status, failed.attempts) == ("pending", 1)
    assert failed.last_error == f"{receiver.url} answered 500 Internal Server Error: database down"
    time.sleep(TINY.maximum.total_seconds())  # the longest first backoff
    second = run_once(store_url, c)
    assert (second.delivered, second.retried) == (1, 0)
    assert [(r.key, r.attempt) for r in receiver.received] == [(key, 1), (key, 2)]
    assert receiver.received[0].body == receiver.received[1].body
    assert (effect(store_url, key).status, effect(store_url, key).attempts) == ("done", 2)


@pytest.mark.parametrize(
    "retry_after",
    [
        pytest.param(lambda: "30", id="seconds"),
        pytest.param(
            lambda: format_datetime(datetime.now(UTC) + timedelta(seconds=31), usegmt=True),
            id="http-date",
        ),
    ],
)
def test_retry_after_is_honoured(
    store_url: str, receiver: Receiver, tmp_path: Path, retry_after: Callable[[], str]
) -> None:
    [key] = open_refunds(store_url, 1)
    receiver.script(Answer(503, {"Retry-After": retry_after()}))
    before = datetime.now(UTC)
    run_once(
        store_url, config(tmp_path, receiver.url, retry=RetryPolicy(maximum=timedelta(hours=1)))
    )
    assert run_once(store_url, config(tmp_path, receiver.url)).delivered == 0  # not yet
    assert receiver.keys() == {key: 1}
    assert available_at(store_url, key) >= before + timedelta(seconds=30)


def test_a_receiver_that_hangs_is_given_up_on_at_the_timeout(
    store_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    [key] = open_refunds(store_url, 1)
    receiver.script(Hang(30))
    started = time.monotonic()
    stats = run_once(store_url, config(tmp_path, receiver.url, timeout=timedelta(milliseconds=500)))
    assert time.monotonic() - started < 10
    assert stats.retried == 1
    e = effect(store_url, key)
    assert (e.status, e.last_error) == ("pending", f"{receiver.url} did not answer within 0.5s")
    time.sleep(TINY.maximum.total_seconds())
    assert run_once(store_url, config(tmp_path, receiver.url)).delivered == 1
    assert [r.attempt for r in receiver.received] == [1, 2]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Drip(30), id="slow-drip"),
        pytest.param(Answer(200, body=b"x" * 10_000_000), id="10MB-body"),
        pytest.param(Answer(500, body=b"y" * 10_000_000), id="10MB-error"),
    ],
)
def test_a_long_answer_does_not_hold_the_relay(
    store_url: str, receiver: Receiver, tmp_path: Path, answer: Drip | Answer
) -> None:
    """At most 4 KB of an answer is read, and the whole delivery is bounded by the timeout."""
    [key] = open_refunds(store_url, 1)
    receiver.script(answer)
    started = time.monotonic()
    run_once(store_url, config(tmp_path, receiver.url, timeout=timedelta(seconds=1)))
    assert time.monotonic() - started < 10
    e = effect(store_url, key)
    if isinstance(answer, Drip):
        assert (e.status, e.last_error) == ("pending", f"{receiver.url} did not answer within 1s")
    elif answer.status == 200:
        assert e.status == "done"
    else:
        assert e.status == "pending"
        assert e.last_error is not None and len(e.last_error) <= 500
        assert e.last_error.startswith(f"{receiver.url} answered 500 Internal Server Error: yyy")


def test_refused_and_closed_connections_are_retried(
    store_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    keys = open_refunds(store_url, 2)
    nowhere = f"http://127.0.0.1:{free_port()}/hooks"
    refused = run_once(store_url, config(tmp_path, nowhere))
    assert refused.retried == 2
    errors = {effect(store_url, k).last_error for k in keys}
    assert len(errors) == 1 and next(iter(errors)).startswith(f"cannot reach {nowhere}")
    time.sleep(TINY.maximum.total_seconds())
    receiver.script(Close(), Close())
    closed = run_once(store_url, config(tmp_path, receiver.url))
    assert closed.retried == 2
    assert all(effect(store_url, k).last_error.startswith("cannot reach") for k in keys)
    time.sleep(TINY.maximum.total_seconds() * 2)
    assert run_once(store_url, config(tmp_path, receiver.url)).delivered == 2
    with open_store(store_url) as store:
        assert {e.key: e.attempts for e in store.effects()} == dict.fromkeys(keys, 3)


@pytest.mark.parametrize(
    ("status", "dead"),
    [(400, True), (404, True), (410, True), (301, True), (408, False), (429, False)],
)
def test_4xx_is_dead_after_dead_after_4xx_but_408_and_429_are_not(
    store_url: str, receiver: Receiver, tmp_path: Path, status: int, dead: bool
) -> None:
    [key] = open_refunds(store_url, 1)
    elsewhere = f"http://127.0.0.1:{free_port()}/moved"
    receiver.plan = lambda r: Answer(status, {"Location": elsewhere} if status == 301 else {})
    c = config(tmp_path, receiver.url, dead_after_4xx=2, max_attempts=5)
    outcomes = []
    for _ in range(3):
        s = run_once(store_url, c)
        outcomes.append((s.delivered, s.retried, s.dead))
        time.sleep(TINY.maximum.total_seconds() * 2)
    e = effect(store_url, key)
    if dead:
        assert outcomes == [(0, 1, 0), (0, 0, 1), (0, 0, 0)]
        assert (e.status, e.attempts) == ("dead", 2)
    else:
        assert outcomes == [(0, 1, 0)] * 3
        assert (e.status, e.attempts) == ("pending", 3)
    assert receiver.count() == e.attempts  # a 3xx is not followed: nothing went elsewhere
    if status == 301:
        assert e.last_error is not None and "redirects are not followed" in e.last_error


def test_max_attempts_reached_is_dead(store_url: str, receiver: Receiver, tmp_path: Path) -> None:
    [key] = open_refunds(store_url, 1)
    receiver.plan = lambda r: Answer(503)
    c = config(tmp_path, receiver.url, max_attempts=3)
    dead = 0
    for _ in range(6):
        dead += run_once(store_url, c).dead
        time.sleep(TINY.maximum.total_seconds() * 2)
    e = effect(store_url, key)
    assert (e.status, e.attempts, dead) == ("dead", 3, 1)
    assert receiver.count() == 3


def test_effects_no_route_takes_are_not_claimed(
    store_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    open_refunds(store_url, 3)
    c = load_config(
        write_config(tmp_path, receiver.url, effects="[notify]"), environ={SECRET_ENV: SECRET}
    )
    stats = run_once(store_url, c)
    assert (stats.delivered, stats.retried, stats.dead) == (0, 0, 0)
    assert receiver.count() == 0
    with open_store(store_url) as store:
        assert [e.attempts for e in store.effects()] == [0, 0, 0]
        assert statuses(store) == {"pending": 3}
    # rulekit relay says so as it starts: the store's policies emit refunds no route takes
    done = _cli(tmp_path, receiver.url, "--store", store_url, "--once", effects="[notify]")
    assert done.returncode == 0, done.stderr
    assert (
        f"rulekit: no route in {tmp_path / 'relay.yaml'} takes effect `refund`: "
        "it stays in the outbox for another relay"
    ) in done.stderr.splitlines()
    assert receiver.count() == 0


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_metrics(store_url: str, receiver: Receiver, tmp_path: Path) -> None:
    keys = open_refunds(store_url, 5)
    bad = {keys[0]: Answer(503), keys[1]: Answer(410)}
    receiver.plan = lambda r: bad.get(r.key, Answer())
    registry = CollectorRegistry()
    c = config(tmp_path, receiver.url, dead_after_4xx=1)
    stats = run_once(store_url, c, registry)
    assert (stats.delivered, stats.retried, stats.dead) == (3, 1, 1)
    total = "rulekit_relay_effects_total"
    by = {
        o: _sample(registry, total, route="hooks", outcome=o)
        for o in ("delivered", "retried", "dead")
    }
    assert by == {"delivered": 3, "retried": 1, "dead": 1}
    assert _sample(registry, "rulekit_relay_delivery_seconds_count", route="hooks") == 5
    assert _sample(registry, "rulekit_relay_pending_effects") == 1
    assert _sample(registry, "rulekit_relay_dead_effects") == 1
    # the pending effect was emitted at T (2021): the lag is its age
    lag = _sample(registry, "rulekit_relay_lag_seconds")
    age = (datetime.now(UTC) - datetime(2021, 3, 1, 4, tzinfo=UTC)).total_seconds()
    assert age - 60 < lag <= age and stats.lag_seconds == pytest.approx(lag, abs=60)
    # nothing pending: the lag is 0 (a relay registers its metrics: one registry each)
    bad.clear()
    time.sleep(TINY.maximum.total_seconds())
    registry = CollectorRegistry()
    assert run_once(store_url, c, registry).delivered == 1
    assert _sample(registry, "rulekit_relay_lag_seconds") == 0
    assert _sample(registry, "rulekit_relay_pending_effects") == 0
    assert _sample(registry, total, route="hooks", outcome="delivered") == 1


def test_run_delivers_what_arrives_while_it_runs_and_stops_after_in_flight(
    store_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    c = config(tmp_path, receiver.url, poll=timedelta(milliseconds=50))

    async def go() -> tuple[float, int]:
        stop = asyncio.Event()
        with open_store(store_url) as store:
            async with Relay(store, c) as relay:
                task = asyncio.create_task(relay.run(stop))
                await asyncio.to_thread(open_refunds, store_url, 20, prefix="a")
                await _until(lambda: receiver.count() == 20, 30)
                receiver.plan = lambda r: Answer(delay=1.0)  # the next batch is slow
                await asyncio.to_thread(open_refunds, store_url, 5, prefix="b")
                await _until(lambda: receiver.count() == 25, 30)  # all 5 in flight
                stop.set()
                started = time.monotonic()
                await asyncio.wait_for(task, 30)
                return time.monotonic() - started, relay.stats.delivered

    waited, delivered = asyncio.run(go())
    assert delivered == 25  # the 5 in flight were settled before run returned
    assert waited < 10
    with open_store(store_url) as store:
        assert statuses(store) == {"done": 25}
    assert max(receiver.keys().values()) == 1


async def _until(check, seconds: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("concurrency", [1, 16])
def test_run_survives_deliveries_that_end_before_it_waits_for_one(
    store_url: str,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    concurrency: int,
) -> None:
    """Every slot taken (1), or too few free to claim more (16: fewer than a quarter), the
    relay waits for one to come free; the deliveries may all have ended by then (while it
    read the gauges), and waiting on none must not stop it. The gauges are read at every
    turn here, to give deliveries that time."""
    from rulekit.relay import core

    monkeypatch.setattr(core, "GAUGE_INTERVAL", 0.0)
    c = config(
        tmp_path,
        receiver.url,
        concurrency=concurrency,
        batch=concurrency,
        poll=timedelta(milliseconds=20),
    )
    open_refunds(store_url, 300)

    async def go() -> None:
        stop = asyncio.Event()
        with open_store(store_url) as store:
            async with Relay(store, c, registry=CollectorRegistry()) as relay:
                task = asyncio.create_task(relay.run(stop))
                await _until(lambda: receiver.count() == 300 or task.done(), 120)
                stop.set()
                await task  # raised ValueError (asyncio.wait on no task) before the fix

    asyncio.run(go())
    with open_store(store_url) as store:
        assert statuses(store) == {"done": 300}


# -- rulekit relay, as a process ------------------------------------------------------------------
def _cli(
    tmp_path: Path, url: str, *args: str, effects: str = "[refund]"
) -> subprocess.CompletedProcess[str]:
    config = write_config(
        tmp_path, url, effects=effects, extra="retry: {initial: 50ms, max: 200ms}\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "rulekit.cli", "relay", "--config", str(config), *args],
        env=environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_once_exits_0_when_all_were_delivered_and_1_when_some_were_not(
    store_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    keys = open_refunds(store_url, 4)
    receiver.plan = lambda r: (
        Answer(503) if r.key == keys[0] else Answer(410 if r.key == keys[1] else 200)
    )
    once = ("--store", store_url, "--once", "--format", "json")
    failed = _cli(tmp_path, receiver.url, *once)
    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout) | {"lag_seconds": 0} == {
        "delivered": 2,
        "retried": 2,  # the 410: a 4xx is dead only after dead_after_4xx (3) of them
        "dead": 0,
        "lag_seconds": 0,
    }
    assert "Traceback" not in failed.stderr
    receiver.plan = lambda r: Answer()
    time.sleep(TINY.maximum.total_seconds())
    delivered = _cli(tmp_path, receiver.url, *once)
    assert delivered.returncode == 0, delivered.stderr
    assert json.loads(delivered.stdout) == {
        "delivered": 2,
        "retried": 0,
        "dead": 0,
        "lag_seconds": 0.0,
    }
    nothing = _cli(tmp_path, receiver.url, "--store", store_url, "--once")
    assert (nothing.returncode, nothing.stdout) == (
        0,
        "delivered 0, retried later 0, dead-lettered 0; oldest pending effect: 0.0s\n",
    )


def test_the_metrics_endpoint_and_a_clean_stop(
    store_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    open_refunds(store_url, 5)
    port = free_port()
    config = write_config(tmp_path, receiver.url, extra="poll: 100ms\n")
    relay = relay_process(config, store_url, "--metrics-port", str(port))
    try:
        wait_until(lambda: receiver.count() == 5, 60, "5 effects delivered")

        def delivered() -> bool:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            except OSError:
                return False
            return (
                'rulekit_relay_effects_total{outcome="delivered",route="hooks"} 5.0'
                in text.decode()
            )

        wait_until(delivered, 30, "the metrics count 5 delivered")
    finally:
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(30) == 0
    with open_store(store_url) as store:
        assert statuses(store) == {"done": 5}
