"""Reliability test 7: PostgreSQL goes away under load; the store recovers and loses nothing.

What a server restart looks like to a client is every connection dropping at
once (and, for a moment, new ones refused). The test drops them for real
(``pg_terminate_backend`` on every connection of this store, by its
application name) several times while a client opens cases and sends events,
each with an idempotency key, retrying a call until it is acknowledged, as a
service's caller would. Afterwards every acknowledged step is in the history
once, no step was applied twice, and each refund is in the outbox once.
"""

from __future__ import annotations

import secrets
import threading
import time

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from rulekit.policy import Policy
from rulekit.stores import open_store

from .helpers import slow_refund

pytestmark = pytest.mark.postgresql


def test_the_store_recovers_when_every_connection_drops_under_load(
    postgres_url: str, kuaishou: Policy
) -> None:
    app = f"rk_recovery_{secrets.token_hex(4)}"
    store = open_store(make_conninfo(postgres_url, application_name=app))
    store.register(kuaishou)
    acknowledged: list[str] = []
    errors: list[str] = []
    stop = threading.Event()
    run = secrets.token_hex(3)

    def client() -> None:
        i = 0
        while not stop.is_set():
            case_id = f"r{run}-{i}"
            for _ in range(50):  # a caller retries until it gets an answer
                try:
                    store.open("refund_only", slow_refund(), id=case_id, key=f"open-{case_id}")
                    store.send(case_id, "approve", "merchant", key=f"approve-{case_id}")
                    acknowledged.append(case_id)
                    break
                except Exception as e:  # what the caller would see: counted, then retried
                    errors.append(f"{type(e).__name__}: {e}")
                    time.sleep(0.05)
            i += 1

    worker = threading.Thread(target=client)
    worker.start()
    dropped = 0
    try:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            for _ in range(4):
                time.sleep(0.4)
                dropped += admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (app,),
                ).fetchone()[0]
            time.sleep(0.4)
    finally:
        stop.set()
        worker.join(60)
    try:
        assert dropped >= 1, "the test dropped no connection: it proved nothing"
        assert len(acknowledged) >= 5, errors[-3:]
        for case_id in acknowledged:
            kinds = [r.kind for r in store.history(case_id)]
            assert kinds == ["open", "event"], (case_id, kinds)
            assert [e.name for e in store.effects(case_id=case_id)] == ["refund"]
            # the call repeated with its key is answered from the first result
            _, again = store.send(case_id, "approve", "merchant", key=f"approve-{case_id}")
            assert again.repeated and again.state == "refunded"
    finally:
        store.close()
