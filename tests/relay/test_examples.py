"""examples/relay/ works as docs/effects.md says: the relay.yaml loads, and both receivers
take a delivery the relay signs and refuse a tampered or wrongly signed one."""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import rulekit
from rulekit.relay.config import JetStreamTarget, WebhookTarget, load_config
from rulekit.relay.signing import sign
from support import ROOT

EXAMPLES = ROOT / "examples" / "relay"
SECRET = "whsec-test-0123456789abcdef"
#: How long a receiver may take to start on a loaded machine.
START_DEADLINE = 30.0


def test_the_example_relay_yaml_loads() -> None:
    config = load_config(EXAMPLES / "relay.yaml", {"PAYMENTS_WEBHOOK_SECRET": SECRET})
    payments, events = config.routes
    assert isinstance(payments.target, WebhookTarget)
    assert payments.target.secrets == (SECRET.encode(),)
    assert isinstance(events.target, JetStreamTarget)
    assert events.target.stream == "RULEKIT_EFFECTS"
    assert config.route("refund") == payments
    assert config.route("exchange") == events
    # the duplicate window outlasts the longest gap between two deliveries of an effect
    assert events.target.duplicate_window > config.lease + config.retry.maximum


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Node.js is not installed; CI must test examples/relay/verify.js")
        pytest.skip("Node.js is not installed (examples/relay/verify.js is not tested)")
    return node


@pytest.fixture(params=["verify.js", "receiver.py"])
def receiver(request: pytest.FixtureRequest) -> Iterator[str]:
    """The example receiver running on a free port, with the secret; yields its URL."""
    if request.param == "verify.js":
        command = [_node(), str(EXAMPLES / "verify.js"), "0"]
    else:
        command = [sys.executable, str(EXAMPLES / "receiver.py"), "0"]
    src = str(Path(rulekit.__file__).parents[1])
    env = {
        **os.environ,
        "PAYMENTS_WEBHOOK_SECRET": SECRET,
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
    env.pop("PAYMENTS_WEBHOOK_SECRET_NEW", None)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], START_DEADLINE)
        line = process.stdout.readline() if ready else ""
        found = re.match(r"listening on (http://\S+)", line)
        assert found, f"{request.param} did not start: {line!r}"
        yield found[1]
    finally:
        process.terminate()
        process.wait(timeout=START_DEADLINE)


def _post(url: str, body: bytes, signature: str) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Rulekit-Signature": signature},
    )
    try:
        with urllib.request.urlopen(request, timeout=START_DEADLINE) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_the_example_receivers_verify_the_relays_signature(receiver: str) -> None:
    body = (
        b'{"args":{"amount":"128.00"},"case_id":"order-42","emitted_at":"2026-03-01T04:00:00'
        b'+00:00","key":"order-42/1/0","name":"refund","policy":null,"seq":1,'
        b'"type":"rulekit.effect"}'
    )
    now = int(time.time())
    signature = sign(body, [SECRET], now)
    assert _post(receiver, body, signature) == (200, "order-42/1/0 taken\n")
    # a repeated delivery is a success, and taken once
    assert _post(receiver, body, signature) == (200, "order-42/1/0 already taken\n")
    tampered = body.replace(b"128.00", b"999.00")
    status, text = _post(receiver, tampered, signature)
    assert status == 400 and "no signature matches" in text
    status, text = _post(receiver, body, sign(body, ["another secret"], now))
    assert status == 400 and "no signature matches" in text
    # rotating: the relay signs with the new and the old secret, one of them matches
    other = body.replace(b"order-42/1/0", b"order-42/1/1")
    assert _post(receiver, other, sign(other, ["the new secret", SECRET], now))[0] == 200
    # a delivery signed long ago (a captured request, replayed) is refused
    status, text = _post(receiver, body, sign(body, [SECRET], now - 3600))
    assert status == 400 and ("old" in text or "tolerance" in text)
    status, text = _post(receiver, body, "")
    assert status == 400 and "no Rulekit-Signature header" in text


def test_the_docs_javascript_is_the_examples() -> None:
    """docs/effects.md's verifySignature is verify.js's, the one tested above."""
    docs = (ROOT / "docs" / "effects.md").read_text(encoding="utf-8")
    block = re.search(r"```js\n(.*?)```", docs, re.S)
    assert block is not None
    function = block[1][block[1].index("// rawBody") :]
    assert function in (EXAMPLES / "verify.js").read_text(encoding="utf-8")
