"""What a delivery carries: the effect as JSON, and the headers that name it.

The body is the same bytes on every delivery of an effect (the attempt number is a header,
not part of it), so a consumer may compare or hash it, and a signature covers exactly
what the consumer stores. Values are rendered as the HTTP API renders them: money as a
decimal string, times in RFC 3339, durations as CEL duration text.
"""

from __future__ import annotations

import orjson

from rulekit.core import __version__
from rulekit.expr.convert import to_data
from rulekit.runtime.store import OutboxEffect

#: The ``type`` every body carries, so a receiver shared with other senders can tell.
MESSAGE_TYPE = "rulekit.effect"
USER_AGENT = f"rulekit-relay/{__version__}"


def body(effect: OutboxEffect) -> bytes:
    """The effect as compact JSON with sorted keys: ``key`` (deduplicate on it), ``case_id``,
    ``policy`` (the version that emitted it), ``seq`` (its record in the case's history),
    ``name``, ``args``, ``emitted_at`` and ``type``."""
    return orjson.dumps(
        {
            "args": to_data(dict(effect.args)),
            "case_id": effect.case_id,
            "emitted_at": effect.at.isoformat(),
            "key": effect.key,
            "name": effect.name,
            "policy": effect.policy,
            "seq": effect.seq,
            "type": MESSAGE_TYPE,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def headers(effect: OutboxEffect, attempt: int) -> dict[str, str]:
    """The headers of every delivery, to a webhook or a broker alike."""
    return {
        "Content-Type": "application/json",
        "Idempotency-Key": effect.key,
        "Rulekit-Effect-Key": effect.key,
        "Rulekit-Delivery-Attempt": str(attempt),
    }
