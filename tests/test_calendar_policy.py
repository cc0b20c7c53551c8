"""Calendars in policies: declared as files, read at compile time, kept in the artifact
(and checked when it is loaded), counted by the engine and bounded by the analysis."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

import rulekit
from rulekit.analysis import times
from rulekit.core.errors import CompileError
from rulekit.expr import stdlib
from rulekit.policy import artifact
from support import TESTS

POLICY = TESTS / "policies" / "calendar_deadlines.rk"


def _policy(tmp_path: Path, calendar: str, body: str = "") -> Path:
    (tmp_path / "cal.yaml").write_text(calendar, encoding="utf-8")
    path = tmp_path / "p.rk"
    path.write_text(
        'policy p version "1"\n  timezone "Europe/Berlin"\n'
        'calendar de from "cal.yaml"\n'
        "facts { t: time }\nactors a\nevent go by a\n"
        "workflow w {\n  initial state s {\n    on go -> done\n"
        f"    {body or 'after 2 working days -> done'}\n  }}\n  final state done\n}}\n",
        encoding="utf-8",
    )
    return path


def _codes(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(CompileError) as info:
        rulekit.load(path)
    return [(d.code, d.message) for d in info.value.diagnostics]


@pytest.mark.parametrize(
    ("calendar", "message"),
    [
        ("holidays: [2026-01-01, 2026-02-30]", "holidays[1]: `2026-02-30` is not a date"),
        ("holidays: [{from: 2026-01-03, to: 2026-01-01}]", "holidays[0]: the range ends"),
        ("weekend: [caturday]", "weekend[0]: `caturday` is not a day of the week"),
        ("holiday: [2026-01-01]", "holiday: unknown key"),
        ("holidays: [2026-01-01", "is not valid YAML"),
    ],
)
def test_a_bad_calendar_file_is_a_located_error(
    tmp_path: Path, calendar: str, message: str
) -> None:
    # the calendar, then the working days it was to count
    [(code, said), *_] = _codes(_policy(tmp_path, calendar))
    assert code == "RK0212"
    assert message in said


def test_the_calendar_counts_and_travels_in_the_artifact(tmp_path: Path) -> None:
    policy = rulekit.load(_policy(tmp_path, "holidays: [2026-03-09]"))
    out = tmp_path / "p.json"
    out.write_text(json.dumps(artifact.to_json(policy)), encoding="utf-8")
    (tmp_path / "cal.yaml").unlink()  # the artifact is self-contained
    loaded = rulekit.load(out)
    assert loaded.hash == policy.hash
    assert loaded.calendars == policy.calendars
    engine = rulekit.Engine(loaded)
    friday = stdlib.parse_timestamp("2026-03-06T10:00:00+01:00")
    case = engine.open("w", {"t": friday}, at=friday)
    # Monday 9 March is a holiday: 2 working days after Friday are Tuesday and Wednesday.
    assert [d[0].isoformat() for d in engine.pending(case)] == ["2026-03-11T10:00:00+01:00"]


def test_a_changed_calendar_changes_the_content_hash(tmp_path: Path) -> None:
    a = rulekit.load(_policy(tmp_path, "holidays: [2026-03-09]"))
    b = rulekit.load(_policy(tmp_path, "holidays: [2026-03-10]"))
    assert a.hash != b.hash


def test_a_tampered_calendar_in_the_artifact_is_refused(tmp_path: Path) -> None:
    data = artifact.to_json(rulekit.load(_policy(tmp_path, "holidays: [2026-03-09]")))
    data["calendars"][0]["holidays"] = ["2026-02-30"]
    data["hash"] = artifact.content_hash(data)
    out = tmp_path / "p.json"
    out.write_text(json.dumps(data), encoding="utf-8")
    [(code, said), *_] = _codes(out)  # then the working days it was to count
    assert code == "RK0501"
    assert "calendar de" in said and "2026-02-30" in said


def test_the_worst_case_of_a_period_is_bounded_by_its_longest() -> None:
    figures = {w.workflow: w for w in times.worst_case_times(rulekit.load(POLICY))}
    assert "at most 15d" in times.render([figures["working"]])
    assert figures["working"].opened.bound == timedelta(days=15)


def _two_calendars(tmp_path: Path, body: str, suffix: str = ".rk") -> Path:
    """A policy declaring two calendars, cn (1 October a holiday) and hk (2 October)."""
    (tmp_path / "cn.yaml").write_text("holidays: [2026-10-01]\n", encoding="utf-8")
    (tmp_path / "hk.yaml").write_text("holidays: [2026-10-02]\n", encoding="utf-8")
    path = tmp_path / f"two{suffix}"
    if suffix == ".rk":
        path.write_text(
            'policy two version "1"\n  timezone "Asia/Shanghai"\n'
            'calendar cn from "cn.yaml"\ncalendar hk from "hk.yaml"\n'
            "facts { t: time }\nactors a\nevent go by a\n"
            f"workflow w {{\n  initial state s {{\n    on go -> done\n    {body}\n  }}\n"
            "  final state done\n}\n",
            encoding="utf-8",
        )
    else:
        path.write_text(
            "policy: two\nversion: '1'\ntimezone: Asia/Shanghai\n"
            "calendars: {cn: cn.yaml, hk: hk.yaml}\nfacts: {t: time}\nactors: [a]\n"
            "events: {go: {by: a}}\nworkflows:\n  w:\n    states:\n"
            "      s:\n        initial: true\n        transitions:\n"
            f"          - {{on: go, to: done}}\n          - {body}\n"
            "      done: {final: true}\n",
            encoding="utf-8",
        )
    return path


@pytest.mark.parametrize(
    ("body", "due"),
    [
        # Wednesday 30 September 2026, 10:00: 2 working days on cn skip 1 October, on hk 2 October.
        ("after 2 working days in cn -> done", "2026-10-05T10:00:00+08:00"),
        ("after 2 working days in hk -> done", "2026-10-05T10:00:00+08:00"),
        ("after 1 working day in cn -> done", "2026-10-02T10:00:00+08:00"),
        ("after 1 working day in hk -> done", "2026-10-01T10:00:00+08:00"),
        (
            'at date("2026-10-01").nextWorkingDay("cn").atTime("17:00") -> done',
            "2026-10-02T17:00:00+08:00",
        ),
        (
            'at date("2026-10-01").nextWorkingDay("hk").atTime("17:00") -> done',
            "2026-10-01T17:00:00+08:00",
        ),
    ],
)
@pytest.mark.parametrize("form", [".rk", ".yaml"])
def test_a_period_names_the_calendar_it_counts_on(
    tmp_path: Path, body: str, due: str, form: str
) -> None:
    if form == ".yaml":
        trigger, target = body.rsplit(" -> ", 1)
        kind, expr = trigger.split(" ", 1)
        body = f"{{{kind}: '{expr}', to: {target}}}"
    policy = rulekit.load(_two_calendars(tmp_path, body, form))
    # the artifact names the calendar too, and a loaded artifact counts on it
    out = tmp_path / "two.json"
    out.write_text(json.dumps(artifact.to_json(policy)), encoding="utf-8")
    engine = rulekit.Engine(rulekit.load(out))
    start = stdlib.parse_timestamp("2026-09-28T10:00:00+08:00")
    case = engine.open("w", {"t": start}, at=stdlib.parse_timestamp("2026-09-30T10:00:00+08:00"))
    assert [d[0].isoformat() for d in engine.pending(case)] == [due]


@pytest.mark.parametrize(
    ("body", "code", "message", "column"),
    [
        ("after 5 working days -> done", "RK0213", "and 2 are declared (cn, hk)", 11),
        ("after 5 working days in ch -> done", "RK0212", "unknown calendar `ch`", 11),
        ("on go when t.localDate().isWorkingDay() -> done", "RK0213", "`isWorkingDay` needs", 30),
        ('on go when t.localDate().nextWorkingDay("hx") -> done', "RK0212", "`hx`", 45),
        ("after 1 month in cn -> done", "RK0108", "only working days are counted on a", 11),
    ],
)
def test_with_several_calendars_each_use_names_one(
    tmp_path: Path, body: str, code: str, message: str, column: int
) -> None:
    with pytest.raises(CompileError) as info:
        rulekit.load(_two_calendars(tmp_path, body))
    [d] = info.value.diagnostics
    assert (d.code, d.line) == (code, 11)
    assert message in d.message
    if column:
        assert d.column == column


def test_a_period_constant_travels_in_the_artifact_with_its_calendar(tmp_path: Path) -> None:
    policy = rulekit.load(POLICY)
    assert policy.hash == rulekit.load(POLICY.with_suffix(".yaml")).hash
    data = artifact.to_json(policy)
    named = {c["name"]: c for c in data["constants"]}
    assert (named["RESPONSE"]["type"], named["RESPONSE"]["value"]) == ("period", "1 month")
    assert named["RESPONSE"]["note"][0] == "assumption"
    assert named["REVIEW"]["value"] == "5 working days in cn"  # the calendar it was bound to
    out = tmp_path / "p.json"
    out.write_text(json.dumps(data), encoding="utf-8")
    loaded = rulekit.load(out)
    assert loaded.hash == policy.hash
    review = loaded.constants["REVIEW"].value
    assert review.text == policy.constants["REVIEW"].value.text == "5 working days in cn"
    assert review.calendar == policy.calendars[0]


def test_explain_times_shows_a_period_constant_by_value_and_name() -> None:
    shown = times.render(times.worst_case_times(rulekit.load(POLICY)))
    assert "review --after 5 working days (REVIEW) (at most 15d)--> overdue" in shown
    assert "waiting --after 1 month (RESPONSE) from request.received_at--> overdue" in shown


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1 fortnight", "constant REVIEW: `1 fortnight` is not a period"),
        ("5 working days in hk", "constant REVIEW: unknown calendar `hk`"),
        ("1 month in cn", "constant REVIEW: only working days are counted on a calendar"),
        (5, "constant REVIEW: a period is written as text"),
    ],
)
def test_a_tampered_period_constant_is_refused(tmp_path: Path, value: object, message: str) -> None:
    data = artifact.to_json(rulekit.load(POLICY))
    for c in data["constants"]:
        if c["name"] == "REVIEW":
            c["value"] = value
    data["hash"] = artifact.content_hash(data)
    out = tmp_path / "p.json"
    out.write_text(json.dumps(data), encoding="utf-8")
    [(code, said), *_] = _codes(out)
    assert code == "RK0501"
    assert message in said


def test_a_period_constant_keeps_reading_no_facts(tmp_path: Path) -> None:
    path = tmp_path / "p.rk"
    path.write_text(
        'policy p version "1"\nfacts { t: time }\nconst LATE = t + 1 month\n'
        "actors a\nevent go by a\nworkflow w { initial state s { on go -> s } }\n",
        encoding="utf-8",
    )
    [(code, said)] = _codes(path)
    assert (code, said) == ("RK0314", "constant `LATE` reads `t`")


def test_the_modifiers_say_what_the_calendar_functions_computed() -> None:
    """`after RESPONSE from t, rolled to a working day, end of day` (workflow legal) is the
    deadline `at response_due`, the value `(t.localDate() + 1 month).nextWorkingDay()
    .endOfDay()` (legal_by_hand),
    for a receipt on every day of 2026 and 2027, early, late and at noon."""
    engine = rulekit.Engine(rulekit.load(POLICY))
    opened = stdlib.parse_timestamp("2025-12-31T00:00:00+08:00")
    day = stdlib.parse_timestamp("2026-01-01T00:00:00+08:00")
    while day.year < 2028:
        for hour in (0, 12, 23):
            t = day + timedelta(hours=hour, minutes=59)
            due = [
                engine.pending(engine.open(w, {"request": {"received_at": t}}, at=opened))
                for w in ("legal", "legal_by_hand")
            ]
            assert due[0] == due[1], t
        day += timedelta(days=1)


def _modified(tmp_path: Path, body: str, zone: str = "UTC") -> rulekit.Policy:
    path = _policy(tmp_path, "holidays: [2026-03-09]", body)
    path.write_text(path.read_text().replace("Europe/Berlin", zone), encoding="utf-8")
    return rulekit.load(path)


@pytest.mark.parametrize(
    ("body", "due"),
    [
        # Friday 6 March 2026, 10:00 UTC; Monday 9 March is a holiday on the calendar.
        ("after 48h, end of day -> done", "2026-03-08T23:59:59.999999+00:00"),
        ("after 1d, rolled to a working day -> done", "2026-03-10T10:00:00+00:00"),
        ("after 1d, rolled to a working day in de -> done", "2026-03-10T10:00:00+00:00"),
        (
            "after 1d, end of day, rolled to a working day -> done",
            "2026-03-10T23:59:59.999999+00:00",
        ),
        (
            "after 12h, rolled to a working day, end of day -> done",
            "2026-03-06T23:59:59.999999+00:00",
        ),
        ("at t, end of day -> done", "2026-03-06T23:59:59.999999+00:00"),
        ("at t + 3 calendar days, rolled to a working day -> done", "2026-03-10T10:00:00+00:00"),
    ],
)
def test_a_deadline_is_rolled_to_a_working_day_and_lasts_to_the_end_of_day(
    tmp_path: Path, body: str, due: str
) -> None:
    policy = _modified(tmp_path, body)
    out = tmp_path / "p.json"
    out.write_text(json.dumps(artifact.to_json(policy)), encoding="utf-8")
    for p in (policy, rulekit.load(out)):
        engine = rulekit.Engine(p)
        friday = stdlib.parse_timestamp("2026-03-06T10:00:00Z")
        case = engine.open("w", {"t": friday}, at=friday)
        assert [d[0].isoformat() for d in engine.pending(case)] == [due]


def test_an_unmodified_deadline_keeps_its_artifact(tmp_path: Path) -> None:
    data = artifact.to_json(_modified(tmp_path, "after 48h -> done"))
    for t in data["workflows"][0]["states"][0]["transitions"]:
        assert "rolled" not in t and "end_of_day" not in t


@pytest.mark.parametrize(
    ("body", "bound"),
    [
        ("after 48h, end of day -> done", "after 48h, end of day (at most 3d)"),
        # the calendar's longest run of days off: Saturday 7 to Monday 9 March
        ("after 1d, rolled to a working day -> done", "rolled to a working day in de (at most 4d)"),
        ("after 1 month, end of day -> done", "after 1 month, end of day (at most 32d)"),
    ],
)
def test_explain_times_bounds_what_the_modifiers_add(tmp_path: Path, body: str, bound: str) -> None:
    assert bound in times.render(times.worst_case_times(_modified(tmp_path, body)))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"rolled": "hk"}, "rolled on calendar 'hk', which is not declared"),
        ({"rolled": "de", "kind": "event", "event": "go"}, "only a deadline is rolled"),
    ],
)
def test_a_tampered_modifier_is_refused(
    tmp_path: Path, edit: dict[str, object], message: str
) -> None:
    data = artifact.to_json(_modified(tmp_path, "after 1d, rolled to a working day -> done"))
    data["workflows"][0]["states"][0]["transitions"][1].update(edit)
    data["hash"] = artifact.content_hash(data)
    out = tmp_path / "p.json"
    out.write_text(json.dumps(data), encoding="utf-8")
    assert any(message in said for _, said in _codes(out))
