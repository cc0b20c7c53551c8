"""The relay: claims effects from the outbox, delivers each to its route, settles it.

Delivery is at least once, with the effect's stable key on every delivery:

- an effect is claimed for the configured lease, and only as many are claimed as there
  are free delivery slots, so none waits in this process while its lease runs out;
- it is acknowledged in the outbox only after its destination confirmed it (a 2xx from a
  webhook, a PubAck from JetStream); a relay killed between the two leaves the effect to
  be claimed again when its lease has run out, and delivered again with the same key;
- a failed delivery is tried again after a backoff (exponential, with jitter, at least
  what the receiver asked for with ``Retry-After``), and moves to the dead letters after
  ``max_attempts`` deliveries or when the receiver refuses it for good.

Any number of relays may run on one store: a claim takes each effect for one of them
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL). The store is synchronous; its calls run in
worker threads, so deliveries (asyncio) go on while a claim or an acknowledgement waits.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rulekit.relay import message
from rulekit.relay.config import RelayConfig, Route, WebhookTarget
from rulekit.relay.destinations import Destination, Outcome
from rulekit.runtime.store import OutboxEffect, Store

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger("rulekit.relay")

#: How often the lag and the outbox's counts are read while the relay runs (seconds).
GAUGE_INTERVAL = 5.0


@dataclass
class RelayStats:
    """What a run delivered, put back for later, and dead-lettered; and the lag after it."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0
    #: the age of the oldest pending effect when the run ended (0: none pending)
    lag_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "retried": self.retried,
            "dead": self.dead,
            "lag_seconds": round(self.lag_seconds, 3),
        }


