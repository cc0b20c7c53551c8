"""The reference evaluator: walks the checked tree with CEL's full semantics.

It is the slow path. Compiled code (:mod:`rulekit.expr.codegen`) handles the
common case; whenever compiled code cannot finish (an error, or an error that
CEL's ``&&``/``||`` might absorb), evaluation is re-done here, which either
finds the absorbed result or raises an :class:`EvaluationError` naming the
failing sub-expression and the values it saw. It also produces ``explain``
traces. Expressions are pure, so re-evaluating is safe.

Every evaluation here counts its cost against the expression's budget
(:class:`rulekit.expr.cost.Budget`): macro iterations and the sizes of values
built. Going over it, or running out of memory or stack, stops the evaluation
with an :class:`EvaluationError` that no ``&&``/``||`` absorbs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rulekit.core.errors import EvaluationError
from rulekit.expr import ast, stdlib
from rulekit.expr.checker import CheckedExpr
from rulekit.expr.cost import Budget, CostLimitExceeded
from rulekit.expr.stdlib import CelError

_MAX_SHOWN = 80


class _Fail(Exception):
    """An error value: the node that failed and why (absorbable by && / ||)."""

    def __init__(self, node: ast.Expr, message: str, values: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.message = message
        #: what the failing node's operands were, taken when it failed (a macro
        #: goes on to other elements and would overwrite them)
        self.values = values or {}


@dataclass(frozen=True)
class Clause:
    """One clause of a condition, as explain shows it."""

    text: str
    value: Any
    error: str | None
    #: (expression as written, value) of each caller-supplied value the clause read.
    reads: tuple[tuple[str, Any], ...]
    line: int
    column: int
    #: a clause that names a named condition: the clauses of its definition; that names
    #: named values: each value, with the clauses of its definition
    parts: tuple[Clause, ...] = ()
    #: a clause that is a binary operation (a comparison): (operand as written, value) of
    #: each operand evaluated, what it compared (``since(order.paid_at) <= FAST_REFUND_AGE``:
    #: 2h and 6h), for readers who want "2h <= 6h" rather than the facts behind it
    operands: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        outcome = f"error: {self.error}" if self.error is not None else stdlib.render(self.value)
        reads = ", ".join(f"{k} = {_shown(v)}" for k, v in self.reads)
        line = f"{self.text} -> {outcome}" + (f"   ({reads})" if reads else "")
        return "\n".join([line, *(f"  {p}".replace("\n", "\n  ") for p in self.parts)])


@dataclass(frozen=True)
class Explanation:
    """The value of an expression with a trace of each clause."""

    value: Any
    error: EvaluationError | None
    clauses: tuple[Clause, ...]

    def __str__(self) -> str:
        head = f"error: {self.error}" if self.error is not None else stdlib.render(self.value)
        return "\n".join(
            [f"result: {head}", *(f"  {c}".replace("\n", "\n  ") for c in self.clauses)]
        )


def _shown(v: Any) -> str:
    text = stdlib.render(v)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


class Interpreter:
    def __init__(self, checked: CheckedExpr) -> None:
        self.checked = checked
        self.text = checked.source.snippet(checked.root.span)

    def snippet(self, node: ast.Expr) -> str:
        return self.checked.source.snippet(node.span)

    # -- entry points ---------------------------------------------------------------
    def evaluate(self, variables: Mapping[str, Any], now: datetime | None) -> Any:
        run = _Run(self, variables, now)
        try:
            return run.ev(run.root)
        except _Fail as f:
            raise self.error(f) from None
        except STOPPED as e:
            raise self.stopped(e) from None

    def stopped(self, e: BaseException) -> EvaluationError:
        """The error of an evaluation stopped short: over its budget, out of memory or stack."""
        if isinstance(e, CostLimitExceeded):
            message = f"{e}: the expression built or iterated over too much"
        elif isinstance(e, MemoryError):
            message = "evaluation ran out of memory"
        else:
            message = "evaluation nested too deeply"
        return EvaluationError(message, source=self.text)

    def constant(self, node: ast.Expr) -> Any:
        """The value of a sub-tree that reads no variables and not ``now`` (a folded constant)."""
        run = _Run(self, {}, None)
        try:
            return run.ev(node)
        except _Fail as f:
            raise self.error(f) from None

    def explain(self, variables: Mapping[str, Any], now: datetime | None) -> Explanation:
        run = _Run(self, variables, now)
        error: EvaluationError | None = None
        value: Any = None
        try:
            value = run.ev(run.root)
        except _Fail as f:
            error = self.error(f)
        except STOPPED as e:
            error = self.stopped(e)
        return Explanation(value, error, self.clauses(run))

    def clauses(self, run: _Run) -> tuple[Clause, ...]:
        """The clauses of ``run``'s expression; a clause that names named conditions or
        values has their own clauses under it (and a named value's value among its reads)."""
        out = []
        for node in _clauses(run.root):
            pos = self.checked.source.position(node.span.start)
            reads = self.reads(node)
            out.append(
                Clause(
                    text=self.snippet(node),
                    value=run.values.get(node.id),
                    error=run.failures.get(node.id),
                    reads=tuple(
                        (self.snippet(r), run.values[r.id])
                        for r in reads
                        if r.id in run.values and not (r is node and r.id in run.named)
                    ),
                    line=pos.line,
                    column=pos.column,
                    parts=self.named_parts(run, node, reads),
                    operands=tuple(
                        (self.snippet(c), run.values[c.id])
                        for c in (node.left, node.right)
                        if c.id in run.values
                    )
                    if isinstance(node, ast.Binary)
                    else (),
                )
            )
        return tuple(out)

    def named_parts(self, run: _Run, node: ast.Expr, reads: list[ast.Expr]) -> tuple[Clause, ...]:
        """The clauses of the named conditions and values ``node`` names: its own name's
        definition, or under each name it reads, that name's."""
        out: list[Clause] = []
        for r in reads:
            named = run.named.get(r.id)
            if named is None:
                continue
            if r is node:
                return named.interp.clauses(named)
            pos = self.checked.source.position(r.span.start)
            out.append(
                Clause(
                    text=self.snippet(r),
                    value=run.values.get(r.id),
                    error=run.failures.get(r.id),
                    reads=(),
                    line=pos.line,
                    column=pos.column,
                    parts=named.interp.clauses(named),
                )
            )
        return tuple(out)

    def reads(self, node: ast.Expr) -> list[ast.Expr]:
        """The outermost caller-supplied reads (and ``now``, and named conditions and values)
        inside ``node``."""
        out: list[ast.Expr] = []
        stack = [node]
        while stack:
            n = stack.pop()
            if (
                n.id in self.checked.inputs
                or n.id in self.checked.named
                or (isinstance(n, ast.Ident) and n.name == "now")
            ):
                out.append(n)
                continue
            stack.extend(reversed(ast.children(n)))
        return out

    def error(self, f: _Fail) -> EvaluationError:
        values = f.values
        return EvaluationError(
            f.message, expression=self.snippet(f.node), values=values, source=self.text
        )


def _clauses(root: ast.Expr) -> list[ast.Expr]:
    if isinstance(root, ast.Logical):
        return [*_clauses(root.left), *_clauses(root.right)]
    return [root]


class _Run:
    """One evaluation: the caller's values, scopes, and what each node produced."""

    def __init__(
        self, interp: Interpreter, variables: Mapping[str, Any], now: datetime | None
    ) -> None:
        self.interp = interp
        self.checked = interp.checked
        self.root = interp.checked.root
        self.variables = variables
        #: the caller gave a value under a dotted name (CEL's qualified names)
        self.dotted = any("." in k for k in variables or ())
        self.now = now
        self.scopes: list[dict[str, Any]] = []
        self.values: dict[int, Any] = {}
        self.failures: dict[int, str] = {}
        self.budget = Budget(interp.checked.cost_limit)
        #: node id -> the evaluation of the named condition or value it names
        self.named: dict[int, _Run] = {}

    def ev(self, node: ast.Expr) -> Any:
        try:
            v = self._ev(node)
            declared = self.checked.inputs.get(node.id)
            if declared is not None:
                check = stdlib.INPUT_CHECKS.get(declared.kind)
                if check is not None:
                    v = check(v)
        except CelError as e:
            self.failures[node.id] = str(e)
            raise _Fail(node, str(e), self.operands(node)) from None
        except (ArithmeticError, ValueError, OverflowError) as e:
            # Python refusing an operation (a decimal overflow, a value too large)
            # is an evaluation error of that sub-expression, never a traceback.
            message = f"arithmetic error: {e or type(e).__name__}"
            self.failures[node.id] = message
            raise _Fail(node, message, self.operands(node)) from None
        except _Fail as f:
            self.failures.setdefault(node.id, f.message)
            raise
        self.values[node.id] = v
        return v

    def operands(self, node: ast.Expr) -> dict[str, str]:
        shown = {}
        for child in ast.children(node):
            if child.id in self.values and not isinstance(child, ast.Literal):
                shown[self.interp.snippet(child)] = _shown(self.values[child.id])
        return shown

    def get_now(self) -> datetime:
        if self.now is None:
            raise CelError("`now` is not given: the caller must supply the evaluation time")
        if not isinstance(self.now, datetime) or self.now.tzinfo is None:
            raise CelError("`now` must be a timezone-aware datetime")
        return stdlib.input_timestamp(self.now)

    def _ev(self, node: ast.Expr) -> Any:
        match node:
            case ast.Literal():
                lit = self.checked.money_literals.get(node.id)
                if lit is None and node.kind == "period":
                    return self.checked.periods[node.id]
                return lit if lit is not None else node.value
            case ast.Ident(name=name):
                for scope in reversed(self.scopes):
                    if name in scope:
                        return scope[name]
                if name == "now":
                    return self.get_now()
                if node.id in self.checked.constants:
                    return self.checked.constants[node.id]
                if node.id in self.checked.named:
                    return self.evaluate_named(node)
                if node.id not in self.checked.inputs and name in stdlib.TYPES:
                    return stdlib.TYPES[name]
                try:
                    return self.variables[name]
                except KeyError:
                    raise CelError(f"no value given for `{name}`") from None
            case ast.Select():
                if node.id in self.checked.constants:  # google.protobuf.Timestamp
                    return self.checked.constants[node.id]
                qualified = self.qualified(node)
                if qualified is not None:
                    return self.variables[qualified]
                return stdlib.select(self.ev(node.operand), node.field)
            case ast.Has():
                return stdlib.has_field(self.ev(node.operand), node.field)
            case ast.Index():
                return stdlib.index(self.ev(node.operand), self.ev(node.index))
            case ast.Unary():
                v = self.ev(node.operand)
                return stdlib.logical_not(v) if node.op == "!" else stdlib.neg(v)
            case ast.Binary():
                a, b = self.ev(node.left), self.ev(node.right)
                if node.op == "+":
                    self.budget.concat(a, b)
                return (
                    _BINARY[node.op](a, b) if node.op in _BINARY else stdlib.relation(node.op, a, b)
                )
            case ast.Logical():
                return self.logical(node.op, [node.left, node.right])
            case ast.Conditional():
                c = self.ev(node.cond)
                if c is True:
                    return self.ev(node.then)
                if c is False:
                    return self.ev(node.otherwise)
                raise CelError(f"the condition of `? :` must be a bool, got {stdlib.kind(c)}")
            case ast.ListLit():
                self.budget.charge(len(node.items))
                return [self.ev(i) for i in node.items]
            case ast.MapLit():
                self.budget.charge(len(node.entries))
                return stdlib.make_map([(self.ev(k), self.ev(v)) for k, v in node.entries])
            case ast.Call():
                return self.call(node)
            case ast.Comprehension():
                return self.comprehension(node)
        raise TypeError(node)  # pragma: no cover

    def qualified(self, node: ast.Select) -> str | None:
        """The variable ``node`` reads as a whole when it spells a qualified name given as
        one (``{"a.b.c": v}`` for `a.b.c`), CEL's name resolution: only when its first name
        is not a variable itself (a name given as it is wins, as on the fast path); the
        longest prefix is found as each selection in the chain asks for its own."""
        path = ast.path_of(node) if self.dotted else None
        if path is None:
            return None
        root: ast.Expr = node
        while isinstance(root, ast.Select):
            root = root.operand
        name = path[0]
        if (
            name in self.variables
            or any(name in scope for scope in self.scopes)
            or name == "now"
            or root.id in self.checked.constants
        ):
            return None
        name = ".".join(path)
        return name if name in self.variables else None

    def evaluate_named(self, node: ast.Ident) -> Any:
        """A named condition's (or value's) value, from its own tree, on the same values
        and budget; its error is this name's (an error value that ``&&``/``||`` may
        absorb)."""
        run = _Run(Interpreter(self.checked.named[node.id].checked), self.variables, self.now)
        run.budget = self.budget
        self.named[node.id] = run
        try:
            return run.ev(run.root)
        except _Fail as f:
            raise CelError(f"`{node.name}`: {f.message}") from None

    def logical(self, op: str, operands: list[ast.Expr], values: list[Any] | None = None) -> bool:
        """``&&``/``||`` over operands (or precomputed values), commutative, absorbing errors."""
        stop = op == "||"  # the value that decides: true for ||, false for &&
        first_error: _Fail | CelError | None = None
        results = values if values is not None else []
        if values is None:
            for operand in operands:
                try:
                    results.append(self.ev(operand))
                except _Fail as f:
                    results.append(f)
        for r in results:
            if r is stop:
                return bool(stop)
            if isinstance(r, _Fail | CelError):
                first_error = first_error or r
            elif r is not (not stop):
                first_error = first_error or CelError(
                    f"no such overload: {op} on {stdlib.kind(r)} (it needs bools)"
                )
        if first_error is not None:
            if isinstance(first_error, _Fail):
                raise first_error
            raise first_error
        return not stop

    def call(self, node: ast.Call) -> Any:
        name = node.function
        args = [self.ev(a) for a in ((node.target, *node.args) if node.target else node.args)]
        if name == "since":
            return stdlib.since(self.get_now(), args[0])
        if name in stdlib.ACCESSORS:
            return stdlib.accessor(name, *args)
        if name in stdlib.TIME_FUNCTIONS:
            return stdlib.TIME_FUNCTIONS[name](self.checked.time_rules, *args)
        fn: Callable[..., Any] = _FUNCTIONS[name]
        return fn(*args)

    def comprehension(self, node: ast.Comprehension) -> Any:
        rng = self.ev(node.range)
        k = stdlib.kind(rng)
        if k not in ("list", "map"):
            raise CelError(f"{node.macro}() needs a list or map, got {k}")
        items = list(rng)
        macro = node.macro
        # An iteration costs 1, and 1 more for the element a map() or filter() may add.
        step = 2 if macro in ("map", "filter") else 1
        scope: dict[str, Any] = {}
        self.scopes.append(scope)
        try:
            if macro in ("all", "exists"):
                assert node.predicate is not None
                results: list[Any] = []
                decide = macro == "exists"
                for item in items:
                    self.budget.charge(step)
                    scope[node.var] = item
                    try:
                        r = self.ev(node.predicate)
                    except _Fail as f:
                        results.append(f)
                        continue
                    results.append(r)
                    if r is decide:
                        break
                return self.logical("||" if decide else "&&", [], results)
            if macro == "exists_one":
                assert node.predicate is not None
                count = 0
                for item in items:
                    self.budget.charge(step)
                    scope[node.var] = item
                    count += stdlib.check_bool(self.ev(node.predicate))
                return count == 1
            out = []
            for item in items:
                self.budget.charge(step)
                scope[node.var] = item
                if node.predicate is not None and not stdlib.check_bool(self.ev(node.predicate)):
                    continue
                out.append(item if macro == "filter" else self.ev(node.transform))  # type: ignore[arg-type]
            return out
        finally:
            self.scopes.pop()


#: What stops an evaluation outright (never an error value, never retried).
STOPPED = (CostLimitExceeded, MemoryError, RecursionError)

_BINARY = {"+": stdlib.add, "-": stdlib.sub, "*": stdlib.mul, "/": stdlib.div, "%": stdlib.mod}


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "size": stdlib.size,
    "contains": stdlib.contains,
    "startsWith": stdlib.starts_with,
    "endsWith": stdlib.ends_with,
    "matches": stdlib.matches,
    "int": stdlib.to_int,
    "double": stdlib.to_double,
    "string": stdlib.to_string,
    "bytes": stdlib.to_bytes,
    "bool": stdlib.to_bool,
    "money": stdlib.to_money,
    "timestamp": stdlib.to_timestamp,
    "duration": stdlib.to_duration,
    "type": stdlib.type_of,
    "dyn": stdlib.dyn,
    "date": stdlib.to_date,
    "daysBetween": stdlib.days_between,
    **stdlib.OPTIONAL_FUNCTIONS,
}
