"""The expression AST: plain, frozen nodes, each with an id and a span.

Nodes never change after the parser builds them. The checker keeps what it
learns (types, overloads, resolved names) in tables keyed by ``node.id``, as
cel-go's ``NewCheckedAST`` does, so one tree serves every later phase.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypeAlias

from rulekit.core.calendar import CalendarError, Period, parse_period
from rulekit.core.source import Span

#: CEL's IDENT (grammar/cel.lark): the only spelling of a name, a field, a
#: function or a comprehension variable.
IDENT = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
#: Words CEL reserves: never names (cel-spec, langdef.md "Syntax").
RESERVED = frozenset(
    [
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ]
)
#: Words the grammar reads as tokens of their own, so never as names.
KEYWORDS = frozenset({"in", "and", "or", "not", "true", "false", "null"})


def is_name(text: object) -> bool:
    """Whether ``text`` is a name the parser could have read: an IDENT, not a reserved word."""
    return (
        isinstance(text, str)
        and IDENT.fullmatch(text) is not None
        and text not in RESERVED
        and text not in KEYWORDS
    )


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    id: int
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Literal(Node):
    """A constant. ``kind`` is int, double, string, bytes, bool, null, duration or period."""

    kind: str
    value: Any
    text: str  # as written, so a double literal can be read exactly as money


@dataclass(frozen=True, slots=True, eq=False)
class Ident(Node):
    name: str


@dataclass(frozen=True, slots=True, eq=False)
class Select(Node):
    operand: Expr
    field: str
    field_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Has(Node):
    """``has(a.b)``: is field ``b`` present on ``a``."""

    operand: Expr
    field: str
    field_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Index(Node):
    operand: Expr
    index: Expr


@dataclass(frozen=True, slots=True, eq=False)
class Call(Node):
    """A function call; ``target`` is the receiver of a method call (``s.size()``)."""

    function: str
    target: Expr | None
    args: tuple[Expr, ...]
    name_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Unary(Node):
    """``!x`` (op ``!``, also spelled ``not``) or ``-x`` (op ``-``)."""

    op: str
    operand: Expr
    op_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Binary(Node):
    """Arithmetic and relations: ``+ - * / % < <= > >= == != in``."""

    op: str
    left: Expr
    right: Expr
    op_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Logical(Node):
    """``&&`` / ``||`` (also spelled ``and`` / ``or``), commutative and error-absorbing."""

    op: str
    left: Expr
    right: Expr
    op_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Conditional(Node):
    cond: Expr
    then: Expr
    otherwise: Expr


@dataclass(frozen=True, slots=True, eq=False)
class ListLit(Node):
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, eq=False)
class MapLit(Node):
    entries: tuple[tuple[Expr, Expr], ...]


@dataclass(frozen=True, slots=True, eq=False)
class Comprehension(Node):
    """A macro over a list or map: all, exists, exists_one, map, filter.

    ``predicate`` is the condition (all/exists/exists_one/filter, and the
    filter of the three-argument ``map``); ``transform`` is map's result.
    """

    macro: str
    range: Expr
    var: str
    var_span: Span
    predicate: Expr | None
    transform: Expr | None


Expr: TypeAlias = (
    Literal
    | Ident
    | Select
    | Has
    | Index
    | Call
    | Unary
    | Binary
    | Logical
    | Conditional
    | ListLit
    | MapLit
    | Comprehension
)


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``node``, in source order."""
    get = _CHILDREN.get(type(node))
    if get is None:
        raise TypeError(node)
    return get(node)


def _no_children(node: Any) -> tuple[Expr, ...]:
    return ()


