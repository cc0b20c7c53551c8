"""Time as contracts count it: calendar periods, local days and working days.

Pure functions over the standard library's ``datetime``/``date`` and ``zoneinfo``
(no third-party date library: ``zoneinfo`` already has the IANA rules and PEP 495's
``fold``, which is exactly what resolving a local wall time needs; what remains
is a few lines of arithmetic that must follow the rules written here, which a
library would have to be bent to anyway). docs/time.md is the reference.

The rules:

- **Months and years** go to the same day of the month, or the last day of a
  shorter month: 31 Jan + 1 month = 28 Feb (29 in a leap year); 29 Feb + 1 year =
  28 Feb. A chain of periods is always counted from the original date:
  31 Jan + 2 months = 31 Mar (never 31 Jan + 1 month + 1 month = 28 Mar).
- **Calendar days** keep the local wall time across clock changes: 14 calendar
  days after 10:00 on the day before a clock change is 10:00, whatever the
  number of hours in between.
- **A wall time that does not exist or exists twice** (a clock change in the
  zone) is resolved as RFC 5545 and java.time do: a time in a spring-forward gap
  is moved forward by the length of the gap (02:30 on the day New York skips
  02:00-03:00 is 03:30); a time that occurs twice (the fall-back hour) is its
  first occurrence, at the earlier offset.
- **The end of a local day** is its last instant, 23:59:59.999999: a deadline
  due at the end of a day is due at that instant, the party may still act at
  it, and the deadline fires at the first moment after it, 00:00 of the next
  day (the scenario contract's time rules: due at T, may still act at T, fires
  at the first moment after T). Times have microsecond resolution, so nothing
  lies between the two.
- **Working days** are counted on a :class:`WorkCalendar` (weekend days, holidays,
  and extra working days for adjusted weekends). N working days after an instant
  is the same wall time on the Nth working day after its local date (the day
  itself never counts, working or not).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache

#: Period units, as the language spells them (singular).
UNITS = ("year", "month", "calendar day", "working day")
_US = timedelta(microseconds=1)
_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class CalendarError(ValueError):
    """A calendar or a period that cannot be used; ``where`` names the part of the data."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message
        self.where = where


@dataclass(frozen=True)
class Period:
    """A calendar period: ``count`` of ``unit`` (one of :data:`UNITS`).

    A period is not a length of time: 1 month after 31 Jan is 28 days, after 1 Mar
    31 days; it is counted in a time zone (and, for working days, on a calendar)."""

    count: int
    unit: str
    #: the working-day calendar it names (``5 working days in cn``); None: the policy's only one
    calendar: str | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise CalendarError(f"unknown period unit `{self.unit}` (units: {', '.join(UNITS)})")
        if self.calendar is not None and self.unit != "working day":
            raise CalendarError(f"only working days are counted on a calendar, not {self.unit}s")

    def __str__(self) -> str:
        plural = "" if abs(self.count) == 1 else "s"
        named = f" in {self.calendar}" if self.calendar is not None else ""
        return f"{self.count} {self.unit}{plural}{named}"

    def __neg__(self) -> Period:
        return Period(-self.count, self.unit, self.calendar)

    @property
    def months(self) -> int:
        """The number of months of a month or year period (0 for days)."""
        return self.count * 12 if self.unit == "year" else self.count if self.unit == "month" else 0


_PERIOD_TEXT = re.compile(
    r"(-?\d+)\s+(years?|months?|calendar\s+days?|working\s+days?)"
    r"(?:\s+in\s+([_a-zA-Z][_a-zA-Z0-9]*))?\Z",
    re.ASCII,
)


def parse_period(text: str) -> Period:
    """``1 month``, ``2 months``, ``1 year``, ``14 calendar days``, ``5 working days``,
    ``5 working days in cn`` (on the calendar named ``cn``)."""
    m = _PERIOD_TEXT.match(text.strip())
    if not m:
        raise CalendarError(
            f"`{text}` is not a period (like 1 month, 2 years, 14 calendar days, 5 working days)"
        )
    unit = " ".join(m.group(2).split()).rstrip("s")
    count = int(m.group(1))
    if len(m.group(1).lstrip("-")) > 6:
        raise CalendarError(f"period `{text}` is out of range")
    return Period(count, unit, m.group(3))


# -- dates -------------------------------------------------------------------------------


def days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - date(year, month, 1)).days


