"""Run google/cel-spec's simple conformance data (tests/simple/testdata) against rulekit.

Not a pytest module: cel-spec is not vendored. Point it at a checkout and it prints how
many of the cases rulekit can run (no uint, no protobuf messages, enums or containers, no
unknowns, no extension libraries) it passes, and which fail:

    .venv/bin/python tests/cel_spec_run.py path/to/cel-spec [--failures] [--file NAME]

A case passes when the value is the expected one (compared as tests/test_conformance.py
compares, on the fast path and the interpreter both), or when an error is expected and
rulekit reports one, at compile time or at evaluation.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from rulekit import CompileError, EvaluationError, compile_expression
from support import same_value

#: the files of the core language, the run whose figure docs/expressions.md gives (the
#: *_ext files and macros2 test extension libraries, the proto/enum/wrapper/dynamic files
#: protobuf messages, type_deduction the checker's types; optionals, the optional values
#: extension, runs with --file optionals)
FILES = (
    "basic",
    "comparisons",
    "conversions",
    "fields",
    "fp_math",
    "integer_math",
    "lists",
    "logic",
    "macros",
    "namespace",
    "parse",
    "plumbing",
    "string",
    "timestamps",
)


class Unsupported(Exception):
    """The case needs something outside rulekit's value model."""


