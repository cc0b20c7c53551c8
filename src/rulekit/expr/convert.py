"""Plain data (JSON, YAML, CLI arguments) -> values of declared types.

Data formats have no money, time or duration: a declaration says what a
value is meant to be, and this module reads it so (``"128.00"`` or ``128``
as the exact decimal, ``"2026-03-01T12:00:00+08:00"`` as an aware datetime,
``"6h"`` or ``"PT6H"`` as a duration). Anything that cannot be read as its
declared type is a :class:`ConversionError` naming the path and the problem.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from rulekit.core.calendar import BoundPeriod
from rulekit.expr import stdlib
from rulekit.expr.types import Type


class ConversionError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


#: How deep plain data may nest (lists and maps in one another). Deeper data is a
#: ConversionError: the code that converts, evaluates, prints or stores values recurses.
MAX_NESTING = 100


def check_nesting(value: Any, path: str) -> None:
    """ConversionError when ``value`` nests lists and maps more than MAX_NESTING deep."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_NESTING:
            raise ConversionError(path, f"nested more than {MAX_NESTING} levels deep")
        level = [
            v
            for item in level
            if isinstance(item, Mapping | list | tuple)
            for v in (item.values() if isinstance(item, Mapping) else item)
            if isinstance(v, Mapping | list | tuple)
        ]


def convert(value: Any, t: Type, path: str) -> Any:
    """Read plain ``value`` as type ``t`` (``path`` names it in errors)."""
    check_nesting(value, path)
    return _convert(value, t, path)


def _convert(value: Any, t: Type, path: str) -> Any:
    k = t.kind
    if k in ("dyn", "error"):
        return value
    if k == "enum":
        members = [m for m, _ in t.fields]
        if not isinstance(value, str) or value not in members:
            raise ConversionError(
                path, f"expected one of {', '.join(members)} ({t.name}), got {_what(value)}"
            )
        return value
    if k == "object":
        if not isinstance(value, Mapping):
            raise ConversionError(
                path, f"expected an object with fields {', '.join(f for f, _ in t.fields)}"
            )
        out = dict(value)
        for name, ft in t.fields:
            if name in value:
                out[name] = _convert(value[name], ft, f"{path}.{name}")
        return out
    if k == "list":
        if not isinstance(value, list | tuple):
            raise ConversionError(path, f"expected a list, got {_what(value)}")
        return [_convert(v, t.params[0], f"{path}[{i}]") for i, v in enumerate(value)]
    if k == "map":
        if not isinstance(value, Mapping):
            raise ConversionError(path, f"expected a map, got {_what(value)}")
        return {
            _convert(a, t.params[0], f"{path} key"): _convert(b, t.params[1], f"{path}[{a!r}]")
            for a, b in value.items()
        }
    reader = _READERS.get(k)
    if reader is None:
        raise ConversionError(path, f"values of type {t} cannot be given as data")
    try:
        return reader(value)
    except (stdlib.CelError, ValueError, InvalidOperation) as e:
        raise ConversionError(path, f"expected {t}: {e}") from None


def _what(v: Any) -> str:
    if isinstance(v, bool):
        return f"the bool {str(v).lower()}"
    if v is None:
        return "null"
    return f"{type(v).__name__} {v!r}"


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise ValueError(f"got {_what(v)}")


def _int(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return stdlib.check_int(v)
    if isinstance(v, Decimal) and v == v.to_integral_value():
        return stdlib.check_int(int(v))
    raise ValueError(f"got {_what(v)}")


def _double(v: Any) -> float:
    if isinstance(v, int | float | Decimal) and not isinstance(v, bool):
        return float(v)
    raise ValueError(f"got {_what(v)}")


def _money(v: Any) -> Decimal:
    if isinstance(v, bool):
        raise ValueError(f"got {_what(v)}")
    if isinstance(v, Decimal | int):
        return stdlib.input_money(v)
    if isinstance(v, float):
        # Parsers that produce floats lose the written digits; repr() gives the
        # shortest decimal that reads back as this float, which is what was written
        # for any amount with up to 15 significant digits.
        return stdlib.input_money(Decimal(repr(v)))  # NaN and infinities are refused there
    if isinstance(v, str):
        return stdlib.to_money(v)
    raise ValueError(f"got {_what(v)}")


def _string(v: Any) -> str:
    if isinstance(v, str):
        try:
            v.encode("utf-8")  # a lone surrogate (JSON can spell one: "\udfff") is no Unicode text
        except UnicodeEncodeError:
            raise ValueError("got a string with a lone surrogate (not Unicode text)") from None
        return v
    raise ValueError(f"got {_what(v)}")


def _bytes(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    raise ValueError(f"got {_what(v)}")


def _timestamp(v: Any) -> datetime:
    if isinstance(v, datetime):
        return stdlib.input_timestamp(v)
    if isinstance(v, date):
        raise ValueError("a date without a time and offset; write 2026-03-01T12:00:00+08:00")
    if isinstance(v, str):
        return stdlib.parse_timestamp(v)
    raise ValueError(f"got {_what(v)}")


def _duration(v: Any) -> timedelta:
    if isinstance(v, timedelta):
        return v
    if isinstance(v, str):
        return stdlib.parse_duration(v)
    raise ValueError(f"got {_what(v)} (write a duration like 24h or PT24H)")


_READERS = {
    "bool": _bool,
    "int": _int,
    "double": _double,
    "money": _money,
    "string": _string,
    "bytes": _bytes,
    "timestamp": _timestamp,
    "duration": _duration,
}


def to_data(v: Any) -> Any:
    """A value as plain JSON data (the inverse of :func:`convert` given the type):
    money as a decimal string, times as RFC 3339, durations as CEL duration text
    (``5400s``), bytes as base64, type values by name, an optional as its value (null
    when it holds none), calendar periods as their text with the calendar they count on
    (``5 working days in cn``)."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else stdlib.format_double(v)
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, timedelta):
        return stdlib.format_duration(v)
    if isinstance(v, bytes):
        return base64.b64encode(v).decode("ascii")
    if isinstance(v, list | tuple):
        return [to_data(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): to_data(x) for k, x in v.items()}
    if isinstance(v, stdlib.CelType):
        return v.name
    if isinstance(v, stdlib.CelOptional):  # its value, or null for optional.none()
        return to_data(v.value) if v.present else None
    if isinstance(v, BoundPeriod):
        return v.text
    return repr(v)
