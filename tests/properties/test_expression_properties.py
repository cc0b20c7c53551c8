"""Hypothesis properties of the expression pipeline (parse -> check -> codegen | interpreter).

1. Robustness: any text compiles or raises CompileError whose diagnostics point inside
   the text; whatever compiles evaluates or raises EvaluationError (never anything else).
2. Round trip: ``to_source`` output parses back to the same tree and is a fixed point.
3. Differential: the generated fast path (``e.evaluate``) agrees exactly with the
   reference interpreter (``e._interp.evaluate``) on typed and untyped expressions and on
   inputs of the wrong Python type; ``&&`` / ``||`` are commutative and absorb errors.
4. Serialization: ``to_dict``/``from_dict`` (also through JSON) and pickle keep the meaning.

Bugs these properties found stay pinned at the end of the module as regression tests
(``test_fixed_*``), each with its minimal repro as an explicit ``@example``. A newly
found bug goes in as a strict xfail with its repro, and the broad properties skip its
signature (``known_bug``) until it is fixed.
"""

from __future__ import annotations

import contextlib
import json
import math
import pickle
import re
import string
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st

from rulekit import CompileError, EvaluationError, Expression, compile_expression
from rulekit.core.diagnostics import CODES
from rulekit.core.source import Source
from rulekit.expr import ast as rk_ast
from rulekit.expr import parser as rk_parser
from rulekit.expr.expression import parse_and_check
from rulekit.expr.printer import to_source

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: CEL's duration range (about 10,000 years either way).
MAX_DURATION = timedelta(seconds=315_576_000_000)

PROPS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DECLS = {
    "a": "int",
    "b": "int",
    "d": "double",
    "m": "money",
    "s": "string",
    "f": "bool",
    "t": "time",
    "u": "duration",
    "l": "list(int)",
    "o.x": "int",
    "o.y": "money",
}


# =====================================================================================
# Known bugs: raw exceptions that escape the public API (see the regression tests at
# the end). The broad properties skip these signatures and nothing else.
# =====================================================================================


def _raised_in(exc: BaseException, function: str) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == function:
            return True
        tb = tb.tb_next
    return False


def known_bug(exc: BaseException) -> str | None:
    """The name of a known, not yet fixed bug that raised ``exc`` (none at present), or None."""
    del exc
    return None


# =====================================================================================
# Helpers: outcomes, strict comparison, diagnostics
# =====================================================================================

Outcome = tuple[str, Any]


def run(fn: Callable[[], Any]) -> Outcome:
    """("ok", value) | ("error", EvaluationError) | ("raw", any other exception)."""
    try:
        return ("ok", fn())
    except EvaluationError as e:
        return ("error", e)
    except Exception as e:
        return ("raw", e)


def same(a: Any, b: Any) -> bool:
    """Same value and same Python type, recursively (NaN == NaN; -0.0 != 0.0; Decimal
    digits and exponent; datetime offset and tzinfo; dict keys by type too)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, Decimal):
        return a.as_tuple() == b.as_tuple()
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        typed_b = {(type(k), k): v for k, v in b.items()}
        return all((type(k), k) in typed_b and same(v, typed_b[(type(k), k)]) for k, v in a.items())
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset() and repr(a.tzinfo) == repr(b.tzinfo)
    return bool(a == b)


def fail_on_raw(o: Outcome, what: str) -> bool:
    """True if ``o`` is a known bug (skip the example); raise if it is a new raw error."""
    if o[0] != "raw":
        return False
    bug = known_bug(o[1])
    if bug is None:
        raise AssertionError(f"{what} raised {type(o[1]).__name__}: {o[1]}") from o[1]
    event(f"known bug: {bug}")
    return True


def check_diagnostics(text: str, err: CompileError) -> None:
    assert err.diagnostics, "CompileError without diagnostics"
    lines = text.split("\n")  # rulekit's Source counts lines by "\n" only
    for d in err.diagnostics:
        assert re.fullmatch(r"RK\d{4}", d.code), d
        assert d.code in CODES, d
        assert d.message, d
        for line, col in ((d.line, d.column), (d.end_line, d.end_column)):
            assert 1 <= line <= len(lines), (d, len(lines))
            assert 1 <= col <= len(lines[line - 1]) + 1, (d, lines[line - 1])
        assert (d.line, d.column) <= (d.end_line, d.end_column), d
    assert str(err)  # rendering never fails


def compile_or_none(text: str, decls: dict[str, str] | None) -> Expression | None:
    """Compile; None on CompileError (diagnostics checked) or on a known bug."""
    try:
        return compile_expression(text, decls)
    except CompileError as e:
        check_diagnostics(text, e)
        return None
    except Exception as e:
        bug = known_bug(e)
        if bug is None:
            raise AssertionError(f"compiling {text!r} raised {type(e).__name__}: {e}") from e
        event(f"known bug: {bug}")
        return None


def outcomes_agree(e: Expression, variables: Any, now: Any) -> None:
    """The compiled fast path and the reference interpreter give the same outcome."""
    fast = run(lambda: e.evaluate(variables, now=now))
    ref = run(lambda: e._interp.evaluate(variables, now))
    if fail_on_raw(fast, "the fast path") or fail_on_raw(ref, "the interpreter"):
        return
    note(f"source={e.source!r}")
    note(f"python={e.python_source}")
    note(f"fast={fast!r} ref={ref!r}")
    assert fast[0] == ref[0], f"fast path {fast!r} but interpreter {ref!r}"
    if fast[0] == "ok":
        assert same(fast[1], ref[1]), f"fast path {fast[1]!r} but interpreter {ref[1]!r}"
    event(f"outcome: {fast[0]}")
    explained = run(lambda: e.explain(variables, now=now))
    if fail_on_raw(explained, "explain"):
        return
    assert explained[0] == "ok", explained
    if ref[0] == "ok":
        assert explained[1].error is None and same(explained[1].value, ref[1]), explained
    else:
        assert explained[1].error is not None, explained


# =====================================================================================
# Value strategies
# =====================================================================================

MISSING = object()  # a variable left out of the mapping

ZONES = [
    UTC,
    timezone(timedelta(hours=8)),
    timezone(timedelta(hours=-5, minutes=-30)),
    timezone(timedelta(hours=23, minutes=59)),
    ZoneInfo("America/New_York"),
    ZoneInfo("Asia/Shanghai"),
]
int64s = st.one_of(
    st.integers(-1000, 1000),
    st.sampled_from([0, 1, -1, INT64_MAX, INT64_MIN, 2**31, -(2**32)]),
    st.integers(INT64_MIN, INT64_MAX),
)
aware_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.sampled_from(ZONES)
)
naive_datetimes = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1))
durations = st.one_of(
    st.timedeltas(),  # beyond CEL's range too: an error on both paths
    st.timedeltas(min_value=-MAX_DURATION, max_value=MAX_DURATION),
    st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=3)),
    st.sampled_from([timedelta(0), MAX_DURATION, -MAX_DURATION, timedelta(microseconds=1)]),
)
decimals = st.one_of(
    st.decimals(min_value=-(10**12), max_value=10**12, places=2),
    st.decimals(min_value=-(10**6), max_value=10**6, places=0),
    st.decimals(min_value=-(10**15), max_value=10**15, allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [Decimal("0"), Decimal("-0"), Decimal("1E+3"), Decimal("0.10"), Decimal("1.5")]
    ),
)
floats = st.floats()
wrong_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([2**63, -(2**63) - 1, 2**64]),
    st.floats(),
    st.text(max_size=4),
    st.binary(max_size=3),
    st.sampled_from([Decimal("1"), Decimal("NaN"), Decimal("-Infinity"), Decimal("sNaN")]),
    naive_datetimes,
    st.just(date(2026, 3, 1)),
    st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=2)),
    st.lists(st.integers(-3, 3), max_size=2),
    st.dictionaries(st.sampled_from(["x", "y"]), st.integers(-3, 3), max_size=2),
    st.just(object()),
)


def declared(right: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a value of the declared type; sometimes the wrong type, sometimes missing."""
    return st.one_of(*[right] * 8, wrong_values, st.just(MISSING))


