"""``rulekit eval``: check a condition (CEL) and evaluate it against values."""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rulekit.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError

if TYPE_CHECKING:
    from argparse import _SubParsersAction


def add(verbs: _SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "eval",
        help="evaluate a condition (CEL) against values",
        description="Check and evaluate a condition. Values come as CEL expressions (--var) "
        "or JSON (--vars), read according to the declared types.",
    )
    p.add_argument(
        "expression", help="the condition, e.g. 'order.amount < 300 and not order.shipped'"
    )
    p.add_argument(
        "-d",
        "--declare",
        action="append",
        default=[],
        metavar="NAME=TYPE",
        help="declare a name's type (repeatable), e.g. order.amount=money",
    )
    p.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=EXPR",
        help='bind a name to the value of a CEL expression, e.g. order=\'{"amount": money("128")}\'',
    )
    p.add_argument(
        "--vars", metavar="JSON", help="variables as a JSON object (or @FILE to read one)"
    )
    p.add_argument(
        "--now", metavar="TIME", help="evaluation time, RFC 3339 (e.g. 2026-03-01T16:00:00+08:00)"
    )
    p.add_argument(
        "--timezone",
        metavar="ZONE",
        help="where calendar periods and local dates count, as a policy's timezone "
        "(IANA name, e.g. Europe/Berlin; default UTC): t + 1 month, t.localDate()",
    )
    p.add_argument(
        "--calendar",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="a working-day calendar file (repeatable), as a policy's `calendar NAME from "
        '"FILE"`: t + 5 working days, d.isWorkingDay() (docs/time.md)',
    )
    p.add_argument(
        "--explain", action="store_true", help="show each clause with the values it read"
    )
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rulekit.core.errors import CompileError, EvaluationError
    from rulekit.expr import stdlib
    from rulekit.expr.convert import to_data
    from rulekit.expr.expression import compile_expression

    decls = _declarations(args.declare) if args.declare else None
    calendars = {}
    for item in args.calendar:
        name, eq, path = item.partition("=")
        if not eq or not name.strip() or not path.strip():
            raise UsageError(f"--calendar {item!r}: expected NAME=FILE, e.g. cn=calendars/cn.yaml")
        calendars[name.strip()] = path.strip()
    try:
        expr = compile_expression(
            args.expression, decls, timezone=args.timezone, calendars=calendars
        )
    except (OSError, ValueError) as e:
        said = str(e)
        flag = "--timezone" if said.startswith("timezone: ") else "--calendar"
        if isinstance(e, OSError):
            said = f"{e.filename}: {e.strerror or e}"
        raise UsageError(f"{flag}: {said.removeprefix('timezone: ')}") from None
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
                        "value": to_data(explanation.value) if explanation.error is None else None,
                        "error": str(explanation.error) if explanation.error else None,
                        "clauses": [
                            {
                                "text": c.text,
                                "line": c.line,
                                "column": c.column,
                                "value": to_data(c.value) if c.error is None else None,
                                "error": c.error,
                                "reads": {k: to_data(v) for k, v in c.reads},
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
        print(json.dumps({"value": to_data(value), "type": stdlib.kind(value)}, ensure_ascii=False))
    else:
        print(stdlib.render(value))
    return EXIT_OK


def _declarations(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, typ = item.partition("=")
        if not sep or not name.strip() or not typ.strip():
            raise UsageError(f"--declare takes NAME=TYPE, got {item!r}")
        out[name.strip()] = typ.strip()
    return out


def _variables(args: argparse.Namespace, decls: dict[str, str] | None) -> dict[str, Any]:
    from rulekit.core.errors import CompileError, EvaluationError
    from rulekit.core.source import read_text
    from rulekit.expr.convert import MAX_NESTING, ConversionError, check_nesting, convert
    from rulekit.expr.expression import compile_expression
    from rulekit.expr.types import DeclarationError, build_environment

    variables: dict[str, Any] = {}
    if args.vars:
        text = args.vars
        if text.startswith("@"):
            try:
                text = read_text(text[1:])
            except OSError as e:
                raise UsageError(f"--vars: cannot read {text[1:]}: {e.strerror}") from None
        try:
            data = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as e:
            raise UsageError(
                f"--vars is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
            ) from None
        except RecursionError:
            raise UsageError(f"--vars: nested more than {MAX_NESTING} levels deep") from None
        if not isinstance(data, dict):
            raise UsageError("--vars must be a JSON object of names to values")
        try:
            check_nesting(data, "--vars")
        except ConversionError as e:
            raise UsageError(str(e)) from None
        if decls:
            try:
                env = build_environment(decls, qualified=True)
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
