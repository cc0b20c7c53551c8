"""The ``rulekit`` command.

Exit status: 0 success, 1 a check, test or evaluation failed, 2 invalid input
or usage. Errors are diagnostics on stderr, never tracebacks.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from rulekit import __version__
from rulekit.errors import CompileError, EvaluationError
from rulekit.expr import stdlib
from rulekit.expr.convert import ConversionError, convert
from rulekit.expr.types import DeclarationError, build_environment
from rulekit.expression import compile_expression

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input: printed as ``rulekit: error: ...``, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rulekit", description="Check, compile and run business-process policies."
    )
    p.add_argument("--version", action="version", version=f"rulekit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ev = sub.add_parser(
        "eval",
        help="evaluate a condition (CEL) against values",
        description="Check and evaluate a condition. Values come as CEL expressions (--var) "
        "or JSON (--vars), read according to the declared types.",
    )
    ev.add_argument(
        "expression", help="the condition, e.g. 'order.amount < 300 and not order.shipped'"
    )
    ev.add_argument(
        "-d",
        "--declare",
        action="append",
        default=[],
        metavar="NAME=TYPE",
        help="declare a name's type (repeatable), e.g. order.amount=money",
    )
    ev.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=EXPR",
        help='bind a name to the value of a CEL expression, e.g. order=\'{"amount": money("128")}\'',
    )
    ev.add_argument(
        "--vars", metavar="JSON", help="variables as a JSON object (or @FILE to read one)"
    )
    ev.add_argument(
        "--now", metavar="TIME", help="evaluation time, RFC 3339 (e.g. 2026-03-01T16:00:00+08:00)"
    )
    ev.add_argument(
        "--explain", action="store_true", help="show each clause with the values it read"
    )
    ev.add_argument("--format", choices=("text", "json"), default="text")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "eval":
            return _eval(args)
    except UsageError as e:
        print(f"rulekit: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    raise AssertionError(args.command)  # pragma: no cover - argparse rejects unknown commands


def _declarations(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, typ = item.partition("=")
        if not sep or not name.strip() or not typ.strip():
            raise UsageError(f"--declare takes NAME=TYPE, got {item!r}")
        out[name.strip()] = typ.strip()
    return out


def _eval(args: argparse.Namespace) -> int:
    decls = _declarations(args.declare) if args.declare else None
    try:
        expr = compile_expression(args.expression, decls)
    except CompileError as e:
        print(e.rendered, file=sys.stderr)
        return EXIT_USAGE
    now = None
    if args.now:
        try:
            now = stdlib.parse_timestamp(args.now)
        except stdlib.CelError as e:
            raise UsageError(f"--now: {e}") from None
    variables = _variables(args, decls)
    if args.explain:
        explanation = expr.explain(variables, now=now)
        if args.format == "json":
            print(
                json.dumps(
                    {
                        "value": to_json(explanation.value) if explanation.error is None else None,
                        "error": str(explanation.error) if explanation.error else None,
                        "clauses": [
                            {
                                "text": c.text,
                                "line": c.line,
                                "column": c.column,
                                "value": to_json(c.value) if c.error is None else None,
                                "error": c.error,
                                "reads": {k: to_json(v) for k, v in c.reads},
                            }
                            for c in explanation.clauses
                        ],
                    },
                    indent=2,
                    ensure_ascii=False,
                )
            )
        else:
            print(explanation)
        return EXIT_FAILED if explanation.error else EXIT_OK
    try:
        value = expr.evaluate(variables, now=now)
    except EvaluationError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    if args.format == "json":
        print(json.dumps({"value": to_json(value), "type": stdlib.kind(value)}, ensure_ascii=False))
    else:
        print(stdlib.render(value))
    return EXIT_OK


def _variables(args: argparse.Namespace, decls: dict[str, str] | None) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    if args.vars:
        text = args.vars
        if text.startswith("@"):
            try:
                with open(text[1:], encoding="utf-8") as f:
                    text = f.read()
            except OSError as e:
                raise UsageError(f"--vars: cannot read {text[1:]}: {e.strerror}") from None
        try:
            data = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as e:
            raise UsageError(
                f"--vars is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
            ) from None
        if not isinstance(data, dict):
            raise UsageError("--vars must be a JSON object of names to values")
        if decls:
            try:
                env = build_environment(decls)
            except (
                DeclarationError
            ) as e:  # pragma: no cover - compile_expression reported it already
                raise UsageError(str(e)) from None
            try:
                data = {k: convert(v, env[k], k) if k in env else v for k, v in data.items()}
            except ConversionError as e:
                raise UsageError(f"--vars: {e}") from None
        variables.update(data)
    for item in args.var:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--var takes NAME=EXPR, got {item!r}")
        try:
            variables[name.strip()] = compile_expression(text).evaluate({})
        except CompileError as e:
            raise UsageError(f"--var {name.strip()}:\n{e.rendered}") from None
        except EvaluationError as e:
            raise UsageError(f"--var {name.strip()}: {e}") from None
    return variables


def to_json(v: Any) -> Any:
    """A language value as JSON: money as a decimal string, times as RFC 3339,
    durations as rulekit duration text, bytes as base64."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else stdlib.format_double(v)
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, timedelta):
        return stdlib.format_duration(v)
    if isinstance(v, bytes):
        return base64.b64encode(v).decode("ascii")
    if isinstance(v, list | tuple):
        return [to_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): to_json(x) for k, x in v.items()}
    if isinstance(v, stdlib.CelType):
        return v.name
    return repr(v)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
