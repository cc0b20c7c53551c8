"""AST -> canonical source text (symbols for operators, minimal parentheses).

Parsing the printed text gives back the same tree (tested with hypothesis).
Used wherever an expression is shown without its original text: diffs,
diagrams, and artifacts written by tools.
"""

from __future__ import annotations

from datetime import timedelta

from rulekit.expr import ast, stdlib

_BINARY_PREC = {
    "||": 2,
    "&&": 3,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "==": 4,
    "!=": 4,
    "in": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}
_UNARY = 7
_MEMBER = 8


def to_source(node: ast.Expr) -> str:
    """Canonical text of ``node``."""
    return _print(node)


def _prec(node: ast.Expr) -> int:
    match node:
        case ast.Conditional():
            return 1
        case ast.Logical(op=op) | ast.Binary(op=op):
            return _BINARY_PREC[op]
        case ast.Unary():
            return _UNARY
        case ast.Literal(kind="int" | "double", value=v) if v < 0 or str(v).startswith("-"):
            return _UNARY  # printed with a leading minus
    return _MEMBER


def _wrap(node: ast.Expr, min_prec: int) -> str:
    text = _print(node)
    return f"({text})" if _prec(node) < min_prec else text


def _print(node: ast.Expr) -> str:
    match node:
        case ast.Literal():
            return _literal(node)
        case ast.Ident(name=name):
            return name
        case ast.Select(operand=o, field=f):
            return f"{_wrap(o, _MEMBER)}.{f}"
        case ast.Has(operand=o, field=f):
            return f"has({_wrap(o, _MEMBER)}.{f})"
        case ast.Index(operand=o, index=i):
            return f"{_wrap(o, _MEMBER)}[{_print(i)}]"
        case ast.Call(function=f, target=t, args=call_args):
            inner = ", ".join(_print(a) for a in call_args)
            return f"{_wrap(t, _MEMBER)}.{f}({inner})" if t is not None else f"{f}({inner})"
        case ast.Unary(op=op, operand=o):
            if isinstance(o, ast.Unary) and o.op == op:
                return op + _print(o)
            if op == "-" and isinstance(o, ast.Literal) and o.kind in ("int", "double"):
                return f"-({_print(o)})"  # `-5` would read back as the literal -5
            return op + _wrap(o, _MEMBER)
        case ast.Binary(op=op, left=left, right=right) | ast.Logical(op=op, left=left, right=right):
            p = _BINARY_PREC[op]
            return f"{_wrap(left, p)} {op} {_wrap(right, p + 1)}"
        case ast.Conditional(cond=c, then=t, otherwise=o):
            return f"{_wrap(c, 2)} ? {_wrap(t, 2)} : {_wrap(o, 1)}"
        case ast.ListLit(items=items):
            return "[" + ", ".join(_print(i) for i in items) + "]"
        case ast.MapLit(entries=entries):
            return "{" + ", ".join(f"{_print(k)}: {_print(v)}" for k, v in entries) + "}"
        case ast.Comprehension(macro=m, range=r, var=v, predicate=p, transform=t):
            parts = [v, *(_print(x) for x in (p, t) if x is not None)]
            return f"{_wrap(r, _MEMBER)}.{m}({', '.join(parts)})"
    raise TypeError(node)  # pragma: no cover


def _literal(node: ast.Literal) -> str:
    v = node.value
    match node.kind:
        case "int":
            return str(v)
        case "double":
            if v != v:  # pragma: no cover - no literal spells NaN
                raise ValueError("NaN has no literal")
            if v in (float("inf"), float("-inf")):
                return "1e999" if v > 0 else "-1e999"
            # As written when it reads back the same: 0.10 beside money is the
            # decimal 0.10, which repr() (0.1) would lose.
            if _reads_as(node.text, v):
                return node.text
            text = repr(v)
            return text if any(c in text for c in ".e") else text + ".0"
        case "string":
            return stdlib.quote_string(v)
        case "bytes":
            return stdlib.quote_bytes(v)
        case "bool":
            return "true" if v else "false"
        case "null":
            return "null"
        case "duration":
            if v == timedelta(0):
                return "0s"
            return stdlib.format_duration_literal(v)
        case "period":
            return str(v)
    raise ValueError(node.kind)  # pragma: no cover


def _reads_as(text: str, value: float) -> bool:
    try:
        return bool(text) and text.lstrip("-")[:1] in "0123456789." and float(text) == value
    except ValueError:
        return False
