"""Where the relay sends an effect: the interface each destination implements.

A destination turns one delivery into an :class:`Outcome` and never raises for a failed
delivery: whatever may succeed later (a timeout, a refused connection, a 5xx, a broker
that is down) is ``retry``; only a permanent refusal is ``dead``. The relay decides what
the outcome does to the outbox (acknowledge, back off, dead-letter).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Protocol

from rulekit.core.errors import RuleError
from rulekit.runtime.store import OutboxEffect

#: An error text kept with an effect is cut to this many characters.
MAX_ERROR = 500


class DestinationError(RuleError):
    """A destination cannot start (its broker refuses the configuration, say): the relay
    does not start either, and says why."""


@dataclass(frozen=True)
class Outcome:
    """What one delivery came to."""

    status: Literal["delivered", "retry", "dead"]
    #: what went wrong, short, never a secret
    error: str | None = None
    #: the receiver asked to wait this long before the next delivery (Retry-After)
    retry_after: timedelta | None = None

    @classmethod
    def retry(cls, error: str, retry_after: timedelta | None = None) -> Outcome:
        return cls("retry", error[:MAX_ERROR], retry_after)

    @classmethod
    def dead(cls, error: str) -> Outcome:
        return cls("dead", error[:MAX_ERROR])


DELIVERED = Outcome("delivered")


class Destination(Protocol):
    """A webhook or a broker subject: one per route."""

    #: the route's name, for metrics and logs
    name: str

    async def start(self) -> None:
        """Connect, and check the destination is usable (raises :class:`DestinationError`)."""
        ...

    async def deliver(self, effect: OutboxEffect, body: bytes, attempt: int) -> Outcome:
        """Deliver one effect (``body`` from :func:`rulekit.relay.message.body`)."""
        ...

    async def close(self) -> None:
        """Let go of connections (deliveries in flight have finished)."""
        ...
