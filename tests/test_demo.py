"""`./dev demo` (the README's first command) runs the shipped policy durably, start to finish."""

from __future__ import annotations

import pytest

from conftest import ROOT
from rulekit import demo


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
    assert "The outbox delivered 3 effect(s)" in out
    for outcome in (
        "closed, outcome refunded",
        "open, in `awaiting_return`",
        "outcome not_eligible",
    ):
        assert outcome in out