def add_months(d: date, months: int) -> date:
    """The same day of the month ``months`` later (earlier when negative), or the
    last day of that month when it is shorter."""
    index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise CalendarError("date out of range")
    return date(year, month + 1, min(d.day, days_in_month(year, month + 1)))


def add_days(d: date, days: int) -> date:
    try:
        return d + timedelta(days=days)
    except OverflowError:
        raise CalendarError("date out of range") from None


def days_between(a: date, b: date) -> int:
    """Whole days from ``a`` to ``b`` (negative when ``b`` is earlier)."""
    return (b - a).days


# -- local times -------------------------------------------------------------------------


def local(t: datetime, zone: tzinfo) -> datetime:
    """The instant ``t`` on the clocks of ``zone``."""
    if t.tzinfo is None:
        raise CalendarError("a time must carry a time zone (got a naive datetime)")
    try:
        return t.astimezone(zone)
    except OverflowError:
        raise CalendarError("time out of range") from None


def local_date(t: datetime, zone: tzinfo) -> date:
    """The local date of the instant ``t`` in ``zone``."""
    return local(t, zone).date()


def resolve(day: date, wall: time, zone: tzinfo) -> datetime:
    """The instant whose local date and wall time in ``zone`` are ``day`` and ``wall``.

    A wall time in a spring-forward gap is moved forward by the gap's length; one
    that occurs twice is its first occurrence (RFC 5545, java.time). The result
    carries the fixed offset in force at that instant, so arithmetic on it is on
    instants and it prints as the local time."""
    naive = datetime.combine(day, wall.replace(tzinfo=None, fold=0))
    # PEP 495: fold=0 reads a repeated wall time at the earlier (first) offset, and a
    # wall time in a gap at the offset before the gap, which is the instant the
    # length of the gap later than the wall time says: the rule above, both cases.
    try:
        instant = naive.replace(tzinfo=zone).astimezone(UTC)
    except OverflowError:
        raise CalendarError("time out of range") from None
    return fixed(instant, zone)


def start_of_day(day: date, zone: tzinfo) -> datetime:
    """The first instant of ``day`` in ``zone`` (01:00 where the day starts in a gap)."""
    return resolve(day, time(0), zone)


def end_of_day(day: date, zone: tzinfo) -> datetime:
    """The last instant of ``day`` in ``zone``: the microsecond before the next day starts."""
    return fixed(start_of_day(add_days(day, 1), zone) - _US, zone)


def fixed(t: datetime, zone: tzinfo) -> datetime:
    """The instant ``t`` with the fixed offset ``zone`` has at that instant."""
    offset = local(t, zone).utcoffset()
    assert offset is not None
    return t.astimezone(timezone(offset))


# -- working days ------------------------------------------------------------------------

