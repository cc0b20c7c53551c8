"""`./dev demo`'s broker part against a real JetStream server (tests/test_demo.py has the rest)."""

from __future__ import annotations

import pytest

from rulekit.tools import demo
from support import ROOT


def test_with_nats_the_demo_publishes_a_refund_to_jetstream(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, nats_url: str
) -> None:
    """The refund is acknowledged in the outbox after JetStream's PubAck (skipped locally
    without a server, a failure under CI)."""
    monkeypatch.setenv("RULEKIT_NATS_URL", nats_url)
    monkeypatch.chdir(ROOT)
    assert demo.main(["rules/kuaishou_after_sales.rk"]) == 0
    out = capsys.readouterr().out
    assert (
        "published broker-refund/1/0 to rulekit.demo.refund (Nats-Msg-Id: broker-refund/1/0); "
        "JetStream acknowledged it (PubAck): the outbox says done"
    ) in out