#: The children of each kind of node (a table: faster than matching on the class).
_CHILDREN: dict[type, Callable[[Any], tuple[Expr, ...]]] = {
    Literal: _no_children,
    Ident: _no_children,
    Select: lambda n: (n.operand,),
    Has: lambda n: (n.operand,),
    Unary: lambda n: (n.operand,),
    Index: lambda n: (n.operand, n.index),
    Call: lambda n: (n.target, *n.args) if n.target is not None else n.args,
    Binary: lambda n: (n.left, n.right),
    Logical: lambda n: (n.left, n.right),
    Conditional: lambda n: (n.cond, n.then, n.otherwise),
    ListLit: lambda n: n.items,
    MapLit: lambda n: tuple(x for kv in n.entries for x in kv),
    Comprehension: lambda n: tuple(x for x in (n.range, n.predicate, n.transform) if x is not None),
}


def map_children(node: Expr, fn: Callable[[Expr], Expr]) -> Expr:
    """``node`` with ``fn`` applied to each direct sub-expression (``node`` itself when
    nothing changed). The new node keeps ``node``'s id and spans."""
    changes: dict[str, Any] = {}
    for name, shape in _CHILD_FIELDS[type(node)]:
        v = getattr(node, name)
        if shape == "node":
            if v is None:
                continue
            new: Any = fn(v)
        elif shape == "pairs":
            new = tuple((fn(k), fn(x)) for k, x in v)
        else:
            new = tuple(fn(x) for x in v)
        if new != v:
            changes[name] = new
    return replace(node, **changes) if changes else node


#: The fields of each kind of node that hold sub-expressions: one ("node", None when
#: absent), a tuple of them ("nodes") or a tuple of pairs ("pairs", a map's entries).
_CHILD_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {
    Literal: (),
    Ident: (),
    Select: (("operand", "node"),),
    Has: (("operand", "node"),),
    Unary: (("operand", "node"),),
    Index: (("operand", "node"), ("index", "node")),
    Call: (("target", "node"), ("args", "nodes")),
    Binary: (("left", "node"), ("right", "node")),
    Logical: (("left", "node"), ("right", "node")),
    Conditional: (("cond", "node"), ("then", "node"), ("otherwise", "node")),
    ListLit: (("items", "nodes"),),
    MapLit: (("entries", "pairs"),),
    Comprehension: (("range", "node"), ("predicate", "node"), ("transform", "node")),
}


def path_of(node: Expr) -> tuple[str, ...] | None:
    """The dotted name ``node`` spells (``order.amount`` -> ("order", "amount")), or None."""
    if isinstance(node, Ident):
        return (node.name,)
    if isinstance(node, Select):
        inner = path_of(node.operand)
        return None if inner is None else (*inner, node.field)
    return None


def walk(node: Expr) -> list[Expr]:
    """Every node of the tree, parents before children."""
    out: list[Expr] = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(reversed(children(n)))
    return out


# -- serialization ----------------------------------------------------------------------
# The checked AST travels in compiled artifacts as JSON. Ids are not kept (a
# loaded tree gets fresh ones); spans are, so diagnostics and traces still
# point at the source.

_CLASSES: dict[str, type[Node]] = {
    c.__name__: c
    for c in (
        Literal,
        Ident,
        Select,
        Has,
        Index,
        Call,
        Unary,
        Binary,
        Logical,
        Conditional,
        ListLit,
        MapLit,
        Comprehension,
    )
}


def to_json(node: Expr) -> dict[str, Any]:
    """A JSON-ready dict for ``node`` and its sub-tree."""
    out: dict[str, Any] = {"node": type(node).__name__, "span": [node.span.start, node.span.end]}
    for name in node.__dataclass_fields__:
        if name in ("id", "span"):
            continue
        out[name] = _field_to_json(getattr(node, name))
    if isinstance(node, Literal):
        out["value"] = _literal_to_json(node)
    return out