def drop_missing(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not MISSING}


obj_values = st.one_of(
    st.fixed_dictionaries({"x": declared(int64s), "y": declared(decimals)}).map(drop_missing),
    st.fixed_dictionaries({"x": declared(int64s), "y": declared(decimals)}).map(drop_missing),
    wrong_values,
)
typed_vars = st.fixed_dictionaries(
    {
        "a": declared(int64s),
        "b": declared(int64s),
        "d": declared(st.one_of(floats, st.integers(-(2**70), 2**70))),
        "m": declared(st.one_of(decimals, st.integers(-(10**6), 10**6))),
        "s": declared(st.text(max_size=8)),
        "f": declared(st.booleans()),
        "t": declared(aware_datetimes),
        "u": declared(durations),
        "l": declared(
            st.one_of(
                st.lists(int64s, max_size=5),
                st.lists(st.one_of(int64s, st.booleans(), st.floats(allow_nan=False)), max_size=4),
                st.lists(int64s, max_size=3).map(tuple),
                st.lists(st.sampled_from([2**63, -(2**63) - 1]), max_size=2),
            )
        ),
        "o": st.one_of(obj_values, st.just(MISSING)),
    }
).map(drop_missing)
nows = st.one_of(aware_datetimes, aware_datetimes, st.none(), naive_datetimes)

scalar_values = st.one_of(
    st.none(),
    st.booleans(),
    int64s,
    st.integers(),
    floats,
    decimals,
    st.text(max_size=6),
    st.binary(max_size=4),
    aware_datetimes,
    naive_datetimes,
    durations,
)
any_values = st.recursive(
    scalar_values,
    lambda c: st.one_of(
        st.lists(c, max_size=3),
        st.lists(c, max_size=2).map(tuple),
        st.dictionaries(
            st.one_of(st.sampled_from(["x", "y", "z", "k"]), st.integers(-2, 2), st.booleans()),
            c,
            max_size=3,
        ),
    ),
    max_leaves=8,
)
untyped_vars = st.dictionaries(st.sampled_from(["x", "y", "z", "v", "w"]), any_values, max_size=5)


# =====================================================================================
# 1. Robustness
# =====================================================================================

CORPUS = [
    "a + b * 2 == 7",
    "a % 3 == 1 || b / 2 > 0",
    "-a < b && !f",
    "d * 2.5 >= 1e3 || d != d",
    'm > 99.99 && m <= money("1000.00")',
    'm + o.y - 1.25 < money("5")',
    "m * 0.5 == o.y",
    "m / 4 > -0.01",
    "o.x in l",
    "size(l) > 0 && l[0] == a",
    "l.all(x, x > 0)",
    "l.exists(x, x % 2 == 0)",
    "l.exists_one(x, x == a)",
    "l.map(x, x * 2)",
    "l.map(x, x > 1, x - 1)",
    "l.filter(x, x != b).size() == 2",
    "s.startsWith(\"ab\") && s.endsWith('z')",
    's.contains("\\u00e9") || s.matches("^a+$")',
    "s + \"!\" == 'hi!'",
    'size(s) <= 10 ? s : "long"',
    "string(a) + string(d) + string(m)",
    'int(d) + int(m) + int("42")',
    "double(a) / 3.0 > 0.5",
    't < timestamp("2026-03-01T12:00:00Z")',
    "t + u > timestamp('2020-01-01T00:00:00+08:00')",
    "since(t) > 6h",
    "now - t >= 1h30m",
    'u == duration("90m") || u < 10d',
    't.getHours("Asia/Shanghai") >= 9 && t.getDayOfWeek() < 6',
    "t.getFullYear('+08:00') == 2026",
    "u.getMinutes() > 30",
    "has(o.x) ? o.x : 0",
    "f == true and not (a > b) or null == null",
    '{"k": a, "j": b}.k + {1: 2}[1]',
    "[1, 2, 3][a % 3] > 1",
    "type(a) == int && type(s) == string",
    'b"\\x00\\xff" + bytes("abc") == b\'\\x00\\xffabc\'',
    "r'\\d+' == \"\\\\d+\"",
    "'''multi\nline''' != s",
    "0x1F + -9223372036854775807 - 1 < a",
    "dyn(a) + 1 == 2",
    'bool("true") && double("1.5e3") > 1.0',
    "a == 1 // comment\n && b == 2",
    "m < -1.5 || m > 2.0",
]

CEL_CHARS = (
    string.ascii_letters
    + string.digits
    + "+-*/%<>=!&|?:.,()[]{}\"'\\`_ \n\t\r"
    + "éµ中😀\u2028\x00\x7f\u00a0"
)
TOKENS = [
    "a", "b", "m", "s", "l", "o", "x", "f", "t", "u", ".", ".x", ".y", "1", "0", "42", "0x1F",
    "1u", "1.5", ".5", "1e3", "1e999", "9223372036854775808", "1h30m", "10d", "500ms", "'s'",
    '"str"', '"\\u00e9"', '"\\x"', "b'\\xff'", "r'\\n'", "'''t'''", '"', "'", "+", "-", "*", "/",
    "%", "==", "!=", "<", "<=", ">", ">=", "=", "in", "&&", "||", "&", "|", "and", "or", "not",
    "!", "?", ":", ",", "(", ")", "[", "]", "{", "}", "true", "false", "null", "size", "contains",
    "startsWith", "all", "exists", "exists_one", "map", "filter", "has", "int", "string",
    "money", "timestamp", "duration", "dyn", "type", "now", "since", "getHours", "matches",
    "if", "// c\n", "\n", "é",
]  # fmt: skip
random_text = st.one_of(
    st.text(alphabet=CEL_CHARS, max_size=30),
    st.lists(st.sampled_from(TOKENS), max_size=12).flatmap(
        lambda toks: st.sampled_from([" ", ""]).map(lambda sep: sep.join(toks))
    ),
    st.text(max_size=12),
)

_TOKEN_RE = re.compile(
    r"\s+|\w+|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|&&|\|\||[=!<>]=|//[^\n]*|.", re.S
)