class _Metrics:
    """The relay's Prometheus metrics (docs/effects.md, "Operating the relay")."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.effects = Counter(
            "rulekit_relay_effects",
            "Effects settled by the relay, by route and outcome (delivered, retried, dead).",
            ["route", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "rulekit_relay_delivery_seconds",
            "Time of one delivery attempt, by route.",
            ["route"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.lag = Gauge(
            "rulekit_relay_lag_seconds",
            "Age of the oldest pending effect in the outbox (0 when none is pending).",
            registry=registry,
        )
        self.pending = Gauge(
            "rulekit_relay_pending_effects", "Effects pending in the outbox.", registry=registry
        )
        self.dead = Gauge(
            "rulekit_relay_dead_effects", "Effects in the dead letters.", registry=registry
        )


def destination(route: Route, *, connections: int = 100) -> Destination:
    """The destination a route names (the webhook or broker client is imported here, so a
    relay with webhooks only never imports nats)."""
    if isinstance(route.target, WebhookTarget):
        from rulekit.relay.webhook import WebhookDestination

        return WebhookDestination(route.name, route.target, connections=connections)
    from rulekit.relay.jetstream import JetStreamDestination

    return JetStreamDestination(route.name, route.target)


async def reachable(config: RelayConfig) -> None:
    """Start and close each route's destination once: raises :class:`DestinationError` for
    the first that cannot start (a broker down, a stream missing), so a process that runs
    the relay among other things can refuse to start and say why."""
    for route in config.routes:
        d = destination(route)
        await d.start()
        await d.close()


class _Acks:
    """Acknowledgements, written together: while one write is under way, the deliveries
    confirmed meanwhile gather, and the next write commits them all in one transaction
    (group commit). A busy relay writes a transaction per batch, not per effect."""

    #: keys acknowledged in one transaction at most
    LIMIT = 500

    def __init__(self, store: Store) -> None:
        self.store = store
        self.waiting: list[tuple[str, asyncio.Future[None]]] = []
        self.writer: asyncio.Task[None] | None = None

    async def ack(self, key: str) -> None:
        """Returns once ``key`` is acknowledged in the store (raises what the store raised)."""
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((key, done))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write())
        await done

    async def _write(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[: self.LIMIT], self.waiting[self.LIMIT :]
            try:
                await asyncio.to_thread(self.store.ack_many, [key for key, _ in batch])
            except Exception as e:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(e)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)


class Relay:
    """Delivers a store's outbox as ``config`` routes it.

    ``registry``: where the metrics go (None: no metrics; ``rulekit relay`` and ``rulekit
    serve`` pass theirs). ``destinations``: by route name, instead of those the routes
    name (tests). Use it as an async context manager, which starts and closes the
    destinations, then :meth:`run_once` or :meth:`run`.
    """

    def __init__(
        self,
        store: Store,
        config: RelayConfig,
        *,
        registry: CollectorRegistry | None = None,
        destinations: Mapping[str, Destination] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.config = config
        if config.max_attempts is not None:
            store.max_attempts = config.max_attempts
        self.destinations: dict[str, Destination] = dict(destinations or {}) or {
            r.name: destination(r, connections=config.concurrency) for r in config.routes
        }
        self.metrics = _Metrics(registry) if registry is not None else None
        self.stats = RelayStats()
        self._rng = rng or random.Random()
        self._names = sorted(config.names) if config.names is not None else None
        self._gauges_at = 0.0
        self._acks = _Acks(store)

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect every destination (a broker that refuses the configuration stops it here)."""
        started: list[Destination] = []
        try:
            for d in self.destinations.values():
                await d.start()
                started.append(d)
        except BaseException:
            for d in started:
                await d.close()
            raise

    async def close(self) -> None:
        for d in self.destinations.values():
            await d.close()

    # -- running -------------------------------------------------------------------------
    async def run_once(self) -> RelayStats:
        """Deliver what is claimable now and return what came of it (effects put back for
        later are not waited for: the next run takes them)."""
        before = RelayStats(**vars(self.stats))
        await self._pump(None)
        await self._gauges(force=True)
        return RelayStats(
            self.stats.delivered - before.delivered,
            self.stats.retried - before.retried,
            self.stats.dead - before.dead,
            self.stats.lag_seconds,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then let the deliveries in flight finish (for at
        most a lease: an effect still unsettled then is delivered again later)."""
        await self._pump(stop)

    async def _pump(self, stop: asyncio.Event | None) -> None:
        """Keep the delivery slots busy: claim as many effects as there are free slots (in
        chunks of at least a quarter of them, so a busy relay does not claim one effect per
        transaction), deliver each in a task, and settle it when it ends. ``stop`` None:
        until nothing is claimable and nothing is in flight (:meth:`run_once`)."""
        concurrency, batch = self.config.concurrency, self.config.batch
        low = max(1, min(batch, concurrency) // 4)
        poll = self.config.poll.total_seconds()
        inflight: set[asyncio.Task[None]] = set()
        try:
            while stop is None or not stop.is_set():
                free = concurrency - len(inflight)
                room = free >= low or not inflight
                claimed = await self._claim(min(batch, free), raising=stop is None) if room else []
                for effect in claimed:
                    task = asyncio.create_task(self._handle(effect))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                await self._gauges()
                if claimed and len(inflight) + low <= concurrency:
                    continue  # room for more at once
                if claimed or not room:
                    await _one_ends(inflight)
                elif stop is not None:
                    await _wait(stop, poll, inflight)
                elif inflight:
                    await _one_ends(inflight)
                else:
                    break  # once: nothing claimable, nothing in flight
        finally:
            if inflight:
                log.info("relay: stopping after %d deliveries in flight", len(inflight))
                await asyncio.wait(inflight, timeout=self.config.lease.total_seconds())

    # -- one effect ----------------------------------------------------------------------
    async def _claim(self, limit: int, *, raising: bool) -> list[OutboxEffect]:
        """Claim up to ``limit`` effects; if the store fails, raise or (a relay that runs on)
        say so and claim nothing this time."""
        try:
            return await asyncio.to_thread(
                self.store.claim, limit=limit, lease=self.config.lease, names=self._names
            )
        except Exception as e:
            if raising:
                raise
            log.error("relay: claiming effects failed: %s", _short(e))
            return []

    async def _handle(self, effect: OutboxEffect) -> None:
        route = self.config.route(effect.name)
        if route is None:  # claimed by name, so only by a relay given other routes
            outcome = Outcome.retry(f"no route for effect {effect.name!r}")
            name = "-"
        else:
            name = route.name
            started = time.perf_counter()
            outcome = await self._deliver(self.destinations[name], effect)
            if self.metrics is not None:
                self.metrics.seconds.labels(name).observe(time.perf_counter() - started)
        try:
            if outcome.status == "delivered":
                await self._acks.ack(effect.key)
                settled = "delivered"
            else:
                settled = await asyncio.to_thread(self._settle, effect, outcome)
        except Exception as e:  # the store is down: the lease runs out, it is claimed again
            log.error(
                "relay: settling %s failed (it will be delivered again): %s", effect.key, _short(e)
            )
            return
        if settled == "stale":
            log.info(
                "relay: %s failed (delivery %d) after its lease ran out and another delivery "
                "began: %s",
                effect.key,
                effect.attempts,
                outcome.error,
            )
            return
        if settled == "delivered":
            self.stats.delivered += 1
        elif settled == "dead":
            self.stats.dead += 1
            log.warning(
                "relay: %s dead-lettered after %d deliveries: %s",
                effect.key,
                effect.attempts,
                outcome.error,
            )
        else:
            self.stats.retried += 1
            log.info(
                "relay: %s failed (delivery %d), tried again later: %s",
                effect.key,
                effect.attempts,
                outcome.error,
            )
        if self.metrics is not None:
            self.metrics.effects.labels(name, settled).inc()

    async def _deliver(self, destination: Destination, effect: OutboxEffect) -> Outcome:
        try:
            return await destination.deliver(effect, message.body(effect), effect.attempts)
        except Exception as e:  # a destination's bug must not stop the relay
            log.exception("relay: delivering %s to %s failed", effect.key, destination.name)
            return Outcome.retry(f"delivery failed: {_short(e)}")

    def _settle(self, effect: OutboxEffect, outcome: Outcome) -> str:
        """Record a failed delivery in the outbox (in a worker thread); returns what it came
        to: retried, dead (a retry after the last allowed delivery is dead), or stale (a
        failure reported after the effect was claimed again, which changes nothing)."""
        error = outcome.error or "delivery failed"
        if outcome.status == "dead":
            after = self.store.fail(effect.key, error, dead=True, attempt=effect.attempts)
        else:
            wait = self.backoff(effect.attempts, outcome.retry_after)
            after = self.store.fail(effect.key, error, retry_in=wait, attempt=effect.attempts)
        if after.attempts != effect.attempts:
            return "stale"  # claimed again since: the report changed nothing
        return "dead" if after.status == "dead" else "retried"

    def backoff(self, attempt: int, asked: timedelta | None = None) -> timedelta:
        """The wait before the delivery after ``attempt``: exponential, capped, with equal
        jitter (between half and all of it: relays that failed together do not retry
        together), and at least what the receiver asked for, within the cap."""
        retry = self.config.retry
        cap = retry.maximum.total_seconds()
        full = min(cap, retry.initial.total_seconds() * retry.multiplier ** max(attempt - 1, 0))
        wait = self._rng.uniform(full / 2, full)
        if asked is not None:
            wait = max(wait, min(asked.total_seconds(), cap))
        return timedelta(seconds=wait)

    # -- gauges --------------------------------------------------------------------------
    async def lag(self) -> float:
        """The age of the oldest pending effect in seconds (0 when none is pending)."""
        oldest = await asyncio.to_thread(self.store.effects, status="pending", limit=1)
        if not oldest:
            return 0.0
        return max((datetime.now(UTC) - oldest[0].at).total_seconds(), 0.0)

    async def _gauges(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._gauges_at < GAUGE_INTERVAL:
            return
        self._gauges_at = now
        try:
            self.stats.lag_seconds = await self.lag()
            if self.metrics is not None:
                counts = await asyncio.to_thread(self.store.pending)
                self.metrics.lag.set(self.stats.lag_seconds)
                self.metrics.pending.set(counts.get("effects_pending", 0))
                self.metrics.dead.set(counts.get("effects_dead", 0))
        except Exception as e:
            log.error("relay: reading the outbox's lag failed: %s", _short(e))


async def _one_ends(inflight: set[asyncio.Task[None]]) -> None:
    """Until one of the deliveries in flight ends; at once when none is left (they may all
    have ended while the loop read the gauges: asyncio.wait refuses an empty set)."""
    if inflight:
        await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)


async def _wait(stop: asyncio.Event, seconds: float, inflight: set[asyncio.Task[None]]) -> None:
    """Up to ``seconds``, or until ``stop``, or until a delivery in flight ends."""
    waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(stop.wait()), *inflight}
    await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for w in waiters:
        if w not in inflight and not w.done():
            w.cancel()


def _short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 300 else text[:300] + "..."