# -- protobuf text format -------------------------------------------------------------
_TOKEN = re.compile(
    r"""\s+|\#[^\n]*|(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
    r"""|(?P<num>-?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)[fF]?|-?inf(?:inity)?|-?nan)(?![\w.])"""
    r"""|(?P<id>[A-Za-z_][\w.]*)|(?P<url>\[[^\]]*/[^\]]*\])|(?P<p>[{}:<>\[\],;])""",
    re.S,
)
_ESC = {"n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11, "\\": 92, "'": 39, '"': 34}
_ESC["?"] = 63


def _unquote(tok: str) -> bytes:
    body, out, i = tok[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        e = body[i + 1]
        if e in _ESC:
            out.append(_ESC[e])
            i += 2
        elif e in "xX":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 :])
            assert m
            out.append(int(m.group(), 16))
            i += 2 + m.end()
        elif e in "uU":
            n = 4 if e == "u" else 8
            out += chr(int(body[i + 2 : i + 2 + n], 16)).encode("utf-8", "surrogatepass")
            i += 2 + n
        else:
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            assert m, body
            out.append(int(m.group(), 8))
            i += 1 + m.end()
    return bytes(out)


def parse_textproto(text: str) -> dict[str, list[Any]]:
    tokens: list[tuple[str, str]] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind is not None:
            tokens.append((kind, m.group()))
    pos = 0

    def message(close: str | None) -> dict[str, list[Any]]:
        nonlocal pos
        out: dict[str, list[Any]] = {}
        while pos < len(tokens):
            kind, tok = tokens[pos]
            if kind == "p" and tok == close:
                pos += 1
                return out
            if kind == "p" and tok in ",;":
                pos += 1
                continue
            name = tok[1:-1] if kind == "url" else tok
            pos += 1
            if tokens[pos] == ("p", ":"):
                pos += 1
            out.setdefault(name, []).extend(values())
        return out

    def values() -> list[Any]:
        nonlocal pos
        kind, tok = tokens[pos]
        if kind == "p" and tok == "[":
            pos += 1
            items: list[Any] = []
            while tokens[pos] != ("p", "]"):
                if tokens[pos] != ("p", ","):
                    items.extend(values())
                else:
                    pos += 1
            pos += 1
            return items
        if kind == "p" and tok in "{<":
            pos += 1
            return [message("}" if tok == "{" else ">")]
        pos += 1
        if kind == "str":
            data = _unquote(tok)
            while pos < len(tokens) and tokens[pos][0] == "str":
                data += _unquote(tokens[pos][1])
                pos += 1
            return [data]
        return [tok]

    return message(None)


def one(msg: dict[str, list[Any]], key: str, default: Any = None) -> Any:
    got = msg.get(key)
    return got[-1] if got else default


# -- values, types and cases ----------------------------------------------------------
def _number(tok: str) -> float:
    t = tok.lower()
    if "inf" in t:
        return -math.inf if t.startswith("-") else math.inf
    if "nan" in t:
        return math.nan
    return float(t.rstrip("f"))


def to_python(v: dict[str, list[Any]]) -> Any:
    (key,) = v.keys() if v else ("null_value",)
    x = one(v, key)
    if key == "null_value":
        return None
    if key == "bool_value":
        return x == "true"
    if key == "int64_value":
        return int(x)
    if key == "double_value":
        return _number(x)
    if key == "string_value":
        return x.decode("utf-8")
    if key == "bytes_value":
        return x
    if key == "list_value":
        return [to_python(i) for i in x.get("values", [])]
    if key == "map_value":
        return {to_python(one(e, "key")): to_python(one(e, "value")) for e in x.get("entries", [])}
    if key == "type_value":
        name = {"google.protobuf.Timestamp": "timestamp", "google.protobuf.Duration": "duration"}
        text = x if isinstance(x, str) else x.decode()
        try:
            return compile_expression(name.get(text, text)).evaluate({})
        except CompileError as e:
            raise Unsupported(f"type {text}") from e
    if key == "object_value":
        ((url, (body,)),) = x.items()
        seconds, nanos = int(one(body, "seconds", "0")), int(one(body, "nanos", "0"))
        if nanos % 1000:
            raise Unsupported("nanoseconds")
        d = timedelta(seconds=seconds, microseconds=nanos // 1000)
        if url.endswith("google.protobuf.Duration"):
            return d
        if url.endswith("google.protobuf.Timestamp"):
            return datetime(1970, 1, 1, tzinfo=UTC) + d
    raise Unsupported(key)


_PRIMITIVE = {"BOOL": "bool", "INT64": "int", "DOUBLE": "double", "STRING": "string"}
_PRIMITIVE["BYTES"] = "bytes"
_WELL_KNOWN = {"TIMESTAMP": "timestamp", "DURATION": "duration"}


def to_type(t: dict[str, list[Any]]) -> str:
    (key,) = t.keys()
    x = one(t, key)
    if key == "primitive" and x in _PRIMITIVE:
        return _PRIMITIVE[x]
    if key == "well_known" and x in _WELL_KNOWN:
        return _WELL_KNOWN[x]
    if key == "dyn":
        return "dyn"
    if key == "null":
        return "null_type"
    if key == "list_type":
        return f"list({to_type(one(x, 'elem_type'))})"
    if key == "map_type":
        return f"map({to_type(one(x, 'key_type'))}, {to_type(one(x, 'value_type'))})"
    raise Unsupported(f"type {key}")


def prepare(case: dict[str, list[Any]]) -> tuple[str, dict[str, str], dict[str, Any], Any]:
    """(expression, declarations, bindings, expected); expected is an Exception for an
    expected error. Raises Unsupported."""
    expr = one(case, "expr").decode("utf-8")
    if one(case, "container") or one(case, "check_only") == "true":
        raise Unsupported("container or check_only")
    if re.search(r"\b\d+[uU]\b|\buint\b|0x[0-9a-fA-F]+[uU]", expr):
        raise Unsupported("uint")
    if re.search(r"[A-Z]\w*\s*\{", expr):
        raise Unsupported("message construction")
    decls: dict[str, str] = {}
    for d in case.get("type_env", []):
        ident = one(d, "ident")
        if ident is None:
            raise Unsupported("function declaration")
        decls[one(d, "name").decode()] = to_type(one(ident, "type"))
    bindings = {
        one(b, "key").decode(): to_python(one(one(b, "value"), "value"))
        for b in case.get("bindings", [])
    }
    if "value" in case:
        expected = to_python(one(case, "value"))
    elif "typed_result" in case and "result" in one(case, "typed_result"):
        expected = to_python(one(one(case, "typed_result"), "result"))
    elif "eval_error" in case or "any_eval_errors" in case:
        expected = EvaluationError
    elif "unknown" in case or "any_unknowns" in case or "typed_result" in case:
        raise Unsupported("unknowns or type only")
    else:
        expected = True  # no result given: the expression evaluates to true
    return expr, decls, bindings, expected


def run_case(expr: str, decls: dict[str, str], bindings: dict[str, Any], expected: Any) -> str:
    """'' when the case passes, else what went wrong."""
    try:
        compiled = compile_expression(expr, decls or None)
    except CompileError as e:
        return "" if expected is EvaluationError else f"compile error: {e.diagnostics[0].message}"
    except ValueError as e:  # declarations rulekit refuses
        return f"declarations refused: {e}"
    for evaluate in (compiled.evaluate, compiled._interp.evaluate):
        try:
            got = evaluate(bindings, None)
        except EvaluationError as e:
            if expected is not EvaluationError:
                return f"evaluation error: {e}"
            continue
        if expected is EvaluationError:
            return f"gave {got!r}, expected an error"
        if not same_value(got, expected):
            return f"gave {got!r}, expected {expected!r}"
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cel_spec", type=Path, help="a checkout of google/cel-spec")
    ap.add_argument("--failures", action="store_true", help="list each failing case")
    ap.add_argument("--file", action="append", help="only these data files (repeatable)")
    args = ap.parse_args()
    data = args.cel_spec / "tests" / "simple" / "testdata"
    passed = runnable = total = 0
    skipped: Counter[str] = Counter()
    for name in args.file or FILES:
        doc = parse_textproto((data / f"{name}.textproto").read_text(encoding="utf-8"))
        file_passed = file_runnable = 0
        for section in doc.get("section", []):
            for case in section.get("test", []):
                total += 1
                label = f"{name}/{one(section, 'name').decode()}/{one(case, 'name').decode()}"
                try:
                    prepared = prepare(case)
                except Unsupported as e:
                    skipped[str(e)] += 1
                    continue
                file_runnable += 1
                failure = run_case(*prepared)
                if failure:
                    if args.failures:
                        print(f"FAIL {label}: {prepared[0]}\n     {failure}")
                else:
                    file_passed += 1
        print(f"{name}: {file_passed}/{file_runnable}")
        passed += file_passed
        runnable += file_runnable
    print(f"not runnable: {sum(skipped.values())} ({dict(skipped.most_common())})")
    print(f"passed {passed} of {runnable} runnable cases ({total} in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