@st.composite
def mutated_expressions(draw: st.DrawFn) -> str:
    src = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        op = draw(
            st.sampled_from(
                ["del", "ins", "repl", "dup", "tdel", "tins", "trepl", "tdup", "tswap", "ident"]
            )
        )
        if op in ("del", "ins", "repl", "dup"):
            i = draw(st.integers(0, max(0, len(src) - 1)))
            ch = draw(st.sampled_from(CEL_CHARS))
            src = {
                "del": src[:i] + src[i + 1 :],
                "ins": src[:i] + ch + src[i:],
                "repl": src[:i] + ch + src[i + 1 :],
                "dup": src[: i + 1] + src[i:],
            }[op]
        else:
            toks = _TOKEN_RE.findall(src) or [""]
            i = draw(st.integers(0, len(toks) - 1))
            j = draw(st.integers(0, len(toks) - 1))
            tok = draw(st.sampled_from(TOKENS))
            if op == "tdel":
                del toks[i]
            elif op == "tins":
                toks.insert(i, tok)
            elif op == "trepl":
                toks[i] = tok
            elif op == "tdup":
                toks.insert(i, toks[i])
            elif op == "tswap":
                toks[i], toks[j] = toks[j], toks[i]
            else:  # swap a name for another (declared or not)
                names = [k for k, t in enumerate(toks) if re.fullmatch(r"[a-z]\w*", t)]
                if names:
                    toks[draw(st.sampled_from(names))] = draw(
                        st.sampled_from(["a", "b", "d", "m", "s", "f", "t", "u", "l", "o", "zz"])
                    )
            src = "".join(toks)
    return src


def robust(text: str, variables: dict[str, Any], now: Any) -> None:
    """Compile with and without declarations; evaluate and explain what compiles."""
    for decls in (DECLS, None):
        e = compile_or_none(text, decls)
        event(f"compiled with{'out' if decls is None else ''} declarations: {e is not None}")
        if e is None:
            continue
        for what, fn in (
            ("evaluate", lambda e=e: e.evaluate(variables, now=now)),
            ("explain", lambda e=e: e.explain(variables, now=now)),
        ):
            o = run(fn)
            note(f"{what}({text!r}, {variables!r}, now={now!r}) -> {o!r}")
            if not fail_on_raw(o, f"{what} of {text!r}") and what == "explain":
                assert o[0] == "ok", f"explain raised {o[1]!r}"


def test_corpus_is_valid() -> None:
    for text in CORPUS:
        compile_expression(text, DECLS)  # raises if the corpus went stale


robust_vars = st.one_of(
    typed_vars,
    st.tuples(typed_vars, untyped_vars).map(lambda p: {**p[0], **p[1]}),
)


@settings(PROPS, max_examples=400)
@given(text=random_text, variables=robust_vars, now=st.one_of(nows, st.just("2026")))
def test_random_text_compiles_or_reports_then_evaluates_or_reports(
    text: str, variables: dict[str, Any], now: Any
) -> None:
    robust(text, variables, now)


@settings(PROPS, max_examples=500)
@given(text=mutated_expressions(), variables=robust_vars, now=nows)
def test_mutated_expressions_compile_or_report_then_evaluate_or_report(
    text: str, variables: dict[str, Any], now: Any
) -> None:
    robust(text, variables, now)


# =====================================================================================
# 2. Round trip through the printer
# =====================================================================================

IDENTS = [
    "x", "y", "z", "order", "amount", "_tmp", "a1", "inx", "notes", "orders", "andy",
    "nullable", "trueish", "e5", "ms", "h", "d", "s", "m", "all", "size", "has",
]  # fmt: skip
FIELDS = ["f", "x", "amount", "_z", "size", "all", "map", "has", "e5", "ms", "d1", "In", "NULL"]
_SIMPLE_ESC = {
    "\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", '"': '\\"', "'": "\\'", "\a": "\\a",
    "\b": "\\b", "\f": "\\f", "\v": "\\v", "?": "\\?", "`": "\\`",
}  # fmt: skip


def _escape_char(c: str, how: int, quote: str) -> str:
    """One character of a quoted literal, written one of several ways."""
    o = ord(c)
    must = c in (quote, "\\", "\n", "\r")
    if how == 0 and not must:
        return c
    if how == 1 and c in _SIMPLE_ESC:
        return _SIMPLE_ESC[c]
    if how == 2 and o < 256:
        return f"\\x{o:02x}" if o % 2 else f"\\X{o:02X}"
    if how == 3 and o < 256:
        return f"\\{o:03o}"
    return f"\\u{o:04x}" if o <= 0xFFFF and how != 4 else f"\\U{o:08X}"


@st.composite
def string_literals(draw: st.DrawFn) -> str:
    value = draw(st.text(max_size=8))
    hows = draw(st.lists(st.integers(0, 4), min_size=len(value), max_size=len(value)))
    style = draw(st.sampled_from(["dq", "sq", "raw", "triple"]))
    if style == "raw" and not any(c in value for c in '"\n\r'):
        return draw(st.sampled_from(["r", "R"])) + '"' + value + '"'
    if style == "triple":
        body = "".join(
            c if (h == 0 and c not in "\"\\'") else _escape_char(c, max(h, 1), '"')
            for c, h in zip(value, hows, strict=True)
        )
        return '"""' + body + '"""'
    q = "'" if style == "sq" else '"'
    return q + "".join(_escape_char(c, h, q) for c, h in zip(value, hows, strict=True)) + q


@st.composite
def bytes_literals(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        body = draw(st.text(alphabet=string.ascii_letters + string.digits + "\\ _.", max_size=6))
        return draw(st.sampled_from(["br", "rb", "bR", "Rb"])) + "'" + body + "'"
    value = draw(st.binary(max_size=6))
    out = []
    for byte in value:
        c = chr(byte)
        how = draw(st.integers(0, 3))
        if how == 0 and 0x20 <= byte < 0x7F and c not in '"\\':
            out.append(c)
        elif how == 1 and c in _SIMPLE_ESC:
            out.append(_SIMPLE_ESC[c])
        elif how == 2:
            out.append(f"\\{byte:03o}")
        else:
            out.append(f"\\x{byte:02x}")
    return draw(st.sampled_from(["b", "B"])) + '"' + "".join(out) + '"'


# Units from largest to smallest, each once (1d12h, 1h30m): anything else is RK0108.
_UNITS = ["d", "h", "m", "s", "ms"]
duration_literals = st.lists(
    st.tuples(st.integers(0, 999), st.sampled_from(_UNITS)),
    min_size=1,
    max_size=3,
    unique_by=lambda part: part[1],
).map(lambda parts: "".join(f"{n}{u}" for n, u in sorted(parts, key=lambda p: _UNITS.index(p[1]))))


def _double_text(f: float) -> str:
    return "1e999" if f == math.inf else "-1e999" if f == -math.inf else repr(f)


int_texts = st.one_of(
    st.integers(0, INT64_MAX).map(str),
    st.integers(0, INT64_MAX).map(lambda n: f"0x{n:x}" if n % 2 else f"0X{n:X}"),
    st.integers(INT64_MIN, -1).map(str),
    st.sampled_from(["0", "-0", str(INT64_MIN), str(INT64_MAX), "007"]),
)
double_texts = st.floats(allow_nan=False).map(_double_text)

rt_leaves = st.one_of(
    int_texts,
    double_texts,
    string_literals(),
    bytes_literals(),
    duration_literals,
    st.sampled_from(["true", "false", "null"]),
    st.sampled_from(IDENTS),
    st.sampled_from(IDENTS).map(lambda n: "." + n),
)
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|\d*\.\d+(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?")


def _unary(op: str, x: str) -> str:
    # Both folded literals (`-5`) and negated parenthesized numbers (`-(5)`).
    if op == "-" and _NUMBER.fullmatch(x):
        return "-" + x if len(x) % 2 else f"-({x})"
    return f"{op}({x})"


def _macro(p: tuple[str, str, str, str, str, bool]) -> str:
    target, macro, var, e1, e2, three = p
    if macro == "map" and three:
        return f"({target}).map({var}, {e1}, {e2})"
    return f"({target}).{macro}({var}, {e1})"


def _rt_extend(c: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binops = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in"]
    logops = ["&&", "||", "and", "or"]
    args = st.lists(c, max_size=3).map(", ".join)
    return st.one_of(
        st.tuples(c, st.sampled_from(FIELDS)).map(lambda p: f"({p[0]}).{p[1]}"),
        st.tuples(c, c).map(lambda p: f"({p[0]})[{p[1]}]"),
        st.tuples(st.sampled_from(["!", "not ", "-"]), c).map(lambda p: _unary(*p)),
        st.tuples(c, st.sampled_from(binops + logops), c).map(
            lambda p: f"({p[0]}) {p[1]} ({p[2]})"
        ),
        st.tuples(c, c, c).map(lambda p: f"({p[0]}) ? ({p[1]}) : ({p[2]})"),
        st.tuples(st.lists(c, max_size=3), st.booleans()).map(
            lambda p: "[" + ", ".join(p[0]) + ("," if p[1] and p[0] else "") + "]"
        ),
        st.tuples(st.lists(st.tuples(c, c), max_size=3), st.booleans()).map(
            lambda p: (
                "{" + ", ".join(f"{k}: {v}" for k, v in p[0]) + ("," if p[1] and p[0] else "") + "}"
            )
        ),
        st.tuples(
            st.sampled_from(["size", "int", "string", "double", "dyn", "matches", "all", "f"]),
            args,
            st.booleans(),
        ).map(lambda p: f"{'.' if p[2] else ''}{p[0]}({p[1]})"),
        st.tuples(
            c, st.sampled_from(["size", "contains", "startsWith", "getHours", "has", "foo"]), args
        ).map(lambda p: f"({p[0]}).{p[1]}({p[2]})"),
        st.tuples(
            c,
            st.sampled_from(["all", "exists", "exists_one", "map", "filter"]),
            st.sampled_from(["x", "v", "e5"]),
            c,
            c,
            st.booleans(),
        ).map(_macro),
        st.tuples(c, st.sampled_from(FIELDS)).map(lambda p: f"has(({p[0]}).{p[1]})"),
    )


cel_sources = st.recursive(rt_leaves, _rt_extend, max_leaves=14)

_SPAN_KEYS = {"span", "field_span", "name_span", "op_span", "var_span"}


def shape(j: Any) -> Any:
    """to_json output without spans, and without the ``text`` of literals other than
    doubles (where it matters: a double literal beside money is read from its text)."""
    if isinstance(j, dict):
        drop_text = j.get("node") == "Literal" and j.get("kind") != "double"
        return {
            k: shape(v)
            for k, v in j.items()
            if k not in _SPAN_KEYS and not (drop_text and k == "text")
        }
    if isinstance(j, list):
        return [shape(x) for x in j]
    return j


def parse_ok(text: str) -> rk_ast.Expr:
    result = rk_parser.parse(Source(text))
    assert result.ast is not None and not result.diagnostics, (text, result.diagnostics)
    return result.ast


@settings(PROPS, max_examples=500)
@given(src=cel_sources)
def test_printed_source_parses_back_to_the_same_tree(src: str) -> None:
    tree = parse_ok(src)
    printed = to_source(tree)
    note(f"printed={printed!r}")
    again = parse_ok(printed)
    assert to_source(again) == printed  # a fixed point
    assert shape(rk_ast.to_json(again)) == shape(rk_ast.to_json(tree))


# =====================================================================================
# 3. Differential: typed expressions over the declarations, untyped expressions
# =====================================================================================

MONEY_LITERAL_TEXTS = st.one_of(
    st.sampled_from(["0.10", "1e2", "2.50", "0.000001", "1.5e-3", "123456789.123456789123", ".5"]),
    st.sampled_from(["0.0", "-1.25", "1e30", "99.99", "-0.5", "3.0"]),
    st.decimals(min_value=-(10**9), max_value=10**9, places=3).map(lambda x: f"{x:f}"),
)
TZS = ['"+08:00"', '"-05:30"', '"UTC"', '"Asia/Shanghai"', '"America/New_York"', "'-00:00'"]
REGEXES = ['"^[a-z]+$"', '"a|b"', '""', "'[0-9]{2}'", '"(?i)É"']
TIME_LITS = [
    'timestamp("2026-03-01T12:00:00Z")',
    "timestamp('2020-02-29T23:59:59.5+05:30')",
    "timestamp(1700000000)",
    'timestamp("1970-01-01T00:00:00-00:00")',
]
DURATION_LITS = ["1h30m", "90s", "0s", "10d", "1ms", 'duration("-1.5h")', 'duration("PT48H")']
ACCESSORS = [
    "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek",
    "getHours", "getMinutes", "getSeconds", "getMilliseconds",
]  # fmt: skip


class _G:
    """Draws sub-expressions of a type, with the comprehension variables in scope."""

    def __init__(self, draw: st.DrawFn, depth: int, scope: dict[str, str]) -> None:
        self.draw, self.depth, self.scope = draw, depth, scope

    def __call__(self, ty: str, **extra: str) -> str:
        return "(" + self.draw(typed_exprs(ty, self.depth, {**self.scope, **extra})) + ")"

    def pick(self, xs: list[str]) -> str:
        return self.draw(st.sampled_from(xs))

    def var(self) -> str:
        return self.pick(["x", "y", "e", "a"])  # `a` shadows the declared a

    def lit(self, s: st.SearchStrategy[str]) -> str:
        return self.draw(s)


def _comp_int(g: _G) -> str:
    v = g.var()
    return f"{g('list')}.map({v}, {g('int', **{v: 'int'})})[0]"


_PRODUCTIONS: dict[str, list[Callable[[_G], str]]] = {
    "int": [
        lambda g: f"{g('int')} {g.pick(['+', '-', '*', '/', '%'])} {g('int')}",
        lambda g: f"-{g('int')}",
        lambda g: f"{g('bool')} ? {g('int')} : {g('int')}",
        lambda g: f"int({g(g.pick(['money', 'time']))})",
        # [x][0]: not a literal, so the checker's constant check of int(1e19) stays out of it
        lambda g: f"int([{g('double')}][0])",
        lambda g: f'int({g("string")} + "")',
        lambda g: f"{g('list')}[{g('int')}]",
        lambda g: f"size({g(g.pick(['string', 'list', 'bytes']))})",
        lambda g: f"{g(g.pick(['string', 'list']))}.size()",
        lambda g: f"{g('duration')}.{g.pick(['getHours', 'getMinutes', 'getSeconds', 'getMilliseconds'])}()",
        lambda g: f"{g('time')}.{g.pick(ACCESSORS)}()",
        lambda g: f"{g('time')}.{g.pick(ACCESSORS)}({g.pick(TZS)})",
        lambda g: f'{{"k": {g("int")}, "j": 0}}.k',
        lambda g: f'{{"k": {g("int")}}}["k"]',
        lambda g: f"[{g('int')}, {g('int')}][{g.pick(['0', '1', '2', '-1'])}]",
        lambda g: f"dyn({g('int')})",
        _comp_int,
    ],
    "double": [
        lambda g: f"{g('double')} {g.pick(['+', '-', '*', '/'])} {g('double')}",
        lambda g: f"-{g('double')}",
        lambda g: f"{g('bool')} ? {g('double')} : {g('double')}",
        lambda g: f"double({g(g.pick(['int', 'money']))})",
        lambda g: f'double({g("string")} + "")',
        lambda g: f"[{g('double')}][0]",
        lambda g: f"dyn({g('double')})",
    ],
    "money": [
        lambda g: f"{g('money')} {g.pick(['+', '-'])} {g('money')}",
        lambda g: f"{g('money')} {g.pick(['+', '-', '*', '/'])} {g('int')}",
        lambda g: f"{g('int')} {g.pick(['+', '-', '*'])} {g('money')}",
        lambda g: f"{g('money')} {g.pick(['+', '-', '*', '/'])} {g.lit(MONEY_LITERAL_TEXTS)}",
        lambda g: f"{g.lit(MONEY_LITERAL_TEXTS)} {g.pick(['+', '-', '*'])} {g('money')}",
        lambda g: f"-{g('money')}",
        lambda g: f"{g('bool')} ? {g('money')} : {g('money')}",
        lambda g: f"money({g('int')})",
        lambda g: f'money({g("string")} + "")',
        lambda g: f"dyn({g('money')})",
    ],
    "string": [
        lambda g: f"{g('string')} + {g('string')}",
        lambda g: f"string({g(g.pick(['int', 'double', 'money', 'bool', 'time', 'duration', 'string', 'bytes']))})",
        lambda g: f"{g('bool')} ? {g('string')} : {g('string')}",
        lambda g: f'{{"k": {g("string")}}}["k"]',
        lambda g: f"dyn({g('string')})",
    ],
    "bytes": [
        lambda g: f"{g('bytes')} + {g('bytes')}",
        lambda g: f"bytes({g('string')})",
        lambda g: f"{g('bool')} ? {g('bytes')} : {g('bytes')}",
    ],
    "bool": [
        lambda g: (lambda ty: f"{g(ty)} {g.pick(['==', '!=', '<', '<=', '>', '>='])} {g(ty)}")(
            g.pick(["int", "double", "money", "string", "time", "duration", "bool", "bytes"])
        ),
        lambda g: (lambda p: f"{g(p[0])} {g.pick(['==', '!=', '<', '<=', '>', '>='])} {g(p[1])}")(
            g.draw(st.permutations(g.draw(st.sampled_from([["int", "double"], ["money", "int"], ["money", "double"]]))))
        ),
        lambda g: f"{g('money')} {g.pick(['==', '<', '>='])} {g.lit(MONEY_LITERAL_TEXTS)}",
        lambda g: f"{g('list')} {g.pick(['==', '!='])} {g('list')}",
        lambda g: f"{g('int')} in {g('list')}",
        lambda g: f'{g("string")} in ["a", {g("string")}]',
        lambda g: f'{g("string")} in {{"k": 1, "": 2}}',
        lambda g: f"!{g('bool')}",
        lambda g: f"{g('bool')} {g.pick(['&&', '||', 'and', 'or'])} {g('bool')}",
        lambda g: f"{g('string')}.{g.pick(['contains', 'startsWith', 'endsWith'])}({g('string')})",
        lambda g: f"{g('string')}.matches({g.pick(REGEXES)})",
        lambda g: (lambda v: f"{g('list')}.{g.pick(['all', 'exists', 'exists_one'])}({v}, {g('bool', **{v: 'int'})})")(g.var()),
        lambda g: (lambda v: f'{{"k": 1, "j": 2}}.{g.pick(["all", "exists"])}({v}, {g("bool", **{v: "string"})})')(g.var()),
        lambda g: f"has(o.{g.pick(['x', 'y'])})",
        lambda g: f'o {g.pick(["==", "!="])} {{"x": {g("int")}, "y": {g("money")}}}',
        lambda g: f'{g.pick(["size(o)", "o.size()"])} {g.pick(["==", "<"])} {g("int")}',
        lambda g: f'{g("string")} in o',
        lambda g: (lambda v: f"o.exists({v}, {g('bool', **{v: 'string'})})")(g.var()),
        lambda g: f'{g("int")} == o[{g("string")} + ""]',  # o["x"] would be a field check
        lambda g: f"type({g('int')}) == {g.pick(['int', 'double', 'string'])}",
        lambda g: f"{g('bool')} ? {g('bool')} : {g('bool')}",
    ],
    "time": [
        lambda g: f"{g('time')} + {g('duration')}",
        lambda g: f"{g('duration')} + {g('time')}",
        lambda g: f"{g('time')} - {g('duration')}",
        lambda g: f"{g('bool')} ? {g('time')} : {g('time')}",
    ],
    "duration": [
        lambda g: f"{g('duration')} {g.pick(['+', '-'])} {g('duration')}",
        lambda g: f"-{g('duration')}",
        lambda g: f"{g('time')} - {g('time')}",
        lambda g: f"since({g('time')})",
        lambda g: f"{g('bool')} ? {g('duration')} : {g('duration')}",
        lambda g: f'duration({g("string")} + "")',
    ],
    "list": [
        lambda g: f"{g('list')} + {g('list')}",
        lambda g: (lambda v: f"{g('list')}.map({v}, {g('int', **{v: 'int'})})")(g.var()),
        lambda g: (lambda v: f"{g('list')}.map({v}, {g('bool', **{v: 'int'})}, {g('int', **{v: 'int'})})")(g.var()),
        lambda g: (lambda v: f"{g('list')}.filter({v}, {g('bool', **{v: 'int'})})")(g.var()),
        lambda g: f"[{g('int')}, {g('int')}]",
        lambda g: f"{g('bool')} ? {g('list')} : {g('list')}",
    ],
}  # fmt: skip

_LEAVES: dict[str, st.SearchStrategy[str]] = {
    "int": st.one_of(int64s.map(str), st.sampled_from(["a", "b", "o.x", 'o["x"]', "0x7fffffffffffffff"])),
    "double": st.one_of(
        double_texts, st.sampled_from(["d", "d", "0.0 / 0.0", "1e999", "-0.0", "0.1"])
    ),
    "money": st.sampled_from(['money("12.50")', 'money("-0.01")', 'money("1000")', "m", "m", "o.y"]),
    "string": st.one_of(string_literals(), st.sampled_from(["s", "s", '""', '"+08:00"'])),
    "bytes": st.one_of(bytes_literals(), st.just("bytes(s)")),
    "bool": st.sampled_from(["true", "false", "f", "f", "has(o.x)"]),
    "time": st.sampled_from([*TIME_LITS, "t", "t", "t", "now"]),
    "duration": st.sampled_from([*DURATION_LITS, "u", "u", "u"]),
    "list": st.sampled_from(["l", "l", "l", "[1, 2, 3]", "[]", "[a, b]"]),
}  # fmt: skip


@st.composite
def typed_exprs(draw: st.DrawFn, ty: str, depth: int, scope: dict[str, str] | None = None) -> str:
    scope = scope or {}
    in_scope = [name for name, t in scope.items() if t == ty]
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        if in_scope and draw(st.booleans()):
            return draw(st.sampled_from(in_scope))
        # a declared name that a comprehension variable of another type shadows is not a leaf
        return draw(_LEAVES[ty].filter(lambda leaf: scope.get(leaf, ty) == ty))
    production = draw(st.sampled_from(_PRODUCTIONS[ty]))
    return production(_G(draw, depth - 1, scope))


any_typed_exprs = st.sampled_from(list(_PRODUCTIONS)).flatmap(lambda ty: typed_exprs(ty, 4))


@settings(PROPS, max_examples=800)
@given(src=any_typed_exprs, variables=typed_vars, now=nows)
def test_fast_path_agrees_with_interpreter_on_typed_expressions(
    src: str, variables: dict[str, Any], now: Any
) -> None:
    try:
        e = compile_expression(src, DECLS)
    except CompileError as err:  # the generator only writes well-typed expressions
        raise AssertionError(f"well-typed {src!r} did not check:\n{err}") from None
    except Exception as err:
        if known_bug(err) is None:
            raise
        event(f"known bug: {known_bug(err)}")
        return
    outcomes_agree(e, variables, now)


@settings(PROPS, max_examples=300)
@given(src=any_typed_exprs, variables=st.one_of(typed_vars, untyped_vars), now=nows)
def test_fast_path_agrees_with_interpreter_on_the_same_expressions_untyped(
    src: str, variables: dict[str, Any], now: Any
) -> None:
    e = compile_or_none(src, None)
    if e is not None:
        outcomes_agree(e, variables, now)


def _untyped_extend(c: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    ops = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in", "&&", "||"]
    return st.one_of(
        st.tuples(c, st.sampled_from(ops), c).map(lambda p: f"({p[0]}) {p[1]} ({p[2]})"),
        st.tuples(st.sampled_from(["!", "-"]), c).map(lambda p: f"{p[0]}({p[1]})"),
        st.tuples(c, c, c).map(lambda p: f"({p[0]}) ? ({p[1]}) : ({p[2]})"),
        st.tuples(c, st.sampled_from(["x", "y", "k"])).map(lambda p: f"({p[0]}).{p[1]}"),
        st.tuples(c, st.sampled_from(["x", "y", "k"])).map(lambda p: f"has(({p[0]}).{p[1]})"),
        st.tuples(c, c).map(lambda p: f"({p[0]})[{p[1]}]"),
        st.lists(c, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(c, c), max_size=2).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
        ),
        st.tuples(
            st.sampled_from(["size", "string", "int", "double", "type", "dyn", "bool", "money"]),
            c,
        ).map(lambda p: f"{p[0]}({p[1]})"),
        st.tuples(c, st.sampled_from(["contains", "startsWith", "endsWith"]), c).map(
            lambda p: f"({p[0]}).{p[1]}({p[2]})"
        ),
        st.tuples(c, st.sampled_from(["all", "exists", "exists_one", "filter", "map"]), c).map(
            lambda p: f"({p[0]}).{p[1]}(v, {p[2]})"
        ),
        st.tuples(c, st.sampled_from(["getHours", "getFullYear", "getMinutes"])).map(
            lambda p: f"({p[0]}).{p[1]}()"
        ),
    )


untyped_exprs = st.recursive(
    st.one_of(
        st.sampled_from(["x", "y", "z", "v", "w"]),
        st.sampled_from(["x", "y", "z", "v", "w", "null", "true", "false"]),
        st.sampled_from(["0", "1", "-1", "2.5", "-0.0", "1e999", '"a"', "''", 'b"a"', "1h"]),
        st.sampled_from(['money("1.10")', "9223372036854775807", "{}", "[]", '{"x": 1}']),
    ),
    _untyped_extend,
    max_leaves=10,
)


@settings(PROPS, max_examples=500)
@given(src=untyped_exprs, variables=untyped_vars, now=nows)
def test_fast_path_agrees_with_interpreter_on_untyped_expressions(
    src: str, variables: dict[str, Any], now: Any
) -> None:
    e = compile_or_none(src, None)
    if e is not None:
        outcomes_agree(e, variables, now)


# -- && and || are commutative and absorb errors ----------------------------------------

BOOLISH_UNTYPED = [
    "true", "false", "1/0 == 1", "{}.x", "x", "y.z", "x == null", "[1][5] == 1", "!x",
    "int(w) > 0", "has(y.z)", "w.startsWith('a')",
]  # fmt: skip
BOOLISH_TYPED = [
    "true", "false", "1/0 == 1", "{}.x", "f", "a > 0", "o.x == 1", "l[3] == 1", "has(o.x)",
    "s.startsWith('a')", "m > 1.5", "d / 0.0 > 1.0", "t < now",
]  # fmt: skip


def boolish(atoms: list[str]) -> st.SearchStrategy[str]:
    return st.recursive(
        st.sampled_from(atoms),
        lambda c: st.one_of(
            c.map(lambda x: f"!({x})"),
            st.tuples(c, st.sampled_from(["&&", "||"]), c).map(
                lambda p: f"({p[0]}) {p[1]} ({p[2]})"
            ),
            st.tuples(c, c, c).map(lambda p: f"({p[0]}) ? ({p[1]}) : ({p[2]})"),
        ),
        max_leaves=4,
    )


commute_vars = st.fixed_dictionaries(
    {
        "x": st.sampled_from([True, False, 1, None, "s"]),
        "y": st.one_of(
            st.fixed_dictionaries({"z": st.sampled_from([True, False, 0])}), st.just({})
        ),
        "w": st.sampled_from(["abc", "1", "x", 3]),
    }
)


def _as_bool(o: Outcome) -> bool | None:
    return o[1] if o[0] == "ok" and isinstance(o[1], bool) else None


@pytest.mark.parametrize(
    ("atoms", "decls", "var_strategy"),
    [(BOOLISH_UNTYPED, None, commute_vars), (BOOLISH_TYPED, DECLS, typed_vars)],
    ids=["untyped", "typed"],
)
@settings(PROPS, max_examples=250)
@given(data=st.data(), now=nows)
def test_logical_operators_commute_and_absorb_errors(
    atoms: list[str],
    decls: dict[str, str] | None,
    var_strategy: st.SearchStrategy[dict[str, Any]],
    data: st.DataObject,
    now: Any,
) -> None:
    lhs, rhs = data.draw(boolish(atoms), "A"), data.draw(boolish(atoms), "B")
    variables = data.draw(var_strategy, "variables")
    sides = [compile_or_none(x, decls) for x in (lhs, rhs)]
    if None in sides:
        return
    a_val, b_val = (_as_bool(run(lambda e=e: e._interp.evaluate(variables, now))) for e in sides)
    for op in ("&&", "||"):
        ab = compile_or_none(f"({lhs}) {op} ({rhs})", decls)
        ba = compile_or_none(f"({rhs}) {op} ({lhs})", decls)
        assert ab is not None and ba is not None
        decide = op == "||"  # the value that decides the result on its own
        if decide in (a_val, b_val):
            model: Outcome = ("ok", decide)
        elif a_val is not None and b_val is not None:
            model = ("ok", not decide)
        else:
            model = ("error", None)
        for e in (ab, ba):
            outcomes_agree(e, variables, now)
            got = run(lambda e=e: e.evaluate(variables, now=now))
            if fail_on_raw(got, "evaluate"):
                return
            assert got[0] == model[0] and (got[0] != "ok" or got[1] is model[1]), (
                f"{e.source!r}: got {got!r}, expected {model!r} (A={a_val}, B={b_val})"
            )


# =====================================================================================
# 4. Serialization
# =====================================================================================


@settings(PROPS, max_examples=150)
@given(
    src=st.one_of(st.sampled_from(CORPUS), any_typed_exprs),
    typed=st.booleans(),
    variables=typed_vars,
    now=nows,
)
def test_serialized_expressions_evaluate_identically(
    src: str, typed: bool, variables: dict[str, Any], now: Any
) -> None:
    decls = DECLS if typed else None
    e = compile_or_none(src, decls)
    if e is None:
        return
    data = e.to_dict()
    copies = {
        "from_dict": Expression.from_dict(data),
        "json": Expression.from_dict(json.loads(json.dumps(data))),
        "pickle": pickle.loads(pickle.dumps(e)),
        "parse_and_check": parse_and_check(e.source, e.declarations),
    }
    expected = run(lambda: e.evaluate(variables, now=now))
    if fail_on_raw(expected, "evaluate"):
        return
    for how, copy in copies.items():
        assert copy.source == e.source and copy.hash == e.hash, how
        assert copy.declarations == e.declarations, how
        assert copy.type == e.type, how
        assert copy.to_dict() == data, how
        got = run(lambda copy=copy: copy.evaluate(variables, now=now))
        assert got[0] == expected[0], (how, got, expected)
        if got[0] == "ok":
            assert same(got[1], expected[1]), (how, got, expected)
        elif got[0] == "error":
            assert str(got[1]) == str(expected[1]), (how, got, expected)


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 10),
        st.sampled_from(["", "foo", "a", "int", "Binary", "Literal", "==", "**", "all", "b c"]),
    ),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["node", "span"]), c),
    max_leaves=4,
)


