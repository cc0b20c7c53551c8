"""Webhook signatures: HMAC-SHA256 over a timestamp and the body, as Stripe signs its events.

The relay sends ``Rulekit-Signature: t=<unix seconds>,v1=<hex>``, where
``v1 = HMAC-SHA256(secret, "<t>." + body)`` in lowercase hex; one ``v1`` per secret while a
secret is being rotated (newest first). A receiver recomputes the HMAC over the raw body it
read (before parsing it), compares in constant time, and refuses a timestamp older than its
tolerance, which stops a captured request from being replayed later. docs/effects.md shows
the check in Python (:func:`verify_signature`) and in JavaScript.

Only the standard library: a receiver installs rulekit (or copies this function) to verify.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from rulekit.core.errors import RuleError

#: The HTTP header that carries the signature.
SIGNATURE_HEADER = "Rulekit-Signature"
#: How old a signed timestamp may be by default (and how far in the future: clock skew).
DEFAULT_TOLERANCE = timedelta(minutes=5)
#: A header longer than this is refused unread (a hostile sender cannot make us parse MBs).
_MAX_HEADER = 4096


class SignatureError(RuleError):
    """A webhook's signature does not verify; the message says why."""


def signature(body: bytes, secret: bytes, timestamp: int) -> str:
    """The ``v1`` value: hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    return hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: Sequence[str | bytes], timestamp: int) -> str:
    """The ``Rulekit-Signature`` header's value for ``body`` sent at ``timestamp``."""
    if not secrets:
        raise ValueError("signing needs at least one secret")
    parts = [f"t={timestamp}"]
    parts += [f"v1={signature(body, _bytes(s), timestamp)}" for s in secrets]
    return ",".join(parts)


def verify_signature(
    body: bytes,
    header: str | None,
    secret: str | bytes | Sequence[str | bytes],
    *,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    now: datetime | None = None,
) -> int:
    """Check a delivery's ``Rulekit-Signature`` header against the raw ``body``; returns the
    signed timestamp (Unix seconds).

    ``secret``: the shared secret, or several (a receiver rotating its secret accepts the old
    and the new one for a while). Raises :class:`SignatureError` when the header is missing
    or malformed, the timestamp is outside ``tolerance`` of ``now`` (default: the wall
    clock), or no signature matches.
    """
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    if len(header) > _MAX_HEADER:
        raise SignatureError(f"the {SIGNATURE_HEADER} header is longer than {_MAX_HEADER} bytes")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed {SIGNATURE_HEADER} header: {part.strip()!r}")
        if key == "t":
            if not value.isascii() or not value.isdigit() or timestamp is not None:
                raise SignatureError(f"malformed timestamp in the {SIGNATURE_HEADER} header")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
        # other schemes (a future v2) are skipped, so a sender can add one before receivers
    if timestamp is None:
        raise SignatureError(f"no timestamp (t=) in the {SIGNATURE_HEADER} header")
    if not signatures:
        raise SignatureError(f"no v1 signature in the {SIGNATURE_HEADER} header")
    at = now if now is not None else datetime.now(UTC)
    age = at.timestamp() - timestamp
    if abs(age) > tolerance.total_seconds():
        when = "old" if age > 0 else "in the future"
        raise SignatureError(
            f"the signed timestamp is {abs(int(age))}s {when}, outside the tolerance "
            f"of {int(tolerance.total_seconds())}s (a replayed or delayed delivery?)"
        )
    secrets = [secret] if isinstance(secret, (str, bytes)) else list(secret)
    for s in secrets:
        expected = signature(body, _bytes(s), timestamp)
        if any(hmac.compare_digest(expected, given) for given in signatures):
            return timestamp
    raise SignatureError("no signature matches: a wrong secret, or the body was changed")


def _bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret
