"""The run-time library: CEL's semantics over plain Python values.

Every operator and function of the language is here as a function on
Python values (int, float, Decimal, str, bytes, bool, None, list, dict,
aware datetime, timedelta, :class:`CelType`). Failures raise
:class:`CelError` with a message fit for a policy author; the evaluators add
which sub-expression failed. Compiled code calls these helpers wherever the
static types leave a choice open, so there is exactly one definition of each
operation's meaning.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from functools import cache, lru_cache
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rulekit.core import calendar as cal

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DURATION = timedelta(seconds=315_576_000_000)
_US = timedelta(microseconds=1)


class CelError(Exception):
    """A run-time failure of one operation (message for the author)."""


#: Money is exact: ``+``, ``-`` and ``*`` keep every digit of their result, up
#: to MONEY_DIGITS significant digits, and a result that would need more is an
#: error instead of a silent rounding. Division rounds to MONEY_DIGITS digits,
#: half to even (documented). Both run in these contexts, never in the thread's
#: ambient decimal context, which the host application may have changed; the
#: compiled code calls the same context methods, so both paths agree.
MONEY_DIGITS = 28
MONEY_EXACT = Context(
    prec=MONEY_DIGITS,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact],
)
MONEY_DIVISION = Context(
    prec=MONEY_DIGITS, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)


class CelType:
    """A type as a value: what ``type(x)`` returns and ``int``, ``string`` ... name."""

    __slots__ = ("name",)
    name: str
    _instances: ClassVar[dict[str, CelType]] = {}

    def __new__(cls, name: str) -> CelType:
        inst = cls._instances.get(name)
        if inst is None:
            inst = super().__new__(cls)
            inst.name = name
            cls._instances[name] = inst
        return inst

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (CelType, (self.name,))


TYPE_NAMES = (
    "bool",
    "int",
    "double",
    "money",
    "string",
    "bytes",
    "null_type",
    "list",
    "map",
    "timestamp",
    "duration",
    "type",
    "date",
    "period",
)
TYPES = {n: CelType(n) for n in TYPE_NAMES}
TYPES["dyn"] = CelType("dyn")


def kind(v: object) -> str:
    """The language's name for the type of a Python value."""
    t = type(v)
    k = _KINDS.get(t)
    if k is not None:
        if k == "timestamp" and v.tzinfo is None:  # type: ignore[attr-defined]
            raise CelError("a timestamp must carry a time zone (got a naive datetime)")
        if k == "money" and not v.is_finite():  # type: ignore[attr-defined]
            raise CelError(f"money must be a finite amount, not {v}")
        return k
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "double"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "map"
    if isinstance(v, list | tuple):
        return "list"
    if isinstance(v, datetime):
        if v.tzinfo is None:
            raise CelError("a timestamp must carry a time zone (got a naive datetime)")
        return "timestamp"
    raise CelError(f"unsupported value of Python type {type(v).__name__}")


_KINDS: dict[type, str] = {
    bool: "bool",
    int: "int",
    float: "double",
    Decimal: "money",
    str: "string",
    bytes: "bytes",
    type(None): "null_type",
    list: "list",
    tuple: "list",
    dict: "map",
    datetime: "timestamp",
    timedelta: "duration",
    CelType: "type",
    date: "date",
    cal.BoundPeriod: "period",
}
_NUMERIC = frozenset({"int", "double", "money"})


def type_of(v: object) -> CelType:
    return TYPES[kind(v)]


# -- rendering values in messages ---------------------------------------------


def render(v: object) -> str:
    """A value as the author would write it (for messages and explain traces)."""
    try:
        k = kind(v)
    except CelError:
        return repr(v)
    if k == "bool":
        return "true" if v else "false"
    if k == "null_type":
        return "null"
    if k == "string":
        return quote_string(str(v))
    if k == "bytes":
        return quote_bytes(bytes(v))  # type: ignore[call-overload]
    if k == "double":
        return format_double(float(v))  # type: ignore[arg-type]
    if k == "money":
        return format(v, "f")
    if k == "timestamp":
        return f'timestamp("{format_timestamp_local(v)}")'  # type: ignore[arg-type]
    if k == "duration":
        return format_duration_literal(v)  # type: ignore[arg-type]
    if k == "date":
        return f'date("{v.isoformat()}")'  # type: ignore[attr-defined]
    if k == "list":
        return "[" + ", ".join(render(x) for x in v) + "]"  # type: ignore[attr-defined]
    if k == "map":
        return "{" + ", ".join(f"{render(a)}: {render(b)}" for a, b in v.items()) + "}"  # type: ignore[attr-defined]
    return str(v)


_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\v": "\\v",
}


def quote_string(s: str) -> str:
    """A double-quoted string literal for ``s`` (control characters escaped)."""
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif not ch.isprintable() or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(f"\\U{ord(ch):08x}" if ord(ch) > 0xFFFF else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def quote_bytes(b: bytes) -> str:
    """A bytes literal for ``b``: printable ASCII as is, everything else as \\xHH."""
    out = []
    for byte in b:
        ch = chr(byte)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}")
    return 'b"' + "".join(out) + '"'


# -- integers ---------------------------------------------------------------------


def check_int(v: int) -> int:
    if INT64_MIN <= v <= INT64_MAX:
        return v
    raise CelError("integer overflow")


def int_div(a: int, b: int) -> int:
    if b == 0:
        raise CelError("division by zero")
    q = abs(a) // abs(b)
    return check_int(q if (a < 0) == (b < 0) else -q)


