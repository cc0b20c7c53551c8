"""The JetStream destination against real NATS servers: what it publishes (read back from
the stream), the stream checks at start, deduplication by effect key, and a broker that is
down at start or dies mid-run (private servers this test kills and starts again)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import nats
import nats.js.errors
import orjson
import pytest
import pytest_asyncio
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

import rulekit
from rulekit.relay import message
from rulekit.relay.config import JetStreamTarget, loads_config
from rulekit.relay.core import Relay
from rulekit.relay.destinations import DELIVERED, DestinationError, Outcome
from rulekit.relay.jetstream import JetStreamDestination, covers, wildcard
from rulekit.runtime.store import OutboxEffect
from rulekit.stores import open_store
from support import ROOT

from .conftest import free_port

if TYPE_CHECKING:
    from .conftest import NatsServer

#: generous: the machine is shared and noisy
BOUND = 20.0


def effect(key: str = "c1/1/0", name: str = "refund", **args: object) -> OutboxEffect:
    case, seq, _ = key.split("/")
    return OutboxEffect(
        id=1,
        key=key,
        case_id=case,
        seq=int(seq),
        name=name,
        args=args or {"amount": "12.50"},
        at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        status="pending",
        attempts=0,
    )


async def deliver(dest: JetStreamDestination, e: OutboxEffect, attempt: int = 1) -> Outcome:
    return await dest.deliver(e, message.body(e), attempt)


class Names:
    """A stream and subject of this test's own on a shared server (deleted afterwards)."""

    def __init__(self) -> None:
        tag = secrets.token_hex(4)
        self.stream = f"RK_TEST_{tag.upper()}"
        self.prefix = f"rk.test.{tag}"
        self.subject = f"{self.prefix}.{{name}}"


@pytest_asyncio.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_url, allow_reconnect=False, connect_timeout=5)
    yield nc.jetstream(timeout=10)
    await nc.close()


@pytest_asyncio.fixture
async def names(js: JetStreamContext) -> AsyncIterator[Names]:
    n = Names()
    yield n
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(n.stream)


async def make_stream(js: JetStreamContext, names: Names, window: float = 600) -> None:
    await js.add_stream(
        StreamConfig(name=names.stream, subjects=[f"{names.prefix}.*"], duplicate_window=window)
    )


async def started(url: str, names: Names, **target: object) -> JetStreamDestination:
    options: dict[str, object] = {
        "servers": (url,),
        "stream": names.stream,
        "timeout": timedelta(seconds=5),
    }
    options.update(target)
    dest = JetStreamDestination("events", JetStreamTarget(names.subject, **options))
    await dest.start()
    return dest


async def read_all(js: JetStreamContext, names: Names) -> list[nats.aio.msg.Msg]:
    """Every message in the stream, through an ephemeral pull consumer."""
    count = (await js.stream_info(names.stream)).state.messages
    if count == 0:
        return []
    sub = await js.pull_subscribe(f"{names.prefix}.>", stream=names.stream)
    got: list[nats.aio.msg.Msg] = []
    deadline = time.monotonic() + BOUND
    while len(got) < count and time.monotonic() < deadline:
        got += await sub.fetch(count - len(got), timeout=BOUND)
    await sub.unsubscribe()
    return got


# -- subjects (no server) --------------------------------------------------------------------


def test_wildcard_replaces_the_token_holding_the_name() -> None:
    assert wildcard("rulekit.effects.{name}") == "rulekit.effects.*"
    assert wildcard("rulekit.{name}.out") == "rulekit.*.out"
    assert wildcard("fx.e-{name}") == "fx.*"
    assert wildcard("rulekit.all") == "rulekit.all"


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("a.*", "a.*", True),
        ("a.>", "a.*", True),
        ("a.>", "a.*.c", True),
        (">", "a.*", True),
        ("a.*", "a.b", True),
        ("a.b", "a.*", False),  # captures one name only
        ("a.*", "a.*.c", False),
        ("a.*.c", "a.*", False),
        ("a.>", "a", False),
        ("a.*", "a.>", False),
        ("b.*", "a.*", False),
    ],
)
def test_covers_follows_nats_wildcards(pattern: str, subject: str, expected: bool) -> None:
    assert covers(pattern, subject) is expected


