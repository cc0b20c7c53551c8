"""Values as JSON text in a database, without losing their types.

Facts, payloads and effect arguments hold money (``Decimal``), times,
durations and bytes, which JSON has no type for. A store must read back
exactly what it wrote, whatever the declarations say, so each such value is
written as a tagged object ``{"$rk": kind, "v": text}`` and read back as
itself. A map of the caller's own whose keys are exactly ``$rk`` and ``v``
is itself wrapped, as a list of pairs (``{"$rk": "map", "v": [["$rk", ...],
["v", ...]]}``), so no map is ever mistaken for a tag.

The text is written and read by orjson (a step encodes and decodes a few of
these values: the standard library's ``json`` was most of a step's own time).
Where orjson's JSON would not be the standard library's, ``json`` writes or
reads it instead, so the text and the values are those ``json`` gives: integers
past 64 bits (orjson refuses them, and reads them back as floats), NaN and the
infinities (orjson writes them as ``null``, and cannot read ``json``'s
``NaN``), map keys that are not strings, unpaired surrogates. Text written
before orjson was used reads back the same. One difference remains: orjson
writes a UUID or an enum member (as its text, its value), which ``json``
refused; neither is a value of the rule language, so only a ``dyn`` fact
given from Python can hold one.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

_TAG = "$rk"
#: times and dataclasses go to the tagging hook, as with ``json`` (orjson has its own forms)
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
#: types :func:`_finite` need not look into
_SCALARS = frozenset({str, int, bool, type(None), Decimal, datetime, timedelta, bytes})


def _tagged(value: Any) -> Any:
    if isinstance(value, Decimal):
        text = str(value)  # the same text as format(value, "f") unless it has an exponent
        return {_TAG: "money", "v": format(value, "f") if "E" in text else text}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError("a time without a timezone cannot be stored")
        return {_TAG: "time", "v": isoformat(value)}
    if isinstance(value, timedelta):
        return {_TAG: "duration", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, bytes):
        return {_TAG: "bytes", "v": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"a value of type {type(value).__name__} cannot be stored")


def isoformat(t: datetime) -> str:
    """``t.isoformat()``, in a fifth of the time: orjson's RFC 3339 text is the same for a
    time in UTC, or at an offset of whole minutes (not for offsets with seconds)."""
    tz = t.tzinfo
    if type(t) is datetime and tz is not None:
        if tz is UTC:
            return orjson.dumps(t)[1:-1].decode()
        offset = t.utcoffset()
        if offset is not None and not offset.seconds % 60 and not offset.microseconds:
            return orjson.dumps(t)[1:-1].decode()
    return t.isoformat()


class _Tagger:
    """:func:`_tagged`, counting the tags it wrote."""

    __slots__ = ("tags",)

    def __init__(self) -> None:
        self.tags = 0

    def __call__(self, value: Any) -> Any:
        out = _tagged(value)
        if type(out) is dict:
            self.tags += 1  # each writes "$rk" once, and no tag's "v" can hold the text "$rk"
        return out


def _escape(value: Any) -> Any:
    """Wrap maps that look like a tag (rare: only then is the value walked)."""
    if isinstance(value, Mapping):
        out = {k: _escape(v) for k, v in value.items()}
        return (
            {_TAG: "map", "v": [[k, v] for k, v in out.items()]} if set(out) == {_TAG, "v"} else out
        )
    if isinstance(value, list | tuple):
        return [_escape(v) for v in value]
    return value


def dumps(value: Any) -> str:
    tagger = _Tagger()
    text = _encode(value, tagger)
    # Walk the value (slow) only when "$rk" shows up more often than the tags wrote it: then a
    # map, key or string of the caller's own holds it, and it may be a map that looks like a tag.
    if '"$rk"' in text and text.count('"$rk"') != tagger.tags and _needs_escape(value):
        text = _encode(_escape(value), _Tagger())
    return text


def _encode(value: Any, tagger: _Tagger) -> str:
    try:
        data = orjson.dumps(value, default=tagger, option=_OPTIONS)
    except orjson.JSONEncodeError:
        pass  # json writes it, or raises the error it always raised (a type that cannot be stored)
    else:
        if b"null" not in data or _finite(value):
            return data.decode()
    tagger.tags = 0
    return json.dumps(value, default=tagger, ensure_ascii=False, separators=(",", ":"))


def _finite(value: Any) -> bool:
    """Whether no float in ``value`` is NaN or infinite (which orjson would write as null)."""
    t = type(value)
    if t is dict or (t is not str and isinstance(value, Mapping)):
        value = value.values()
    elif not (t is list or t is tuple or isinstance(value, list | tuple)):
        return not isinstance(value, float) or math.isfinite(value)
    for v in value:
        if type(v) in _SCALARS:
            continue
        if not _finite(v):
            return False
    return True


def _needs_escape(value: Any) -> bool:
    if isinstance(value, Mapping):
        return set(value) == {_TAG, "v"} or any(_needs_escape(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_needs_escape(v) for v in value)
    return False


def _duration(v: Any) -> timedelta:
    return timedelta(days=v[0], seconds=v[1], microseconds=v[2])


#: each tag's kind, and how its ``v`` is read back
_READERS: dict[str, Callable[[Any], Any]] = {
    "money": Decimal,
    "time": datetime.fromisoformat,
    "duration": _duration,
    "bytes": base64.b64decode,
    "map": dict,
}


def _untag(obj: dict[str, Any]) -> Any:
    """The value a map stands for: itself, or what it tags (``json``'s ``object_hook``)."""
    if len(obj) != 2 or _TAG not in obj or "v" not in obj:
        return obj
    return _read_tag(obj[_TAG], obj["v"])


def _read_tag(kind: Any, v: Any) -> Any:
    read = _READERS.get(kind) if type(kind) is str else None
    if read is None:
        raise ValueError(f"unknown stored value kind {kind!r}")
    return read(v)


class _LongInteger(Exception):
    """orjson read an integer past 64 bits (as a float): ``json`` must read the text."""


def _untag_all(value: Any) -> Any:
    """:func:`_untag` on every map of ``value`` as orjson read it, innermost first (as
    ``json``'s ``object_hook`` runs); raises :class:`_LongInteger` at a float that may have
    been an integer past 64 bits. Maps and lists that are not tags are changed in place."""
    t = type(value)
    if t is dict:
        if len(value) == 2 and _TAG in value and "v" in value:
            return _read_tag(_untag_all(value[_TAG]), _untag_all(value["v"]))
        _untag_map(value)
    elif t is list:
        _untag_list(value)
    elif t is float and abs(value) >= 2.0**63:  # the nearest float to an integer past 64 bits
        raise _LongInteger
    return value


def _untag_map(d: dict[str, Any]) -> None:
    # written out for the commonest shapes (a case's facts are read on every step): a map of
    # maps of values, some of them tags of text
    for k, v in d.items():
        t = type(v)
        if t is dict:
            if len(v) == 2 and _TAG in v and "v" in v:
                kind, inner = v[_TAG], v["v"]
                if type(inner) is str and type(kind) is str:
                    d[k] = _read_tag(kind, inner)
                else:
                    d[k] = _read_tag(_untag_all(kind), _untag_all(inner))
            elif v:
                _untag_map(v)
        elif t is list:
            if v:
                _untag_list(v)
        elif t is float and abs(v) >= 2.0**63:
            raise _LongInteger


def _untag_list(items: list[Any]) -> None:
    for i, v in enumerate(items):
        t = type(v)
        if t is dict or t is list or t is float:
            items[i] = _untag_all(v)


def loads(text: str | bytes) -> Any:
    try:
        return _untag_all(orjson.loads(text))
    except (orjson.JSONDecodeError, _LongInteger):
        # NaN, infinities, unpaired surrogates, integers past 64 bits: json reads them exactly
        # (or raises as it always did)
        return json.loads(text, object_hook=_untag)
