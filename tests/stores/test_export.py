"""``rulekit export`` / ``import``: SQLite -> PostgreSQL -> SQLite keeps every history and
case row as it was, importing again changes nothing, and a hostile file is refused at its
line with a clear message (exit status 2), never a traceback and never a forged case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rulekit.cli import main
from rulekit.policy import Policy
from rulekit.stores import SqlStore, open_store
from rulekit.stores import export as ex

from .backends import Backend
from .helpers import H, T, everything, fast_refund, slow_refund


def fill(store: SqlStore) -> None:
    """Cases in every kind of place: waiting, rejected, refunded, fast-refunded."""
    store.open("refund_only", slow_refund(), id="waiting", at=T, parties={"consumer": "c-1"})
    store.open("refund_only", slow_refund("250.00"), id="rejected", at=T)
    store.send("rejected", "reject", "merchant", {"reason": "used"}, at=T + H)
    store.open("refund_only", slow_refund(), id="refunded", at=T)
    store.send("refunded", "approve", "merchant", {}, at=T + 2 * H)
    store.open("refund_only", fast_refund(), id="fast", at=T)
    store.open("return_refund", slow_refund(), id="return", at=T)
    store.fire_due(now=T + 100 * H)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def sqlite(tmp_path: Path, name: str) -> str:
    url = str(tmp_path / name)
    open_store(url, migrate=True).close()
    return url


def export_text(capsys: pytest.CaptureFixture[str], url: str, *flags: str) -> str:
    code, out, _ = run(capsys, "export", "--store", url, *flags)
    assert code == 0
    return out


def test_round_trip_through_sqlite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kuaishou: Policy
) -> None:
    source = sqlite(tmp_path, "a.db")
    with open_store(source) as s:
        s.register(kuaishou)
        fill(s)
        before = {
            c: everything(s, c) for c in ("waiting", "rejected", "refunded", "fast", "return")
        }
    text = export_text(capsys, source)
    assert len(text.splitlines()) == 6
    (tmp_path / "cases.jsonl").write_text(text, encoding="utf-8")
    target = sqlite(tmp_path, "b.db")
    code, _, err = run(capsys, "import", "--store", target, str(tmp_path / "cases.jsonl"))
    assert code == 0 and "imported 5 case(s), 0 already there" in err
    assert export_text(capsys, target) == text
    with open_store(target) as t:
        for case_id, view in before.items():
            got = everything(t, case_id)
            assert got["history"] == view["history"] and got["case"] == view["case"]
    # again: nothing changes
    code, _, err = run(capsys, "import", "--store", target, str(tmp_path / "cases.jsonl"))
    assert code == 0 and "imported 0 case(s), 5 already there" in err
    assert export_text(capsys, target) == text


@pytest.mark.postgresql
def test_round_trip_sqlite_postgresql_sqlite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kuaishou: Policy, postgres_url: str
) -> None:
    Backend("postgresql", postgres_url).reset()
    source = sqlite(tmp_path, "a.db")
    with open_store(source) as s:
        s.register(kuaishou)
        fill(s)
    text = export_text(capsys, source)
    (tmp_path / "a.jsonl").write_text(text, encoding="utf-8")
    assert run(capsys, "import", "--store", postgres_url, str(tmp_path / "a.jsonl"))[0] == 0
    from_pg = export_text(capsys, postgres_url)
    assert from_pg == text
    (tmp_path / "b.jsonl").write_text(from_pg, encoding="utf-8")
    back = sqlite(tmp_path, "c.db")
    assert run(capsys, "import", "--store", back, str(tmp_path / "b.jsonl"))[0] == 0
    assert export_text(capsys, back) == text
    with open_store(postgres_url) as pg:  # the copy's deadlines were imported: they fire
        assert {f.case_id for f in pg.fire_due(now=T + 10000 * H)} == {"rejected", "return"}


def test_open_only_and_policy_filters(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kuaishou: Policy
) -> None:
    source = sqlite(tmp_path, "a.db")
    with open_store(source) as s:
        s.register(kuaishou)
        fill(s)
    ids = [json.loads(x)["id"] for x in export_text(capsys, source, "--open-only").splitlines()[1:]]
    assert ids == ["rejected", "return"]
    assert export_text(capsys, source, "--policy", "nothing.such").splitlines()[1:] == []


@pytest.fixture
def exported(capsys: pytest.CaptureFixture[str], tmp_path: Path, kuaishou: Policy) -> list[str]:
    source = sqlite(tmp_path, "source.db")
    with open_store(source) as s:
        s.register(kuaishou)
        fill(s)
    return export_text(capsys, source).splitlines()


def edit_case(line: str, **changes: Any) -> str:
    data = json.loads(line)
    data.update(changes)
    return json.dumps(data)


def with_record(line: str, record: dict[str, Any]) -> str:
    history = json.loads(line)["history"]
    return edit_case(line, history=[history[0], {"seq": 1, "at": history[0]["at"], **record}])


HOSTILE: list[tuple[str, Any, int, str]] = [
    (
        "event without actor",
        lambda ls: [ls[0], with_record(ls[1], {"kind": "event", "event": "approve"})],
        2,
        "actor",
    ),
    (
        "update with a list",
        lambda ls: [ls[0], with_record(ls[1], {"kind": "update", "data": [1, 2]})],
        2,
        "data",
    ),
    (
        "update of an unknown fact",
        lambda ls: [ls[0], with_record(ls[1], {"kind": "update", "data": {"__class__": 1}})],
        2,
        "refuses its history",
    ),
    ("not json", lambda ls: [ls[0], "{nope"], 2, "not JSON"),
    ("no header", lambda ls: ls[1:], 1, "header"),
    ("two headers", lambda ls: [ls[0], ls[0]], 2, "header"),
    ("unknown field", lambda ls: [ls[0], edit_case(ls[1], script="rm -rf /")], 2, "script"),
    ("no history", lambda ls: [ls[0], edit_case(ls[1], history=[])], 2, "history"),
    (
        "bad time tag",
        lambda ls: [ls[0], edit_case(ls[1], opened_at={"$rk": "time", "v": "soon"})],
        2,
        "cannot be read",
    ),
    (
        "forged state",
        lambda ls: [ls[0], edit_case(ls[1], state="withdrawn")],
        2,
        "does not rebuild",
    ),
    ("forged facts", lambda ls: [ls[0], edit_case(ls[1], facts={})], 2, "does not rebuild"),
    (
        "unknown policy",
        lambda ls: [ls[0], edit_case(ls[1], policy="sha256:" + "0" * 64)],
        2,
        "not in the header",
    ),
    (
        "forged artifact",
        lambda ls: [
            json.dumps(
                {
                    **json.loads(ls[0]),
                    "policies": [
                        {**json.loads(ls[0])["policies"][0], "hash": "sha256:" + "1" * 64}
                    ],
                }
            )
        ],
        1,
        "hashes to",
    ),
    (
        "not an artifact",
        lambda ls: [
            json.dumps(
                {
                    **json.loads(ls[0]),
                    "policies": [{**json.loads(ls[0])["policies"][0], "artifact": {"x": 1}}],
                }
            )
        ],
        1,
        "not a policy artifact",
    ),
    (
        "bad event",
        lambda ls: [
            ls[0],
            edit_case(
                ls[1],
                history=[
                    *json.loads(ls[1])["history"][:1],
                    {
                        "seq": 1,
                        "at": json.loads(ls[1])["history"][0]["at"],
                        "kind": "event",
                        "event": "explode",
                        "actor": "merchant",
                    },
                ],
            ),
        ],
        2,
        "refuses its history",
    ),
]


@pytest.mark.parametrize(("what", "make", "line", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_files_are_refused_at_their_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    exported: list[str],
    what: str,
    make: Any,
    line: int,
    message: str,
) -> None:
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(make(exported)) + "\n", encoding="utf-8")
    target = sqlite(tmp_path, "target.db")
    code, _, err = run(capsys, "import", "--store", target, str(path))
    assert code == 2, err
    assert err.startswith(f"{path}:{line}: error: ") and message in err, err
    assert "Traceback" not in err
    with open_store(target) as t:
        assert t.cases() == []


def test_a_line_too_long_is_refused_unread(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    exported: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limit = len(exported[0].encode()) + 1  # the header and its newline, not a byte more
    monkeypatch.setattr(ex, "MAX_LINE", limit)
    path = tmp_path / "long.jsonl"
    path.write_text(exported[0] + "\n" + "x" * (limit + 5000) + "\n", encoding="utf-8")
    code, _, err = run(capsys, "import", "--store", sqlite(tmp_path, "t.db"), str(path))
    assert code == 2 and f":2: error: line longer than {limit} bytes" in err


def test_a_case_there_with_another_history_is_an_error_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, exported: list[str], kuaishou: Policy
) -> None:
    target = sqlite(tmp_path, "target.db")
    with open_store(target) as t:
        t.register(kuaishou)
        t.open("refund_only", slow_refund("1.00"), id=json.loads(exported[1])["id"], at=T)
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(exported) + "\n", encoding="utf-8")
    code, _, err = run(capsys, "import", "--store", target, str(path))
    assert (
        code == 2 and f"case {json.loads(exported[1])['id']} is there with another history" in err
    )


def test_every_line_matches_the_schema(exported: list[str]) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(ex.schema())
    for line in exported:
        validator.validate(json.loads(line))