def shift_json(node: Any, delta: int) -> Any:
    """Move every span of a serialized tree by ``delta`` (to make spans relative to a snippet)."""
    if delta == 0:
        return node
    if isinstance(node, dict):
        return {
            k: ([v[0] + delta, v[1] + delta] if k.endswith("span") else shift_json(v, delta))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [shift_json(x, delta) for x in node]
    return node


def _field_to_json(v: Any) -> Any:
    if isinstance(v, Node):
        return to_json(v)  # type: ignore[arg-type]
    if isinstance(v, Span):
        return [v.start, v.end]
    if isinstance(v, tuple):
        return [_field_to_json(x) for x in v]
    return v


def _literal_to_json(node: Literal) -> Any:
    if node.kind == "bytes":
        return node.value.hex()
    if node.kind == "duration":
        return node.value // timedelta(microseconds=1)
    if node.kind == "period":
        return str(node.value)
    if node.kind == "double":
        return repr(node.value)
    return node.value


class ASTFormatError(ValueError):
    """A serialized tree that is not one rulekit wrote."""


def from_json(data: Any, new_id: Any, depth: int = 0, path: str = "ast") -> Expr:
    """Rebuild a tree written by :func:`to_json`; ``new_id()`` numbers the nodes.

    Every field is checked for its kind of value and every name against the
    language's own lexical rules (:func:`is_name`), so a hand-edited or corrupt
    tree is an :class:`ASTFormatError` naming the place (``ast/left/args/0``),
    never a crash or anything worse in a later phase.
    """
    if depth > MAX_TREE_DEPTH:
        raise ASTFormatError(f"at {path}: expression nested more than {MAX_TREE_DEPTH} levels deep")
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("node"), str)
        or data["node"] not in _CLASSES
    ):
        raise ASTFormatError(f"at {path}: not an expression node: {str(data)[:60]}")
    cls = _CLASSES[data["node"]]
    unknown = set(data) - {"node", *cls.__dataclass_fields__} - {"id"}
    try:
        if unknown:
            raise ValueError(f"unknown field {sorted(unknown)[0]!r}")
        kwargs: dict[str, Any] = {"id": new_id(), "span": _span(data["span"])}
        for name in cls.__dataclass_fields__:
            if name in ("id", "span"):
                continue
            kwargs[name] = _field_from_json(
                cls, name, data[name], new_id, depth + 1, f"{path}/{name}"
            )
        if cls is Literal:
            kwargs["value"] = _literal_from_json(kwargs["kind"], data["value"], kwargs["text"])
        if cls is Comprehension:
            _comprehension_shape(kwargs["macro"], kwargs["predicate"], kwargs["transform"])
        return cls(**kwargs)  # type: ignore[return-value]
    except ASTFormatError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise ASTFormatError(f"at {path}: malformed {data.get('node')} node: {e}") from None