def int_mod(a: int, b: int) -> int:
    if b == 0:
        raise CelError("modulus by zero")
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def double_div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if math.isnan(a) or a == 0:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


# -- operators -----------------------------------------------------------------------


def _overload(op: str, *args: object) -> CelError:
    kinds = []
    for a in args:
        try:
            kinds.append(kind(a))
        except CelError as e:
            return e
    return CelError(f"no such overload: {op} on " + " and ".join(kinds))


def add(a: Any, b: Any) -> Any:
    ka, kb = kind(a), kind(b)
    if ka == kb:
        if ka == "int":
            return check_int(a + b)
        if ka == "money":
            return money_exact(MONEY_EXACT.add, a, b)
        if ka in ("double", "string", "bytes"):
            return a + b
        if ka == "list":
            return [*a, *b]
        if ka == "duration":
            return check_duration(a + b)
    elif {ka, kb} == {"money", "int"}:
        return money_exact(MONEY_EXACT.add, a, b)
    elif ka == "timestamp" and kb == "duration":
        return ts_add(a, b)
    elif ka == "duration" and kb == "timestamp":
        return ts_add(b, a)
    elif kb == "period" and ka in ("timestamp", "date"):
        return add_period(a, b)
    raise _overload("+", a, b)


def sub(a: Any, b: Any) -> Any:
    ka, kb = kind(a), kind(b)
    if ka == kb:
        if ka == "int":
            return check_int(a - b)
        if ka == "double":
            return a - b
        if ka == "money":
            return money_exact(MONEY_EXACT.subtract, a, b)
        if ka == "duration":
            return check_duration(a - b)
        if ka == "timestamp":
            return check_duration(_utc(a) - _utc(b))
    elif {ka, kb} == {"money", "int"}:
        return money_exact(MONEY_EXACT.subtract, a, b)
    elif ka == "timestamp" and kb == "duration":
        return ts_add(a, -b)
    elif kb == "period" and ka in ("timestamp", "date"):
        return add_period(a, -b)
    raise _overload("-", a, b)


def mul(a: Any, b: Any) -> Any:
    ka, kb = kind(a), kind(b)
    if ka == kb and ka in ("int", "double"):
        return check_int(a * b) if ka == "int" else a * b
    if {ka, kb} <= {"money", "int"} and "money" in (ka, kb):
        return money_exact(MONEY_EXACT.multiply, a, b)
    raise _overload("*", a, b)


def div(a: Any, b: Any) -> Any:
    ka, kb = kind(a), kind(b)
    if ka == kb == "int":
        return int_div(a, b)
    if ka == kb == "double":
        return double_div(a, b)
    if ka == "money" and kb in ("int", "money"):
        if b == 0:
            raise CelError("division by zero")
        return money_exact(MONEY_DIVISION.divide, a, b)
    raise _overload("/", a, b)


def mod(a: Any, b: Any) -> Any:
    if kind(a) == kind(b) == "int":
        return int_mod(a, b)
    raise _overload("%", a, b)


def neg(a: Any) -> Any:
    k = kind(a)
    if k == "int":
        return check_int(-a)
    if k == "double":
        return -a
    if k == "money":
        return a.copy_negate()  # exact: never rounded to a context's precision
    if k == "duration":
        return check_duration(-a)
    if k == "period":
        return -a
    raise _overload("-", a)


def money_exact(op: Callable[[Any, Any], Decimal], a: Any, b: Any) -> Decimal:
    """``op`` (a method of MONEY_EXACT or MONEY_DIVISION) on money and ints, or
    the error that says why the result cannot be given exactly."""
    try:
        return op(a, b)
    except Overflow:
        raise CelError("money out of range") from None
    except Inexact:
        raise CelError(
            f"money result is not exact: more than {MONEY_DIGITS} significant digits"
        ) from None


def logical_not(a: Any) -> bool:
    if a is True:
        return False
    if a is False:
        return True
    raise _overload("!", a)


def eq(a: Any, b: Any) -> bool:
    """CEL equality: heterogeneous numbers compare by value; other kinds must match."""
    ka, kb = kind(a), kind(b)
    if ka != kb:
        if ka in _NUMERIC and kb in _NUMERIC:
            return bool(a == b)
        return False
    if ka == "list":
        return len(a) == len(b) and all(eq(x, y) for x, y in zip(a, b, strict=True))
    if ka == "map":
        if len(a) != len(b):
            return False
        for k, v in a.items():
            found, other = map_lookup(b, k)
            if not found or not eq(v, other):
                return False
        return True
    return bool(a == b)


def compare(a: Any, b: Any, op: str) -> int:
    """-1, 0 or 1; raises for unordered kinds. NaN compares as unordered (caller: false)."""
    ka, kb = kind(a), kind(b)
    if (
        ka == kb
        and ka
        in ("string", "bytes", "bool", "timestamp", "duration", "int", "double", "money", "date")
    ) or (ka in _NUMERIC and kb in _NUMERIC):
        if (ka == "double" and math.isnan(a)) or (kb == "double" and math.isnan(b)):
            raise _Unordered
        return -1 if a < b else (1 if a > b else 0)
    raise _overload(op, a, b)


class _Unordered(Exception):
    pass


def relation(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return eq(a, b)
    if op == "!=":
        return not eq(a, b)
    if op == "in":
        return contains_elem(b, a)
    try:
        c = compare(a, b, op)
    except _Unordered:
        return False
    if op == "<":
        return c < 0
    if op == "<=":
        return c <= 0
    if op == ">":
        return c > 0
    return c >= 0


def contains_elem(container: Any, x: Any) -> bool:
    k = kind(container)
    if k == "list":
        return any(eq(x, e) for e in container)
    if k == "map":
        return map_lookup(container, x)[0]
    raise _overload("in", x, container)


def map_lookup(m: Mapping[Any, Any], key: Any) -> tuple[bool, Any]:
    kk = kind(key)
    if kk == "double":
        if key != key or key != int(key) if math.isfinite(key) else True:
            return False, None
        key = int(key)
        kk = "int"
    if kk == "money":
        if key != key.to_integral_value():
            return False, None
        key = int(key)
        kk = "int"
    if kk not in ("int", "string", "bool"):
        raise CelError(f"a map key cannot be a {kk}")
    for candidate in (key,):
        if candidate in m:
            # bool and int keys hash alike in Python; CEL keeps them apart.
            for k in m:
                if k == candidate and (type(k) is bool) == (kk == "bool"):
                    return True, m[k]
    return False, None


def index(container: Any, key: Any) -> Any:
    if type(container) is CelOptional:  # optional chaining: o[i] is o[?i]
        return optional_index(container, key)
    k = kind(container)
    if k == "list":
        kk = kind(key)
        if (kk == "double" and math.isfinite(key) and key == int(key)) or (
            kk == "money" and key == key.to_integral_value()
        ):
            key = int(key)
        elif kk != "int":
            raise _overload("[]", container, key)
        if not 0 <= key < len(container):
            raise CelError(f"index {key} out of range for a list of size {len(container)}")
        return container[key]
    if k == "map":
        found, v = map_lookup(container, key)
        if not found:
            raise CelError(f"no such key: {render(key)}")
        return v
    raise _overload("[]", container, key)


def select(obj: Any, field: str) -> Any:
    if type(obj) is CelOptional:  # optional chaining: o.f is o.?f
        return optional_select(obj, field)
    if kind(obj) != "map":
        raise CelError(f"cannot select field `{field}` of a {kind(obj)}")
    try:
        return obj[field]
    except KeyError:
        raise CelError(f"no such key: {quote_string(field)}") from None


def has_field(obj: Any, field: str) -> bool:
    if type(obj) is CelOptional:  # has(o.f): o holds a value with field f
        return obj.present and has_field(obj.value, field)
    if kind(obj) != "map":
        raise CelError(f"has() needs a map, got a {kind(obj)}")
    return field in obj


def make_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, v in pairs:
        kk = kind(k)
        if kk not in ("int", "string", "bool"):
            raise CelError(f"a map key cannot be a {kk}")
        if map_lookup(out, k)[0]:
            raise CelError(f"duplicate map key {render(k)}")
        if k in out:  # true and 1 are one key to Python
            raise CelError(
                f"map keys {render(k)} and {render(next(x for x in out if x == k))} cannot both be used"
            )
        out[k] = v
    return out


def check_bool(v: Any) -> bool:
    if v is True or v is False:
        return v
    raise CelError(f"expected a bool, got {kind(v)} {render(v)}")


# -- functions ------------------------------------------------------------------------


def size(v: Any) -> int:
    k = kind(v)
    if k in ("string", "bytes", "list", "map"):
        return len(v)
    raise _overload("size", v)


def _strings(name: str, a: Any, b: Any) -> None:
    if type(a) is not str or type(b) is not str:
        raise _overload(name, a, b)


def contains(a: Any, b: Any) -> bool:
    _strings("contains", a, b)
    return b in a


def starts_with(a: Any, b: Any) -> bool:
    _strings("startsWith", a, b)
    return bool(a.startswith(b))


def ends_with(a: Any, b: Any) -> bool:
    _strings("endsWith", a, b)
    return bool(a.endswith(b))


#: RE2 options for `matches`: patterns and text are UTF-8, and each compiled
#: pattern may use at most 2 MiB (its program and its DFA cache; past the cache
#: RE2 runs its NFA, still linear). A pattern too large for that is refused. With
#: the 128 patterns kept compiled below, patterns hold at most 256 MiB.
REGEX_MAX_MEM = 2 << 20


@cache
def _re2() -> tuple[Any, Any]:
    """The ``re2`` module and the options every pattern is compiled with; imported on
    the first pattern, as most policies have none."""
    import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

    options = re2.Options()
    options.encoding = re2.Options.Encoding.UTF8
    options.max_mem = REGEX_MAX_MEM
    options.log_errors = False  # errors are raised, not printed to stderr
    return re2, options


# What RE2's error names, and why it is not there: RE2 matches in time linear
# in the text because it never backtracks, so it has no construct that needs to.
_NO_BACKTRACKING = (
    "RE2 has no backtracking constructs: look-around, back-references, atomic groups, "
    "possessive quantifiers and conditionals are not supported (RE2 matches in linear time)"
)
# RE2 names "(?P" for (?P=name) and (?P>name), and "(?&" and "(?R" for recursion.
_BACKTRACKING_PARTS = ("(?=", "(?!", "(?<=", "(?<!", "(?>", "(?(", "(?&", "(?R")


class RegexError(CelError):
    """A pattern RE2 refuses: ``reason`` is RE2's message, ``part`` the piece of
    the pattern it names ("" when it names none), ``help`` a fix when one is known."""

    def __init__(self, pattern: str, reason: str, part: str, help: str | None) -> None:
        super().__init__(f"invalid regular expression {render(pattern)}: {reason}")
        self.reason = reason
        self.part = part
        self.help = help


def _regex_help(reason: str, part: str) -> str | None:
    if part == "(?P" or part.startswith(_BACKTRACKING_PARTS) or re.fullmatch(r"\\[1-9]", part):
        return _NO_BACKTRACKING
    if reason.startswith("bad repetition operator") and part[1:2] == "+":
        return _NO_BACKTRACKING  # a possessive quantifier: a++, a*+, a?+
    if part == "\\Z":
        return "RE2 writes the end of the text as \\z (or $ outside multi-line mode)"
    if part.startswith("(?#"):
        return "RE2 has no comments inside patterns"
    if reason.startswith("invalid repetition size"):
        return "RE2 repeats at most 1000 times: write {n,m} with n <= m <= 1000"
    if reason.startswith("pattern too large"):
        return f"the compiled pattern must fit in {REGEX_MAX_MEM >> 20} MiB: use smaller repetition counts"
    return None


@lru_cache(maxsize=128)
def compile_regex(pattern: str) -> Any:
    """Compile a pattern with RE2 (``re2.compile``, never a fallback to Python's
    ``re``): RE2 syntax and semantics, as in CEL, and matching in linear time.

    >>> compile_regex(r"^[[:alpha:]]+$").search("refund") is not None
    True
    """
    re2, options = _re2()
    try:
        return re2.compile(pattern, options)
    except re2.error as e:
        raw = e.args[0] if e.args else "invalid pattern"
        reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        part = reason.split(": ", 1)[1] if ": " in reason else ""
        raise RegexError(pattern, reason, part, _regex_help(reason, part)) from None
    except UnicodeEncodeError:
        raise CelError("a pattern must be valid Unicode text (it has a lone surrogate)") from None


def matches(a: Any, pattern: Any) -> bool:
    """CEL's ``matches``: does RE2 ``pattern`` match anywhere in ``a`` (unanchored)?"""
    _strings("matches", a, pattern)
    rx = compile_regex(pattern)
    try:
        return rx.search(a) is not None
    except UnicodeEncodeError:
        raise CelError(
            "matches() of a string that is not valid Unicode (a lone surrogate)"
        ) from None


# -- conversions ---------------------------------------------------------------------

_INT_TEXT = re.compile(r"[+-]?\d+\Z")
_FLOAT_TEXT = re.compile(
    r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|Inf|infinity|Infinity|NaN|nan)\Z"
)
_MONEY_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)\Z")


