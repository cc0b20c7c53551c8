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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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

    def __str__(self) -> str:
        return f"{self.min:,}" if self.min == self.max else f"{self.min:,} to {self.max:,}"


def parse_cost_limit(text: str) -> int | None:
    """A cost limit as a policy writes it (``1000000``), or None if it is not a valid one."""
    if not (text.isascii() and text.isdigit()) or len(text) > 16:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_COST_LIMIT else None


ZERO = Estimate(0, 0)

# While it walks a tree, the estimator keeps ranges as plain (min, max, assumed)
# tuples: it builds one or two for every node, and tuples are far cheaper to make
# than frozen dataclasses. The result becomes an :class:`Estimate`.
_Range = tuple[int, int, bool]
_ZERO: _Range = (0, 0, False)
_ONE: _Range = (1, 1, False)


def _fixed(n: int) -> _Range:
    return (n, n, False)


def _add(a: _Range, b: _Range) -> _Range:
    return (min(a[0] + b[0], SATURATED), min(a[1] + b[1], SATURATED), a[2] or b[2])


def _plus_one(a: _Range) -> _Range:
    """``a`` and one step: the cost of a node is its operands' and its own."""
    return (min(a[0] + 1, SATURATED), min(a[1] + 1, SATURATED), a[2])


def _times(a: _Range, b: _Range) -> _Range:
    return (min(a[0] * b[0], SATURATED), min(a[1] * b[1], SATURATED), a[2] or b[2])