@settings(PROPS, max_examples=100)
@given(
    src=st.sampled_from(CORPUS),
    field=st.sampled_from(["source", "declarations", "hash", "format"]),
    value=json_values,
)
def test_tampered_envelope_is_a_compile_error(src: str, field: str, value: Any) -> None:
    data = compile_expression(src, DECLS).to_dict()
    if data[field] == value:
        return
    data[field] = value
    with pytest.raises(CompileError) as info:
        Expression.from_dict(data)
    assert [d.code for d in info.value.diagnostics] == ["RK0501"]


@settings(PROPS, max_examples=100)
@given(
    decls=st.dictionaries(
        st.one_of(
            st.sampled_from(["a", "o.x", "o", "now", "x.y.z", "1a", "a..b", ""]),
            st.text(max_size=5),
        ),
        st.one_of(
            st.sampled_from(
                ["int", "list(", "map(int)", "map(string, list(money))", "dyn", "time"]
            ),
            st.sampled_from(["list(list(int))", "null_type", "type", "object", " int ", "Int"]),
            st.text(alphabet="()intlsmap, ", max_size=12),
        ),
        max_size=3,
    ),
    src=st.sampled_from(["a", "o.x + 1", "x.y.z", "size(a)", "true"]),
)
def test_any_declarations_compile_or_report(decls: dict[str, str], src: str) -> None:
    compile_or_none(src, decls)


