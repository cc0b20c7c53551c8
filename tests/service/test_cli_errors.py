"""`rulekit db`, `worker` and `serve` on bad input: a message that names the place, never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from rulekit.cli import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_status_of_a_store_that_does_not_exist_makes_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "nothing.db"
    code, out = _run(["db", "status", "--store", str(store)], capsys)
    assert code == 1 and "schema version 0" in out and "rulekit db upgrade" in out
    assert not store.exists()


def test_a_worker_on_a_store_that_does_not_exist_says_how_to_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "nothing.db"
    code, out = _run(["worker", "--once", "--store", str(store)], capsys)
    assert code == 1
    assert f"there is no store at {store} yet: create it with `rulekit db upgrade" in out
    assert not store.exists() and "Traceback" not in out


def test_a_store_where_no_file_can_be_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    code, out = _run(["db", "upgrade", "--store", str(blocker / "store.db")], capsys)
    assert code == 1 and f"cannot open the SQLite store at {blocker / 'store.db'}" in out


def test_a_file_that_is_not_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not SQLite" * 100)
    code, out = _run(["db", "upgrade", "--store", str(junk)], capsys)
    assert code == 1 and f"cannot open the SQLite store at {junk}" in out
    assert "Traceback" not in out


def test_an_unreachable_postgresql_fails_at_once_with_the_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out = _run(
        ["db", "status", "--store", f"postgresql://u:secret@127.0.0.1:{port}/x"], capsys
    )
    assert code == 1
    assert f"cannot reach PostgreSQL at user=u dbname=x host=127.0.0.1 port={port}" in out
    assert "secret" not in out


# (the --store given, the exit status, the message) -- issue 12, item 3: an unknown scheme
# made a SQLite file named after the URL, and sqlite:///var/... a relative path
BAD_STORE_URLS = [
    (
        "postgresq://app@db/rulekit",
        2,
        "postgresq://app@db/rulekit: unknown store scheme `postgresq://` (use postgresql://, "
        "postgres://, sqlite:///absolute/path.db, or a file path)",
    ),
    (
        "postgresql+psycopg://app@db/rulekit",
        2,
        "unknown store scheme `postgresql+psycopg://`",
    ),
    (
        "sqlite://db/rulekit.db",
        2,
        "sqlite://db/rulekit.db: sqlite:// takes no host: write sqlite:///absolute/path.db",
    ),
    (
        "{tmp}/no/such/folder/x.db",
        1,
        "{tmp}/no/such/folder/x.db: the folder {tmp}/no/such/folder does not exist",
    ),
]


@pytest.mark.parametrize(("url", "status", "message"), BAD_STORE_URLS)
@pytest.mark.parametrize("verb", [["db", "upgrade"], ["db", "status"], ["worker", "--once"]])
def test_a_store_url_rulekit_cannot_read_is_an_error_not_a_file(
    verb: list[str],
    url: str,
    status: int,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    url, message = url.format(tmp=tmp_path), message.format(tmp=tmp_path)
    code, out = _run([*verb, "--store", url], capsys)
    assert code == status, out
    assert message in out and "Traceback" not in out
    assert list(tmp_path.iterdir()) == []  # nothing made


def test_sqlite_url_with_three_slashes_is_an_absolute_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "data"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    target = tmp_path / "abs.db"
    code, out = _run(["db", "upgrade", "--store", f"sqlite://{target}"], capsys)
    assert code == 0, out
    assert target.exists() and list(elsewhere.iterdir()) == []


def test_serve_on_a_port_in_use_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12, item 8: it printed "serving ... from http://..." and then uvicorn's error
    (exit 3). Now: nothing is served, no store is made, one line says why (exit 2)."""
    monkeypatch.chdir(tmp_path)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        policy = str(Path(__file__).parents[2] / "rules" / "kuaishou_after_sales.rk")
        code, out = _run(["serve", policy, "--port", str(port)], capsys)
    finally:
        taken.close()
    assert code == 2
    assert out.splitlines() == [
        f"rulekit: error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(is another server there? choose another --port)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_serve_with_a_relay_whose_broker_is_down_refuses_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The service does not start without the relay it was asked to run: exit 1 and why,
    before it listens (uvicorn would print its lifespan's traceback)."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    relay = tmp_path / "relay.yaml"
    relay.write_text(
        "routes:\n  - name: events\n    effects: '*'\n    jetstream:\n"
        f"      servers: [nats://127.0.0.1:{port}]\n      subject: rk.{{name}}\n"
        "      timeout: 1s\n",
        encoding="utf-8",
    )
    policy = Path(__file__).resolve().parents[2] / "rules" / "kuaishou_after_sales.rk"
    code, out = _run(
        [
            "serve",
            str(policy),
            "--store",
            str(tmp_path / "s.db"),
            "--port",
            "0",
            "--relay",
            str(relay),
        ],
        capsys,
    )
    assert code == 1, out
    assert f"route `events`: cannot connect to NATS at nats://127.0.0.1:{port}" in out
    assert "Traceback" not in out
