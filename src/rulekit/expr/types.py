"""Static types of the expression language, and declarations.

A :class:`Type` is plain data. Declared dotted names (``order.amount``)
become *object* types: maps whose fields are known, so the checker can say
"order has no field `amont`; did you mean `amount`?".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Type:
    """``kind`` is one of: bool int double money string bytes timestamp duration
    date period null_type type dyn list map object error. ``params`` holds list/map type
    arguments; ``fields`` an object's declared fields (sorted by name)."""

    kind: str
    params: tuple[Type, ...] = ()
    name: str = ""
    fields: tuple[tuple[str, Type], ...] = ()

    def __str__(self) -> str:
        if self.kind == "list":
            return f"list({self.params[0]})"
        if self.kind == "map":
            return f"map({self.params[0]}, {self.params[1]})"
        if self.kind == "object":
            return f"object `{self.name}`"
        if self.kind == "enum":
            return self.name
        if self.kind == "optional":
            return f"optional_type({self.params[0]})"
        return self.kind

    def field(self, name: str) -> Type | None:
        for n, t in self.fields:
            if n == name:
                return t
        return None

    @property
    def is_dynamic(self) -> bool:
        return self.kind in ("dyn", "error")


BOOL = Type("bool")
INT = Type("int")
DOUBLE = Type("double")
MONEY = Type("money")
STRING = Type("string")
BYTES = Type("bytes")
TIMESTAMP = Type("timestamp")
DURATION = Type("duration")
#: A local date (``t.localDate()``) and a calendar period (``1 month``): values of
#: expressions, not types facts are declared with.
DATE = Type("date")
PERIOD = Type("period")
NULL = Type("null_type")
TYPE = Type("type")
DYN = Type("dyn")
#: The type of an expression that already failed to check: silences follow-on errors.
ERROR = Type("error")

NUMERIC = frozenset({"int", "double", "money"})
PRIMITIVES = {
    t.kind: t
    for t in (BOOL, INT, DOUBLE, MONEY, STRING, BYTES, TIMESTAMP, DURATION, NULL, TYPE, DYN)
}
#: Spellings accepted in declarations (and fact declarations of rule files).
ALIASES = {"time": TIMESTAMP, "timestamp": TIMESTAMP, "decimal": MONEY}


def enum_of(name: str, members: list[str] | tuple[str, ...]) -> Type:
    """An enum: its values are strings, one of ``members``."""
    return Type("enum", name=name, fields=tuple((m, STRING) for m in members))


def list_of(t: Type) -> Type:
    return Type("list", (t,))


def map_of(k: Type, v: Type) -> Type:
    return Type("map", (k, v))


def optional_of(t: Type) -> Type:
    """``optional_type(t)``: CEL's optional values (``optional.of(x)``, ``m.?f``)."""
    return Type("optional", (t,))


class TypeSyntaxError(ValueError):
    """A type name that does not parse (message says why)."""


_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|[(),])")


def parse_type(text: str, named: Mapping[str, Type] | None = None) -> Type:
    """Parse a type name: ``int``, ``list(money)``, ``map(string, list(int))``.

    ``named`` adds types by name (a policy's enums)."""
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise TypeSyntaxError(f"unexpected `{text[pos:].strip()[:1]}` in type `{text}`")
        tokens.append(m.group(1))
        pos = m.end()
    result, rest = _parse_type_tokens(tokens, text, named or {})
    if rest:
        raise TypeSyntaxError(f"unexpected `{rest[0]}` after the type in `{text}`")
    return result


def _parse_type_tokens(
    tokens: list[str], text: str, named: Mapping[str, Type]
) -> tuple[Type, list[str]]:
    if not tokens:
        raise TypeSyntaxError(f"incomplete type `{text}`")
    head, rest = tokens[0], tokens[1:]
    if head in ("list", "map"):
        arity = 1 if head == "list" else 2
        if not rest or rest[0] != "(":
            want = "list(T)" if head == "list" else "map(K, V)"
            raise TypeSyntaxError(f"`{head}` needs its element types: write {want}")
        rest = rest[1:]
        args = []
        for i in range(arity):
            t, rest = _parse_type_tokens(rest, text, named)
            args.append(t)
            sep = "," if i < arity - 1 else ")"
            if not rest or rest[0] != sep:
                raise TypeSyntaxError(f"expected `{sep}` in type `{text}`")
            rest = rest[1:]
        return (list_of(args[0]) if head == "list" else map_of(args[0], args[1])), rest
    if head in named:
        return named[head], rest
    if head in ALIASES:
        return ALIASES[head], rest
    if head in PRIMITIVES and head not in ("null_type", "type"):
        return PRIMITIVES[head], rest
    known = "bool, int, double, money, string, bytes, time, duration, list(T), map(K, V), dyn"
    if named:
        known += ", " + ", ".join(sorted(named))
    raise TypeSyntaxError(f"unknown type `{head}` (known types: {known})")


class DeclarationError(ValueError):
    """Declarations that contradict each other or name a bad type."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


#: Names the language itself defines; a declaration may not take them.
BUILTIN_NAMES = frozenset(
    {
        "now",
        "int",
        "double",
        "money",
        "string",
        "bytes",
        "bool",
        "list",
        "map",
        "null_type",
        "type",
        "timestamp",
        "duration",
        "dyn",
    }
)

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*\Z")


#: Where a name declared with names below it (CEL's "a.b" beside "a.b.c") keeps its own
#: type in the tree :func:`build_environment` builds (no name is empty).
_OWN = ""


class Declarations:
    """Declared names and their types, added one at a time, each checked against those
    added before it (a policy's checker reports each conflicting fact and goes on; adding
    n names costs O(n), where rebuilding the environment for each would cost O(n^2)).

    ``qualified``: a name may be declared with names below it (``a.b`` and ``a.b.c``),
    as CEL's qualified names may be: ``a.b.c`` is then the longest declared prefix's, and
    ``a.b`` an object whose type for any other field is that of ``a.b``'s declared type.
    Otherwise (a policy's facts) that is a conflict.
    """

    def __init__(self, *, qualified: bool = False) -> None:
        self._tree: dict[str, object] = {}
        self._qualified = qualified

    def add(self, name: str, spec: str | Type) -> None:
        """Declare ``name``; raises :class:`DeclarationError`, leaving the declarations as
        they were, when it is malformed or conflicts with one already added."""
        parts = name.split(".")
        if not all(_NAME.match(p) for p in parts):
            raise DeclarationError(
                name, "a declared name is identifiers joined by dots, like order.amount"
            )
        if parts[0] in BUILTIN_NAMES:
            raise DeclarationError(name, f"`{parts[0]}` is a built-in name of the language")
        try:
            typ = spec if isinstance(spec, Type) else parse_type(spec)
        except TypeSyntaxError as e:
            raise DeclarationError(name, str(e)) from None
        self._refuse_conflict(name, parts)
        node = self._tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if isinstance(child, Type):  # qualified: it keeps its own type below the fields
                child = node[part] = {_OWN: child}
            assert isinstance(child, dict)
            node = child
        existing = node.get(parts[-1])
        if isinstance(existing, dict):
            existing[_OWN] = typ
        else:
            node[parts[-1]] = typ

    def _refuse_conflict(self, name: str, parts: list[str]) -> None:
        """Raise, before anything changes, if ``name`` cannot join the declarations."""
        node = self._tree
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                return  # a new branch: nothing below it to clash with
            if isinstance(child, Type):
                if self._qualified:
                    return
                raise DeclarationError(
                    name, f"`{'.'.join(parts[: i + 1])}` is declared as {child}, not an object"
                )
            assert isinstance(child, dict)
            node = child
        existing = node.get(parts[-1])
        if existing is None:
            return
        if self._qualified and isinstance(existing, dict) and _OWN not in existing:
            return
        raise DeclarationError(name, "declared twice (or also has fields declared)")

    def build(self) -> dict[str, Type]:
        """The top-level names and their types."""
        return {k: _to_type(v, k) for k, v in self._tree.items()}


def build_environment(
    declarations: Mapping[str, str | Type], *, qualified: bool = False
) -> dict[str, Type]:
    """Turn ``{"order.amount": "money", ...}`` into top-level names and their types
    (``qualified`` as for :class:`Declarations`); raises :class:`DeclarationError`."""
    env = Declarations(qualified=qualified)
    for name, spec in declarations.items():
        env.add(name, spec)
    return env.build()


def _to_type(node: object, path: str) -> Type:
    if isinstance(node, Type):
        return node
    assert isinstance(node, dict)
    own = node.get(_OWN)
    fields = tuple(sorted((k, _to_type(v, f"{path}.{k}")) for k, v in node.items() if k != _OWN))
    # A declared name with names below it: its own type rides along (CEL qualified names).
    params = (own,) if isinstance(own, Type) else ()
    return Type("object", params, name=path, fields=fields)


def join(a: Type, b: Type) -> Type | None:
    """The common type of two branches or elements; None when they have none."""
    if a.kind == "error" or b.kind == "error":
        return ERROR
    if a.kind == "dyn" or b.kind == "dyn":
        return DYN
    if a == b:
        return a
    if a.kind == b.kind and a.kind in ("list", "map", "optional"):
        params = [join(x, y) for x, y in zip(a.params, b.params, strict=True)]
        if any(p is None for p in params):
            return Type(a.kind, tuple(DYN for _ in params))
        return Type(a.kind, tuple(p for p in params if p is not None))
    if a.kind == "null_type" or b.kind == "null_type":
        return DYN
    return None
