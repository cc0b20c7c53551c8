"""What an expression may cost to evaluate: a static estimate and a run-time budget.

Modelled on cel-go (``checker/cost.go``, ``interpreter/runtimecost.go``). The
unit is one step of work: evaluating a node, one iteration of a macro, or one
element (character, byte, list or map entry) of a value the expression builds.

The **static estimate** (:func:`estimate`) walks the checked tree once and
gives a ``(min, max)`` range. Every node costs 1 (a literal 0); a macro costs
its range, plus, for each element of the range, one iteration and its body
(nested macros multiply); a value built by ``+`` on strings, bytes or lists, a
list or map literal, or a ``map``/``filter`` result costs its size. Sizes are
known from literals, add up under concatenation, and are bounded by the range
for ``map``/``filter`` results. A caller-supplied list or map is assumed to
hold at most :data:`ASSUMED_ENTRIES` entries and a string or bytes at most
:data:`ASSUMED_LENGTH` characters: an estimate that relies on such an
assumption says so (``assumed``).

The **run-time budget** (:class:`Budget`) charges what the estimate counts
beyond node visits: macro iterations and the sizes of values built. It is
charged before a value is built, so an expression that would build a huge
value stops first. The generated code counts only when the estimate cannot
vouch for the expression (its maximum is over the limit, or it relies on an
assumed input size), as cel-go does; everything else runs uncounted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rulekit.expr import ast
from rulekit.expr.types import Type

#: The default limit of an expression's estimated cost, and of its run-time budget.
DEFAULT_COST_LIMIT = 1_000_000
#: The largest limit a policy or caller may set.
MAX_COST_LIMIT = 10**15
#: Entries assumed of a caller-supplied list or map (the run-time budget counts the real ones).
ASSUMED_ENTRIES = 10
#: Characters (or bytes) assumed of a caller-supplied string (or bytes).
ASSUMED_LENGTH = 100
#: Estimates saturate here (cel-go saturates at the largest uint64).
SATURATED = 2**63 - 1
#: The longest text ``string(x)`` gives for a value that is not a string or bytes.
_SCALAR_TEXT = 64


@dataclass(frozen=True, slots=True)
class Estimate:
    """A range of costs (or sizes); ``assumed``: it relies on an assumed input size."""

    min: int
    max: int
    assumed: bool = False

    def __add__(self, other: Estimate) -> Estimate:
        return Estimate(
            _sat(self.min + other.min), _sat(self.max + other.max), self.assumed or other.assumed
        )

    def times(self, other: Estimate) -> Estimate:
        return Estimate(
            _sat(self.min * other.min), _sat(self.max * other.max), self.assumed or other.assumed
        )

    def union(self, other: Estimate) -> Estimate:
        return Estimate(
            min(self.min, other.min), max(self.max, other.max), self.assumed or other.assumed
        )

    def __str__(self) -> str:
        return f"{self.min:,}" if self.min == self.max else f"{self.min:,} to {self.max:,}"


def parse_cost_limit(text: str) -> int | None:
    """A cost limit as a policy writes it (``1000000``), or None if it is not a valid one."""
    if not (text.isascii() and text.isdigit()) or len(text) > 16:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_COST_LIMIT else None


def _sat(n: int) -> int:
    return min(n, SATURATED)


def fixed(n: int) -> Estimate:
    return Estimate(n, n)


ZERO = fixed(0)
ONE = fixed(1)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the estimate knows of a value: its size (strings, bytes, lists, maps) and,
    for containers, the shape of what a macro ranges over (list elements, map keys)
    and of what indexing yields (list elements, map values)."""

    size: Estimate | None = None
    item: _Shape | None = None
    value: _Shape | None = None

    def union(self, other: _Shape) -> _Shape:
        return _Shape(
            _union(self.size, other.size),
            _union_shape(self.item, other.item),
            _union_shape(self.value, other.value),
        )


def _union(a: Estimate | None, b: Estimate | None) -> Estimate | None:
    return None if a is None or b is None else a.union(b)


def _union_shape(a: _Shape | None, b: _Shape | None) -> _Shape | None:
    return None if a is None or b is None else a.union(b)


_SCALAR = _Shape()


