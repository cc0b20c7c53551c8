"""``rulekit serve --relay``: the relay runs in the service's process, its metrics beside the
service's, and a refund a case emits reaches a real webhook receiver, signed."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import rulekit
from rulekit.policy import Policy
from rulekit.relay.config import loads_config
from rulekit.service.app import Service, create_app
from rulekit.service.auth import Tokens
from rulekit.stores import SqlStore

from .service_support import TestClient, auth, open_case, refund_facts

SECRET = "whsec-test"


class _Receiver(http.server.ThreadingHTTPServer):
    """Records each verified delivery: (effect key, its parsed body)."""

    got: list[tuple[str, bytes]]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            rulekit.verify_signature(body, self.headers.get("Rulekit-Signature"), SECRET)
        except rulekit.SignatureError:
            self.send_response(401)
        else:
            self.server.got.append((self.headers["Rulekit-Effect-Key"], body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver(("127.0.0.1", 0), _Handler)
    server.got = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_refund_reaches_the_webhook_while_the_service_runs(
    sqlite_store: SqlStore, kuaishou: Policy, tokens: Tokens, receiver: _Receiver, tmp_path: Path
) -> None:
    port = receiver.server_address[1]
    config = loads_config(
        f"poll: 50ms\nroutes:\n  - name: payments\n    effects: [refund]\n    webhook:\n"
        f"      url: http://127.0.0.1:{port}/hooks\n      secret_env: PAY_SECRET\n",
        "relay.yaml",
        {"PAY_SECRET": SECRET},
    )
    service = Service(sqlite_store, [kuaishou], tokens, worker_interval=None, relay=config)
    with TestClient(create_app(service)) as client:
        case = open_case(client, facts=refund_facts(shipped=False, amount=128))
        assert case["state"] == "refunded"  # a fast refund: the effect is in the outbox
        deadline = time.monotonic() + 30
        while not receiver.got and time.monotonic() < deadline:
            time.sleep(0.05)
        metrics = client.get("/metrics", headers=auth("admin")).text
    [(key, body)] = receiver.got
    assert key == f"{case['id']}/1/0"
    assert b'"name":"refund"' in body and b'"amount":"128"' in body
    [effect] = sqlite_store.effects(case_id=case["id"])
    assert effect.status == "done"
    assert 'rulekit_relay_effects_total{outcome="delivered",route="payments"} 1.0' in metrics
