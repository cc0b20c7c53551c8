"""`./dev demo` (the README's first command) runs the shipped policy durably, start to finish."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from rulekit.tools import demo, relay_demo
from support import ROOT


def test_demo_runs_every_workflow_in_the_embedded_store(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert demo.main(["rules/kuaishou_after_sales.rk"]) == 0
    out = capsys.readouterr().out
    assert "(SQLite, WAL, synchronous=FULL)" in out
    assert "rules/kuaishou_after_sales.rk: ok" in out
    # the deadline worker fired the silent merchant's 48h deadline, recorded at its due time
    assert "2026-03-03 12:00:00+08:00  deadline: `awaiting_merchant` -> `refunded`" in out
    assert "the second repeated" in out
    assert "The outbox holds 3 effect(s)" in out
    # the relay delivered them to the local webhook, which verified each signature
    assert "POST /hooks/rulekit HTTP/1.1\n   Rulekit-Signature: t=" in out
    assert '"key":"fast-refund/1/0"' in out
    assert out.count("signature verified") == 3
    assert (
        "The outbox after the relay's run: "
        "fast-refund/1/0 done, silent-merchant/1/0 done, return/3/0 done."
    ) in out
    for outcome in (
        "closed, outcome refunded",
        "open, in `awaiting_return`",
        "outcome not_eligible",
    ):
        assert outcome in out


def test_demo_ends_with_how_to_run_rulekit_next(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `./dev demo`, `rulekit` is in .venv/bin, not on the PATH: the demo says so."""
    monkeypatch.chdir(ROOT)
    scripts = Path(sys.executable).absolute().parent
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert demo.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rulekit check rules/\n")
    assert out.endswith(
        f"Next: the `rulekit` command is installed in {scripts}, which is not on your PATH.\n"
        f"  activate the environment:  . {scripts}/activate  (then: rulekit check rules/)\n"
        f"  or call it by its path:    {scripts}/rulekit check rules/\n"
        "  or, from the repository, install it for your user: pipx install .\n"
    )
    monkeypatch.setenv("PATH", f"{scripts}:/usr/bin:/bin")
    assert demo.path_hint(Path("rules")) == (
        "Next: `rulekit check rules/`, and the other commands in README.md."
    )


def test_without_nats_the_demo_skips_the_broker_and_says_how_to_run_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RULEKIT_NATS_URL", f"nats://127.0.0.1:{port}")
    monkeypatch.chdir(ROOT)
    assert demo.main(["rules/kuaishou_after_sales.rk"]) == 0
    out = capsys.readouterr().out
    assert f"no NATS server is reachable at nats://127.0.0.1:{port}, so that part is skipped" in out
    assert "nats-server -js" in out
    assert out.count("signature verified") == 3  # the webhook part ran all the same


def test_without_the_relay_extra_the_demo_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay's packages are looked up before anything imports them."""
    monkeypatch.setattr(relay_demo, "find_spec", lambda name: None)
    monkeypatch.chdir(ROOT)
    assert demo.main(["rules/kuaishou_after_sales.rk"]) == 0
    out = capsys.readouterr().out
    assert "(skipped: the relay needs the `relay` extra: pip install 'rulekit[relay]')" in out
    assert "signature verified" not in out
