"""``rulekit effects``: the outbox from a shell, the dead letters listed and put back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rulekit.cli import main
from rulekit.stores import open_store

from .support import open_refunds


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def store(tmp_path: Path) -> str:
    """Three refunds: e0 and e1 refused for good (dead letters), e2 still pending."""
    url = str(tmp_path / "outbox.db")
    with open_store(url, migrate=True):
        pass
    open_refunds(url, 3)
    with open_store(url) as s:
        for e in s.claim(limit=2):
            s.fail(e.key, "http://payments/hooks answered 410 Gone", dead=True)
    return url


def test_list_shows_the_dead_letters_with_why(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["effects", "list", "--store", store, "--status", "dead"], capsys)
    assert code == 0 and err == "2 effects\n"
    assert out.splitlines() == [
        "e0/1/0  refund  dead  attempts 1  emitted 2021-03-01T04:00:00+00:00",
        "    last error: http://payments/hooks answered 410 Gone",
        "e1/1/0  refund  dead  attempts 1  emitted 2021-03-01T04:00:00+00:00",
        "    last error: http://payments/hooks answered 410 Gone",
    ]
    code, out, _ = _run(
        ["effects", "list", "--store", store, "--case", "e2", "--format", "json"], capsys
    )
    [pending] = json.loads(out)
    assert pending["key"] == "e2/1/0" and pending["status"] == "pending"
    assert pending["args"] == {"amount": "3.00"} and pending["policy"].startswith("sha256:")


def test_retry_puts_named_dead_letters_back_and_names_what_it_cannot(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        ["effects", "retry", "--store", store, "e0/1/0", "e2/1/0", "nope/1/0"], capsys
    )
    assert code == 1  # one key is unknown: said, and the others are still done
    assert out.splitlines() == [
        "rulekit: e2/1/0 is pending, not a dead letter: left as it is",
        "put 1 dead letter back in the outbox",
    ]
    assert err == "rulekit: error: nope/1/0: no effect 'nope/1/0' in the outbox\n"
    with open_store(store) as s:
        [back] = s.effects(case_id="e0")
        assert (back.status, back.attempts) == ("pending", 0)
        assert [e.key for e in s.effects(status="dead")] == ["e1/1/0"]


def test_retry_all_pages_through_every_dead_letter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = str(tmp_path / "many.db")
    with open_store(url, migrate=True):
        pass
    open_refunds(url, 1203)  # more than two pages of 500
    with open_store(url) as s:
        while claimed := s.claim(limit=500):
            for e in claimed:
                s.fail(e.key, "refused", dead=True)
    code, out, _ = _run(["effects", "retry", "--store", url, "--all", "--name", "notify"], capsys)
    assert (code, out) == (0, "put 0 dead letters back in the outbox\n")
    code, out, _ = _run(["effects", "retry", "--store", url, "--all"], capsys)
    assert (code, out) == (0, "put 1203 dead letters back in the outbox\n")
    with open_store(url) as s:
        assert s.pending().get("effects_dead", 0) == 0


def test_usage_errors(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["effects", "retry", "--store", store, "e0/1/0", "--name", "x"], capsys)
    assert (code, err) == (2, "rulekit: error: --name goes with --all\n")
    with pytest.raises(SystemExit) as neither:
        main(["effects", "retry", "--store", store])
    assert neither.value.code == 2
    assert "one of the arguments KEY --all is required" in capsys.readouterr().err
