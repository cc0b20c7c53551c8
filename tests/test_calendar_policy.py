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