def _assumed(t: Type) -> _Shape:
    """The shape of a caller-supplied value of type ``t``: sizes as assumed."""
    if t.kind in ("string", "bytes"):
        return _Shape(Estimate(0, ASSUMED_LENGTH, True))
    if t.kind == "list":
        inner = _assumed(t.params[0])
        return _Shape(Estimate(0, ASSUMED_ENTRIES, True), inner, inner)
    if t.kind == "map":
        return _Shape(
            Estimate(0, ASSUMED_ENTRIES, True), _assumed(t.params[0]), _assumed(t.params[1])
        )
    if t.kind in ("dyn", "object", "error"):
        return _DYN
    return _SCALAR


#: A dyn value may be anything: a string (assumed length) or a container of dyn
#: values (assumed entries when a macro ranges over it; see _Estimator.comprehension).
_DYN = _Shape(Estimate(0, ASSUMED_LENGTH, True))


def _item(shape: _Shape) -> _Shape:
    if shape.item is not None:
        return shape.item
    return _DYN if shape.size is not None else _SCALAR


def _value(shape: _Shape) -> _Shape:
    if shape.value is not None:
        return shape.value
    return _DYN if shape.size is not None else _SCALAR


def _of_value(v: object) -> _Shape:
    """The shape of a known value (a policy constant)."""
    if isinstance(v, str | bytes):
        return _Shape(fixed(len(v)))
    if isinstance(v, list):
        items = [_of_value(x) for x in v]
        item = items[0] if items else _SCALAR
        for s in items[1:]:
            item = item.union(s)
        return _Shape(fixed(len(v)), item, item)
    if isinstance(v, dict):
        keys = [_of_value(k) for k in v]
        values = [_of_value(x) for x in v.values()]
        key = keys[0] if keys else _SCALAR
        value = values[0] if values else _SCALAR
        for s in keys[1:]:
            key = key.union(s)
        for s in values[1:]:
            value = value.union(s)
        return _Shape(fixed(len(v)), key, value)
    return _SCALAR


