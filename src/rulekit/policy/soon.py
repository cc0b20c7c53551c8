"""``as soon as``: the instant time makes a condition true, solved from its text.

A condition of ``as soon as C -> x`` is a conjunction (``&&``/``and``) of parts
of which exactly one reads the time, in one of these shapes (``E`` and ``D``
read no time):

- ``now > E``, ``now >= E``, ``E < now``, ``E <= now``: true from ``E``;
- ``since(T) > D``, ``since(T) >= D``, ``now - T > D`` (and the mirrored
  ``D < since(T)``, ...): true from ``T + D``.

Each becomes true once, at that instant, and stays true as time goes on (it is
monotone in time), so the engine schedules the transition like a deadline due
at the instant: the scenario contract's time rules then hold (due at T, may
still act at T, fires at the first moment after, recorded at T). The other
parts read only facts: they are evaluated when the instant comes, and again
whenever the facts change (the transition is an automatic one as well).

A named condition (``condition late = ...``) in the chain counts as its own
parts: ``as soon as late and order.open`` is solved as if ``late`` were written
out, and the instant is written from the named condition's text. A named value
(``value due = ...``) that reads no time is an ``E`` or ``D`` like any other
(``now > due``: true from ``due``); one that reads the time is seen through
where it is compared (``value waited = since(request.received_at)``: ``waited >
30d`` is true from ``request.received_at + 30d``).

Anything else cannot be scheduled and is reported (RK0332) with what to write:
a condition that only stops holding as time passes (``now < E``, ``since(T) <=
D``), a time comparison under ``||``, ``!`` or a function (a named condition
under one of them included), two parts that read the time, or none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rulekit.core.source import Source, Span
from rulekit.expr import ast
from rulekit.expr.checker import CheckedExpr, Named

_GROWS = {">": ">", ">=": ">=", "<": ">", "<=": ">="}  # `E < now` is `now > E`
_SIMPLE = (ast.Ident, ast.Select, ast.Literal, ast.Call, ast.Index)


@dataclass(frozen=True)
class Solved:
    """The instant as an expression's text (it reads facts and constants, not ``now``)."""

    instant: str


@dataclass(frozen=True)
class Unsolvable:
    """Why the instant cannot be computed, where, and what to write instead."""

    message: str
    span: Span
    help: str


def reads_time(node: ast.Expr, named: Mapping[int, Named] | None = None) -> bool:
    """Whether ``node`` reads ``now`` (directly, through ``since``, or through a named
    condition: ``named`` is the checker's, node id -> the condition an identifier names)."""
    for n in ast.walk(node):
        if isinstance(n, ast.Ident) and n.name == "now":
            return True
        if isinstance(n, ast.Call) and n.function == "since" and n.target is None:
            return True
        if named is not None and n.id in named and named[n.id].checked.uses_now:
            return True
    return False


def conjuncts(node: ast.Expr) -> list[ast.Expr]:
    """The parts of a chain of ``&&``, left to right (without recursion on the input's depth)."""
    out: list[ast.Expr] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Logical) and n.op == "&&":
            stack.extend((n.right, n.left))
        else:
            out.append(n)
    return out


@dataclass(frozen=True)
class _Part:
    """A conjunct, the checked expression it belongs to (its source and names), and
    where to report it: itself, or the name of the named condition it came from."""

    node: ast.Expr
    owner: CheckedExpr
    at: Span


def _parts(checked: CheckedExpr, at: Span | None = None) -> list[_Part]:
    """The conjuncts of ``checked``, a named condition's replaced by its own conjuncts."""
    out: list[_Part] = []
    for node in conjuncts(checked.root):
        named = checked.named.get(node.id) if isinstance(node, ast.Ident) else None
        if named is None:
            out.append(_Part(node, checked, at or node.span))
        else:  # acyclic: the checker refused cycles
            out.extend(_parts(named.checked, at or node.span))
    return out


def solve(checked: CheckedExpr) -> Solved | Unsolvable:
    """The instant ``checked`` becomes true as time passes (see the module), or why not."""
    root = checked.root
    timed = [p for p in _parts(checked) if reads_time(p.node, p.owner.named)]
    if not timed:
        return Unsolvable(
            "this condition reads no time: nothing makes it true as time passes",
            root.span,
            "write `when` for a condition that only facts make true",
        )
    if len(timed) > 1:
        return Unsolvable(
            "only one part of an `as soon as` condition may read the time",
            timed[1].at,
            "keep one comparison with the time here, and test the other where this "
            "transition leads",
        )
    part = timed[0]
    shape = _shape(part.node, part.owner)
    if isinstance(shape, Unsolvable) and part.owner is not checked:
        # Reported where the condition is named: its text is shown in the message.
        written = " ".join(part.owner.source.snippet(part.node.span).split())
        return Unsolvable(
            f"{shape.message} (`{written}`, in a named condition)", part.at, shape.help
        )
    if isinstance(shape, Unsolvable):
        return shape
    return Solved(shape)


def _shape(node: ast.Expr, checked: CheckedExpr) -> str | Unsolvable:
    source, named = checked.source, checked.named
    if not isinstance(node, ast.Binary) or node.op not in _GROWS:
        return _cannot(node)
    left, right, op = node.left, node.right, node.op
    if reads_time(left, named) and reads_time(right, named):
        return _cannot(node)
    timed, other = (left, right) if reads_time(left, named) else (right, left)
    # The comparison as `timed OP other`: true when time makes `timed` large enough.
    op = op if timed is left else {">": "<", ">=": "<=", "<": ">", "<=": ">="}[op]
    if op in ("<", "<="):
        return Unsolvable(
            "this condition only stops holding as time passes: it holds at once or never",
            node.span,
            "use `when` (it is judged whenever the case enters the state or its facts change)",
        )
    # A named value that reads the time stands for its definition (from its own text).
    owner = checked
    while isinstance(timed, ast.Ident) and timed.id in owner.named:
        owner = owner.named[timed.id].checked
        timed = owner.root
    if isinstance(timed, ast.Ident) and timed.name == "now":
        return _text(other, source)
    start = _elapsed(timed, owner.named)
    if start is None:
        return _cannot(node)
    return f"{_operand(start, owner.source)} + {_operand(other, source)}"


def _elapsed(node: ast.Expr, named: Mapping[int, Named]) -> ast.Expr | None:
    """``T`` of ``since(T)`` or ``now - T`` (when ``T`` reads no time), else None."""
    if isinstance(node, ast.Call) and node.function == "since" and node.target is None:
        (arg,) = node.args
        return None if reads_time(arg, named) else arg
    if (
        isinstance(node, ast.Binary)
        and node.op == "-"
        and isinstance(node.left, ast.Ident)
        and node.left.name == "now"
        and not reads_time(node.right, named)
    ):
        return node.right
    return None


def _text(node: ast.Expr, source: Source) -> str:
    text = source.snippet(node.span)
    # on one line, unless a `//` comment inside it would then run over what follows
    return text if "//" in text else " ".join(text.split())


def _operand(node: ast.Expr, source: Source) -> str:
    text = _text(node, source)
    return text if isinstance(node, _SIMPLE) else f"({text})"


def _cannot(node: ast.Expr) -> Unsolvable:
    return Unsolvable(
        "cannot compute when this becomes true",
        node.span,
        "compare `now` with a time (now > order.received_at + 30d), or `since(t)` with a "
        "duration (since(order.received_at) > 30d); other parts may read facts only",
    )