#: How far apart the dates a calendar lists may be (about 200 years): it bounds the work of
#: reading one and of its worst cases, which a hostile file must not make unbounded.
MAX_SPAN_DAYS = 200 * 365


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are working days: every day but the ``weekend`` days (ISO weekday
    numbers, Monday 1 to Sunday 7) and the ``holidays``, plus the ``working`` dates
    (a weekend day made a working day, as China's adjusted weekends do)."""

    name: str
    weekend: frozenset[int] = frozenset({6, 7})
    holidays: frozenset[date] = field(default_factory=frozenset)
    working: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if len(self.weekend) == 7:  # a week with no working day: nothing counts past the list
            raise CalendarError("every day of the week is a weekend day: no day is a working day")
        both = self.holidays & self.working
        if both:
            first = min(both).isoformat()
            raise CalendarError(f"{first} is both a holiday and a working day")
        span = self.listed()
        if span is not None and (span[1] - span[0]).days > MAX_SPAN_DAYS:
            raise CalendarError(
                f"its dates run from {span[0].isoformat()} to {span[1].isoformat()}: a "
                f"calendar lists days within {MAX_SPAN_DAYS // 365} years of each other"
            )

    def is_working(self, d: date) -> bool:
        if d in self.working:
            return True
        return d.isoweekday() not in self.weekend and d not in self.holidays

    def roll_forward(self, d: date) -> date:
        """``d`` when it is a working day, else the next working day after it."""
        while not self.is_working(d):
            d = add_days(d, 1)
        return d

    def add_working_days(self, d: date, n: int) -> date:
        """The ``n``th working day after ``d`` (before it when ``n`` is negative; ``d``
        itself when 0). ``d`` itself never counts.

        Past the dates the calendar lists only the weekend counts, so every 7 days hold
        the same number of working days: those are crossed a week at a time."""
        step = 1 if n >= 0 else -1
        left = abs(n)
        per_week = 7 - len(self.weekend)
        span = self.listed()
        while left:
            beyond = span is None or (d >= span[1] if step > 0 else d <= span[0])
            if beyond and per_week and left > per_week:
                weeks = (left - 1) // per_week
                d = add_days(d, step * 7 * weeks)
                left -= weeks * per_week
                continue
            d = add_days(d, step)
            if self.is_working(d):
                left -= 1
        return d

    def longest_roll(self) -> int:
        """The most days :meth:`roll_forward` moves a date: the longest run of days
        that are not working days (searched as :meth:`longest` is)."""
        return _longest_roll(self)

    def listed(self) -> tuple[date, date] | None:
        """The first and last dates the calendar lists (holidays and working days)."""
        return _listed(self)

    def longest(self, n: int) -> int:
        """The most calendar days ``n`` working days (n >= 0) can take from any day:
        searched over every start the listed dates affect, and a plain week beyond."""
        return _longest(self, n)

    def to_data(self) -> dict[str, object]:
        """The calendar as plain JSON data (what a calendar file holds)."""
        return {
            "weekend": [_WEEKDAY_NAMES[d - 1] for d in sorted(self.weekend)],
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
            "working_days": [d.isoformat() for d in sorted(self.working)],
        }


@lru_cache(maxsize=64)
def _listed(cal: WorkCalendar) -> tuple[date, date] | None:
    days = cal.holidays | cal.working
    return (min(days), max(days)) if days else None


def _worst(cal: WorkCalendar, n: int) -> int:
    """The most calendar days from a date to the ``n``th working day after it (``n`` 0: to
    the working day it rolls forward to), over every start the listed dates affect: from
    a week before the first to a week after the last (any other start sees only weekends,
    whose pattern those starts already cover). Each start's answer is found by binary
    search in the working days of that stretch, so a calendar of many years costs what
    reading its days costs, not days times ``n``."""
    span = cal.listed()
    first = add_days(span[0], -7) if span else date(2001, 1, 1)
    last = add_days(span[1], 7) if span else date(2001, 1, 7)
    # enough days after the last start for its nth working day: weeks of weekend only
    per_week = 7 - len(cal.weekend)
    horizon = last.toordinal() + 7 * (n // per_week + 2)
    working = [
        o for o in range(first.toordinal(), horizon + 1) if cal.is_working(date.fromordinal(o))
    ]
    worst = 0
    for start in range(first.toordinal(), last.toordinal() + 1):
        if n == 0:
            target = working[bisect.bisect_left(working, start)]
        else:
            target = working[bisect.bisect_right(working, start) + n - 1]
        worst = max(worst, target - start)
    return worst


@lru_cache(maxsize=64)
def _longest(cal: WorkCalendar, n: int) -> int:
    return _worst(cal, n) if n > 0 else 0


@lru_cache(maxsize=64)
def _longest_roll(cal: WorkCalendar) -> int:
    return _worst(cal, 0)


def weekday_number(name: object) -> int:
    """ISO weekday number of a day name (``saturday``, ``sat``; any case)."""
    if isinstance(name, str):
        low = name.strip().lower()
        for i, full in enumerate(_WEEKDAY_NAMES):
            if low in (full, full[:3]):
                return i + 1
    raise CalendarError(f"`{name}` is not a day of the week (monday ... sunday)")


def _date(v: object, where: str) -> date:
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    if isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        try:
            return date.fromisoformat(v)
        except ValueError as e:
            raise CalendarError(f"`{v}` is not a date: {e}", where) from None
    raise CalendarError(f"`{v}` is not a date (write YYYY-MM-DD)", where)


def _dates(v: object, where: str) -> list[date]:
    """A list of dates and ``{from: DATE, to: DATE}`` ranges (both ends included)."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise CalendarError("must be a list of dates", where)
    out: list[date] = []
    for i, item in enumerate(v):
        at = f"{where}[{i}]"
        if isinstance(item, Mapping):
            if set(item) != {"from", "to"}:
                raise CalendarError("a range of dates is {from: DATE, to: DATE}", at)
            a, b = _date(item["from"], f"{at}.from"), _date(item["to"], f"{at}.to")
            if b < a:
                raise CalendarError(f"the range ends ({b}) before it starts ({a})", at)
            if days_between(a, b) > 366:
                raise CalendarError("a range of dates spans more than a year", at)
            out.extend(add_days(a, k) for k in range(days_between(a, b) + 1))
        else:
            out.append(_date(item, at))
    return out


def calendar_from_data(name: str, data: object) -> WorkCalendar:
    """A calendar from its data: ``{weekend: [saturday, sunday], holidays: [DATE or
    {from, to}, ...], working_days: [DATE, ...]}`` (every key optional; the weekend is
    Saturday and Sunday unless given). Raises :class:`CalendarError` naming the key."""
    if not isinstance(data, Mapping):
        raise CalendarError("a calendar is a map with weekend, holidays and working_days")
    unknown = sorted(set(data) - {"weekend", "holidays", "working_days", "description"})
    if unknown:
        raise CalendarError(
            "unknown key (keys: weekend, holidays, working_days, description)", str(unknown[0])
        )
    weekend_data = data.get("weekend", ["saturday", "sunday"])
    if not isinstance(weekend_data, list):
        raise CalendarError("must be a list of days of the week", "weekend")
    weekend = set()
    for i, w in enumerate(weekend_data):
        try:
            weekend.add(weekday_number(w))
        except CalendarError as e:
            raise CalendarError(e.message, f"weekend[{i}]") from None
    holidays = _dates(data.get("holidays"), "holidays")
    working = _dates(data.get("working_days"), "working_days")
    return WorkCalendar(name, frozenset(weekend), frozenset(holidays), frozenset(working))


def read_file(name: str, text: str) -> WorkCalendar:
    """A calendar from the text of its file (YAML: weekend, holidays, working_days); every
    scalar is read as text, so a bad date is a :class:`CalendarError` naming its place."""
    import yaml  # PyYAML: only where a calendar is read (rulekit check starts faster)

    try:
        data = yaml.load(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise CalendarError(f"the file is not valid YAML{where}") from None
    return calendar_from_data(name, data)


# -- periods on times ----------------------------------------------------------------------


def shift_date(d: date, p: Period, calendar: WorkCalendar | None = None) -> date:
    """``d`` moved by the period ``p``."""
    if p.unit in ("year", "month"):
        return add_months(d, p.months)
    if p.unit == "calendar day":
        return add_days(d, p.count)
    if calendar is None:
        raise CalendarError("working days need a calendar")
    return calendar.add_working_days(d, p.count)


def shift(t: datetime, p: Period, zone: tzinfo, calendar: WorkCalendar | None = None) -> datetime:
    """The instant ``p`` after ``t`` counted in ``zone``: the same local wall time on
    the date the period leads to (resolved by :func:`resolve`)."""
    here = local(t, zone)
    return resolve(shift_date(here.date(), p, calendar), here.timetz(), zone)


def adjust(t: datetime, zone: tzinfo, rolled: WorkCalendar | None, end_of_day_: bool) -> datetime:
    """A deadline's instant ``t`` moved as its modifiers say: ``rolled`` (``rolled to a
    working day``) moves it, when its local date is not a working day, to the same wall
    time on the next working day; ``end_of_day_`` (``end of day``) to the last instant of
    its local date. Both act on the local date, so their order does not matter."""
    here = local(t, zone)
    day = rolled.roll_forward(here.date()) if rolled is not None else here.date()
    if end_of_day_:
        return end_of_day(day, zone)
    if day == here.date():
        return t
    return resolve(day, here.timetz(), zone)


def adjust_slack(zone: tzinfo, rolled: WorkCalendar | None, end_of_day_: bool) -> timedelta:
    """The most :func:`adjust` can add (for worst-case analysis): the calendar's longest
    run of days off, a day for the end of a day, and the zone's largest clock change."""
    days = (rolled.longest_roll() if rolled is not None else 0) + (1 if end_of_day_ else 0)
    return timedelta(days=days) + clock_changes(zone) if days else timedelta(0)


def longest(p: Period, zone: tzinfo, calendar: WorkCalendar | None = None) -> timedelta:
    """The most absolute time a period can take (for worst-case analysis): a month is
    at most 31 days, a year 366, N working days what the calendar's longest stretch
    makes them; plus, where ``zone``'s clocks change, the largest change, which a kept
    wall time may cross."""
    n = abs(p.count)
    if p.unit == "year":
        days = 366 * n
    elif p.unit == "month":
        days = 31 * n
    elif p.unit == "calendar day":
        days = n
    elif calendar is None:
        raise CalendarError("working days need a calendar")
    else:
        days = calendar.longest(n)
    return timedelta(days=days) + clock_changes(zone) if days else timedelta(0)


@lru_cache(maxsize=64)
def clock_changes(zone: tzinfo) -> timedelta:
    """How far apart ``zone``'s offsets are from 2000 to 2100 (sampled weekly): 0 for a
    zone without clock changes, 1 hour for summer time, a day for Samoa's 2011 skip.
    Earlier changes are left out (Shanghai's summer time of 1986-1991 would add an hour
    to every bound of a Chinese policy), so bounds hold for instants from 2000 on."""
    offsets = set()
    t = datetime(2000, 1, 1, tzinfo=UTC)
    while t.year < 2100:
        offsets.add(t.astimezone(zone).utcoffset())
        t += timedelta(days=7)
    known = [o for o in offsets if o is not None]
    return max(known) - min(known)


# -- a policy's time rules ---------------------------------------------------------------


@dataclass(frozen=True)
class TimeRules:
    """Where a policy counts calendar time: its zone (``zone`` is the name as written,
    ``tz`` the zone itself) and its working-day calendars. Periods of working days and
    the calendar functions name the calendar they count on, unless the policy declares
    exactly one."""

    zone: str
    tz: tzinfo
    calendars: tuple[WorkCalendar, ...] = ()

    def calendar(self, name: str | None = None) -> WorkCalendar | None:
        """The calendar of that name (None: the only one declared); None when there is
        none of that name, or no name and not exactly one calendar."""
        if name is None:
            return self.calendars[0] if len(self.calendars) == 1 else None
        return next((c for c in self.calendars if c.name == name), None)

    def pick(self, name: str | None, what: str, spelled: str) -> WorkCalendar:
        """The calendar ``what`` counts on: the one ``name`` names, or without a name the
        only one declared. Raises :class:`CalendarChoice` saying what is wrong; ``spelled``
        shows how to name a calendar there, ``{}`` standing for the name."""
        known = [c.name for c in self.calendars]
        found = self.calendar(name)
        if found is not None:
            return found
        if name is not None:
            import difflib  # only when there is a mistake to suggest a fix for

            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            raise CalendarChoice(
                "RK0212",
                f"unknown calendar `{name}`",
                f"did you mean `{close[0]}`?"
                if close
                else "calendars the policy declares: " + (", ".join(known) or "(none)"),
            )
        if not known:
            raise CalendarChoice(
                "RK0212",
                f"{what} needs a working-day calendar, and none is declared",
                'declare one in the policy: calendar NAME from "FILE.yaml" (docs/time.md)',
            )
        raise CalendarChoice(
            "RK0213",
            f"{what} needs a working-day calendar, and {len(known)} are declared "
            f"({', '.join(known)}): which one?",
            "name it: " + ", ".join(spelled.format(k) for k in known),
        )


class CalendarChoice(CalendarError):
    """No calendar, or not one calendar, for what needs one: ``code`` is the diagnostic
    (RK0212 unknown or none, RK0213 several and none named), ``help`` what to write."""

    def __init__(self, code: str, message: str, help: str) -> None:
        super().__init__(message)
        self.code = code
        self.help = help


@dataclass(frozen=True)
class BoundPeriod:
    """A period as a value of the condition language: with the zone and calendar it
    counts in, so ``time + period`` needs nothing else."""

    period: Period
    tz: tzinfo
    calendar: WorkCalendar | None = None

    def __str__(self) -> str:
        return str(self.period)

    @property
    def text(self) -> str:
        """The period with the calendar it counts on named (``5 working days in cn``):
        how a compiled artifact keeps a period constant."""
        named = self.calendar.name if self.calendar is not None else None
        return str(Period(self.period.count, self.period.unit, named))

    def __neg__(self) -> BoundPeriod:
        return BoundPeriod(-self.period, self.tz, self.calendar)

    def after(self, t: datetime) -> datetime:
        """The instant the period ends when it starts at ``t``."""
        return shift(t, self.period, self.tz, self.calendar)

    def after_date(self, d: date) -> date:
        return shift_date(d, self.period, self.calendar)

    def longest(self) -> timedelta:
        return longest(self.period, self.tz, self.calendar)
