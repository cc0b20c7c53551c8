"""Helpers for the service tests: the shipped policy, real tokens, clients and cases.

(A module of its own, as tests/support.py is for the whole suite: conftest.py files are
not imported from.)
"""

from __future__ import annotations

import os
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rulekit.policy import Policy
from rulekit.service.app import Service, create_app
from rulekit.service.auth import Tokens
from rulekit.stores import SqlStore

ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = ROOT / "rules" / "kuaishou_after_sales.rk"

#: role -> bearer token (each at least 16 characters, as the tokens file requires)
TOKENS = {
    "admin": "admin-token-0123456789",
    "merchant": "merchant-shop-1-token",
    "other_merchant": "merchant-shop-2-token",
    "consumer": "consumer-user-1-token",
    "other_consumer": "consumer-user-2-token",
    "platform": "platform-token-0123456",
}
TOKENS_FILE: dict[str, Any] = {
    "tokens": [
        {"token": TOKENS["admin"], "admin": True},
        {"token": TOKENS["merchant"], "actor": "merchant", "principal": "shop-1"},
        {"token": TOKENS["other_merchant"], "actor": "merchant", "principal": "shop-2"},
        {"token": TOKENS["consumer"], "actor": "consumer", "principal": "user-1"},
        {"token": TOKENS["other_consumer"], "actor": "consumer", "principal": "user-2"},
        {"token": TOKENS["platform"], "actor": "platform"},
    ]
}
#: the parties of case A (the merchant's and the consumer's) and of case B (the others')
PARTIES_A = {"merchant": "shop-1", "consumer": "user-1"}
PARTIES_B = {"merchant": "shop-2", "consumer": "user-2"}

POSTGRES_ENV = "RULEKIT_TEST_POSTGRES_DSN"
POSTGRES_HINT = (
    f"set {POSTGRES_ENV} to run the PostgreSQL tests, e.g. "
    f"{POSTGRES_ENV}=postgresql://postgres@127.0.0.1:5432/test ./dev test"
)
#: the metrics docs/service.md and the service's registry name (without the _total suffix)
METRICS = {
    "rulekit_http_requests": "counter",
    "rulekit_steps": "counter",
    "rulekit_step_seconds": "histogram",
    "rulekit_deadlines_fired": "counter",
    "rulekit_cases": "gauge",
    "rulekit_deadlines_pending": "gauge",
    "rulekit_effects": "gauge",
}


def auth(role: str) -> dict[str, str]:
    """The Authorization header of a role in :data:`TOKENS`."""
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def refund_facts(**order: Any) -> dict[str, Any]:
    """Facts of a refund_only request that waits for the merchant (no fast refund)."""
    paid = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    return {
        "order": {"amount": 500, "paid_at": paid, "shipped": True, **order},
        "shop.fast_refund_enabled": True,
    }


def error_of(response: Any) -> tuple[int, str]:
    """(status, error code) of an error response, checking that it is an RFC 9457 problem
    document: its media type, its members, and the deprecated ``error`` member beside them."""
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "code", "error"}, body
    code = body["code"]
    assert body["type"] == f"https://rulekit.dev/problems/{code}", body
    assert body["status"] == response.status_code, body
    assert isinstance(body["title"], str) and body["title"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert body["error"] == {"code": code, "message": body["detail"]}, body
    return response.status_code, code


def postgres_base_dsn() -> str:
    """The DSN from the environment, or a skip (a failure in CI) that says how to set it."""
    dsn = os.environ.get(POSTGRES_ENV)
    if not dsn:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {POSTGRES_ENV} is not set: {POSTGRES_HINT}")
        pytest.skip(POSTGRES_HINT)
    return dsn


def make_client(store: SqlStore, kuaishou: Policy, tokens: Tokens) -> TestClient:
    return TestClient(create_app(Service(store, [kuaishou], tokens, worker_interval=None)))


def open_case(
    client: TestClient,
    parties: dict[str, str] | None = None,
    *,
    role: str = "admin",
    workflow: str = "refund_only",
    facts: dict[str, Any] | None = None,
    **body: Any,
) -> dict[str, Any]:
    """Open a case through the API (as ``role``), returning the case view."""
    r = client.post(
        "/cases",
        json={
            "workflow": workflow,
            "facts": facts if facts is not None else refund_facts(),
            "parties": parties if parties is not None else PARTIES_A,
            **body,
        },
        headers=auth(role),
    )
    assert r.status_code == 201, r.text
    case: dict[str, Any] = r.json()["case"]
    return case


def free_port() -> int:
    """A loopback port free now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def lax_kuaishou_text() -> str:
    """The shipped policy, except that its parties may supply the order's and the shop's
    facts: for tests of keys, ids and parties that open cases as a consumer or a merchant
    (the shipped policy leaves those facts to the integration: fact_not_allowed)."""
    text = POLICY_FILE.read_text(encoding="utf-8")
    lax = re.sub(
        r"^(  (?:order|shop)\.\w+: [\w?()]+)", r"\1 by consumer, merchant", text, flags=re.M
    )
    assert lax.count(" by consumer, merchant") - text.count(" by consumer, merchant") == 5, (
        "the shipped policy's facts moved"
    )
    return lax
