"""rulekit.core.calendar: the table tests/time/calendar.yaml at every boundary
(month ends, leap years, clock changes, holidays, adjusted working days), and the
reading of calendar data."""

from __future__ import annotations

import calendar as calendar_module
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from rulekit.core import calendar as cal
from rulekit.expr import stdlib
from support import TESTS

TABLE = TESTS / "time" / "calendar.yaml"


def _load(path: Path) -> tuple[dict[str, cal.WorkCalendar], list[Any]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    calendars = {n: cal.calendar_from_data(n, d) for n, d in doc["calendars"].items()}
    return calendars, [pytest.param(c, id=c["name"]) for c in doc["cases"]]


CALENDARS, CASES = _load(TABLE)


def _time(v: Any) -> datetime:
    return stdlib.parse_timestamp(v if isinstance(v, str) else v.isoformat())


def _run(case: dict[str, Any]) -> Any:
    op = case["op"]
    zone = stdlib.time_zone(case["zone"]) if "zone" in case else None
    calendar = CALENDARS[case["calendar"]] if "calendar" in case else None
    if op == "add_months":
        return cal.add_months(case["date"], case["months"])
    if op == "shift":
        assert zone is not None
        return cal.shift(_time(case["at"]), cal.parse_period(case["period"]), zone, calendar)
    if op == "resolve":
        assert zone is not None
        return cal.resolve(case["date"], time.fromisoformat(case["time"]), zone)
    if op == "end_of_day":
        assert zone is not None
        return cal.end_of_day(case["date"], zone)
    if op == "working":
        assert calendar is not None
        return calendar.add_working_days(case["date"], case["n"])
    if op == "roll":
        assert calendar is not None
        return calendar.roll_forward(case["date"])
    if op == "longest":
        assert zone is not None
        return cal.longest(cal.parse_period(case["period"]), zone, calendar)
    raise AssertionError(f"unknown op {op}")


def _same(got: Any, want: Any) -> bool:
    if isinstance(got, datetime):
        w = _time(want)
        return got == w and got.utcoffset() == w.utcoffset()
    if isinstance(want, str) and not isinstance(got, date):
        return bool(got == stdlib.parse_duration(want))
    return bool(got == want)


@pytest.mark.parametrize("case", CASES)
def test_table(case: dict[str, Any]) -> None:
    if "error" in case:
        with pytest.raises(cal.CalendarError, match=case["error"]):
            _run(case)
        return
    got = _run(case)
    assert _same(got, case["want"]), f"{case['name']}: got {got}, want {case['want']}"


def test_the_table_checks_its_weekdays() -> None:
    # The cases lean on these: a wrong weekday would make a case test something else.
    assert date(2026, 2, 13).strftime("%a") == "Fri"
    assert date(2026, 2, 14).strftime("%a") == "Sat"
    assert date(2026, 7, 3).strftime("%a") == "Fri"
    assert date(2026, 9, 20).strftime("%a") == "Sun"
    assert date(2026, 12, 24).strftime("%a") == "Thu"


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("1 month", cal.Period(1, "month")),
        ("2 months", cal.Period(2, "month")),
        ("1 year", cal.Period(1, "year")),
        ("14 calendar days", cal.Period(14, "calendar day")),
        ("5  working\tdays", cal.Period(5, "working day")),
        ("1 working day", cal.Period(1, "working day")),
        ("5 working days in hk", cal.Period(5, "working day", "hk")),
        ("5 working days  in\tcn_2026", cal.Period(5, "working day", "cn_2026")),
    ],
)
def test_parse_period(text: str, period: cal.Period) -> None:
    assert cal.parse_period(text) == period
    assert cal.parse_period(str(period)) == period


@pytest.mark.parametrize(
    "text",
    [
        "1 fortnight",
        "month",
        "1.5 months",
        "14 days",
        "1234567 years",
        "1 month in cn",  # only working days are counted on a calendar
        "5 working days in 2026",
    ],
)
def test_parse_period_refuses(text: str) -> None:
    with pytest.raises(cal.CalendarError):
        cal.parse_period(text)


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        ({"holidays": ["2026-02-30"]}, "holidays[0]", "is not a date"),
        ({"holidays": ["tomorrow"]}, "holidays[0]", "write YYYY-MM-DD"),
        ({"holidays": [{"from": "2026-02-03", "to": "2026-02-01"}]}, "holidays[0]", "ends"),
        ({"holidays": [{"from": "2026-02-03"}]}, "holidays[0]", "from: DATE, to: DATE"),
        ({"holidays": "2026-01-01"}, "holidays", "list of dates"),
        ({"weekend": ["funday"]}, "weekend[0]", "day of the week"),
        ({"weekdays": ["sat"]}, "weekdays", "unknown key"),
    ],
)
def test_bad_calendar_data_names_the_place(data: Any, where: str, message: str) -> None:
    with pytest.raises(cal.CalendarError) as info:
        cal.calendar_from_data("x", data)
    assert info.value.where == where
    assert message in info.value.message


def test_a_day_both_holiday_and_working_is_refused() -> None:
    with pytest.raises(cal.CalendarError, match="both a holiday and a working day"):
        cal.calendar_from_data("x", {"holidays": ["2026-02-14"], "working_days": ["2026-02-14"]})


def test_calendar_data_round_trips() -> None:
    for c in CALENDARS.values():
        assert cal.calendar_from_data(c.name, c.to_data()) == c


# A calendar file is input from outside: one written to make every worst case or every
# deadline cost minutes is refused, or costs what reading its days costs.
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"holidays": ["1800-01-01", "2099-12-31"]}, "within 200 years of each other"),
        (
            {
                "weekend": [d.lower() for d in calendar_module.day_name],
                "working_days": ["2026-01-05"],
            },
            "no day is a working day",
        ),
    ],
)
def test_a_hostile_calendar_is_refused(data: Any, message: str) -> None:
    with pytest.raises(cal.CalendarError, match=message):
        cal.calendar_from_data("x", data)


def test_worst_cases_over_a_long_calendar_are_found_without_walking_each_start() -> None:
    """Two listed dates 199 years apart: every start in between is a start to consider.
    Walking 1,000 working days from each took about a minute; a search is immediate."""
    wide = cal.calendar_from_data("x", {"holidays": ["1901-01-01", "2099-12-31"]})
    assert wide.longest(1000) == 1403  # 200 full weeks and 0 days: 1,000 weekdays
    assert wide.longest_roll() == 2  # a weekend: neither holiday (a Tuesday, a Thursday) meets one
    far = cal.WorkCalendar("far").add_working_days(date(2026, 1, 5), 999_999)
    assert far == date(2026, 1, 5) + (999_999 // 5) * timedelta(days=7) + timedelta(days=4)
