"""Publish effects to a NATS JetStream subject, each acknowledged by the stream that stores it.

An effect counts as delivered only once JetStream has acknowledged it (a PubAck: the stream
has stored it), never when it has merely been written to the socket. The effect's key goes
in ``Nats-Msg-Id``, so a delivery repeated within the stream's duplicate window (after a
lost acknowledgement, a relay restart, an expired lease) is stored once: the server answers
it with ``duplicate`` set, which is a delivery too.

The connection reconnects for ever once made (a broker restart is a pause, not an outage
of the relay), but the first connection is bounded: a relay started against a broker that
is down fails at start and says so, rather than waiting silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from rulekit.relay import message
from rulekit.relay.config import JetStreamTarget
from rulekit.relay.destinations import DELIVERED, DestinationError, Outcome
from rulekit.runtime.store import OutboxEffect

log = logging.getLogger("rulekit.relay")

#: Between two attempts to reach a server (at start, and while reconnecting).
RECONNECT_WAIT = timedelta(seconds=1)
#: The first line of a NATS header block, counted in a message's size.
_HEADER_LINE = b"NATS/1.0\r\n"


class JetStreamDestination:
    """A route's JetStream subject: ``subject`` with ``{name}`` replaced by the effect's name."""

    def __init__(self, name: str, target: JetStreamTarget) -> None:
        self.name = name
        self.target = target
        self._nc = Client()  # replaced by start(): a client that failed to connect is closed
        self._js: JetStreamContext | None = None
        #: the last connection error, for the message when connecting fails
        self._error: Exception | None = None

    @property
    def _timeout(self) -> float:
        return self.target.timeout.total_seconds()

    async def start(self) -> None:
        """Connect (giving up after twice the route's timeout), then check the stream."""
        self._nc = Client()
        self._error = None
        await self._connect()
        self._js = self._nc.jetstream(timeout=self._timeout)
        try:
            await self._check_stream(self._js)
        except BaseException:
            await self.close()
            raise

    async def _connect(self) -> None:
        servers = ", ".join(self.target.servers)
        bound = 2 * self._timeout
        try:
            # unlimited attempts: nats-py's own connect would retry for ever; the bound is ours
            await asyncio.wait_for(
                self._nc.connect(
                    list(self.target.servers),
                    name=f"rulekit-relay/{self.name}",
                    connect_timeout=max(1, round(self._timeout)),
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=int(RECONNECT_WAIT.total_seconds()),
                    drain_timeout=max(1, round(self._timeout)),
                    token=self.target.token,
                    user=self.target.user,
                    password=self.target.password,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                ),
                bound,
            )
        except (TimeoutError, OSError, nats.errors.Error) as e:
            await self._nc.close()
            cause = self._error or e
            why = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
            raise DestinationError(
                f"route `{self.name}`: cannot connect to NATS at {servers} "
                f"within {bound:g}s (last error: {why})"
            ) from None

    async def _check_stream(self, js: JetStreamContext) -> None:
        """The configured stream exists (or is created) and captures the subject; with no
        stream named, warn when none captures it yet (deliveries would be retried)."""
        wanted = wildcard(self.target.subject)
        stream = self.target.stream
        try:
            if stream is None:
                try:
                    await js.find_stream_name_by_subject(wanted)
                except nats.js.errors.NotFoundError:
                    log.warning(
                        "route %s: no JetStream stream captures %s yet: its deliveries will "
                        "be retried until one does",
                        self.name,
                        wanted,
                    )
                return
            try:
                info = await js.stream_info(stream)
            except nats.js.errors.NotFoundError:
                if not self.target.create:
                    raise DestinationError(
                        f"route `{self.name}`: JetStream stream {stream} does not exist "
                        "(create it, or set `create: true` on the route)"
                    ) from None
                await js.add_stream(
                    StreamConfig(
                        name=stream,
                        subjects=[wanted],
                        storage=StorageType.FILE,
                        duplicate_window=self.target.duplicate_window.total_seconds(),
                    )
                )
                log.info("route %s: created JetStream stream %s for %s", self.name, stream, wanted)
                return
        except nats.js.errors.ServiceUnavailableError:
            raise DestinationError(
                f"route `{self.name}`: JetStream is not enabled on the NATS server"
            ) from None
        except (TimeoutError, nats.errors.Error) as e:
            raise DestinationError(
                f"route `{self.name}`: cannot check JetStream stream {stream or wanted}: "
                f"{_describe(e)}"
            ) from None
        subjects = info.config.subjects or []
        if not any(covers(s, wanted) for s in subjects):
            raise DestinationError(
                f"route `{self.name}`: JetStream stream {stream} does not capture {wanted} "
                f"(its subjects: {', '.join(subjects) or 'none'})"
            )
        window = timedelta(seconds=info.config.duplicate_window or 0)
        if window < self.target.duplicate_window:
            log.warning(
                "route %s: stream %s keeps message ids for %s, less than the route's "
                "duplicate_window %s: an effect delivered again after that may be stored twice",
                self.name,
                stream,
                window,
                self.target.duplicate_window,
            )

    async def deliver(self, effect: OutboxEffect, body: bytes, attempt: int) -> Outcome:
        """Publish and wait for the stream's acknowledgement; anything short of one is a retry
        (the same ``Nats-Msg-Id`` next time keeps a message that did arrive from doubling)."""
        if self._js is None:
            raise RuntimeError("JetStreamDestination.deliver before start()")
        subject = self.target.subject.format(name=effect.name)
        headers = {**message.headers(effect, attempt), "Nats-Msg-Id": effect.key}
        size = len(body) + _headers_size(headers)
        if size > self._nc.max_payload:
            return Outcome.dead(
                f"the message is {size:,} bytes, more than the NATS server's "
                f"max_payload ({self._nc.max_payload:,})"
            )
        if not self._nc.is_connected:
            return Outcome.retry(f"NATS connection lost: {self._state()}")
        try:
            ack = await self._js.publish(subject, body, timeout=self._timeout, headers=headers)
        except nats.js.errors.NoStreamResponseError:
            return Outcome.retry(f"no stream captures subject {subject}")
        except nats.errors.TimeoutError:
            return Outcome.retry(f"JetStream did not acknowledge within {self._timeout:g}s")
        except (
            nats.errors.ConnectionClosedError,
            nats.errors.ConnectionReconnectingError,
            nats.errors.ConnectionDrainingError,
            nats.errors.OutboundBufferLimitError,
            nats.errors.StaleConnectionError,
        ) as e:
            return Outcome.retry(f"NATS connection lost: {_describe(e)}")
        except nats.js.errors.APIError as e:
            return Outcome.retry(f"JetStream refused the message: {_describe(e)}")
        except (nats.errors.Error, OSError) as e:
            return Outcome.retry(f"NATS error: {_describe(e)}")
        if ack.duplicate:
            log.debug(
                "route %s: %s was already in stream %s (seq %s)",
                self.name,
                effect.key,
                ack.stream,
                ack.seq,
            )
        return DELIVERED

    async def close(self) -> None:
        """Drain (acknowledgements on their way arrive), then close; bounded by the timeout."""
        if self._nc.is_closed:
            return
        # not connected, or slow to drain: closing below is all that is left to do
        with contextlib.suppress(TimeoutError, nats.errors.Error, OSError):
            await asyncio.wait_for(self._nc.drain(), self._timeout)
        if not self._nc.is_closed:
            await self._nc.close()

    def _state(self) -> str:
        if self._nc.is_closed:
            return "closed"
        last = f" (last error: {_describe(self._error)})" if self._error is not None else ""
        return f"reconnecting{last}"

    async def _on_error(self, e: Exception) -> None:
        # a refused login is the error to tell, not the reset connection that may follow it
        if not isinstance(self._error, nats.errors.AuthorizationError) or isinstance(
            e, nats.errors.AuthorizationError
        ):
            self._error = e
        if self._nc.is_connected and not isinstance(e, nats.errors.StaleConnectionError):
            log.warning("route %s: NATS error: %s", self.name, _describe(e))
        else:  # a lost connection, or one failed attempt of many: logged once, when lost
            log.debug("route %s: NATS connection: %s", self.name, _describe(e))

    async def _on_disconnected(self) -> None:
        if not self._nc.is_closed and self._js is not None:
            log.warning("route %s: NATS connection lost, reconnecting", self.name)

    async def _on_reconnected(self) -> None:
        self._error = None
        url = self._nc.connected_url
        log.warning("route %s: NATS reconnected to %s", self.name, url.netloc if url else "?")


def wildcard(subject: str) -> str:
    """The subject every effect's subject matches: each token holding ``{name}`` becomes
    ``*`` (a wildcard stands only for whole tokens)."""
    return ".".join("*" if "{name}" in t else t for t in subject.split("."))


def covers(pattern: str, subject: str) -> bool:
    """Whether every subject ``subject`` matches (it may hold wildcards) matches ``pattern``
    too, by NATS rules: ``*`` is one token, ``>`` (last) one or more."""
    want = subject.split(".")
    have = pattern.split(".")
    for i, token in enumerate(have):
        if token == ">":
            return len(want) > i
        if i >= len(want) or want[i] == ">" or (token != "*" and token != want[i]):
            return False
    return len(want) == len(have)


def _headers_size(headers: dict[str, str]) -> int:
    """The bytes a header block takes in a message (NATS counts them in max_payload)."""
    lines = sum(len(k.encode()) + len(v.encode()) + 4 for k, v in headers.items())
    return len(_HEADER_LINE) + lines + 2


def _describe(e: BaseException) -> str:
    return str(e).strip() or type(e).__name__
