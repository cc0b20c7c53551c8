"""Helpers for the studio's tests: the shipped policy as the editor sends it, cases to open.
(Imported as ``from .studio_support import ...``: a conftest is not a module to import from.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from rulekit.studio.app import create_app
from support import ROOT

POLICY = ROOT / "rules" / "kuaishou_after_sales.rk"
TOKEN = "test-token"
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"


def make_client(root: Path, **headers: str) -> TestClient:
    """A client of the studio serving ``root``, sending the token (unless ``headers``
    replace it)."""
    return TestClient(
        create_app([str(root)], "127.0.0.1", PORT, TOKEN),
        base_url=BASE,
        headers={"X-Rulekit-Studio-Token": TOKEN, **headers},
    )


def source(**more: Any) -> dict[str, Any]:
    """The shipped policy as the editor sends it, plus ``more``."""
    return {
        "text": POLICY.read_text(encoding="utf-8"),
        "format": "rk",
        "path": POLICY.name,
        **more,
    }


#: a refund-only case the fast refund applies to (clause 5), and one it does not
FAST = {
    "order": {"amount": "128.00", "paid_at": "2026-03-01T10:00:00+08:00", "shipped": False},
    "shop.fast_refund_enabled": True,
}
SLOW = {
    "order": {"amount": 500, "paid_at": "2026-03-01T09:00:00+08:00", "shipped": True},
    "shop": {"fast_refund_enabled": True},
}
OPENED = "2026-03-01T12:00:00+08:00"


def open_case(client: TestClient, facts: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(
        "/api/sim", json=source(workflow="refund_only", facts=facts, at=OPENED, by=None)
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body
