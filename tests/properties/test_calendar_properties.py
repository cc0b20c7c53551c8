"""Hypothesis properties of rulekit.core.calendar's arithmetic, in zones with and
without clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from rulekit.core import calendar as cal

ZONES = st.sampled_from(
    [ZoneInfo(z) for z in ("America/New_York", "Europe/Berlin", "Asia/Shanghai", "UTC")]
)
DATES = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31))
INSTANTS = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
)
CN = cal.WorkCalendar(
    "cn",
    holidays=frozenset(date(2026, 2, 15) + timedelta(days=k) for k in range(9)),
    working=frozenset({date(2026, 2, 14), date(2026, 2, 28)}),
)


def _exists(t: datetime, zone: ZoneInfo) -> bool:
    """Whether ``t``'s local wall time exists once in ``zone`` (not in a gap, not repeated)."""
    here = t.astimezone(zone)
    wall = here.replace(tzinfo=None)
    first = cal.resolve(wall.date(), wall.time(), zone)
    later = wall.replace(fold=1).replace(tzinfo=zone).astimezone(UTC)
    return first == t and later == t


@given(INSTANTS, st.integers(-400, 400), ZONES)
def test_calendar_days_there_and_back_keep_the_wall_time(
    t: datetime, n: int, zone: ZoneInfo
) -> None:
    p = cal.Period(n, "calendar day")
    there = cal.shift(t, p, zone)
    back = cal.shift(there, -p, zone)
    if _exists(t, zone) and _exists(there, zone):
        assert back == t
    # the wall time is kept wherever it exists on the day it lands
    assert cal.local_date(there, zone) == cal.local_date(t, zone) + timedelta(days=n)


@given(DATES, st.integers(-240, 240), st.integers(-240, 240))
def test_adding_months_is_monotone(d: date, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert cal.add_months(d, lo) <= cal.add_months(d, hi)


@given(DATES, DATES, st.integers(0, 240))
def test_adding_months_keeps_the_order_of_dates(d1: date, d2: date, n: int) -> None:
    lo, hi = sorted((d1, d2))
    assert cal.add_months(lo, n) <= cal.add_months(hi, n)


@given(DATES, st.integers(-240, 240))
def test_months_land_on_the_same_day_or_the_last_of_the_month(d: date, n: int) -> None:
    r = cal.add_months(d, n)
    assert (r.year * 12 + r.month) - (d.year * 12 + d.month) == n
    assert r.day == d.day or (r.day < d.day and r.day == cal.days_in_month(r.year, r.month))


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
    ),
    st.integers(0, 36),
    ZONES,
)
def test_a_period_takes_no_longer_than_its_worst_case(t: datetime, n: int, zone: ZoneInfo) -> None:
    """From 2000 on, where cal.clock_changes looks (Shanghai kept summer time in 1991)."""
    for unit in ("month", "calendar day"):
        p = cal.Period(n, unit)
        assert timedelta(0) <= cal.shift(t, p, zone) - t <= cal.longest(p, zone)
    w = cal.Period(n % 12, "working day")
    assert timedelta(0) <= cal.shift(t, w, zone, CN) - t <= cal.longest(w, zone, CN)


@given(DATES, st.integers(0, 30))
def test_working_days_land_on_working_days(d: date, n: int) -> None:
    r = CN.add_working_days(d, n)
    if n:
        assert CN.is_working(r)
        if CN.is_working(d):
            assert CN.add_working_days(r, -n) == d
    count = sum(CN.is_working(d + timedelta(days=k)) for k in range(1, (r - d).days + 1))
    assert count == n


@given(DATES, ZONES)
def test_the_end_of_a_day_is_the_microsecond_before_the_next(d: date, zone: ZoneInfo) -> None:
    end = cal.end_of_day(d, zone)
    assert cal.local_date(end, zone) == d
    assert cal.local_date(end + timedelta(microseconds=1), zone) == d + timedelta(days=1)


@given(
    st.sets(st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 3, 31)), max_size=30),
    st.frozensets(st.integers(1, 7), max_size=3),
    st.integers(0, 12),
)
def test_worst_cases_are_the_longest_walk_from_any_start(
    holidays: set[date], weekend: frozenset[int], n: int
) -> None:
    """The worst cases found by search are those of walking from every start."""
    c = cal.WorkCalendar("c", weekend=weekend, holidays=frozenset(holidays))
    starts = [date(2025, 12, 1) + timedelta(days=k) for k in range(150)]
    walked = max(cal.days_between(d, c.add_working_days(d, n)) for d in starts)
    rolled = max(cal.days_between(d, c.roll_forward(d)) for d in starts)
    assert c.longest(n) == (walked if n else 0)
    assert c.longest_roll() == rolled


@given(DATES, st.integers(-2000, 2000))
def test_counting_weeks_at_a_time_past_the_listed_days_is_counting_day_by_day(
    d: date, n: int
) -> None:
    step = 1 if n >= 0 else -1
    expected, left = d, abs(n)
    while left:
        expected = cal.add_days(expected, step)
        left -= CN.is_working(expected)
    assert CN.add_working_days(d, n) == expected