def _either(a: _Range, b: _Range) -> _Range:
    """One of ``a`` and ``b``: from the smaller minimum to the larger maximum."""
    return (min(a[0], b[0]), max(a[1], b[1]), a[2] or b[2])


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the estimate knows of a value: its size (strings, bytes, lists, maps) and,
    for containers, the shape of what a macro ranges over (list elements, map keys)
    and of what indexing yields (list elements, map values)."""

    size: _Range | None = None
    item: _Shape | None = None
    value: _Shape | None = None

    def union(self, other: _Shape) -> _Shape:
        return _Shape(
            _union(self.size, other.size),
            _union_shape(self.item, other.item),
            _union_shape(self.value, other.value),
        )


def _union(a: _Range | None, b: _Range | None) -> _Range | None:
    return None if a is None or b is None else _either(a, b)


def _union_shape(a: _Shape | None, b: _Shape | None) -> _Shape | None:
    return None if a is None or b is None else a.union(b)


_SCALAR = _Shape()


def _assumed(t: Type) -> _Shape:
    """The shape of a caller-supplied value of type ``t``: sizes as assumed."""
    if t.kind in ("string", "bytes"):
        return _Shape((0, ASSUMED_LENGTH, True))
    if t.kind == "list":
        inner = _assumed(t.params[0])
        return _Shape((0, ASSUMED_ENTRIES, True), inner, inner)
    if t.kind == "map":
        return _Shape((0, ASSUMED_ENTRIES, True), _assumed(t.params[0]), _assumed(t.params[1]))
    if t.kind in ("dyn", "object", "error"):
        return _DYN
    return _SCALAR


#: A dyn value may be anything: a string (assumed length) or a container of dyn
#: values (assumed entries when a macro ranges over it; see _Estimator.comprehension).
_DYN = _Shape((0, ASSUMED_LENGTH, True))


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
        return _Shape(_fixed(len(v)))
    if isinstance(v, list):
        items = [_of_value(x) for x in v]
        item = items[0] if items else _SCALAR
        for s in items[1:]:
            item = item.union(s)
        return _Shape(_fixed(len(v)), item, item)
    if isinstance(v, dict):
        keys = [_of_value(k) for k in v]
        values = [_of_value(x) for x in v.values()]
        key = keys[0] if keys else _SCALAR
        value = values[0] if values else _SCALAR
        for s in keys[1:]:
            key = key.union(s)
        for s in values[1:]:
            value = value.union(s)
        return _Shape(_fixed(len(v)), key, value)
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

    def visit(self, node: ast.Expr) -> tuple[_Range, _Shape]:
        return _VISITS[type(node)](self, node)

    def literal(self, node: ast.Literal) -> tuple[_Range, _Shape]:
        if node.kind in ("string", "bytes"):
            return _ZERO, _Shape(_fixed(len(node.value)))
        if node.kind == "period" and node.value.unit == "working day":
            # Counting N working days looks at each day on the way: N is charged here.
            return _fixed(abs(node.value.count)), _SCALAR
        return _ZERO, _SCALAR

    def ident(self, node: ast.Ident) -> tuple[_Range, _Shape]:
        name = node.name
        for scope in reversed(self.scopes):
            if name in scope:
                return _ONE, scope[name]
        if node.id in self.constants:
            return _ONE, _of_value(self.constants[node.id])
        return _ONE, self.declared(node)

    def select(self, node: ast.Select) -> tuple[_Range, _Shape]:
        cost, shape = self.visit(node.operand)
        return _plus_one(cost), self.declared(node, _value(shape))

    def has(self, node: ast.Has) -> tuple[_Range, _Shape]:
        return _plus_one(self.visit(node.operand)[0]), _SCALAR

    def index(self, node: ast.Index) -> tuple[_Range, _Shape]:
        c1, shape = self.visit(node.operand)
        c2, _ = self.visit(node.index)
        return _plus_one(_add(c1, c2)), self.declared(node, _value(shape))

    def unary(self, node: ast.Unary) -> tuple[_Range, _Shape]:
        return _plus_one(self.visit(node.operand)[0]), _SCALAR

    def logical(self, node: ast.Logical) -> tuple[_Range, _Shape]:
        c1, _ = self.visit(node.left)
        c2, _ = self.visit(node.right)
        both = _plus_one(_add(c1, c2))
        # && and || may stop after either side (a decided value), never before one.
        return (min(c1[0], c2[0]) + 1, both[1], both[2]), _SCALAR

    def conditional(self, node: ast.Conditional) -> tuple[_Range, _Shape]:
        c, _ = self.visit(node.cond)
        ct, st = self.visit(node.then)
        co, so = self.visit(node.otherwise)
        return _plus_one(_add(c, _either(ct, co))), st.union(so)

    def list_lit(self, node: ast.ListLit) -> tuple[_Range, _Shape]:
        cost, items = self.parts(node.items)
        item = _unite(items)
        n = _fixed(len(node.items))
        return _plus_one(_add(cost, n)), _Shape(n, item, item)

    def map_lit(self, node: ast.MapLit) -> tuple[_Range, _Shape]:
        cost, keys = self.parts([k for k, _ in node.entries])
        vcost, values = self.parts([v for _, v in node.entries])
        n = _fixed(len(node.entries))
        return _plus_one(_add(_add(cost, vcost), n)), _Shape(n, _unite(keys), _unite(values))

    def declared(self, node: ast.Expr, fallback: _Shape | None = None) -> _Shape:
        """The shape of a value read from the caller (assumed sizes) or ``fallback``."""
        declared = self.inputs.get(node.id)
        if declared is not None:
            return _assumed(declared)
        if fallback is not None:
            return fallback
        return _assumed(self.types.get(node.id) or Type("dyn"))

    def parts(self, nodes: list[ast.Expr] | tuple[ast.Expr, ...]) -> tuple[_Range, list[_Shape]]:
        total, shapes = _ZERO, []
        for n in nodes:
            cost, shape = self.visit(n)
            total = _add(total, cost)
            shapes.append(shape)
        return total, shapes

    def binary(self, node: ast.Binary) -> tuple[_Range, _Shape]:
        c1, s1 = self.visit(node.left)
        c2, s2 = self.visit(node.right)
        cost = _plus_one(_add(c1, c2))
        if (
            node.op == "+"
            and self.kind(node) in ("string", "bytes", "list", "dyn")
            and s1.size is not None
            and s2.size is not None
        ):
            size = _add(s1.size, s2.size)  # a value built: it costs its size
            return _add(cost, size), _Shape(
                size, _union_shape(s1.item, s2.item), _union_shape(s1.value, s2.value)
            )
        return cost, _SCALAR

    def call(self, node: ast.Call) -> tuple[_Range, _Shape]:
        args = [node.target, *node.args] if node.target is not None else list(node.args)
        cost, shapes = self.parts(args)
        cost = _plus_one(cost)
        name = node.function
        if name == "dyn" and shapes:
            return cost, shapes[0]
        if name == "string" and shapes:
            arg = shapes[0]
            if self.kind(args[0]) in ("string", "bytes") and arg.size is not None:
                return cost, _Shape(arg.size)
            return cost, _Shape((0, _SCALAR_TEXT, arg.size is not None and arg.size[2]))
        if name == "bytes" and shapes and shapes[0].size is not None:
            size = shapes[0].size
            return cost, _Shape((size[0], min(size[1] * 4, SATURATED), size[2]))  # UTF-8
        return cost, _SCALAR

    def comprehension(self, node: ast.Comprehension) -> tuple[_Range, _Shape]:
        cost, rng = self.visit(node.range)
        count = rng.size
        if rng is _DYN or count is None:
            count = (0, ASSUMED_ENTRIES, True)
        self.scopes.append({node.var: _item(rng)})
        try:
            body = _ONE  # the iteration itself
            if node.predicate is not None:
                body = _add(body, self.visit(node.predicate)[0])
            result = _item(rng)
            if node.transform is not None:
                c, result = self.visit(node.transform)
                body = _add(body, c)
        finally:
            self.scopes.pop()
        loop = _times((0, count[1], count[2]), body)
        if node.macro in ("all", "exists", "exists_one"):
            return _add(cost, loop), _SCALAR
        built = (0, count[1], count[2])  # each element of the result
        return _plus_one(_add(_add(cost, loop), built)), _Shape(built, result, result)


#: The visit of each kind of node (a table: faster than matching on the node's class).
_VISITS: dict[type, Callable[[_Estimator, Any], tuple[_Range, _Shape]]] = {
    ast.Literal: _Estimator.literal,
    ast.Ident: _Estimator.ident,
    ast.Select: _Estimator.select,
    ast.Has: _Estimator.has,
    ast.Index: _Estimator.index,
    ast.Call: _Estimator.call,
    ast.Unary: _Estimator.unary,
    ast.Binary: _Estimator.binary,
    ast.Logical: _Estimator.logical,
    ast.Conditional: _Estimator.conditional,
    ast.ListLit: _Estimator.list_lit,
    ast.MapLit: _Estimator.map_lit,
    ast.Comprehension: _Estimator.comprehension,
}


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
    (low, high, assumed), _ = _Estimator(types, inputs, constants).visit(root)
    return Estimate(low, high, assumed)


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