#: The deepest serialized tree accepted (the parser's limit, with room for folding).
MAX_TREE_DEPTH = 128
_SPAN_FIELDS = {"field_span", "name_span", "op_span", "var_span"}
_NODE_FIELDS = {"operand", "index", "left", "right", "cond", "then", "otherwise", "range"}
_OPTIONAL_NODE_FIELDS = {"target", "predicate", "transform"}
#: Fields that hold a name: each must be spelled as the parser reads names.
_NAME_FIELDS = {"name", "field", "function", "var"}
OPERATORS: dict[type, frozenset[str]] = {
    Unary: frozenset({"!", "-"}),
    Binary: frozenset({"+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "in"}),
    Logical: frozenset({"&&", "||"}),
}
#: Literal kind -> the Python type of its value.
LITERAL_VALUES: dict[str, type] = {
    "int": int,
    "double": float,
    "string": str,
    "bytes": bytes,
    "bool": bool,
    "null": type(None),
    "duration": timedelta,
    "period": Period,
}
#: Macro -> (has a predicate, has a transform) shapes the parser builds.
MACRO_SHAPES: dict[str, frozenset[tuple[bool, bool]]] = {
    "all": frozenset({(True, False)}),
    "exists": frozenset({(True, False)}),
    "exists_one": frozenset({(True, False)}),
    "filter": frozenset({(True, False)}),
    "map": frozenset({(False, True), (True, True)}),
}
_INT64 = (-(2**63), 2**63 - 1)
#: A double literal as the grammar spells it (FLOAT, after an optional folded sign).
_DOUBLE_TEXT = re.compile(r"-?(?:\d*\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)")
#: The longest name accepted (far beyond any real one; keeps messages and code small).
MAX_NAME = 256


def _span(v: Any) -> Span:
    if not (
        isinstance(v, list)
        and len(v) == 2
        and all(type(x) is int and x >= 0 for x in v)
        and v[0] <= v[1]
    ):
        raise ValueError(f"a span is two ordered offsets, not {str(v)[:40]}")
    return Span(v[0], v[1])


def _comprehension_shape(macro: str, predicate: Expr | None, transform: Expr | None) -> None:
    if (predicate is not None, transform is not None) not in MACRO_SHAPES[macro]:
        raise ValueError(f"{macro}() with the wrong arguments")


def _field_from_json(cls: type, name: str, v: Any, new_id: Any, depth: int, path: str) -> Any:
    if name in _SPAN_FIELDS:
        return _span(v)
    if name == "entries":
        if not isinstance(v, list) or not all(isinstance(kv, list) and len(kv) == 2 for kv in v):
            raise ValueError("entries must be [key, value] pairs")
        return tuple(
            (
                from_json(k, new_id, depth, f"{path}/{i}/0"),
                from_json(x, new_id, depth, f"{path}/{i}/1"),
            )
            for i, (k, x) in enumerate(v)
        )
    if name in ("items", "args"):
        if not isinstance(v, list):
            raise ValueError(f"{name} must be a list")
        return tuple(from_json(x, new_id, depth, f"{path}/{i}") for i, x in enumerate(v))
    if name in _NODE_FIELDS or (name in _OPTIONAL_NODE_FIELDS and v is not None):
        return from_json(v, new_id, depth, path)
    if name in _OPTIONAL_NODE_FIELDS:
        return None
    if name in _NAME_FIELDS and not (isinstance(v, str) and len(v) <= MAX_NAME and is_name(v)):
        raise ValueError(f"{name} {str(v)[:40]!r} is not a name")
    if name == "text" and not isinstance(v, str):
        raise ValueError("text must be text")
    if name == "op" and v not in OPERATORS.get(cls, ()):
        raise ValueError(f"unknown operator {str(v)[:20]!r}")
    if name == "kind" and v not in LITERAL_VALUES:
        raise ValueError(f"unknown literal kind {str(v)[:20]!r}")
    if name == "macro" and v not in MACRO_SHAPES:
        raise ValueError(f"unknown macro {str(v)[:20]!r}")
    return v


def _literal_from_json(kind: str, v: object, text: str) -> Any:
    expected = {
        "int": int,
        "string": str,
        "bool": bool,
        "bytes": str,
        "duration": int,
        "double": str,
        "period": str,
    }
    if kind == "null":
        if v is not None:
            raise ValueError("a null literal has no value")
        return None
    if type(v) is not expected[kind]:
        raise ValueError(f"a {kind} literal cannot hold {str(v)[:40]}")
    if kind == "int" and not _INT64[0] <= int(str(v)) <= _INT64[1]:
        raise ValueError("an int literal out of range")
    if kind == "bytes":
        return bytes.fromhex(str(v))
    if kind == "duration":
        return timedelta(microseconds=int(str(v)))
    if kind == "period":
        try:
            return parse_period(str(v))
        except CalendarError as e:
            raise ValueError(str(e)) from None
    if kind == "double":
        # The text is read again as an exact decimal beside money: both must agree.
        if _DOUBLE_TEXT.fullmatch(text) is None or float(text) != float(str(v)):
            raise ValueError(f"a double literal spelled {text[:40]!r}")
        return float(str(v))
    return v
