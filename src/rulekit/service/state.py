"""What every route shares: the :class:`Service` (store, tokens, metrics, worker).

One :class:`Service` per application; routes reach it through the dependency
:func:`rulekit.service.dependencies.service`, never through a closure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from rulekit.core.errors import StepRefused
from rulekit.policy import Policy
from rulekit.relay.config import RelayConfig
from rulekit.relay.core import Relay
from rulekit.runtime.model import StepResult
from rulekit.service.auth import Tokens
from rulekit.service.models import LIMITS
from rulekit.stores import SqlStore, StoredCase
from rulekit.stores.worker import Worker


class Service:
    """The store, the policies served, who may call, the metrics and the in-process worker."""

    def __init__(
        self,
        store: SqlStore,
        policies: list[Policy],
        tokens: Tokens,
        *,
        worker_interval: float | None = 1.0,
        max_body: int = LIMITS["max_body"],
        relay: RelayConfig | None = None,
    ) -> None:
        self.store = store
        self.tokens = tokens
        #: bytes of a request body at most (413 payload_too_large beyond)
        self.max_body = max_body
        for policy in policies:
            store.register(policy)  # new cases pin to these versions
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rulekit_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.steps = Counter(
            "rulekit_steps",
            "Steps applied by kind and outcome (applied, repeated, or the refusal code)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rulekit_step_seconds",
            "Time to apply and commit a step",
            ["kind"],
            registry=self.registry,
        )
        self.fired = Counter(
            "rulekit_deadlines_fired",
            "Deadlines fired by the in-process worker",
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(store))
        self.worker = (
            Worker(store, interval=worker_interval, on_fired=self.fired.inc)
            if worker_interval
            else None
        )
        #: the effect relay, run by the app's lifespan (its metrics beside the service's)
        self.relay = Relay(store, relay, registry=self.registry) if relay is not None else None

    def step(
        self, kind: str, run: Callable[[], tuple[StoredCase, StepResult]]
    ) -> tuple[StoredCase, StepResult]:
        """Run one step of ``kind`` (open, event, update), counted and timed in the metrics:
        the case as it left it, and its result."""
        start = time.perf_counter()
        try:
            case, result = run()
        except StepRefused as e:
            self.steps.labels(kind, e.code).inc()
            raise
        self.latency.labels(kind).observe(time.perf_counter() - start)
        self.steps.labels(kind, "repeated" if result.repeated else "applied").inc()
        return case, result


class _StoreCollector:
    """Case counts by state, pending deadlines and the outbox, read from the store at scrape time."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        cases = GaugeMetricFamily(
            "rulekit_cases", "Cases by workflow and state", labels=["workflow", "state"]
        )
        for (workflow, state), n in sorted(self.store.count().items()):
            cases.add_metric([workflow, state], n)
        yield cases
        pending = self.store.pending()
        yield GaugeMetricFamily(
            "rulekit_deadlines_pending",
            "Deadlines not yet fired",
            value=pending.get("deadlines", 0),
        )
        effects = GaugeMetricFamily(
            "rulekit_effects", "Outbox effects by status", labels=["status"]
        )
        for status in ("pending", "done", "dead"):
            effects.add_metric([status], pending.get(f"effects_{status}", 0))
        yield effects