# -- the shared server -----------------------------------------------------------------------


@pytest.mark.nats
@pytest.mark.asyncio
async def test_publishes_the_body_and_headers_to_the_effects_subject(
    nats_url: str, js: JetStreamContext, names: Names
) -> None:
    await make_stream(js, names)
    dest = await started(nats_url, names)
    try:
        e = effect("case-7/3/0", "refund", amount="99.90")
        assert await deliver(dest, e, attempt=2) == DELIVERED
    finally:
        await dest.close()
    [msg] = await read_all(js, names)
    assert msg.subject == f"{names.prefix}.refund"
    assert msg.data == message.body(e)
    assert orjson.loads(msg.data)["key"] == "case-7/3/0"
    assert msg.headers is not None
    assert msg.headers["Nats-Msg-Id"] == "case-7/3/0"
    assert msg.headers["Rulekit-Effect-Key"] == "case-7/3/0"
    assert msg.headers["Idempotency-Key"] == "case-7/3/0"
    assert msg.headers["Rulekit-Delivery-Attempt"] == "2"
    assert msg.headers["Content-Type"] == "application/json"


@pytest.mark.nats
@pytest.mark.asyncio
async def test_the_same_key_twice_is_stored_once(
    nats_url: str, js: JetStreamContext, names: Names
) -> None:
    await make_stream(js, names)
    dest = await started(nats_url, names)
    try:
        e = effect("c1/1/0")
        assert await deliver(dest, e, attempt=1) == DELIVERED
        assert await deliver(dest, e, attempt=2) == DELIVERED  # a duplicate is delivered too
        assert await deliver(dest, effect("c1/1/1")) == DELIVERED
    finally:
        await dest.close()
    msgs = await read_all(js, names)
    assert [m.headers["Nats-Msg-Id"] for m in msgs if m.headers] == ["c1/1/0", "c1/1/1"]
    assert msgs[0].headers and msgs[0].headers["Rulekit-Delivery-Attempt"] == "1"


@pytest.mark.nats
@pytest.mark.asyncio
async def test_a_missing_stream_fails_start_unless_created(
    nats_url: str, js: JetStreamContext, names: Names
) -> None:
    with pytest.raises(DestinationError, match=rf"stream {names.stream} does not exist.*create"):
        await started(nats_url, names)
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.stream_info(names.stream)


@pytest.mark.nats
@pytest.mark.asyncio
async def test_create_makes_the_stream_with_the_duplicate_window(
    nats_url: str, js: JetStreamContext, names: Names
) -> None:
    dest = await started(nats_url, names, create=True, duplicate_window=timedelta(minutes=7))
    try:
        info = await js.stream_info(names.stream)
        assert info.config.subjects == [f"{names.prefix}.*"]
        assert info.config.duplicate_window == 7 * 60
        assert await deliver(dest, effect()) == DELIVERED
    finally:
        await dest.close()
    # a second start finds it and leaves it as it is
    again = await started(nats_url, names, create=True, duplicate_window=timedelta(minutes=7))
    await again.close()
    assert (await js.stream_info(names.stream)).state.messages == 1


@pytest.mark.nats
@pytest.mark.asyncio
async def test_a_stream_that_does_not_capture_the_subject_fails_start(
    nats_url: str, js: JetStreamContext, names: Names
) -> None:
    await js.add_stream(StreamConfig(name=names.stream, subjects=[f"{names.prefix}.refund"]))
    with pytest.raises(DestinationError, match=rf"does not capture {names.prefix}\.\*"):
        await started(nats_url, names)