def to_int(v: Any) -> int:
    k = kind(v)
    if k == "int":
        return int(v)
    if k == "double":
        # The range is open at both ends, as in CEL: -2**63 as a double is out.
        if not math.isfinite(v) or not -(2.0**63) < v < 2.0**63:
            raise CelError(f"int() of {render(v)} is out of range")
        return check_int(int(v))
    if k == "money":
        return check_int(int(v))
    if k == "string":
        if not _INT_TEXT.match(v):
            raise CelError(f"int() cannot read {render(v)} as an integer")
        if len(v) > 25:  # far out of range; and Python refuses very long digit strings
            raise CelError("integer overflow")
        return check_int(int(v))
    if k == "timestamp":
        seconds: int = math.floor((v - _EPOCH) / timedelta(seconds=1))
        return seconds
    raise _overload("int", v)


def to_double(v: Any) -> float:
    k = kind(v)
    if k in ("int", "double", "money"):
        return float(v)
    if k == "string":
        if not _FLOAT_TEXT.match(v):
            raise CelError(f"double() cannot read {render(v)} as a number")
        return float(v)
    raise _overload("double", v)


def to_money(v: Any) -> Decimal:
    k = kind(v)
    if k == "money":
        return v  # type: ignore[no-any-return]
    if k == "int":
        return Decimal(v)
    if k == "string":
        if not _MONEY_TEXT.match(v.strip()):
            raise CelError(f"money() cannot read {render(v)} as a decimal amount")
        return Decimal(v.strip())
    if k == "double":
        raise CelError(
            'money() of a double would carry its binary rounding; pass a string like money("12.50")'
        )
    raise _overload("money", v)


def to_string(v: Any) -> str:
    k = kind(v)
    if k == "string":
        return str(v)
    if k == "int":
        return str(int(v))
    if k == "double":
        return format_double(v)
    if k == "money":
        return format(v, "f")
    if k == "bool":
        return "true" if v else "false"
    if k == "bytes":
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            raise CelError("string() of bytes that are not valid UTF-8") from None
    if k == "timestamp":
        return format_timestamp(v)
    if k == "duration":
        return format_duration(v)
    if k == "date":
        return str(v.isoformat())
    if k == "type":
        return str(v.name)
    raise _overload("string", v)


def to_bytes(v: Any) -> bytes:
    k = kind(v)
    if k == "bytes":
        return bytes(v)
    if k == "string":
        return str(v).encode("utf-8")
    raise _overload("bytes", v)


_TRUE = frozenset({"1", "t", "true", "TRUE", "True"})
_FALSE = frozenset({"0", "f", "false", "FALSE", "False"})


def to_bool(v: Any) -> bool:
    k = kind(v)
    if k == "bool":
        return bool(v)
    if k == "string":
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
        raise CelError(f"bool() cannot read {render(v)} as a bool")
    raise _overload("bool", v)


