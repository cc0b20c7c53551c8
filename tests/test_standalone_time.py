"""Standalone conditions count calendar time in a zone and on calendars the caller
gives (compile_expression, the Expression's serialized form, rulekit eval)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import rulekit
from rulekit.cli import main
from rulekit.expr import stdlib
from rulekit.expr.expression import Expression

T = stdlib.parse_timestamp("2026-03-07T10:00:00-05:00")  # the day before New York's clocks change


def _calendars(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "cn.yaml").write_text("holidays: [2026-10-01]\n", encoding="utf-8")
    (tmp_path / "hk.yaml").write_text("holidays: [2026-10-02]\n", encoding="utf-8")
    return {"cn": str(tmp_path / "cn.yaml"), "hk": str(tmp_path / "hk.yaml")}


def test_a_zone_given_counts_periods_there() -> None:
    utc = rulekit.compile_expression("t + 1 calendar day", {"t": "time"})
    ny = rulekit.compile_expression(
        "t + 1 calendar day", {"t": "time"}, timezone="America/New_York"
    )
    assert utc.evaluate({"t": T}).isoformat() == "2026-03-08T15:00:00+00:00"
    assert ny.evaluate({"t": T}).isoformat() == "2026-03-08T10:00:00-04:00"  # 23 hours
    assert utc is not ny and utc.hash != ny.hash
    assert "time_rules" not in utc.to_dict()  # as before: UTC, no calendars


def test_calendars_given_count_working_days(tmp_path: Path) -> None:
    cals = _calendars(tmp_path)
    e = rulekit.compile_expression(
        'date("2026-09-30") + 1 working day in cn', timezone="Asia/Shanghai", calendars=cals
    )
    assert e.evaluate().isoformat() == "2026-10-02"
    with pytest.raises(rulekit.CompileError) as info:
        rulekit.compile_expression("d.isWorkingDay()", {"d": "dyn"}, calendars=cals)
    assert [d.code for d in info.value.diagnostics] == ["RK0213"]
    one = rulekit.compile_expression(
        'date("2026-10-01").isWorkingDay()', calendars={"hk": cals["hk"]}
    )
    assert one.evaluate() is True


def test_the_zone_and_calendars_survive_serializing(tmp_path: Path) -> None:
    e = rulekit.compile_expression(
        "t + 1 working day",
        {"t": "time"},
        timezone="Asia/Shanghai",
        calendars={"cn": _calendars(tmp_path)["cn"]},
    )
    data = e.to_dict()
    assert data["time_rules"]["timezone"] == "Asia/Shanghai"
    t = stdlib.parse_timestamp("2026-09-30T10:00:00+08:00")
    for back in (Expression.from_dict(data), pickle.loads(pickle.dumps(e))):
        assert back.evaluate({"t": t}) == e.evaluate({"t": t})
        assert back.hash == e.hash
    data["time_rules"]["timezone"] = "Europe/Berlin"  # a changed zone is a changed meaning
    with pytest.raises(rulekit.CompileError, match="content hash"):
        Expression.from_dict(data)
    data["time_rules"] = {"timezone": "Mars/Olympus"}
    with pytest.raises(rulekit.CompileError, match="time_rules: unknown time zone"):
        Expression.from_dict(data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone"),
        ({"calendars": {"1cn": "x.yaml"}}, "calendar name '1cn'"),
        ({"calendars": {"cn": "bad.yaml"}}, "calendar cn (bad.yaml): holidays[0]"),
    ],
)
def test_bad_time_arguments_are_value_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("holidays: [2026-02-30]\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        rulekit.compile_expression("1", **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("argv", "out", "status"),
    [
        (
            ["t + 1 calendar day", "--timezone", "America/New_York"],
            'timestamp("2026-03-08T10:00:00-04:00")\n',
            0,
        ),
        (
            [
                "date('2026-09-30') + 1 working day in hk",
                "--calendar",
                "cn=cn.yaml",
                "--calendar",
                "hk=hk.yaml",
            ],
            'date("2026-10-01")\n',
            0,
        ),
        (["1", "--timezone", "Mars/X"], "rulekit: error: --timezone: unknown time zone", 2),
        (["1", "--calendar", "cn=nope.yaml"], "rulekit: error: --calendar: nope.yaml: No such", 2),
        (["1", "--calendar", "cn"], "rulekit: error: --calendar 'cn': expected NAME=FILE", 2),
    ],
)
def test_eval_takes_a_zone_and_calendars(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    out: str,
    status: int,
) -> None:
    monkeypatch.chdir(tmp_path)
    _calendars(tmp_path)
    assert main(["eval", *argv, "--var", 't=timestamp("2026-03-07T15:00:00Z")']) == status
    shown, err = capsys.readouterr()
    assert (shown + err).startswith(out)
