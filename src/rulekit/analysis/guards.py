"""Guard analysis: can conditions hold together, and can a condition hold at all.

Used by the checker's analyses (RK0707-RK0709 in :mod:`rulekit.analysis.lint`).
A condition becomes a formula in disjunctive normal form whose atoms each say
which values one *variable* may take:

- a fact or an event field (``order.amount``, ``event.decision``), ``actor``
  or ``now`` compared with a constant (``<``, ``<=``, ``>``, ``>=``, ``==``,
  ``!=``, ``in [...]``); a bool fact on its own; ``has(a.b)`` (always true for a
  fact with a default, which the engine fills in);
- ``since(t)``, ``now - t`` and ``t`` compared with ``now``: the time elapsed
  since ``t``, a variable of its own;
- a named value (``value total = ...``) compared as a fact is: a variable of its
  own (a named condition is read as its definition);

joined by ``&&``, ``||`` and ``!``. A conjunction of atoms holds exactly when
every variable can take a value its atoms allow: intervals with open and closed
bounds for numbers, money, durations and times (whole numbers for int,
microseconds for durations and times, every float including the infinities
and NaN for double, exact decimals for money), and value sets for strings,
enums and bools. Anything else (arithmetic on facts, two facts compared,
functions, macros, too many cases) is *opaque*: an answer that depends on it
is "unknown", never a guess.

"Yes" comes with a witness, an assignment checked by evaluating the
conditions themselves with the reference interpreter (whose values the
runtime's generated code must match; generating and compiling Python for a
few evaluations would cost more than the whole analysis); a witness that cannot be
built or does not check out (``t`` held both directly and through
``since(t)``) makes the answer "unknown". "No" is exact: a condition that
fails with an error (an optional fact not set) does not hold, as in the
engine, which can only make conditions hold less often.

>>> from rulekit import compile_expression
>>> decls = {"x": "int"}
>>> a = Condition(compile_expression("x > 1", decls))
>>> b = Condition(compile_expression("x < 3", decls))
>>> satisfiable([(a, True), (b, True)]).witness
(('x', 2),)
>>> satisfiable([(a, True), (Condition(compile_expression("x < 2", decls)), True)]).answer
'no'
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any, Literal

from rulekit.core.errors import EvaluationError
from rulekit.expr import ast, stdlib
from rulekit.expr.expression import Expression
from rulekit.expr.interpreter import Interpreter
from rulekit.expr.printer import to_source
from rulekit.expr.types import Type

#: Terms of a formula in disjunctive normal form beyond which the answer is "unknown".
MAX_TERMS = 256

_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The time a witness is checked at when it does not say what `now` is.
_NOW = datetime(2025, 1, 1, tzinfo=UTC)
#: Kinds whose values are whole numbers (durations and times in microseconds), with their range.
_WHOLE = {
    "int": (stdlib.INT64_MIN, stdlib.INT64_MAX),
    "duration": (-stdlib.MAX_DURATION // _US, stdlib.MAX_DURATION // _US),
    "timestamp": (
        (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _US,
        (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _US,
    ),
}
_ORDERED = frozenset({*_WHOLE, "double", "money"})
_CHOICES = frozenset({"string", "enum", "bool"})
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_ZERO: dict[str, Any] = {
    "int": 0,
    "double": 0.0,
    "money": Decimal(0),
    "duration": 0,
    "timestamp": (_NOW - _EPOCH) // _US,
}


@dataclass(frozen=True)
class Var:
    """A variable of the analysis: one value a condition reads.

    ``role``: ``value`` (a fact, event field or ``actor`` at ``path``), ``now``,
    ``since`` (the time elapsed since the time at ``path``) or ``has`` (is the
    field at ``path`` set)."""

    label: str
    kind: str
    members: tuple[str, ...] = ()
    path: tuple[str, ...] = ()
    role: str = "value"


def actor_var(actors: Sequence[str]) -> Var:
    """The sender of an event, one of ``actors`` (a policy's actors, in order)."""
    return Var("actor", "enum", tuple(actors), ("actor",))


@dataclass(frozen=True)
class Verdict:
    """``yes`` (with a checked ``witness``: label and value of each variable it sets),
    ``no``, or ``unknown`` (with what it depends on that the analysis cannot see into)."""

    answer: Literal["yes", "no", "unknown"]
    witness: tuple[tuple[str, Any], ...] = ()
    unknown: tuple[str, ...] = ()


# -- sets of values ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Interval:
    """From ``lo`` to ``hi`` (None: unbounded); whole-number intervals are kept closed."""

    lo: Any
    lo_closed: bool
    hi: Any
    hi_closed: bool


@dataclass(frozen=True)
class _Ranges:
    """Values of an ordered kind: sorted disjoint intervals, and NaN for a double."""

    parts: tuple[_Interval, ...]
    nan: bool = False


@dataclass(frozen=True)
class _Choice:
    """Values of a string, enum or bool: those in ``values``, or (``negated``) all others."""

    values: frozenset[Any]
    negated: bool = False


_Set = _Ranges | _Choice


def _universe(var: Var) -> tuple[Any, ...] | None:
    if var.kind == "bool":
        return (False, True)
    if var.kind == "enum":
        return var.members
    return None


def _normal(kind: str, iv: _Interval) -> _Interval | None:
    """``iv`` within the kind's range, closed where the kind is discrete; None when empty."""
    lo, lc, hi, hc = iv.lo, iv.lo_closed, iv.hi, iv.hi_closed
    if kind in _WHOLE:
        low, high = _WHOLE[kind]
        lo = low if lo is None else max(low, math.ceil(lo) if lc else math.floor(lo) + 1)
        hi = high if hi is None else min(high, math.floor(hi) if hc else math.ceil(hi) - 1)
        return _Interval(lo, True, hi, True) if lo <= hi else None
    if kind == "double":
        lo, lc = (-math.inf, True) if lo is None else (lo, lc)
        hi, hc = (math.inf, True) if hi is None else (hi, hc)
        if (not lc and lo == math.inf) or (not hc and hi == -math.inf):
            return None
        # Open bounds are kept (for round witnesses); the least and greatest doubles
        # inside them decide whether there is any.
        least = lo if lc else math.nextafter(lo, math.inf)
        greatest = hi if hc else math.nextafter(hi, -math.inf)
        return _Interval(lo, lc, hi, hc) if least <= greatest else None
    if lo is not None and hi is not None and (lo > hi or (lo == hi and not (lc and hc))):
        return None
    return iv


def _choice(var: Var, values: Collection[Any], negated: bool = True) -> _Choice:
    """The values of ``var`` other than ``values`` (or, ``negated=False``, just those)."""
    universe = _universe(var)
    if universe is None:
        return _Choice(frozenset(values), negated)
    return _Choice(frozenset(v for v in universe if (v in values) != negated))


def _lower(a: _Interval, b: _Interval) -> tuple[Any, bool]:
    """The higher of two lower bounds."""
    if a.lo is None or (b.lo is not None and b.lo > a.lo):
        return b.lo, b.lo_closed
    if b.lo is None or a.lo > b.lo:
        return a.lo, a.lo_closed
    return a.lo, a.lo_closed and b.lo_closed


def _upper(a: _Interval, b: _Interval) -> tuple[Any, bool]:
    """The lower of two upper bounds."""
    if a.hi is None or (b.hi is not None and b.hi < a.hi):
        return b.hi, b.hi_closed
    if b.hi is None or a.hi < b.hi:
        return a.hi, a.hi_closed
    return a.hi, a.hi_closed and b.hi_closed


def _sorted(parts: Iterable[_Interval]) -> tuple[_Interval, ...]:
    return tuple(sorted(parts, key=lambda p: (p.lo is not None, p.lo, not p.lo_closed)))


def _meet(var: Var, a: _Set, b: _Set) -> _Set:
    if isinstance(a, _Ranges) and isinstance(b, _Ranges):
        parts = []
        for x in a.parts:
            for y in b.parts:
                part = _normal(var.kind, _Interval(*_lower(x, y), *_upper(x, y)))
                if part is not None:
                    parts.append(part)
        return _Ranges(_sorted(parts), a.nan and b.nan)
    assert isinstance(a, _Choice) and isinstance(b, _Choice)
    if a.negated and b.negated:
        return _Choice(a.values | b.values, negated=True)
    if a.negated:
        a, b = b, a
    return _Choice(a.values - b.values if b.negated else a.values & b.values)


def _complement(var: Var, s: _Set) -> _Set:
    if isinstance(s, _Choice):
        return _choice(var, s.values, negated=not s.negated)
    gaps = []
    lo, lc = None, True
    for p in s.parts:
        if p.lo is not None:
            gap = _normal(var.kind, _Interval(lo, lc, p.lo, not p.lo_closed))
            if gap is not None:
                gaps.append(gap)
        if p.hi is None:
            break
        lo, lc = p.hi, not p.hi_closed
    else:
        gap = _normal(var.kind, _Interval(lo, lc, None, True))
        if gap is not None:
            gaps.append(gap)
    return _Ranges(tuple(gaps), nan=var.kind == "double" and not s.nan)


def _empty(s: _Set) -> bool:
    if isinstance(s, _Ranges):
        return not s.parts and not s.nan
    return not s.negated and not s.values


def _compared(var: Var, op: str, key: Any) -> _Set | None:
    """The values of ``var`` for which ``var op key`` holds (None: not analysed)."""
    if op == "!=":
        equal = _compared(var, "==", key)
        return None if equal is None else _complement(var, equal)
    if var.kind in _CHOICES:
        return _choice(var, {key}, negated=False) if op == "==" else None
    lo, lc, hi, hc = {
        "<": (None, True, key, False),
        "<=": (None, True, key, True),
        ">": (key, False, None, True),
        ">=": (key, True, None, True),
        "==": (key, True, key, True),
    }[op]
    part = _normal(var.kind, _Interval(lo, lc, hi, hc))
    return _Ranges((part,) if part is not None else ())


def _one_of(var: Var, keys: Iterable[Any]) -> _Set:
    if var.kind in _CHOICES:
        return _choice(var, set(keys), negated=False)
    points = (_normal(var.kind, _Interval(k, True, k, True)) for k in set(keys))
    return _Ranges(_sorted(p for p in points if p is not None))


class _NotAKey(Exception):
    """A constant the analysis cannot place among the values of a variable."""


def _key(var: Var, v: Any) -> Any:
    """A constant as a value of ``var``'s kind (whole kinds: exact fractions)."""
    kind = var.kind
    try:
        if kind == "bool" and isinstance(v, bool):
            return v
        if kind in ("string", "enum") and isinstance(v, str):
            return v
        if kind == "duration" and isinstance(v, timedelta):
            return v // _US
        if kind == "timestamp" and isinstance(v, datetime) and v.tzinfo is not None:
            return (v - _EPOCH) // _US
        if kind in ("int", "double", "money") and isinstance(v, int | float | Decimal):
            if isinstance(v, bool):
                raise _NotAKey
            if kind == "double":
                f = float(v)
                if math.isnan(f) or f != v:
                    raise _NotAKey  # NaN, or a number no double is equal to
                return f
            if isinstance(v, float) and not math.isfinite(v):
                raise _NotAKey
            return Decimal(v) if kind == "money" else Fraction(v)
    except (ArithmeticError, ValueError):
        raise _NotAKey from None
    raise _NotAKey


def _pick(var: Var, s: _Set) -> Any:
    """A value of ``s``, as the runtime would hold it: zero or a bound where possible."""
    if isinstance(s, _Choice):
        if not s.negated:
            return (
                min(s.values)
                if var.kind != "enum"
                else next(m for m in var.members if m in s.values)
            )
        fresh = ("", *(f"x{i}" for i in range(len(s.values) + 1)))
        return next(x for x in fresh if x not in s.values)
    if not s.parts:
        return math.nan
    for p in s.parts:
        for key in _candidates(var.kind, p):
            if _normal(var.kind, _Interval(*_lower(p, _at(key)), *_upper(p, _at(key)))):
                return _value(var, key)
    raise AssertionError(f"no value picked in {s}")  # pragma: no cover


def _candidates(kind: str, p: _Interval) -> list[Any]:
    """Values to try for a witness in ``p``, roundest first."""
    out = [_ZERO[kind]]
    lo = p.lo if p.lo is not None and p.lo not in (math.inf, -math.inf) else None
    hi = p.hi if p.hi is not None and p.hi not in (math.inf, -math.inf) else None
    out += [b for b, closed in ((lo, p.lo_closed), (hi, p.hi_closed)) if b is not None and closed]
    if kind in ("double", "money"):
        as_kind = float if kind == "double" else Decimal
        if lo is not None:
            out.append(as_kind(math.floor(lo) + 1))
        if hi is not None:
            out.append(as_kind(math.ceil(hi) - 1))
        if lo is not None and hi is not None:
            with localcontext() as ctx:
                ctx.prec = 100  # exact for decimals: half of their sum
                out.append((lo + hi) / 2)
    if kind == "double":  # the doubles next to open bounds
        out += [math.nextafter(p.lo, math.inf), math.nextafter(p.hi, -math.inf)]
    return out


def _at(key: Any) -> _Interval:
    return _Interval(key, True, key, True)


def _value(var: Var, key: Any) -> Any:
    if var.kind == "duration":
        return timedelta(microseconds=key)
    if var.kind == "timestamp":
        return _EPOCH + timedelta(microseconds=key)
    return key


# -- formulas ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Term:
    """A conjunction: each variable within its set, each opaque condition (text) true or false."""

    sets: Mapping[Var, _Set] = field(default_factory=dict)
    opaque: frozenset[tuple[str, bool]] = frozenset()


class _TooBig(Exception):
    pass


def _conjoin(a: _Term, b: _Term) -> _Term | None:
    sets = dict(a.sets)
    for var, s in b.sets.items():
        both = _meet(var, sets[var], s) if var in sets else s
        if _empty(both):
            return None
        sets[var] = both
    opaque = a.opaque | b.opaque
    if any((text, not value) in opaque for text, value in opaque):
        return None
    return _Term(sets, opaque)


def _and(a: list[_Term], b: list[_Term]) -> list[_Term]:
    out = []
    for x in a:
        for y in b:
            t = _conjoin(x, y)
            if t is not None:
                out.append(t)
                if len(out) > MAX_TERMS:
                    raise _TooBig
    return out


def _or(a: list[_Term], b: list[_Term]) -> list[_Term]:
    if len(a) + len(b) > MAX_TERMS:
        raise _TooBig
    return a + b


_TRUE = [_Term()]
#: Nodes that may leave an operand unevaluated or absorb its error.
_ABSORBING = (ast.Logical, ast.Conditional, ast.Comprehension)


class Condition:
    """A condition prepared for the analysis; ``None`` stands for no condition (always holds).

    ``defaulted``: the fact paths that have a default (``order.period: duration = 7d``):
    the engine fills them in, so ``has()`` of one always holds."""

    def __init__(self, expr: Expression | None, defaulted: Collection[str] = ()) -> None:
        self.expr = expr
        self.defaulted = frozenset(defaulted)
        self._terms: dict[bool, list[_Term] | None] = {}
        #: fact and field paths the condition reads, with their types (to fill in a witness)
        self.types: dict[tuple[str, ...], Type] = {}
        #: nodes whose value needs the caller's values or `now`: no error can be absorbed
        #: between them and a read of one (by `&&`, `||`, `? :` or a macro)
        self._reads: set[int] = set()
        #: node id -> a named condition it names, prepared the same way: the analysis
        #: reasons about its definition where the name stands
        self._named: dict[int, Condition] = {}
        if expr is not None:
            checked = expr.checked
            self._interp = Interpreter(checked)
            for node_id, named in checked.named.items():
                inner = Condition(Expression(named.checked, None, embedded=True), defaulted)
                self._named[node_id] = inner
                self.types.update(inner.types)
            nodes = ast.walk(checked.root)
            for node in nodes:
                path = ast.path_of(node) if node.id in checked.inputs else None
                if path is not None:
                    self.types[path] = checked.inputs[node.id]
                if isinstance(node, ast.Has) and (base := ast.path_of(node.operand)) is not None:
                    field_type = checked.types[node.operand.id].field(node.field)
                    if field_type is not None:
                        self.types[(*base, node.field)] = field_type
            for node in reversed(nodes):  # children before their parents
                if isinstance(node, ast.Ident):
                    if node.name == "now" or (
                        node.id not in checked.constants
                        and (node.id in checked.inputs or node.name not in stdlib.TYPES)
                    ):
                        self._reads.add(node.id)
                elif not isinstance(node, _ABSORBING) and any(
                    c.id in self._reads for c in ast.children(node)
                ):
                    self._reads.add(node.id)

    def terms(self, positive: bool) -> list[_Term] | None:
        """The condition (or its negation) in disjunctive normal form; None: too many terms."""
        if positive not in self._terms:
            if self.expr is None:
                self._terms[positive] = _TRUE if positive else []
            else:
                try:
                    self._terms[positive] = self._dnf(self.expr.checked.root, positive)
                except _TooBig:
                    self._terms[positive] = None
        return self._terms[positive]

    def holds(self, variables: Mapping[str, Any], now: datetime) -> bool:
        """Does the condition hold for these values (as the engine decides: an error does not)?"""
        if self.expr is None:
            return True
        try:
            return self._interp.evaluate(variables, now) is True
        except EvaluationError:
            return False

    def _dnf(self, node: ast.Expr, positive: bool) -> list[_Term]:
        if isinstance(node, ast.Logical):
            left, right = self._dnf(node.left, positive), self._dnf(node.right, positive)
            return _and(left, right) if (node.op == "&&") == positive else _or(left, right)
        if isinstance(node, ast.Unary) and node.op == "!":
            return self._dnf(node.operand, not positive)
        named = self._named.get(node.id)
        if named is not None and named.expr is not None:
            return named._dnf(named.expr.checked.root, positive)
        atom = self._atom(node)
        if atom is None:
            return [_Term(opaque=frozenset({(to_source(node), positive)}))]
        if isinstance(atom, bool):
            return _TRUE if atom == positive else []
        var, values = atom
        values = values if positive else _complement(var, values)
        return [] if _empty(values) else [_Term({var: values})]

    def _atom(self, node: ast.Expr) -> tuple[Var, _Set] | bool | None:
        """What a condition that is not `&&`, `||` or `!` says about one variable (None: opaque)."""
        found, value = self._constant(node)
        if found:
            return value if isinstance(value, bool) else None
        var = self._var(node)
        if var is not None and var.role == "has" and ".".join(var.path) in self.defaulted:
            return True  # a defaulted fact is never unset
        if var is not None:
            return (var, _choice(var, {True}, negated=False)) if var.kind == "bool" else None
        if not isinstance(node, ast.Binary) or (node.op not in _FLIP and node.op != "in"):
            return None
        left, right = self._var(node.left), self._var(node.right)
        try:
            if node.op == "in":
                found, items = self._constant(node.right)
                if left is None or not found or not isinstance(items, list):
                    return None
                return left, _one_of(left, [_key(left, v) for v in items])
            if left is not None and right is not None:
                return self._against_now(left, node.op, right)
            op = node.op if left is not None else _FLIP[node.op]
            var = left or right
            found, value = self._constant(node.right if left is not None else node.left)
            if var is None or not found:
                return None
            values = _compared(var, op, _key(var, value))
        except _NotAKey:
            return None
        return None if values is None else (var, values)

    @staticmethod
    def _against_now(left: Var, op: str, right: Var) -> tuple[Var, _Set] | None:
        """``t op now`` or ``now op t``: a bound on the time since ``t`` (``now - t``)."""
        if left.role == "now" and right.role == "value" and right.kind == "timestamp":
            since = _since(right.path)
        elif right.role == "now" and left.role == "value" and left.kind == "timestamp":
            since, op = _since(left.path), _FLIP[op]
        else:
            return None
        values = _compared(since, op, 0)
        return None if values is None else (since, values)

    def _var(self, node: ast.Expr) -> Var | None:
        assert self.expr is not None
        checked = self.expr.checked
        path = ast.path_of(node)
        if path is not None and node.id in checked.inputs:
            t = checked.inputs[node.id]
            if t.kind not in _ORDERED | _CHOICES:
                return None
            members = tuple(m for m, _ in t.fields) if t.kind == "enum" else ()
            return Var(".".join(path), t.kind, members, path)
        named = checked.named.get(node.id)
        if named is not None and isinstance(node, ast.Ident):
            # A named value: one value wherever it is named in the conditions judged
            # together (same facts, same `now`), so a variable of its own; a witness that
            # sets it cannot be checked (its definition computes it), so "yes" through it
            # is "unknown", while "no" is exact.
            t = named.checked.type
            if t.kind not in _ORDERED | _CHOICES:
                return None
            members = tuple(m for m, _ in t.fields) if t.kind == "enum" else ()
            return Var(node.name, t.kind, members, (node.name,))
        if path == ("now",) and node.id not in checked.constants:
            return Var("now", "timestamp", role="now")
        if isinstance(node, ast.Has):
            base = ast.path_of(node.operand)
            if base is not None and node.operand.id in checked.inputs:
                label = ".".join((*base, node.field))
                return Var(f"has({label})", "bool", path=(*base, node.field), role="has")
            return None
        since: tuple[ast.Expr, ...] = ()
        if isinstance(node, ast.Call) and node.function == "since" and node.target is None:
            since = node.args
        elif isinstance(node, ast.Binary) and node.op == "-":
            now = self._var(node.left)
            since = (node.right,) if now is not None and now.role == "now" else ()
        if len(since) == 1:
            of = self._var(since[0])
            if of is not None and of.role == "value" and of.kind == "timestamp":
                return _since(of.path)
        return None

    def _constant(self, node: ast.Expr) -> tuple[bool, Any]:
        """(True, value) for a sub-condition that reads nothing (literals, constants, conversions)."""
        if node.id in self._reads:  # its evaluation without values would fail: save the try
            return False, None
        if any(isinstance(n, ast.Comprehension) for n in ast.walk(node)):
            return False, None
        try:
            return True, self._interp.constant(node)
        except EvaluationError:
            return False, None


def _since(path: tuple[str, ...]) -> Var:
    return Var(f"since({'.'.join(path)})", "duration", path=path, role="since")


# -- deciding ---------------------------------------------------------------------------


def satisfiable(
    parts: Sequence[tuple[Condition, bool]], given: Mapping[Var, Collection[Any]] | None = None
) -> Verdict:
    """Can every condition of ``parts`` hold (``True``) or not hold (``False``) at once,
    with each variable of ``given`` one of its values?"""
    try:
        held = {var: _choice(var, values, negated=False) for var, values in (given or {}).items()}
        terms = [] if any(_empty(s) for s in held.values()) else [_Term(held)]
        for condition, positive in parts:
            these = condition.terms(positive)
            if these is None:
                return Verdict("unknown", unknown=("more cases than the analysis follows",))
            terms = _and(terms, these)
            if not terms:
                return Verdict("no")
    except _TooBig:
        return Verdict("unknown", unknown=("more cases than the analysis follows",))
    for term in terms:
        if term.opaque:
            continue
        witness = {var: _pick(var, s) for var, s in term.sets.items()}
        if _confirmed(parts, witness):
            return Verdict("yes", tuple((var.label, v) for var, v in witness.items()))
    opaque = sorted({text for term in terms for text, _ in term.opaque})
    return Verdict("unknown", unknown=tuple(opaque) or ("a case the analysis could not confirm",))


def _confirmed(parts: Sequence[tuple[Condition, bool]], witness: Mapping[Var, Any]) -> bool:
    """Do the conditions evaluate as ``parts`` want on the values of ``witness``?"""
    now = next((v for var, v in witness.items() if var.role == "now"), _NOW)
    values: dict[tuple[str, ...], Any] = {}
    unset: set[tuple[str, ...]] = set()
    types = {path: t for condition, _ in parts for path, t in condition.types.items()}
    try:
        for var, v in sorted(witness.items(), key=lambda item: item[0].role != "value"):
            if var.role == "value":
                values[var.path] = v
            elif var.role == "since":
                values.setdefault(var.path, now - v)
            elif var.role == "has" and v:
                if var.path not in values and var.path in types:
                    values[var.path] = _default(types[var.path], now)
            elif var.role == "has":
                unset.add(var.path)
    except OverflowError:
        return False
    for path, t in types.items():
        if path not in values and path not in unset:
            default = _default(t, now)
            if default is not None:
                values[path] = default
    variables: dict[str, Any] = {}
    for path in unset:
        _put(variables, path[:-1], None)
    for path, v in values.items():
        _put(variables, path, v)
    return all(condition.holds(variables, now) == positive for condition, positive in parts)


def _default(t: Type, now: datetime) -> Any:
    """Some value of type ``t`` (None for kinds the analysis leaves alone)."""
    if t.kind == "enum":
        return t.fields[0][0] if t.fields else None
    if t.kind == "timestamp":
        return now
    zero = {"int": 0, "double": 0.0, "money": Decimal(0), "duration": timedelta(0)}
    return zero.get(t.kind, {"string": "", "bool": False}.get(t.kind))


def _put(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``path`` to ``value`` (None: only make sure the objects on the way exist)."""
    for part in path[:-1] if value is not None else path:
        child = tree.get(part)
        if not isinstance(child, dict):
            child = tree[part] = {}
        tree = child
    if value is not None:
        tree[path[-1]] = value