def dyn(v: Any) -> Any:
    kind(v)
    return v


# -- time --------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})\Z",
    re.ASCII,
)
#: RFC 3339 allows any number of fraction digits; rulekit reads nanoseconds at
#: most (as CEL does), of which the last three must be zero (microseconds).
MAX_FRACTION_DIGITS = 9


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 timestamp with an offset -> aware datetime (kept in its own offset).

    Every reader of timestamps (literals, ``timestamp()``, facts and payloads,
    the CLI's ``--now`` and ``--at``, scenario files) goes through here, so each
    refuses the same texts with the same message.
    """
    m = _RFC3339.match(text)
    if not m:
        raise CelError(f"timestamp {render(text)} is not RFC 3339 (like 2026-03-01T12:00:00Z)")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, off = m.group(7) or "", m.group(8)
    if len(frac) > MAX_FRACTION_DIGITS:
        raise CelError(
            f"a timestamp's fraction of a second has at most {MAX_FRACTION_DIGITS} digits, "
            f"not {len(frac)}"
        )
    if frac[6:].strip("0"):
        raise CelError(
            "timestamps have microsecond precision; sub-microsecond digits are not supported"
        )
    micro = int((frac + "000000")[:6])
    try:
        tz = UTC if off in ("Z", "z") else time_zone(off)
    except CelError as e:
        raise CelError(f"timestamp {render(text)} is invalid: {e}") from None
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError as e:
        raise CelError(f"timestamp {render(text)} is invalid: {e}") from None


def to_timestamp(v: Any) -> datetime:
    k = kind(v)
    if k == "timestamp":
        return v  # type: ignore[no-any-return]
    if k == "string":
        return parse_timestamp(v)
    if k == "int":
        try:
            return _EPOCH + timedelta(seconds=v)
        except OverflowError:
            raise CelError(f"timestamp({v}) is out of range") from None
    raise _overload("timestamp", v)


def _utc(ts: datetime) -> datetime:
    """The same instant with a fixed offset: Python's arithmetic on datetimes of one
    named zone (ZoneInfo) is wall-clock arithmetic, CEL's is on instants."""
    if type(ts.tzinfo) is timezone:
        return ts
    try:
        return ts.astimezone(UTC)
    except OverflowError:
        raise CelError("timestamp out of range") from None


def format_timestamp(ts: datetime) -> str:
    try:
        u = ts.astimezone(UTC)
    except OverflowError:
        raise CelError("timestamp out of range") from None
    # Four-digit years, as RFC 3339 has them (strftime's %Y gives "1" for year 1).
    base = f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
    if u.microsecond:
        base += f".{u.microsecond:06d}".rstrip("0")
    return base + "Z"


def format_timestamp_local(ts: datetime) -> str:
    """RFC 3339 in the timestamp's own offset (``Z`` for UTC): for showing values."""
    if not ts.utcoffset():
        return format_timestamp(ts)
    return ts.isoformat()


def ts_add(ts: datetime, d: timedelta) -> datetime:
    try:
        return _utc(ts) + d
    except OverflowError:
        raise CelError("timestamp out of range") from None


def check_duration(d: timedelta) -> timedelta:
    if -MAX_DURATION <= d <= MAX_DURATION:
        return d
    raise CelError("duration out of range")


_DUR_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
_DUR_US = {
    "ns": Decimal("0.001"),
    "us": Decimal(1),
    "µs": Decimal(1),
    "ms": Decimal(1000),
    "s": Decimal(1_000_000),
    "m": Decimal(60_000_000),
    "h": Decimal(3_600_000_000),
    "d": Decimal(86_400_000_000),
}
_ISO_DUR = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?\Z")


def parse_duration(text: str) -> timedelta:
    """``1h30m``, ``-1.5h``, ``100ms``, ``10d``, or ISO 8601 ``PT48H`` -> timedelta."""
    s = text.strip()
    iso = _ISO_DUR.match(s)
    if iso and s not in ("P", "PT") and not s.endswith("T"):
        d, h, m, sec = iso.groups()
        total = (
            Decimal(d or 0) * 86400
            + Decimal(h or 0) * 3600
            + Decimal(m or 0) * 60
            + Decimal(sec or 0)
        ) * 1_000_000
        return _micros_to_duration(total, text)
    sign = 1
    if s and s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return timedelta(0)
    pos = 0
    total = Decimal(0)
    while pos < len(s):
        m = _DUR_PART.match(s, pos)
        if not m:
            raise CelError(f"duration {render(text)} is not valid (like 1h30m, 90s, 10d)")
        if len(m.group(1)) > 30:
            raise CelError("duration out of range")
        total += Decimal(m.group(1)) * _DUR_US[m.group(2)]
        pos = m.end()
    if pos == 0:
        raise CelError(f"duration {render(text)} is not valid (like 1h30m, 90s, 10d)")
    return _micros_to_duration(sign * total, text)


def _micros_to_duration(total: Decimal, text: str) -> timedelta:
    if total != total.to_integral_value():
        raise CelError(
            f"duration {render(text)} has sub-microsecond precision, which is not supported"
        )
    try:
        return check_duration(timedelta(microseconds=int(total)))
    except OverflowError:
        raise CelError("duration out of range") from None


def to_duration(v: Any) -> timedelta:
    k = kind(v)
    if k == "duration":
        return v  # type: ignore[no-any-return]
    if k == "string":
        return parse_duration(v)
    raise _overload("duration", v)


def format_duration(d: timedelta) -> str:
    """CEL's string(duration): seconds with an ``s``, e.g. ``5400s``, ``1.5s``."""
    us = d // _US
    sign = "-" if us < 0 else ""
    us = abs(us)
    sec, frac = divmod(us, 1_000_000)
    text = f"{sign}{sec}"
    if frac:
        text += f".{frac:06d}".rstrip("0")
    return text + "s"


def format_duration_literal(d: timedelta) -> str:
    """A duration as rulekit's literal (``1h30m``) when it has one, else ``duration("...")``."""
    us = d // _US
    if us > 0 and us % 1000 == 0:
        ms = us // 1000
        parts = []
        for unit, size_ in (
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
            ("ms", 1),
        ):
            if ms >= size_:
                parts.append(f"{ms // size_}{unit}")
                ms %= size_
        return "".join(parts)
    return f'duration("{format_duration(d)}")'


def format_double(f: float) -> str:
    """A double as CEL prints it: Go's ``%g`` (shortest digits; exponent form
    when the exponent is below -4 or at least 6)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign = "-" if f < 0 else ""
    t = Decimal(repr(abs(f))).normalize().as_tuple()
    digits = "".join(map(str, t.digits))
    point = len(digits) + int(t.exponent)  # digits before the decimal point
    exp = point - 1
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


@lru_cache(maxsize=256)
def time_zone(name: str) -> tzinfo:
    """An IANA zone name (``Asia/Shanghai``), ``UTC``, or a fixed offset (``+08:00``)."""
    m = re.fullmatch(r"([+-])?(\d{2}):(\d{2})", name)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        hours, minutes = int(m.group(2)), int(m.group(3))
        if hours > 23 or minutes > 59:
            raise CelError(f"time zone offset {render(name)} is out of range (-23:59 to +23:59)")
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CelError(
            f'unknown time zone {render(name)} (use an IANA name like "Asia/Shanghai" or an offset like "+08:00")'
        ) from None


def _local(ts: Any, tz: Any) -> datetime:
    if kind(ts) != "timestamp":
        raise _overload("time accessor", ts)
    if tz is not None and type(tz) is not str:
        raise _overload("time accessor", ts, tz)
    try:
        return ts.astimezone(UTC if tz is None else time_zone(tz))  # type: ignore[no-any-return]
    except OverflowError:
        raise CelError("timestamp out of range in that time zone") from None


def _total(d: Any, unit: timedelta) -> int:
    us: int = d // _US
    u = unit // _US
    q = abs(us) // u
    return q if us >= 0 else -q


def accessor(name: str, v: Any, tz: Any = None) -> int:
    """getFullYear(), getMonth(), ... on timestamps (in ``tz``, default UTC) and durations."""
    if kind(v) == "duration":
        if tz is not None:
            raise _overload(name, v, tz)
        unit = _DURATION_ACCESSORS.get(name)
        if unit is None:
            raise _overload(name, v)
        if name == "getMilliseconds":  # the millisecond part of the seconds, as in CEL
            ms = _total(v, timedelta(milliseconds=1))
            return ms - _total(v, timedelta(seconds=1)) * 1000
        return _total(v, unit)
    t = _local(v, tz)
    if name == "getFullYear":
        return t.year
    if name == "getMonth":
        return t.month - 1
    if name == "getDayOfYear":
        return t.timetuple().tm_yday - 1
    if name == "getDayOfMonth":
        return t.day - 1
    if name == "getDate":
        return t.day
    if name == "getDayOfWeek":
        return (t.weekday() + 1) % 7
    if name == "getHours":
        return t.hour
    if name == "getMinutes":
        return t.minute
    if name == "getSeconds":
        return t.second
    if name == "getMilliseconds":
        return t.microsecond // 1000
    raise _overload(name, v)


_DURATION_ACCESSORS = {
    "getHours": timedelta(hours=1),
    "getMinutes": timedelta(minutes=1),
    "getSeconds": timedelta(seconds=1),
    "getMilliseconds": timedelta(milliseconds=1),
}
ACCESSORS = (
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
)


def since(now: Any, t: Any) -> timedelta:
    if kind(t) != "timestamp":
        raise _overload("since", t)
    return check_duration(_utc(now) - _utc(t))


# -- calendar time (rulekit.core.calendar; docs/time.md) ----------------------------------
# The functions that count in a zone or on a calendar take the expression's time rules
# first (the policy's zone and calendars, which the checker records): both evaluators
# pass them, so a zone or a calendar a call leaves out is the policy's.

#: Time rules of an expression outside a policy: UTC, no working-day calendar.
DEFAULT_TIME_RULES = cal.TimeRules("UTC", UTC)


def _calendar_error(e: cal.CalendarError) -> CelError:
    return CelError(e.message)


def add_period(t: Any, p: cal.BoundPeriod) -> Any:
    """A time or a date moved by a calendar period."""
    try:
        return p.after(t) if kind(t) == "timestamp" else p.after_date(t)
    except cal.CalendarError as e:
        raise _calendar_error(e) from None
    except OverflowError:
        raise CelError("timestamp out of range") from None


def _zone(rules: cal.TimeRules, zone: tuple[Any, ...]) -> tzinfo:
    if not zone:
        return rules.tz
    if type(zone[0]) is not str:
        raise CelError(f"a time zone is a string, not {kind(zone[0])}")
    return time_zone(zone[0])


def _work_calendar(rules: cal.TimeRules, name: tuple[Any, ...]) -> cal.WorkCalendar:
    c = rules.calendar(name[0] if name else None)
    if c is None:
        raise CelError(
            f"unknown calendar {render(name[0])}"
            if name
            else "name the calendar: the policy declares "
            + ("no calendar" if not rules.calendars else "several")
        )
    return c


def _date_arg(v: Any, what: str) -> date:
    if kind(v) != "date":
        raise _overload(what, v)
    return v  # type: ignore[no-any-return]


def local_date(rules: cal.TimeRules, t: Any, *zone: Any) -> date:
    """``t.localDate()``: the date of the instant ``t`` in the zone (default: the policy's)."""
    if kind(t) != "timestamp":
        raise _overload("localDate", t)
    try:
        return cal.local_date(t, _zone(rules, zone))
    except cal.CalendarError as e:
        raise _calendar_error(e) from None


_WALL_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\Z", re.ASCII)


def parse_wall_time(text: Any) -> time:
    """``17:00``, ``23:59:59``, ``08:30:00.5``: a wall time of day."""
    m = _WALL_TIME.match(text) if type(text) is str else None
    if m is None:
        raise CelError(f'{render(text)} is not a time of day (like "17:00" or "23:59:59")')
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if h > 23 or mi > 59 or s > 59:
        raise CelError(f"{render(text)} is not a time of day (00:00 to 23:59:59)")
    return time(h, mi, s, int((m.group(4) or "0").ljust(6, "0")))


def at_time(rules: cal.TimeRules, d: Any, wall: Any, *zone: Any) -> datetime:
    """``d.atTime("17:00")``: the instant of that wall time on date ``d`` (a time in a
    clock change's gap moves forward by the gap; a repeated one is the first)."""
    try:
        return cal.resolve(_date_arg(d, "atTime"), parse_wall_time(wall), _zone(rules, zone))
    except cal.CalendarError as e:
        raise _calendar_error(e) from None


def _day_of(rules: cal.TimeRules, x: Any, zone: tuple[Any, ...], what: str) -> tuple[date, tzinfo]:
    tz = _zone(rules, zone)
    k = kind(x)
    if k == "timestamp":
        return cal.local_date(x, tz), tz
    return _date_arg(x, what), tz


def start_of_day(rules: cal.TimeRules, x: Any, *zone: Any) -> datetime:
    """The first instant of a date (or of a time's local date)."""
    try:
        return cal.start_of_day(*_day_of(rules, x, zone, "startOfDay"))
    except cal.CalendarError as e:
        raise _calendar_error(e) from None


def end_of_day(rules: cal.TimeRules, x: Any, *zone: Any) -> datetime:
    """The last instant (23:59:59.999999) of a date (or of a time's local date)."""
    try:
        return cal.end_of_day(*_day_of(rules, x, zone, "endOfDay"))
    except cal.CalendarError as e:
        raise _calendar_error(e) from None


def is_working_day(rules: cal.TimeRules, d: Any, *calendar: Any) -> bool:
    return _work_calendar(rules, calendar).is_working(_date_arg(d, "isWorkingDay"))


def next_working_day(rules: cal.TimeRules, d: Any, *calendar: Any) -> date:
    """``d`` when it is a working day, else the next working day after it."""
    try:
        return _work_calendar(rules, calendar).roll_forward(_date_arg(d, "nextWorkingDay"))
    except cal.CalendarError as e:
        raise _calendar_error(e) from None


def days_between(a: Any, b: Any) -> int:
    """Whole days from date ``a`` to date ``b``."""
    return cal.days_between(_date_arg(a, "daysBetween"), _date_arg(b, "daysBetween"))


def to_date(v: Any) -> date:
    k = kind(v)
    if k == "date":
        return v  # type: ignore[no-any-return]
    if k == "string":
        m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", v, re.ASCII)
        try:
            if m is None:
                raise ValueError("write YYYY-MM-DD")
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError as e:
            raise CelError(f"date() cannot read {render(v)} as a date: {e}") from None
    raise _overload("date", v)


#: Functions that take the expression's time rules first (see above).
TIME_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "localDate": local_date,
    "atTime": at_time,
    "startOfDay": start_of_day,
    "endOfDay": end_of_day,
    "isWorkingDay": is_working_day,
    "nextWorkingDay": next_working_day,
}


def money_literal(text: str) -> Decimal:
    """The exact decimal a double literal spells (``299.99`` -> Decimal("299.99"))."""
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the grammar admits only numbers
        raise CelError(f"{text} is not a decimal number") from None


# -- caller-supplied values -----------------------------------------------------------
# A value read from the caller's variables where a type was declared is checked
# (and widened: an int for a double or money) by the same function in the
# compiled code and in the interpreter, so both agree on every input.


def _bad_input(declared: str, v: object) -> CelError:
    try:
        got = f"{kind(v)} {render(v)}"
    except CelError as e:
        got = str(e)
    return CelError(f"declared {declared} but the value given is {got}")


def input_bool(v: Any) -> bool:
    if v is True or v is False:
        return v
    raise _bad_input("bool", v)


def input_int(v: Any) -> int:
    if type(v) is int:
        return check_int(v)
    raise _bad_input("int", v)


def input_double(v: Any) -> float:
    t = type(v)
    if t is float:
        return v  # type: ignore[no-any-return]
    if t is int:
        try:
            return float(v)
        except OverflowError:
            raise CelError(
                f"declared double but the int given is too large ({len(str(v))} digits)"
            ) from None
    raise _bad_input("double", v)


def input_money(v: Any) -> Decimal:
    t = type(v)
    if t is Decimal:
        if not v.is_finite():
            raise CelError(f"declared money but the value given is {v}")
        return v  # type: ignore[no-any-return]
    if t is int:
        return Decimal(v)
    if t is float:
        raise CelError(
            f"declared money but the value given is the float {v!r}: pass a Decimal (or an int) "
            "so amounts stay exact"
        )
    raise _bad_input("money", v)


def input_timestamp(v: Any) -> datetime:
    if isinstance(v, datetime) and v.tzinfo is not None:
        # Fixed offsets as given; a named zone becomes the same instant in UTC, so
        # arithmetic is on instants (see _utc).
        return v if type(v) is datetime and type(v.tzinfo) is timezone else _utc(v)
    if isinstance(v, datetime):
        raise CelError("declared timestamp but the datetime given has no time zone")
    raise _bad_input("timestamp", v)


def input_duration(v: Any) -> timedelta:
    if type(v) is timedelta:
        return check_duration(v)
    raise _bad_input("duration", v)


def input_string(v: Any) -> str:
    if type(v) is str:
        return v
    raise _bad_input("string", v)


def input_bytes(v: Any) -> bytes:
    if type(v) is bytes:
        return v
    raise _bad_input("bytes", v)


#: Declared kind -> the check applied to a value read from the caller.
INPUT_CHECKS = {
    "bool": input_bool,
    "int": input_int,
    "double": input_double,
    "money": input_money,
    "timestamp": input_timestamp,
    "duration": input_duration,
    "string": input_string,
    "bytes": input_bytes,
    "enum": input_string,
}


# -- optional values (cel-spec's optional extension) --------------------------------------


class CelOptional:
    """An optional value: ``optional.of(x)`` (``present``) or ``optional.none()``."""

    __slots__ = ("present", "value")

    def __init__(self, present: bool, value: Any = None) -> None:
        self.present = present
        self.value = value

    def __eq__(self, other: object) -> bool:
        if type(other) is not CelOptional:
            return NotImplemented
        if self.present != other.present:
            return False
        return not self.present or eq(self.value, other.value)

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return f"optional.of({render(self.value)})" if self.present else "optional.none()"

    __repr__ = __str__


NONE = CelOptional(False)
_KINDS[CelOptional] = "optional_type"
TYPES["optional_type"] = CelType("optional_type")


def optional_of(v: Any) -> CelOptional:
    return CelOptional(True, v)


def optional_none() -> CelOptional:
    return NONE


def optional_of_non_zero(v: Any) -> CelOptional:
    """``optional.ofNonZeroValue(v)``: none for the zero value of v's type."""
    k = kind(v)
    zero = (
        v is None
        or (k in ("bool", "int", "double", "money", "string", "bytes", "list", "map") and not v)
        or (k == "duration" and v == timedelta(0))
        or (k == "timestamp" and v == _EPOCH)
    )
    return NONE if zero else CelOptional(True, v)


def _optional(v: Any, function: str) -> CelOptional:
    if type(v) is not CelOptional:
        raise CelError(f"{function}() needs an optional value, got {kind(v)}")
    return v


def optional_has_value(opt: Any) -> bool:
    return _optional(opt, "hasValue").present


def optional_value(opt: Any) -> Any:
    o = _optional(opt, "value")
    if not o.present:
        raise CelError("value() of optional.none(): the optional holds no value")
    return o.value


def optional_or_value(opt: Any, default: Any) -> Any:
    o = _optional(opt, "orValue")
    return o.value if o.present else default


def optional_or(opt: Any, other: Any) -> CelOptional:
    o = _optional(opt, "or")
    return o if o.present else _optional(other, "or")


def optional_select(obj: Any, field: str) -> CelOptional:
    """``obj.?field``: the field, optional.none() when absent (and when ``obj`` is none)."""
    if type(obj) is CelOptional:
        if not obj.present:
            return NONE
        obj = obj.value
    if kind(obj) != "map":
        raise CelError(f"cannot select field `{field}` of a {kind(obj)}")
    return CelOptional(True, obj[field]) if field in obj else NONE


def optional_index(container: Any, key: Any) -> CelOptional:
    """``container[?key]``: the element, optional.none() when absent or out of range."""
    if type(container) is CelOptional:
        if not container.present:
            return NONE
        container = container.value
    k = kind(container)
    if k == "list":
        kk = kind(key)
        if kk == "int" or (kk == "double" and math.isfinite(key) and key == int(key)):
            i = int(key)
            return CelOptional(True, container[i]) if 0 <= i < len(container) else NONE
        raise _overload("[?]", container, key)
    if k == "map":
        found, v = map_lookup(container, key)
        return CelOptional(True, v) if found else NONE
    raise _overload("[?]", container, key)


#: Functions of optional values, by the name CEL calls them.
OPTIONAL_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "_?._": optional_select,
    "_[?_]": optional_index,
    "optional.of": optional_of,
    "optional.none": optional_none,
    "optional.ofNonZeroValue": optional_of_non_zero,
    "hasValue": optional_has_value,
    "value": optional_value,
    "orValue": optional_or_value,
    "or": optional_or,
}