def _node_fields(j: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every field of every node of a to_json tree."""
    out: list[tuple[Any, ...]] = []
    if isinstance(j, dict):
        for k, v in j.items():
            out.append((*path, k))
            out.extend(_node_fields(v, (*path, k)))
    elif isinstance(j, list):
        for i, v in enumerate(j):
            out.extend(_node_fields(v, (*path, i)))
    return out


@settings(PROPS, max_examples=150)
@example(case=("a + 1 > 2", ("left", "right", "kind")), value="foo")
@example(case=("a + 1 > 2", ("left", "left")), value=5)
@given(
    case=st.sampled_from(CORPUS).flatmap(
        lambda src: st.tuples(
            st.just(src),
            st.sampled_from(_node_fields(compile_expression(src, DECLS).to_dict()["ast"])),
        )
    ),
    value=json_values,
)
def test_fixed_from_dict_with_a_malformed_tree(
    case: tuple[str, tuple[Any, ...]], value: Any
) -> None:
    src, path = case
    d = compile_expression(src, DECLS).to_dict()
    target = d["ast"]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    try:
        e = Expression.from_dict(d)
    except CompileError:
        return
    _expect_clean(e.source, DECLS, {})  # the source itself is fine
    o = run(lambda: e.evaluate({"a": 1, "s": "x", "l": [1]}, now=datetime.now(UTC)))
    assert o[0] != "raw", o


# =====================================================================================
# Bugs found by the properties above, fixed (minimal repro in @example)
# =====================================================================================


def _expect_clean(text: str, decls: dict[str, str] | None = None, variables: Any = None) -> Any:
    """Compile and evaluate: CompileError and EvaluationError are fine, nothing else is."""
    try:
        e = compile_expression(text, decls)
    except CompileError:
        return None
    try:
        return e.evaluate(variables or {})
    except EvaluationError:
        return None


@settings(PROPS, max_examples=50)
@example(src="l.exists(x, x == 1)", elements=[True])
@example(src="l.map(x, x + 1)", elements=[True])
@given(
    src=st.sampled_from(
        ["l.exists(x, x == 1)", "l.map(x, x + 1)", "l.map(x, x * 2)", "l.all(x, x < 2)"]
    ),
    elements=st.lists(st.one_of(st.booleans(), st.floats(0, 3), int64s), min_size=1, max_size=3),
)
def test_fixed_list_elements_of_the_wrong_type_in_comprehensions(
    src: str, elements: list[Any]
) -> None:
    outcomes_agree(compile_expression(src, DECLS), {"l": elements}, None)


@settings(PROPS, max_examples=10)
@example(text='duration("")', s="")
@given(text=st.sampled_from(['duration("")', "duration(s)", 'duration(s + "")']), s=st.just(""))
def test_fixed_duration_of_empty_string(text: str, s: str) -> None:
    _expect_clean(text, DECLS, {"s": s})


@settings(PROPS, max_examples=30)
@example(u=timedelta(days=10**7))
@example(u=timedelta.min)
@given(
    u=st.one_of(
        st.timedeltas(min_value=MAX_DURATION + timedelta(microseconds=1)),
        st.timedeltas(max_value=-MAX_DURATION - timedelta(microseconds=1)),
    )
)
def test_fixed_negated_duration_input_out_of_range(u: timedelta) -> None:
    outcomes_agree(compile_expression("-u", DECLS), {"u": u}, None)


@settings(PROPS, max_examples=30)
@example(tz="+25:00")
@given(
    tz=st.tuples(st.sampled_from("+-"), st.integers(24, 99), st.integers(0, 59)).map(
        lambda p: f"{p[0]}{p[1]:02d}:{p[2]:02d}"
    )
)
def test_fixed_time_zone_offset_of_24_hours_or_more(tz: str) -> None:
    _expect_clean(f't.getHours("{tz}")', DECLS)
    _expect_clean("t.getHours(s)", DECLS, {"t": datetime(2026, 1, 1, tzinfo=UTC), "s": tz})


@settings(PROPS, max_examples=20)
@example(name="America")
@example(name="a" * 300)
@given(name=st.sampled_from(["America", "Europe", "Etc", "a" * 300, "posix"]))
def test_fixed_time_zone_name_that_is_a_directory_or_too_long(name: str) -> None:
    _expect_clean(f't.getHours("{name}")', DECLS)


@settings(PROPS, max_examples=20)
@example(text="1" * 5000)
@example(text="1" * 5000 + "s")
@example(text='int("' + "1" * 5000 + '")')
@given(
    text=st.integers(4301, 6000).flatmap(
        lambda n: st.sampled_from(["9" * n, "9" * n + "ms", 'int("' + "9" * n + '")'])
    )
)
def test_fixed_long_digit_strings(text: str) -> None:
    _expect_clean(text)


@settings(PROPS, max_examples=30)
@example(lit="--1.5", template='money("1") + {}')
@given(
    lit=st.sampled_from(["--1.5", "- -0.5", "---2.0", "- - 1e3"]),
    template=st.sampled_from(['money("1") + {}', "m < {}", "{} * m", "m == {}"]),
)
def test_fixed_money_literal_with_double_minus(lit: str, template: str) -> None:
    with contextlib.suppress(CompileError):
        compile_expression(template.format(lit), DECLS)


@settings(PROPS, max_examples=20)
@example(n=100)
@given(n=st.integers(100, 118))
def test_fixed_codegen_fails_on_nesting_below_max_depth(n: int) -> None:
    e = compile_expression("1 + (" * n + "1" + ")" * n)
    assert e.evaluate({}) == n + 1


@settings(PROPS, max_examples=30)
@example(src="string(t)", t=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
@example(src='t.getFullYear("-01:00")', t=datetime(1, 1, 1, tzinfo=UTC))
@given(
    src=st.sampled_from(["string(t)", 't.getFullYear("-01:00")', 't.getHours("+14:00")']),
    t=st.one_of(
        st.datetimes(max_value=datetime(1, 1, 1, 12), timezones=st.sampled_from(ZONES)),
        st.datetimes(min_value=datetime(9999, 12, 31, 12), timezones=st.sampled_from(ZONES)),
    ),
)
def test_fixed_timestamps_near_the_range_edges(src: str, t: datetime) -> None:
    _expect_clean(src, DECLS, {"t": t})


@settings(PROPS, max_examples=20)
@example(text='(money("0") + 9e999999) * 10', m=Decimal(0))
@given(
    text=st.just("m * 10"),
    m=st.sampled_from([Decimal("9E+999999"), Decimal("-5.5E+999999")]),
)
def test_fixed_money_overflow(text: str, m: Decimal) -> None:
    _expect_clean(text, DECLS, {"m": m})


@settings(PROPS, max_examples=20)
@example(d=10**400)
@given(d=st.integers(min_value=2**1024))
def test_fixed_huge_int_given_for_double(d: int) -> None:
    _expect_clean("d + 1.0", DECLS, {"d": d})


@settings(PROPS, max_examples=30)
@example(src="-(5)")
@example(src="-(-(5))")
@example(src="-(-0)")
@given(
    src=st.sampled_from(["-({})", "-(-({}))", "x + -({})"]).flatmap(
        lambda tmpl: double_texts.filter(lambda t: not t.startswith("-")).map(tmpl.format)
    )
)
def test_fixed_printer_negated_parenthesized_number(src: str) -> None:
    tree = parse_ok(src)
    again = parse_ok(to_source(tree))
    assert shape(rk_ast.to_json(again)) == shape(rk_ast.to_json(tree))


@settings(PROPS, max_examples=50)
@example(text="0.10")
@example(text="0.10000000000000000001")
@given(text=MONEY_LITERAL_TEXTS.filter(lambda t: "." in t or "e" in t))
def test_fixed_printer_drops_money_literal_digits(text: str) -> None:
    for src in (f'string(money("1") + {text})', f'money("0.1") == {text}'):
        e = compile_expression(src)
        printed = compile_expression(to_source(e.checked.root))
        # Both give the same value, or both the same kind of error (1 + 1e30 needs 31
        # digits: money is exact, so that is an error, not a rounded sum).
        want = run(lambda e=e: e.evaluate({}))
        got = run(lambda p=printed: p.evaluate({}))
        assert want[0] == got[0] != "raw", (src, to_source(e.checked.root), want, got)
        assert want[0] == "error" or same(got[1], want[1]), (src, to_source(e.checked.root))


@settings(PROPS, max_examples=20)
@example(i=1)
@given(i=st.sampled_from([0, 1]))
def test_int_and_bool_map_keys_that_python_conflates_are_refused(i: int) -> None:
    # CEL keeps 1 and true apart; a Python dict cannot, so rulekit refuses the pair
    # with an error rather than silently merging them (documented in expressions.md).
    b = "true" if i else "false"
    src = f"{{{i}: 'int', {b}: 'bool'}}"
    for text in (f"size({src})", f"{src}[{i}]", f"{src}[{b}]"):
        e = compile_expression(text)
        with pytest.raises(EvaluationError, match="cannot both be used"):
            e.evaluate({})
        with pytest.raises(EvaluationError, match="cannot both be used"):
            e._interp.evaluate({}, None)


@settings(PROPS, max_examples=40)
@example(src="x < 1", x=Decimal("NaN"))
@example(src="int(x)", x=Decimal("Infinity"))
@example(src="x == 1", x=Decimal("sNaN"))
@given(
    src=st.sampled_from(["x < 1", "x == 1", "int(x)", "x in [1]", "[1][x]", "x + 1", "{1: 2}[x]"]),
    x=st.sampled_from([Decimal("NaN"), Decimal("-NaN"), Decimal("sNaN"), Decimal("Infinity")]),
)
def test_fixed_non_finite_decimal_without_declarations(src: str, x: Decimal) -> None:
    _expect_clean(src, None, {"x": x})


@settings(PROPS, max_examples=60)
@example(t=datetime(2026, 3, 7, 12, 0, tzinfo=ZoneInfo("America/New_York")), u=timedelta(hours=24))
@given(
    t=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2030, 1, 1),
        timezones=st.sampled_from([ZoneInfo("America/New_York"), ZoneInfo("Europe/Paris")]),
    ),
    u=st.timedeltas(min_value=timedelta(days=-400), max_value=timedelta(days=400)),
)
def test_fixed_timestamp_arithmetic_is_wall_clock_in_named_zones(t: datetime, u: timedelta) -> None:
    # Through string(), which writes the instant in UTC, the elapsed time must be u.
    src = "timestamp(string(t + u)) - timestamp(string(t)) == u"
    assert compile_expression(src, DECLS).evaluate({"t": t, "u": u}) is True
