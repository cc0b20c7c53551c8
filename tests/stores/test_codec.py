"""The stores' JSON codec (issue 14: orjson instead of the standard library's json).

Stored text is read back as exactly the values written, and text written before the
change (by ``json``) reads back as it did: including what orjson alone would get wrong
(integers past 64 bits, NaN and the infinities, maps that look like tags).
"""

from __future__ import annotations

import base64
import json
import math
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import rulekit
from rulekit.stores import codec
from rulekit.stores.base import _pending_from_json, _pending_json
from rulekit.stores.sqlite import SQLiteDialect

from .backends import Backend
from .helpers import VALUES, T
from .test_store import VALUE_FACTS

IST = timezone(timedelta(hours=5, minutes=30))


def written_before(value: Any) -> str:
    """What the codec wrote before orjson (json, the same tags), for values without a map
    that looks like a tag."""

    def tagged(v: Any) -> Any:
        if isinstance(v, Decimal):
            return {"$rk": "money", "v": format(v, "f")}
        if isinstance(v, datetime):
            return {"$rk": "time", "v": v.isoformat()}
        if isinstance(v, timedelta):
            return {"$rk": "duration", "v": [v.days, v.seconds, v.microseconds]}
        if isinstance(v, bytes):
            return {"$rk": "bytes", "v": base64.b64encode(v).decode("ascii")}
        raise TypeError(type(v).__name__)

    return json.dumps(value, default=tagged, ensure_ascii=False, separators=(",", ":"))


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types (NaN equal to NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


OLD_TEXTS: list[tuple[str, Any]] = [
    (
        '{"amount":{"$rk":"money","v":"1234.50"},'
        '"paid_at":{"$rk":"time","v":"2021-02-28T23:59:59.123456+05:30"},'
        '"window":{"$rk":"duration","v":[2,3,7]},"blob":{"$rk":"bytes","v":"AP9iaW5hcnkK"},'
        '"count":7,"ratio":0.25,"flag":true,"note":null,"label":"月 \\"x\\""}',
        {
            "amount": Decimal("1234.50"),
            "paid_at": datetime(2021, 2, 28, 23, 59, 59, 123456, tzinfo=IST),
            "window": timedelta(days=2, seconds=3, microseconds=7),
            "blob": b"\x00\xffbinary\n",
            "count": 7,
            "ratio": 0.25,
            "flag": True,
            "note": None,
            "label": '月 "x"',
        },
    ),
    # what json writes and orjson cannot read, or reads otherwise
    (
        '{"ratio":NaN,"up":Infinity,"down":-Infinity}',
        {"ratio": math.nan, "up": math.inf, "down": -math.inf},
    ),
    (
        "[18446744073709551616,-9223372036854775809,123456789012345678901234567890]",
        [2**64, -(2**63) - 1, 123456789012345678901234567890],
    ),
    (
        "[1e+16,1.5e-07,-0.0,18446744073709551615,-9223372036854775808]",
        [1e16, 1.5e-7, -0.0, 2**64 - 1, -(2**63)],
    ),
    (
        '{"m":{"$rk":"map","v":[["$rk","money"],["v",{"$rk":"money","v":"1"}]]}}',
        {"m": {"$rk": "money", "v": Decimal("1")}},
    ),
    ('"\\ud800"', "\ud800"),
]


@pytest.mark.parametrize(("text", "value"), OLD_TEXTS)
def test_text_written_before_reads_back_the_same(text: str, value: Any) -> None:
    assert same(codec.loads(text), value)
    assert same(codec.loads(text.encode()), value) or "\\ud800" in text


@pytest.mark.parametrize("value", [v for _, v in OLD_TEXTS])
def test_values_read_back_exactly(value: Any) -> None:
    text = codec.dumps(value)
    assert same(codec.loads(text), value)
    # and the text is one the code before orjson reads as the same value
    assert same(json.loads(text, object_hook=codec._untag), value)


def test_what_cannot_be_stored_is_refused_as_before() -> None:
    for value, message in [
        ({"t": datetime(2021, 3, 1)}, "a time without a timezone cannot be stored"),
        ({"s": {1, 2}}, "a value of type set cannot be stored"),
        ([object()], "a value of type object cannot be stored"),
    ]:
        with pytest.raises(TypeError, match=message):
            codec.dumps(value)


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.decimals(allow_nan=False, allow_infinity=False, places=2)
    | st.datetimes(timezones=st.just(IST) | st.just(UTC))
    | st.timedeltas()
    | st.binary(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["$rk", "v", "a", "b"]) | st.text(max_size=4), inner, max_size=4
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_any_value_reads_back_exactly_and_as_the_old_reader_reads_it(value: Any) -> None:
    text = codec.dumps(value)
    assert same(codec.loads(text), value)
    assert same(json.loads(text, object_hook=codec._untag), value)


@settings(max_examples=300, deadline=None)
@given(values)
def test_any_text_written_before_reads_back_as_it_did(value: Any) -> None:
    assume(not codec._needs_escape(value))  # the old writer escaped those (as the new one does)
    text = written_before(value)
    assert same(codec.loads(text), json.loads(text, object_hook=codec._untag))


def test_a_database_written_before_loads(sqlite_backend: Backend) -> None:
    """A case whose row the store wrote before orjson, with a double fact that is NaN (which
    orjson alone cannot read): it loads, and the next step runs on it and keeps it."""
    store = sqlite_backend.sql()
    store.register(rulekit.load(VALUES))
    store.open("ticket", VALUE_FACTS, id="v1", at=T)
    facts = {**VALUE_FACTS, "ratio": math.nan, "note": None}
    with closing(sqlite3.connect(sqlite_backend.url)) as db, db:
        db.execute("UPDATE rk_cases SET facts = ? WHERE id = 'v1'", (written_before(facts),))
    again = sqlite_backend.sql()
    assert same(dict(again.get("v1").facts), facts)
    _, result = again.send("v1", "close", "clerk", at=T + timedelta(hours=1))
    assert result.state == "closed"
    assert same(dict(again.get("v1").facts), facts)
    assert [r.kind for r in again.history("v1")] == ["open", "event"]


offsets = st.timedeltas(min_value=-timedelta(hours=23), max_value=timedelta(hours=23)).map(timezone)
aware = st.datetimes(timezones=st.timezones() | offsets | st.just(UTC))


@settings(max_examples=500, deadline=None)
@given(aware)
def test_times_are_written_as_isoformat_writes_them(t: datetime) -> None:
    """codec.isoformat takes orjson's text where it is isoformat's (UTC, whole-minute offsets),
    and isoformat's where it is not (offsets with seconds, as old zones had)."""
    assert codec.isoformat(t) == t.isoformat()
    try:
        utc = t.astimezone(UTC)
    except OverflowError:
        return
    # SQLite's time columns: fixed width in UTC, so that they compare as the times do
    dialect = SQLiteDialect(":memory:")
    try:
        assert dialect.time_param(t) == utc.isoformat(timespec="microseconds")
    finally:
        dialect.close()


pending = st.lists(st.tuples(aware, st.integers(min_value=0, max_value=50), aware), max_size=4)


@settings(max_examples=300, deadline=None)
@given(pending)
def test_pending_deadlines_are_the_codecs_text_written_and_read_directly(
    deadlines: list[tuple[datetime, int, datetime]],
) -> None:
    text = _pending_json(deadlines)
    assert text == codec.dumps(deadlines)
    back = _pending_from_json(text)
    before = [(a, int(o), b) for a, o, b in codec.loads(text)]  # as the codec reads them
    assert [(a, o, b, a.utcoffset(), b.utcoffset()) for a, o, b in back] == [
        (a, o, b, a.utcoffset(), b.utcoffset()) for a, o, b in before
    ]
