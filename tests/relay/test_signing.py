"""rulekit.verify_signature against hostile and broken headers: each refused with what is
wrong, never an exception other than SignatureError, and a valid one accepted."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from rulekit import SignatureError, verify_signature
from rulekit.relay.signing import sign, signature

BODY = b'{"key":"c1/1/0","name":"refund"}'
T = 1_772_337_600
NOW = datetime.fromtimestamp(T, UTC)
GOOD = f"v1={signature(BODY, b'new', T)}"


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (None, "no Rulekit-Signature header"),
        ("", "no Rulekit-Signature header"),
        ("t=" + "1" * 5000, "longer than 4096 bytes"),
        (f"t={T}{GOOD}", "malformed timestamp"),  # the comma left out
        (f"t={T},garbage", "malformed Rulekit-Signature header: 'garbage'"),
        (f"t=\uff11\uff12\uff13,{GOOD}", "malformed timestamp"),  # full-width: isdigit, not ASCII
        (f"t=-{T},{GOOD}", "malformed timestamp"),
        (f"t={T},t={T},{GOOD}", "malformed timestamp"),  # two timestamps: which one was signed?
        (GOOD, "no timestamp (t=)"),
        (f"t={T}", "no v1 signature"),
        (f"t={T - 301},v1={signature(BODY, b'new', T - 301)}", "301s old, outside the tolerance"),
        (f"t={T + 301},v1={signature(BODY, b'new', T + 301)}", "in the future"),
        (f"t={T},v1={signature(BODY + b' ', b'new', T)}", "no signature matches"),
        (f"t={T},v1={signature(BODY, b'other', T)}", "no signature matches"),
        (f"t={T},v1=zz", "no signature matches"),
    ],
)
def test_a_bad_header_is_refused_saying_why(header: str | None, problem: str) -> None:
    with pytest.raises(SignatureError, match=re.escape(problem)):
        verify_signature(BODY, header, "new", now=NOW)


def test_a_good_header_verifies_with_rotation_and_unknown_schemes() -> None:
    header = sign(BODY, ["new", "old"], T)
    assert verify_signature(BODY, header, "old", now=NOW) == T
    assert verify_signature(BODY, header, ["gone", b"new"], now=NOW) == T
    # a scheme a later relay may add is skipped, so receivers can be upgraded after senders
    assert verify_signature(BODY, f"v2=abc,{header}", "new", now=NOW) == T
    assert (
        verify_signature(
            BODY, header, "new", now=NOW + timedelta(minutes=9), tolerance=timedelta(minutes=10)
        )
        == T
    )


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        sign(BODY, [], T)