@pytest.mark.nats
@pytest.mark.asyncio
async def test_a_shorter_duplicate_window_is_a_warning(
    nats_url: str, js: JetStreamContext, names: Names, caplog: pytest.LogCaptureFixture
) -> None:
    await make_stream(js, names, window=30)
    with caplog.at_level(logging.WARNING, logger="rulekit.relay"):
        dest = await started(nats_url, names, duplicate_window=timedelta(minutes=10))
    await dest.close()
    assert any(
        "keeps message ids for 0:00:30" in r.getMessage() and names.stream in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.nats
@pytest.mark.asyncio
async def test_no_stream_for_the_subject_is_a_retry(nats_url: str, names: Names) -> None:
    dest = await started(nats_url, names, stream=None)
    try:
        outcome = await deliver(dest, effect(name="refund"))
    finally:
        await dest.close()
    assert outcome.status == "retry"
    assert outcome.error == f"no stream captures subject {names.prefix}.refund"


@pytest.mark.nats
@pytest.mark.asyncio
async def test_a_message_over_max_payload_is_dead(
    nats_url: str, js: JetStreamContext, names: Names
) -> None:
    await make_stream(js, names)
    dest = await started(nats_url, names)
    try:
        big = effect(blob="x" * (2 << 20))
        outcome = await deliver(dest, big)
        assert outcome.status == "dead"
        assert "max_payload" in (outcome.error or "")
        assert await deliver(dest, effect()) == DELIVERED  # the connection is still fine
    finally:
        await dest.close()


# -- servers that are down -------------------------------------------------------------------


@pytest.mark.nats
@pytest.mark.asyncio
async def test_an_unreachable_server_fails_start_in_bounded_time() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    dest = JetStreamDestination(
        "events", JetStreamTarget("fx.{name}", (url,), timeout=timedelta(seconds=1))
    )
    began = time.monotonic()
    with pytest.raises(DestinationError, match=rf"cannot connect to NATS at {url} within 2s"):
        await dest.start()
    assert time.monotonic() - began < BOUND


@pytest.mark.nats
@pytest.mark.asyncio
async def test_a_server_that_never_answers_fails_start_in_bounded_time() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"nats://127.0.0.1:{silent.getsockname()[1]}"
        dest = JetStreamDestination(
            "events", JetStreamTarget("fx.{name}", (url,), timeout=timedelta(seconds=1))
        )
        began = time.monotonic()
        with pytest.raises(DestinationError, match=rf"cannot connect to NATS at {url}"):
            await dest.start()
        assert time.monotonic() - began < BOUND


@pytest.mark.nats
@pytest.mark.asyncio
async def test_a_server_down_among_several_is_passed_over(
    nats_url: str, js: JetStreamContext, names: Names
) -> None:
    await make_stream(js, names)
    down = f"nats://127.0.0.1:{free_port()}"
    dest = await started(nats_url, names, servers=(down, nats_url))
    try:
        assert await deliver(dest, effect()) == DELIVERED
    finally:
        await dest.close()


def stopped(pid: int) -> None:
    """Wait until the process is stopped (a signal takes effect a moment after it is sent)."""
    deadline = time.monotonic() + BOUND
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert time.monotonic() < deadline, "SIGSTOP did not stop nats-server"
        time.sleep(0.01)


@pytest.mark.nats
@pytest.mark.asyncio
async def test_an_unacknowledged_publish_is_a_retry_and_its_redelivery_is_not_stored_twice(
    nats_server: NatsServer,
) -> None:
    names = Names()
    dest = await started(nats_server.url, names, create=True, timeout=timedelta(seconds=1))
    assert nats_server.process is not None
    try:
        e = effect()
        nats_server.process.send_signal(signal.SIGSTOP)  # hung, not gone: the socket stays
        try:
            stopped(nats_server.process.pid)
            began = time.monotonic()
            outcome = await deliver(dest, e)
            assert outcome == Outcome.retry("JetStream did not acknowledge within 1s")
            assert time.monotonic() - began < BOUND
        finally:
            nats_server.process.send_signal(signal.SIGCONT)
        # the message was sent and the server stores it when it wakes: delivered again, it
        # is recognised by its Nats-Msg-Id
        assert await deliver(dest, e, attempt=2) == DELIVERED
    finally:
        await dest.close()
    nc = await nats.connect(nats_server.url, allow_reconnect=False)
    try:
        msgs = await read_all(nc.jetstream(timeout=10), names)
    finally:
        await nc.close()
    assert [m.headers["Nats-Msg-Id"] for m in msgs if m.headers] == [e.key]


@pytest.mark.nats
@pytest.mark.asyncio
async def test_a_broker_restart_is_retried_and_nothing_doubles(nats_server: NatsServer) -> None:
    names = Names()
    dest = await started(nats_server.url, names, create=True, timeout=timedelta(seconds=1))
    try:
        before = [effect(f"c{i}/1/0") for i in range(3)]
        for e in before:
            assert await deliver(dest, e) == DELIVERED

        nats_server.stop()
        began = time.monotonic()
        during = [effect(f"d{i}/1/0") for i in range(3)]
        outcomes = [await deliver(dest, e) for e in during]
        assert all(o.status == "retry" for o in outcomes), outcomes
        assert time.monotonic() - began < BOUND
        assert all("NATS" in (o.error or "") or "JetStream" in (o.error or "") for o in outcomes)

        nats_server.start()
        deadline = time.monotonic() + BOUND * 2
        while (outcome := await deliver(dest, during[0], attempt=2)) != DELIVERED:
            assert time.monotonic() < deadline, f"still not delivering: {outcome}"
            await asyncio.sleep(0.2)
        # the relay delivers everything again that it had no acknowledgement for, and an
        # expired lease may deliver what it had one for too
        for e in [*during, *before]:
            assert await deliver(dest, e, attempt=2) == DELIVERED
    finally:
        await dest.close()

    nc = await nats.connect(nats_server.url, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=10)
        msgs = await read_all(js, names)
    finally:
        await nc.close()
    keys = [m.headers["Nats-Msg-Id"] for m in msgs if m.headers]
    assert sorted(keys) == sorted(e.key for e in [*before, *during])


@pytest.mark.nats
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("server_args", "credentials"),
    [
        (["--auth", "tok-3f9a"], {"token": "tok-3f9a"}),
        (["--user", "relay", "--pass", "pw-77c1"], {"user": "relay", "password": "pw-77c1"}),
    ],
    ids=["token", "user-password"],
)
async def test_credentials_are_sent_and_a_refusal_says_so(
    nats_server: NatsServer, server_args: list[str], credentials: dict[str, str]
) -> None:
    nats_server.stop()
    nats_server.args = server_args
    nats_server.start()
    names = Names()
    # the server refuses the login and closes the connection; whether the client reads the
    # refusal or a reset first is a race TCP decides (a reset discards what was unread)
    with pytest.raises(
        DestinationError, match=r"(?i)cannot connect to NATS.*(authorization|connection reset)"
    ) as refused:
        await started(nats_server.url, names, create=True, timeout=timedelta(seconds=1))
    assert all(secret not in str(refused.value) for secret in credentials.values())
    dest = await started(nats_server.url, names, create=True, **credentials)
    try:
        assert await deliver(dest, effect()) == DELIVERED
    finally:
        await dest.close()


