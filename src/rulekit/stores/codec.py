"""Values as JSON text in a database, without losing their types.

Facts, payloads and effect arguments hold money (``Decimal``), times,
durations and bytes, which JSON has no type for. A store must read back
exactly what it wrote, whatever the declarations say, so each such value is
written as a tagged object ``{"$rk": kind, "v": text}`` and read back as
itself. A map of the caller's own whose keys are exactly ``$rk`` and ``v``
is itself wrapped, as a list of pairs (``{"$rk": "map", "v": [["$rk", ...],
["v", ...]]}``), so no map is ever mistaken for a tag.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

_TAG = "$rk"


def _tagged(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {_TAG: "money", "v": format(value, "f")}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError("a time without a timezone cannot be stored")
        return {_TAG: "time", "v": value.isoformat()}
    if isinstance(value, timedelta):
        return {_TAG: "duration", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, bytes):
        return {_TAG: "bytes", "v": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"a value of type {type(value).__name__} cannot be stored")


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
    tags = 0

    def tagged(v: Any) -> Any:
        nonlocal tags
        out = _tagged(v)
        if type(out) is dict:
            tags += 1  # each writes "$rk" once, and no tag's "v" can hold the text "$rk"
        return out

    text = json.dumps(value, default=tagged, ensure_ascii=False, separators=(",", ":"))
    # Walk the value (slow) only when "$rk" shows up more often than the tags wrote it: then a
    # map, key or string of the caller's own holds it, and it may be a map that looks like a tag.
    if '"$rk"' in text and text.count('"$rk"') != tags and _needs_escape(value):
        text = json.dumps(
            _escape(value), default=_tagged, ensure_ascii=False, separators=(",", ":")
        )
    return text


def _needs_escape(value: Any) -> bool:
    if isinstance(value, Mapping):
        return set(value) == {_TAG, "v"} or any(_needs_escape(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_needs_escape(v) for v in value)
    return False


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) != 2 or _TAG not in obj or "v" not in obj:
        return obj
    kind, v = obj[_TAG], obj["v"]
    if kind == "money":
        return Decimal(v)
    if kind == "time":
        return datetime.fromisoformat(v)
    if kind == "duration":
        return timedelta(days=v[0], seconds=v[1], microseconds=v[2])
    if kind == "bytes":
        return base64.b64decode(v)
    if kind == "map":
        return dict(v)
    raise ValueError(f"unknown stored value kind {kind!r}")


def loads(text: str | bytes) -> Any:
    return json.loads(text, object_hook=_untag)
