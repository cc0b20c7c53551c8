"""Webhooks: an HTTP POST per effect, signed, as Stripe and GitHub send theirs.

2xx is delivered. What may succeed later is retried: no answer within the timeout, a
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
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

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
        self._client: httpx.AsyncClient | None = None
        split = urlsplit(target.url)
        #: the receiver as messages name it (never the path's query: it may hold a token)
        self.where = f"{split.scheme}://{split.netloc}{split.path}"

    async def start(self) -> None:
        seconds = self.target.timeout.total_seconds()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(seconds),
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=self._connections, max_keepalive_connections=self._connections
            ),
            headers={"User-Agent": message.USER_AGENT, **self.target.headers},
            trust_env=False,  # the configuration names the receiver; no proxy from the environment
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver(self, effect: OutboxEffect, body: bytes, attempt: int) -> Outcome:
        assert self._client is not None, "start() the destination first"
        headers = message.headers(effect, attempt)
        headers[SIGNATURE_HEADER] = sign(body, self.target.secrets, int(time.time()))
        seconds = self.target.timeout.total_seconds()
        try:
            async with asyncio.timeout(seconds):
                async with self._client.stream(
                    "POST", self.target.url, content=body, headers=headers
                ) as answer:
                    head = await _read_some(answer)
        except TimeoutError:
            return Outcome.retry(f"{self.where} did not answer within {seconds:g}s")
        except httpx.TimeoutException:
            return Outcome.retry(f"{self.where} did not answer within {seconds:g}s")
        except httpx.HTTPError as e:
            return Outcome.retry(f"cannot reach {self.where}: {_reason(e)}")
        return self._judge(answer, head, attempt)

    def _judge(self, answer: httpx.Response, head: bytes, attempt: int) -> Outcome:
        code = answer.status_code
        if 200 <= code < 300:
            return DELIVERED
        said = f"{self.where} answered {code} {answer.reason_phrase}".rstrip()
        text = _printable(head)
        error = f"{said}: {text}" if text else said
        if code >= 500 or code in _RETRIABLE_4XX:
            return Outcome.retry(error, _retry_after(answer.headers.get("Retry-After")))
        if 300 <= code < 400:
            error += " (redirects are not followed: configure the final URL)"
        if attempt >= self.target.dead_after_4xx:
            return Outcome.dead(error)
        return Outcome.retry(error)


async def _read_some(answer: httpx.Response) -> bytes:
    """The first :data:`MAX_ANSWER` bytes of the answer; the rest is not read."""
    got = bytearray()
    async for chunk in answer.aiter_raw():
        got += chunk
        if len(got) >= MAX_ANSWER:
            break
    return bytes(got[:MAX_ANSWER])


def _printable(raw: bytes, limit: int = 200) -> str:
    """The start of an answer's body as one line of text (a hostile receiver's control
    characters never reach a log or a terminal)."""
    text = raw.decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _reason(e: httpx.HTTPError) -> str:
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