class _Estimator:
    def __init__(
        self,
        types: Mapping[int, Type],
        inputs: Mapping[int, Type],
        constants: Mapping[int, object],
    ) -> None:
        self.types = types
        self.inputs = inputs
        self.constants = constants
        self.scopes: list[dict[str, _Shape]] = []

    def kind(self, node: ast.Expr) -> str:
        t = self.types.get(node.id)
        return t.kind if t is not None else "dyn"

    def visit(self, node: ast.Expr) -> tuple[Estimate, _Shape]:
        match node:
            case ast.Literal(kind="string" | "bytes", value=v):
                return ZERO, _Shape(fixed(len(v)))
            case ast.Literal():
                return ZERO, _SCALAR
            case ast.Ident(name=name):
                for scope in reversed(self.scopes):
                    if name in scope:
                        return ONE, scope[name]
                if node.id in self.constants:
                    return ONE, _of_value(self.constants[node.id])
                return ONE, self.declared(node)
            case ast.Select() | ast.Has():
                cost, shape = self.visit(node.operand)
                if isinstance(node, ast.Has):
                    return cost + ONE, _SCALAR
                return cost + ONE, self.declared(node, _value(shape))
            case ast.Index():
                c1, shape = self.visit(node.operand)
                c2, _ = self.visit(node.index)
                return c1 + c2 + ONE, self.declared(node, _value(shape))
            case ast.Unary():
                cost, _ = self.visit(node.operand)
                return cost + ONE, _SCALAR
            case ast.Binary():
                return self.binary(node)
            case ast.Logical():
                c1, _ = self.visit(node.left)
                c2, _ = self.visit(node.right)
                both = c1 + c2 + ONE
                # && and || may stop after either side (a decided value), never before one.
                return Estimate(min(c1.min, c2.min) + 1, both.max, both.assumed), _SCALAR
            case ast.Conditional():
                c, _ = self.visit(node.cond)
                ct, st = self.visit(node.then)
                co, so = self.visit(node.otherwise)
                return c + ct.union(co) + ONE, st.union(so)
            case ast.ListLit():
                cost, items = self.parts(node.items)
                item = _unite(items)
                n = fixed(len(node.items))
                return cost + n + ONE, _Shape(n, item, item)
            case ast.MapLit():
                cost, keys = self.parts([k for k, _ in node.entries])
                vcost, values = self.parts([v for _, v in node.entries])
                n = fixed(len(node.entries))
                return cost + vcost + n + ONE, _Shape(n, _unite(keys), _unite(values))
            case ast.Call():
                return self.call(node)
            case ast.Comprehension():
                return self.comprehension(node)
        raise TypeError(node)  # pragma: no cover

    def declared(self, node: ast.Expr, fallback: _Shape | None = None) -> _Shape:
        """The shape of a value read from the caller (assumed sizes) or ``fallback``."""
        declared = self.inputs.get(node.id)
        if declared is not None:
            return _assumed(declared)
        if fallback is not None:
            return fallback
        return _assumed(self.types.get(node.id) or Type("dyn"))

    def parts(self, nodes: list[ast.Expr] | tuple[ast.Expr, ...]) -> tuple[Estimate, list[_Shape]]:
        total, shapes = ZERO, []
        for n in nodes:
            cost, shape = self.visit(n)
            total += cost
            shapes.append(shape)
        return total, shapes

    def binary(self, node: ast.Binary) -> tuple[Estimate, _Shape]:
        c1, s1 = self.visit(node.left)
        c2, s2 = self.visit(node.right)
        cost = c1 + c2 + ONE
        if (
            node.op == "+"
            and self.kind(node) in ("string", "bytes", "list", "dyn")
            and s1.size is not None
            and s2.size is not None
        ):
            size = s1.size + s2.size  # a value built: it costs its size
            return cost + size, _Shape(
                size, _union_shape(s1.item, s2.item), _union_shape(s1.value, s2.value)
            )
        return cost, _SCALAR

    def call(self, node: ast.Call) -> tuple[Estimate, _Shape]:
        args = [node.target, *node.args] if node.target is not None else list(node.args)
        cost, shapes = self.parts(args)
        cost += ONE
        name = node.function
        if name == "dyn" and shapes:
            return cost, shapes[0]
        if name == "string" and shapes:
            arg = shapes[0]
            if self.kind(args[0]) in ("string", "bytes") and arg.size is not None:
                return cost, _Shape(arg.size)
            return cost, _Shape(
                Estimate(0, _SCALAR_TEXT, arg.size is not None and arg.size.assumed)
            )
        if name == "bytes" and shapes and shapes[0].size is not None:
            size = shapes[0].size
            return cost, _Shape(Estimate(size.min, _sat(size.max * 4), size.assumed))  # UTF-8
        return cost, _SCALAR

    def comprehension(self, node: ast.Comprehension) -> tuple[Estimate, _Shape]:
        cost, rng = self.visit(node.range)
        count = rng.size
        if rng is _DYN or count is None:
            count = Estimate(0, ASSUMED_ENTRIES, True)
        self.scopes.append({node.var: _item(rng)})
        try:
            body = ONE  # the iteration itself
            if node.predicate is not None:
                body += self.visit(node.predicate)[0]
            result = _item(rng)
            if node.transform is not None:
                c, result = self.visit(node.transform)
                body += c
        finally:
            self.scopes.pop()
        loop = Estimate(0, count.max, count.assumed).times(body)
        if node.macro in ("all", "exists", "exists_one"):
            return cost + loop, _SCALAR
        built = Estimate(0, count.max, count.assumed)  # each element of the result
        return cost + loop + built + ONE, _Shape(built, result, result)


def _unite(shapes: list[_Shape]) -> _Shape | None:
    if not shapes:
        return None
    out = shapes[0]
    for s in shapes[1:]:
        out = out.union(s)
    return out


def estimate(
    root: ast.Expr,
    types: Mapping[int, Type],
    inputs: Mapping[int, Type],
    constants: Mapping[int, object],
) -> Estimate:
    """The cost range of evaluating ``root``, from what the checker learned of it."""
    cost, _ = _Estimator(types, inputs, constants).visit(root)
    return cost


# -- at run time ------------------------------------------------------------------------


class CostLimitExceeded(Exception):
    """An evaluation went over its budget. Deliberately not an error value: ``&&``/``||``
    never absorb it, and the generated code never hands it to the interpreter."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"evaluation cost limit {limit} exceeded")
        self.limit = limit


class Budget:
    """One evaluation's budget: what is left of the limit."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def charge(self, n: int) -> None:
        """Spend ``n``; raises :class:`CostLimitExceeded` past the limit. Returns None, so
        generated code can write ``(budget.charge(n) or value)``."""
        self.left -= n
        if self.left < 0:
            raise CostLimitExceeded(self.limit)

    def concat(self, a: object, b: object) -> None:
        """Charge for ``a + b`` before it is built, when it builds a sized value."""
        if isinstance(a, str | bytes | list) and isinstance(b, str | bytes | list):
            self.charge(len(a) + len(b))
