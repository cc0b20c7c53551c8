"""NATS JetStream (being written on the ``jetstream`` branch, which replaces this file)."""

from __future__ import annotations

from rulekit.relay.config import JetStreamTarget
from rulekit.relay.destinations import DestinationError, Outcome
from rulekit.runtime.store import OutboxEffect


class JetStreamDestination:
    def __init__(self, name: str, target: JetStreamTarget) -> None:
        self.name = name
        self.target = target

    async def start(self) -> None:
        raise DestinationError("JetStream routes are not available yet")

    async def deliver(self, effect: OutboxEffect, body: bytes, attempt: int) -> Outcome:
        raise DestinationError("JetStream routes are not available yet")

    async def close(self) -> None:
        return None
