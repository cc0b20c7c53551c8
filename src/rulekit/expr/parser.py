"""Expression parser: text -> AST, or diagnostics.

Lark's LALR parser runs our callbacks as it reduces (no parse tree is built,
and nothing recurses, so deep nesting cannot overflow the stack here). The
callbacks build :mod:`rulekit.expr.ast` nodes with spans, decode literals,
and expand the macros (``has``, ``all``, ``exists``, ``exists_one``, ``map``,
``filter``) into their own nodes. Lark's exceptions never leave this module:
they become diagnostics with a friendly wording.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import lark
from lark import Token

from rulekit.core import calendar
from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.grammars import grammar_text, lalr_parser
from rulekit.core.source import Source, Span
from rulekit.expr import ast, stdlib

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Deepest nesting accepted; later phases walk the tree recursively.
MAX_DEPTH = 120

RESERVED = ast.RESERVED
KEYWORDS = ast.KEYWORDS
MACROS = {"all": (2,), "exists": (2,), "exists_one": (2,), "filter": (2,), "map": (2, 3)}

_DURATION_PART = re.compile(r"(\d+)(ms|d|h|m|s)")
_UNIT_ORDER = ["d", "h", "m", "s", "ms"]

_TOKEN_NAMES = {
    "QMARK": "`?`",
    "COLON": "`:`",
    "OROR": "`||`",
    "ANDAND": "`&&`",
    "OR": "`or`",
    "AND": "`and`",
    "NOT": "`not`",
    "BANG": "`!`",
    "LT": "`<`",
    "LE": "`<=`",
    "GT": "`>`",
    "GE": "`>=`",
    "EQ": "`==`",
    "NE": "`!=`",
    "IN": "`in`",
    "PLUS": "`+`",
    "MINUS": "`-`",
    "STAR": "`*`",
    "SLASH": "`/`",
    "PERCENT": "`%`",
    "DOT": "`.`",
    "COMMA": "`,`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "TRUE": "`true`",
    "FALSE": "`false`",
    "NULL": "`null`",
    "IDENT": "a name",
    "QUOTED_FIELD": "a field name",
    "INT": "a number",
    "HEX_INT": "a number",
    "UINT": "a number",
    "FLOAT": "a number",
    "STRING": "a string",
    "DURATION": "a duration",
    "PERIOD": "a period",
    "$END": "the end",
}
_CLOSERS = {"(": ")", "[": "]", "{": "}"}


class Problem(Exception):
    """A user error found inside a parser callback (turned into a diagnostic)."""

    def __init__(self, code: str, message: str, span: Span, help: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.span, self.help = code, message, span, help


def _span(first: ast.Node | Token, last: ast.Node | Token) -> Span:
    """From the start of ``first`` to the end of ``last`` (nodes or tokens)."""
    start = first.span.start if isinstance(first, ast.Node) else first.start_pos
    end = last.span.end if isinstance(last, ast.Node) else last.end_pos
    return Span(start or 0, end or 0)


def token_span(tok: Token) -> Span:
    return Span(tok.start_pos or 0, tok.end_pos or 0)


_ids = itertools.count(1)


def _id() -> int:
    return next(_ids)


class ExpressionBuilder(lark.Transformer[Token, Any]):
    """LALR callbacks: children are already-built nodes and tokens."""

    # -- operators ------------------------------------------------------------
    def conditional(self, c: list[Any]) -> ast.Expr:
        return ast.Conditional(_id(), _span(c[0], c[4]), c[0], c[2], c[4])

    def logical(self, c: list[Any]) -> ast.Expr:
        op = "&&" if c[1].type in ("ANDAND", "AND") else "||"
        left, right = c[0], c[2]
        if (type(left) is ast.Logical and left.op == op) or (
            type(right) is ast.Logical and right.op == op
        ):
            current().chains = True
        return ast.Logical(_id(), _span(left, right), op, left, right, token_span(c[1]))

    def binary(self, c: list[Any]) -> ast.Expr:
        op = str(c[1])
        if op == "=":
            # Report it, read it as `==`, and keep going: the checker may find more.
            current().recovered.append(
                Problem(
                    "RK0104", "`=` is not a comparison", token_span(c[1]), "to compare, write `==`"
                )
            )
            op = "=="
        return ast.Binary(_id(), _span(c[0], c[2]), op, c[0], c[2], token_span(c[1]))

    def not_(self, c: list[Any]) -> ast.Expr:
        node: ast.Expr = c[-1]
        for tok in reversed(c[:-1]):
            node = ast.Unary(_id(), _span(tok, node), "!", node, token_span(tok))
        return node

    def negate(self, c: list[Any]) -> ast.Expr:
        node: ast.Expr = c[-1]
        for i, tok in enumerate(reversed(c[:-1])):
            if (
                i == 0
                and isinstance(node, ast.Literal)
                and node.kind in ("int", "double")
                and not _parenthesized(node)
            ):
                # CEL reads `-9223372036854775808` as one literal: fold the sign
                # next to the number in; any further `-` negates that.
                node = ast.Literal(_id(), _span(tok, node), node.kind, -node.value, "-" + node.text)
            else:
                node = ast.Unary(_id(), _span(tok, node), "-", node, token_span(tok))
        return node

    # -- members --------------------------------------------------------------
    def select(self, c: list[Any]) -> ast.Expr:
        operand, _dot, name = c
        field = _selector(name)
        return ast.Select(_id(), _span(operand, name), operand, field, token_span(name))

    def optional_select(self, c: list[Any]) -> ast.Expr:
        # `a.?b` is the call _?._(a, "b"), as cel-go builds it.
        operand, _dot, _q, name = c
        field = _selector(name)
        lit = ast.Literal(_id(), token_span(name), "string", field, stdlib.quote_string(field))
        span = _span(operand, name)
        return ast.Call(_id(), span, ast.OPTIONAL_SELECT, None, (operand, lit), token_span(name))

    def method_call(self, c: list[Any]) -> ast.Expr:
        target, _dot, name, _lp, args, rp = c
        method = _selector(name)
        arglist: list[ast.Expr] = args or []
        span = _span(target, rp)
        if method in MACROS:
            return _comprehension(method, target, arglist, span, token_span(name))
        if type(target) is ast.Ident and f"{target.name}.{method}" in ast.QUALIFIED_FUNCTIONS:
            # optional.of(x): a function of a qualified name, not a method of `optional`
            qualified = f"{target.name}.{method}"
            return ast.Call(_id(), span, qualified, None, tuple(arglist), _span(target, name))
        return ast.Call(_id(), span, method, target, tuple(arglist), token_span(name))

    def index(self, c: list[Any]) -> ast.Expr:
        operand, _l, idx, rs = c
        return ast.Index(_id(), _span(operand, rs), operand, idx)

    def optional_index(self, c: list[Any]) -> ast.Expr:
        # `a[?i]` is the call _[?_](a, i), as cel-go builds it.
        operand, lsqb, _q, idx, rs = c
        span = _span(operand, rs)
        return ast.Call(_id(), span, ast.OPTIONAL_INDEX, None, (operand, idx), token_span(lsqb))

    # -- primaries ------------------------------------------------------------
    def ident(self, c: list[Any]) -> ast.Expr:
        name = c[-1]
        _check_name(name)
        return ast.Ident(_id(), _span(c[0], name), str(name))

    def global_call(self, c: list[Any]) -> ast.Expr:
        *_dot, name, _lp, args, rp = c
        _check_name(name)
        arglist: list[ast.Expr] = args or []
        span = _span(c[0], rp)
        if str(name) == "has":
            if len(arglist) != 1 or not isinstance(arglist[0], ast.Select):
                raise Problem(
                    "RK0109",
                    "has() takes one field selection",
                    span,
                    "write it as has(order.coupon): a map or object, a dot, and the field name",
                )
            sel = arglist[0]
            return ast.Has(_id(), span, sel.operand, sel.field, sel.field_span)
        return ast.Call(_id(), span, str(name), None, tuple(arglist), token_span(name))

    def paren(self, c: list[Any]) -> ast.Expr:
        # The node's span takes in the parentheses, so a parent's text is whole.
        inner: ast.Expr = dataclasses.replace(c[1], span=_span(c[0], c[2]))
        context = current()
        context.parens.add(inner.id)
        if type(inner) is ast.Logical:
            context.chains = True  # balancing gives it its span without the parentheses
        if isinstance(inner, ast.Literal) and inner.kind == "int":
            _check_int_range(inner)
        return inner

    def args(self, c: list[Any]) -> list[ast.Expr]:
        return [x for x in c if not isinstance(x, Token)]

    items = args

    def entries(self, c: list[Any]) -> list[tuple[ast.Expr, ast.Expr]]:
        return [x for x in c if not isinstance(x, Token)]

    def entry(self, c: list[Any]) -> tuple[ast.Expr, ast.Expr]:
        return (c[0], c[2])

    def list_lit(self, c: list[Any]) -> ast.Expr:
        return ast.ListLit(_id(), _span(c[0], c[-1]), tuple(c[1] or ()))

    def map_lit(self, c: list[Any]) -> ast.Expr:
        return ast.MapLit(_id(), _span(c[0], c[-1]), tuple(c[1] or ()))

    # -- literals -------------------------------------------------------------
    def int_lit(self, c: list[Any]) -> ast.Expr:
        tok = c[0]
        text = str(tok)
        if len(text.lstrip("0xX")) > 25:
            raise Problem(
                "RK0106",
                "integer literal is out of range",
                token_span(tok),
                "int is 64-bit: from -9223372036854775808 to 9223372036854775807",
            )
        value = int(text, 16) if text[:2] in ("0x", "0X") else int(text)
        if value > INT64_MAX:
            current().big_ints = True  # checked once the sign is folded in (validate)
        return ast.Literal(_id(), token_span(tok), "int", value, text)

    def uint_lit(self, c: list[Any]) -> ast.Expr:
        tok = c[0]
        raise Problem(
            "RK0108",
            f"unsigned integer literals like `{tok}` are not supported",
            token_span(tok),
            f"write `{str(tok)[:-1]}`: rulekit has one integer type, int (64-bit, signed)",
        )

    def float_lit(self, c: list[Any]) -> ast.Expr:
        tok = c[0]
        return ast.Literal(_id(), token_span(tok), "double", float(str(tok)), str(tok))

    def string_lit(self, c: list[Any]) -> ast.Expr:
        tok = c[0]
        kind, value = decode_string(str(tok), tok.start_pos or 0)
        return ast.Literal(_id(), token_span(tok), kind, value, str(tok))

    def duration_lit(self, c: list[Any]) -> ast.Expr:
        tok = c[0]
        parts = _DURATION_PART.findall(str(tok))
        ranks = [_UNIT_ORDER.index(u) for _, u in parts]
        if ranks != sorted(set(ranks)):
            raise Problem(
                "RK0108",
                f"duration `{tok}` repeats a unit or has them out of order",
                token_span(tok),
                "write units from largest to smallest, each once: 1d12h, 1h30m, 90s",
            )
        value = parse_duration_literal(str(tok)) if all(len(n) <= 12 for n, _ in parts) else None
        if value is None:
            raise Problem(
                "RK0106",
                f"duration `{tok}` is out of range",
                token_span(tok),
                "durations must be within 10,000 years",
            )
        return ast.Literal(_id(), token_span(tok), "duration", value, str(tok))

    def period_lit(self, c: list[Any]) -> ast.Expr:
        tok = c[0]
        try:
            value = calendar.parse_period(str(tok))
        except calendar.CalendarError as e:
            text = " ".join(str(tok).split())
            if "out of range" not in e.message:  # a calendar on months, years or days
                raise Problem(
                    "RK0108",
                    f"`{text}`: {e.message}",
                    token_span(tok),
                    "months, years and calendar days are the same on every calendar: "
                    f"write `{text.split(' in ')[0]}`",
                ) from None
            raise Problem(
                "RK0106",
                f"period `{text}` is out of range",
                token_span(tok),
                "a period counts at most 999,999 units",
            ) from None
        return ast.Literal(_id(), token_span(tok), "period", value, str(tok))

    def bool_lit(self, c: list[Any]) -> ast.Expr:
        tok = c[0]
        return ast.Literal(_id(), token_span(tok), "bool", tok.type == "TRUE", str(tok))

    def null_lit(self, c: list[Any]) -> ast.Expr:
        tok = c[0]
        return ast.Literal(_id(), token_span(tok), "null", None, "null")


@dataclass
class ParseContext:
    """The state of one parse, which the parser's callbacks read and add to.

    Each parse has its own (:func:`parsing`), held in a context variable: parses in
    several threads or tasks at once (an editor's many documents) share nothing, and
    no lock is needed. The Lark parser itself keeps no state between parses.
    """

    #: the text being parsed (a policy's callbacks give their nodes its spans)
    source: Source
    #: ids of nodes written inside parentheses (so `-(1)` is not folded into a literal)
    parens: set[int] = field(default_factory=set)
    #: problems the parser recovered from (reported, parsing went on)
    recovered: list[Problem] = field(default_factory=list)
    #: an `&&` or `||` chain of three operands or more, or a parenthesized one, was
    #: built: :func:`balance` has work to do (otherwise the tree is already its result)
    chains: bool = False
    #: an int literal beyond int64 was read: :func:`validate` must look for it (a
    #: `-` folded in later may bring it into range)
    big_ints: bool = False
    #: the node id the parse started at: every node it builds gets a later one, so the
    #: ids handed out since bound the size of its trees (and so their depth)
    first_id: int = field(default_factory=_id)


_CONTEXT: ContextVar[ParseContext] = ContextVar("rulekit_parse_context")


@contextmanager
def parsing(source: Source) -> Iterator[ParseContext]:
    """A fresh :class:`ParseContext` for the parse of ``source`` inside the block."""
    context = ParseContext(source)
    token = _CONTEXT.set(context)
    try:
        yield context
    finally:
        _CONTEXT.reset(token)


def current() -> ParseContext:
    """The context of the parse in progress (the parser's callbacks call it)."""
    return _CONTEXT.get()


def _parenthesized(node: ast.Expr) -> bool:
    return node.id in current().parens


def _check_name(tok: Token) -> None:
    if str(tok) in KEYWORDS:
        # The contextual lexer reads a keyword where it cannot stand as a name.
        raise Problem(
            "RK0107",
            f"`{tok}` is a keyword and cannot be used as a name",
            token_span(tok),
            'pick another name; if this is a map key, write it as m["' + str(tok) + '"]',
        )
    if str(tok) in RESERVED:
        raise Problem(
            "RK0107",
            f"`{tok}` is a reserved word and cannot be used as a name",
            token_span(tok),
            'pick another name; if this is a map key, write it as m["' + str(tok) + '"]',
        )


def _selector(tok: Token) -> str:
    """The field or method name after a dot: any name but CEL's keywords (reserved words
    too, `m.if`), or a field in backticks (`m.`content-type``), without them."""
    if tok.type == "QUOTED_FIELD":
        return str(tok)[1:-1]
    if str(tok) in ast.CEL_KEYWORDS:
        raise Problem(
            "RK0107",
            f"`{tok}` is a keyword and cannot be used as a field or method name",
            token_span(tok),
            f'write the field in backticks, m.`{tok}`, or as m["{tok}"]',
        )
    return str(tok)


def _check_int_range(node: ast.Literal) -> None:
    if not INT64_MIN <= node.value <= INT64_MAX:
        raise Problem(
            "RK0106",
            f"integer literal `{node.text}` is out of range",
            node.span,
            "int is 64-bit: from -9223372036854775808 to 9223372036854775807",
        )


def _comprehension(
    macro: str, target: ast.Expr, args: list[ast.Expr], span: Span, name_span: Span
) -> ast.Expr:
    arities = MACROS[macro]
    if len(args) not in arities:
        want = " or ".join(str(a) for a in arities)
        raise Problem(
            "RK0109",
            f"{macro}() takes {want} arguments, got {len(args)}",
            span,
            f"write it as list.{macro}(x, <expression using x>)",
        )
    var = args[0]
    if not isinstance(var, ast.Ident):
        raise Problem(
            "RK0109",
            f"the first argument of {macro}() must be a variable name",
            var.span,
            f"write it as list.{macro}(x, <expression using x>)",
        )
    if macro == "map":
        pred, transform = (args[1], args[2]) if len(args) == 3 else (None, args[1])
    else:
        pred, transform = args[1], None
    return ast.Comprehension(_id(), span, macro, target, var.name, var.span, pred, transform)


_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
}


def decode_string(text: str, offset: int) -> tuple[str, Any]:
    """Decode a string or bytes literal token; returns (kind, value)."""
    i = 0
    raw = is_bytes = False
    while text[i] not in "\"'":
        if text[i] in "rR":
            raw = True
        else:
            is_bytes = True
        i += 1
    quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else text[i]
    body_start = i + len(quote)
    body = text[body_start : len(text) - len(quote)]
    kind = "bytes" if is_bytes else "string"
    if raw:
        return kind, body.encode("utf-8") if is_bytes else body
    out_s: list[str] = []
    out_b = bytearray()

    def emit_text(s: str) -> None:
        if is_bytes:
            out_b.extend(s.encode("utf-8"))
        else:
            out_s.append(s)

    j = 0
    n = len(body)
    while j < n:
        ch = body[j]
        if ch != "\\":
            k = body.find("\\", j)
            k = n if k < 0 else k
            emit_text(body[j:k])
            j = k
            continue
        start = j
        esc = body[j + 1] if j + 1 < n else ""
        here = Span(offset + body_start + start, offset + body_start + start + 2)
        if esc in _SIMPLE_ESCAPES:
            emit_text(_SIMPLE_ESCAPES[esc])
            j += 2
            continue
        if esc in "xXuU" and esc:
            width = {"x": 2, "X": 2, "u": 4, "U": 8}[esc]
            digits = body[j + 2 : j + 2 + width]
            here = Span(here.start, here.start + 2 + len(digits))
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise Problem("RK0105", f"`\\{esc}` must be followed by {width} hex digits", here)
            code = int(digits, 16)
            if esc in "uU" and is_bytes:
                raise Problem(
                    "RK0105",
                    f"`\\{esc}` escapes are not allowed in bytes literals",
                    here,
                    "write the bytes with \\x escapes",
                )
            j += 2 + width
        elif esc and esc in "0123":
            digits = body[j + 1 : j + 4]
            here = Span(here.start, here.start + 1 + len(digits))
            if len(digits) != 3 or any(d not in "01234567" for d in digits):
                raise Problem(
                    "RK0105", "an octal escape takes three octal digits (\\000 to \\377)", here
                )
            code = int(digits, 8)
            j += 4
        else:
            raise Problem(
                "RK0105",
                f"unknown escape sequence `\\{esc}`",
                here,
                "valid escapes: \\n \\t \\r \\\\ \\\" \\' \\xHH \\uHHHH \\UHHHHHHHH \\ooo; "
                'or use a raw string r"..."',
            )
        if is_bytes and esc in "xX0123":
            out_b.append(code)
        elif 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
            raise Problem("RK0105", f"`{body[start:j]}` is not a valid Unicode code point", here)
        else:
            emit_text(chr(code))
    return kind, bytes(out_b) if is_bytes else "".join(out_s)


def parse_duration_literal(text: str) -> timedelta | None:
    """``1h30m`` (a token the lexer read as a duration) -> timedelta; None when out of
    CEL's duration range. The one duration reader is stdlib's, as for ``duration("...")``."""
    try:
        return stdlib.parse_duration(text)
    except stdlib.CelError:
        return None


@dataclass(frozen=True)
class ParseResult:
    """The tree (None when the text could not be read at all) and the problems found.

    A tree may come with errors the parser recovered from (`=` for `==`):
    later phases still check it, so one run reports everything.
    """

    ast: ast.Expr | None
    diagnostics: list[Diagnostic]


_parser: lark.Lark | None = None


def _get_parser() -> lark.Lark:
    global _parser
    if _parser is None:
        _parser = lalr_parser(
            "cel",
            grammar_text("cel.lark"),
            transformer=ExpressionBuilder(),
            maybe_placeholders=True,
        )
    return _parser


def parse(source: Source) -> ParseResult:
    """Parse ``source`` into an AST; every failure is a diagnostic, never an exception."""
    text = source.text
    if not text.strip():
        return ParseResult(
            None,
            [
                diag.make(
                    "RK0101",
                    "the expression is empty",
                    source,
                    Span(0, len(text)),
                    help="write a condition, e.g. order.amount < 300",
                )
            ],
        )
    parser = _get_parser()
    with parsing(source) as context:
        try:
            node: ast.Expr = parser.parse(text)  # type: ignore[assignment]
        except (Problem, lark.exceptions.UnexpectedInput):
            return ParseResult(None, _recover(parser, source))
    recovered = context.recovered
    node = finish(node, context)
    invalid = check_tree(node, context)
    if invalid is not None:
        return ParseResult(
            None,
            [diag.make(invalid.code, invalid.message, source, invalid.span, help=invalid.help)],
        )
    return ParseResult(
        node, [diag.make(p.code, p.message, source, p.span, help=p.help) for p in recovered]
    )


def _recover(parser: lark.Lark, source: Source) -> list[Diagnostic]:
    """Every syntax error of a condition that does not parse, a clause at a time
    (:mod:`rulekit.expr.recovery`), with the problems recovered from on the way."""
    from rulekit.expr import recovery  # only for text with mistakes (it imports Problem)

    with parsing(source):
        return recovery.parse(parser, source, syntax_diagnostic, recovery.CLAUSES)


def finish(root: ast.Expr, context: ParseContext) -> ast.Expr:
    """:func:`balance` of a tree its parse (``context``) built, skipped when it would
    change nothing: without a chain of three or a parenthesized `&&`/`||`, balancing
    rebuilds each `&&`/`||` node with the same id, operands and span."""
    return balance(root) if context.chains else root


def check_tree(root: ast.Expr, context: ParseContext) -> Problem | None:
    """:func:`validate` of a tree its parse (``context``) built, skipped when it cannot
    find anything: no int literal beyond int64 was read, and the tree cannot be deeper
    than :data:`MAX_DEPTH`, because it spans at most that many characters (a node's span
    strictly contains each child's) or because the parse has not handed out that many
    node ids (each node of the tree has its own; other parses' ids only add to the count)."""
    if context.big_ints or (
        root.span.end - root.span.start > MAX_DEPTH and _id() - context.first_id > MAX_DEPTH
    ):
        return validate(root)
    return None


def balance(root: ast.Expr) -> ast.Expr:
    """``root`` with every chain of ``&&`` (or of ``||``) as a balanced tree, as cel-go's
    parser builds them: `a || b || ... || z` nests log2(n) deep, not n, so long flat chains
    stay within the nesting limit. Both operators are associative in CEL (errors included),
    so the value is the same; ``(a || b) || c`` joins the chain too.
    """
    try:
        return _balanced(root)
    except RecursionError:
        return root  # nested too deeply whatever the chains: validate says so


def _balanced(node: ast.Expr) -> ast.Expr:
    if not isinstance(node, ast.Logical):
        return ast.map_children(node, _balanced)
    items: list[ast.Expr] = []
    ops: list[Span] = []  # ops[i] stands between items[i] and items[i + 1]
    stack: list[ast.Expr | Span] = [node]
    while stack:  # in source order, without recursing along the chain
        top = stack.pop()
        if isinstance(top, ast.Logical) and top.op == node.op:
            stack.extend((top.right, top.op_span, top.left))
        elif isinstance(top, Span):
            ops.append(top)
        else:
            items.append(_balanced(top))
    return _join(items, ops, node.op, node.id)


def _join(items: list[ast.Expr], ops: list[Span], op: str, node_id: int) -> ast.Expr:
    if len(items) == 1:
        return items[0]
    mid = len(items) // 2
    left = _join(items[:mid], ops[: mid - 1], op, _id())
    right = _join(items[mid:], ops[mid:], op, _id())
    return ast.Logical(
        node_id, Span(left.span.start, right.span.end), op, left, right, ops[mid - 1]
    )


def validate(root: ast.Expr) -> Problem | None:
    """Checks needing the whole tree: nesting depth, int literal ranges."""
    stack: list[tuple[ast.Expr, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return Problem(
                "RK0110",
                f"expression nested more than {MAX_DEPTH} levels deep",
                node.span,
                "split it into named constants or simpler conditions",
            )
        if isinstance(node, ast.Literal) and node.kind == "int":
            try:
                _check_int_range(node)
            except Problem as p:
                return p
        stack.extend((c, depth + 1) for c in ast.children(node))
    return None


def syntax_diagnostic(e: lark.exceptions.UnexpectedInput, source: Source) -> Diagnostic:
    text = source.text
    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        pos: int = e.pos_in_stream or 0
        ch = text[pos]
        if ch in "&|":
            word = "&&` (or `and`" if ch == "&" else "||` (or `or`"
            return diag.make(
                "RK0102",
                f"unexpected character `{ch}`",
                source,
                Span(pos, pos + 1),
                help=f"the logical operator is `{word})",
            )
        if text[max(0, pos - 2) : pos + 1] in ("'''", '"""'):
            pos -= 2  # an unterminated triple-quoted string lexes as '' then '
        rest = text[pos:]
        stripped = rest.lstrip("rRbB")
        if stripped[:1] in ("'", '"') and len(rest) - len(stripped) <= 2:
            q = stripped[:3] if stripped[:3] in ('"""', "'''") else stripped[:1]
            return diag.make(
                "RK0103",
                "unterminated string literal",
                source,
                Span(pos, pos + 1),
                help=f"close it with {q} on the same line" if len(q) == 1 else f"close it with {q}",
            )
        shown = ch if ch.isprintable() else repr(ch)
        return diag.make("RK0102", f"unexpected character `{shown}`", source, Span(pos, pos + 1))
    if isinstance(e, lark.exceptions.UnexpectedToken):
        tok = e.token
        try:
            choices = set(e.interactive_parser.accepts())  # type: ignore[no-untyped-call]
        except Exception:  # pragma: no cover - fall back to lark's own estimate
            choices = set(e.expected)
        expected = _describe_expected(choices)
        if tok.type == "$END":
            end = len(text.rstrip())
            note = _unclosed_bracket(text)
            notes = [note[0]] if note else []
            help_ = f"add `{note[1]}`" if note else None
            return diag.make(
                "RK0103",
                f"unexpected end of expression; expected {expected}",
                source,
                Span(end, end + 1),
                notes=notes,
                help=help_,
            )
        span = token_span(tok)
        help_ = None
        words = {KEYWORD_NAMES[n].strip("`"): n for n in choices if n in KEYWORD_NAMES}
        import difflib  # only when there is a mistake to suggest a fix for

        close = difflib.get_close_matches(str(tok), list(words), n=1, cutoff=0.7)
        if tok.type == "IDENT" and close:
            help_ = f"did you mean `{close[0]}`?"
        elif (
            tok.type == "IDENT"
            and (tok.start_pos or 0) > 0
            and text[(tok.start_pos or 0) - 1].isdigit()
        ):
            help_ = (
                "a duration is whole numbers with units, largest first: 90m, 1h30m, 10d "
                "(units d, h, m, s, ms; lowercase)"
            )
        elif tok.type == "QUOTED_FIELD":
            help_ = f"a name in backticks is a field: write it after a dot, m.{tok}"
        elif tok.type in _VALUE_TOKENS and "an operator" in expected:
            help_ = "is an operator missing before it? (`and`, `or`, `==`, `<`, ...)"
        return diag.make(
            "RK0101",
            f"unexpected {_describe_token(tok)}; expected {expected}",
            source,
            span,
            help=help_,
        )
    pos = getattr(e, "pos_in_stream", None) or len(text)  # pragma: no cover
    return diag.make("RK0101", "syntax error", source, Span(pos, pos + 1))  # pragma: no cover


def _describe_token(tok: Token) -> str:
    if tok.type == "QUOTED_FIELD":
        return f"field name {tok}"
    if tok.type in ("IDENT", "INT", "HEX_INT", "FLOAT", "STRING", "DURATION", "PERIOD"):
        return f"{_TOKEN_NAMES[tok.type].removeprefix('a ')} `{tok}`"
    return f"`{tok}`"


#: Terminals of grammars built on this one (the policy language), by name.
KEYWORD_NAMES: dict[str, str] = {}
_OPERATORS = frozenset(
    {
        "QMARK",
        "OROR",
        "ANDAND",
        "OR",
        "AND",
        "LT",
        "LE",
        "GT",
        "GE",
        "EQ",
        "NE",
        "IN",
        "PLUS",
        "MINUS",
        "STAR",
        "SLASH",
        "PERCENT",
        "DOT",
        "LSQB",
        "LPAR",
    }
)
_VALUE_TOKENS = frozenset(
    {"IDENT", "INT", "HEX_INT", "FLOAT", "STRING", "DURATION", "PERIOD", "TRUE", "FALSE", "NULL"}
)


def _describe_expected(expected: set[str]) -> str:
    """What the parser could have taken, in words (from the parser state's choices)."""
    parts: list[str] = []
    if expected & {"INT", "STRING"}:
        parts.append("an expression")
    elif "IDENT" in expected:
        parts.append("a name")
    parts.extend(
        _TOKEN_NAMES[n] for n in ("RPAR", "RSQB", "RBRACE", "COMMA", "COLON") if n in expected
    )
    if expected & (_OPERATORS - {"DOT", "LPAR", "LSQB"}) and "IDENT" not in expected:
        parts.append("an operator")
    keywords = sorted(KEYWORD_NAMES[n] for n in expected if n in KEYWORD_NAMES)
    if keywords:
        parts.append(", ".join(keywords[:8]) + (", ..." if len(keywords) > 8 else ""))
    if "$END" in expected:
        parts.append(
            "the end of the expression" if not KEYWORD_NAMES.keys() & expected else "the end"
        )
    if not parts:
        return "something else"
    return ", ".join(parts[:-1]) + (" or " if len(parts) > 1 else "") + parts[-1]


def _unclosed_bracket(text: str) -> tuple[str, str] | None:
    """The innermost bracket still open at the end, skipping strings: (note, closer)."""
    stack: list[tuple[str, int]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            q = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else ch
            end = text.find(q, i + len(q))
            line_end = text.find("\n", i) if len(q) == 1 else -1
            if 0 <= line_end < end or (end < 0 and line_end >= 0):
                i = line_end  # unterminated: a one-quote string ends with its line
                continue
            i = len(text) if end < 0 else end + len(q)
            continue
        if ch in _CLOSERS:
            stack.append((ch, i))
        elif ch in ")]}" and stack:
            stack.pop()
        i += 1
    if not stack:
        return None
    ch, pos = stack[-1]
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"the `{ch}` opened at {line}:{col} is never closed", _CLOSERS[ch]