# -- through the relay -----------------------------------------------------------------------


@pytest.mark.nats
@pytest.mark.asyncio
async def test_the_relay_delivers_the_outbox_to_a_stream(
    nats_url: str, js: JetStreamContext, names: Names, tmp_path: Path
) -> None:
    store = open_store(tmp_path / "store.db", migrate=True)
    store.register(rulekit.load(ROOT / "rules" / "kuaishou_after_sales.rk"))
    paid = datetime.now(UTC) - timedelta(hours=2)
    for i in range(20):  # fast refunds: each emits a refund as it opens
        facts = {
            "order": {"amount": Decimal("128.00"), "paid_at": paid, "shipped": False},
            "shop": {"fast_refund_enabled": True},
        }
        store.open("refund_only", facts, id=f"case-{i}")
    config = loads_config(
        f"routes:\n  - name: events\n    effects: '*'\n    jetstream:\n"
        f"      servers: [{nats_url}]\n      subject: {names.subject}\n"
        f"      stream: {names.stream}\n      create: true\n",
        "relay.yaml",
        {},
    )
    try:
        async with Relay(store, config) as relay:
            stats = await relay.run_once()
        counts = store.pending()
    finally:
        store.close()
    assert (stats.delivered, stats.retried, stats.dead) == (20, 0, 0)
    assert counts.get("effects_pending", 0) == 0 and counts["effects_done"] == 20
    msgs = await read_all(js, names)
    assert sorted(m.headers["Nats-Msg-Id"] for m in msgs if m.headers) == sorted(
        f"case-{i}/1/0" for i in range(20)
    )
    assert {m.subject for m in msgs} == {f"{names.prefix}.refund"}
