"""Compiler: a checked expression -> a Python function (the fast path).

The generated function takes the caller's variables as they are (plain dicts
and Python values) and computes the expression with Python operators where
the static types make Python's meaning identical to CEL's, calling
:mod:`rulekit.expr.stdlib` where they do not.

Its contract: **when it returns, the value is exactly CEL's**. When it
cannot be sure (an error, a value of an undeclared type, an error that
CEL's commutative ``&&``/``||`` might absorb), it raises, and the function
falls back to the reference interpreter, which returns the absorbed result or
raises a precise :class:`EvaluationError`. Differential tests hold both paths
to the same answers.

Its invariant, which keeps a compiled artifact data and never code: **the
generated source never contains a string it did not produce itself.** Names
of comprehension variables become generated names (``_v0``, ``_v1``, ... by
nesting depth); operators, macros and functions are looked up in the tables
below (a missing entry is a bug and raises, it never falls through to the
text of a node); names, fields and literals enter only through ``repr`` of
their exact Python type or as constants in the namespace. The checker
refuses any tree the parser could not have produced before it gets here.

Cost: when the static estimate vouches for the expression (its maximum is
within the limit and relies on no assumed input size), the code counts
nothing. Otherwise it charges a per-evaluation :class:`~rulekit.expr.cost.Budget`
exactly as the interpreter does (macro iterations, sizes of values built). An
evaluation stopped for cost, memory or stack depth raises its
:class:`EvaluationError` at once: it is never handed to the interpreter to be
run a second time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from rulekit.expr import ast, stdlib
from rulekit.expr.checker import CheckedExpr
from rulekit.expr.cost import Budget
from rulekit.expr.interpreter import STOPPED
from rulekit.expr.types import NUMERIC, Type

_ORDERED_SAME = frozenset({"string", "bytes", "bool", "timestamp", "duration"})
_PY_EQ_KINDS = frozenset(
    {"int", "double", "money", "string", "bytes", "bool", "timestamp", "duration"}
)
_STRINGS = frozenset({"string", "enum"})  # enum values are strings
_BOOL_FUNCTIONS = frozenset({"contains", "startsWith", "endsWith", "matches", "bool"})
#: CEL operator -> the Python operator with the same meaning on the kinds it is used for.
_PY_OPS = {
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "==": "==",
    "!=": "!=",
    "+": "+",
    "-": "-",
    "*": "*",
    "/": "/",
}
_RELATIONS = frozenset({"<", "<=", ">", ">="})
_ADDITIVE = frozenset({"+", "-"})
_RING = frozenset({"+", "-", "*"})
#: Literal kinds whose Python repr is the value, given a value of exactly this type.
_REPR_LITERALS = {"int": int, "string": str, "bytes": bytes, "bool": bool, "null": type(None)}
_FOLDABLE = {
    "timestamp": stdlib.to_timestamp,
    "duration": stdlib.to_duration,
    "money": stdlib.to_money,
}

# Inline guards for caller-supplied values of a declared kind: the common case
# costs a class check; anything else goes through stdlib's input_* function,
# which widens (int for money) or raises. Every guard names its value `_g`: a
# guard reads `_g` only between assigning it and producing its value, with
# nothing evaluated in between, so one local serves them all (nested ones too).
_GUARDS = {
    # True or False, or a hand-over (_bail); cheaper than testing both and then the value.
    "bool": "((_g := {code}) is True or (_g is not False and _bail()))",
    # Within int64 but for -2**63 itself (bit_length 64), which _in_int accepts.
    "int": "(_g if (_g := {code}).__class__ is int and _g.bit_length() < 64 else _in_int(_g))",
    "double": "(_g if (_g := {code}).__class__ is float else _in_double(_g))",
    "money": "(_g if (_g := {code}).__class__ is _Decimal and _g.is_finite() else _in_money(_g))",
    # Only fixed offsets pass as they are: Python's arithmetic within one named
    # zone is wall-clock, CEL's is on instants (_in_timestamp converts).
    "timestamp": "(_g if (_g := {code}).__class__ is _datetime and _g.tzinfo.__class__ is _timezone"
    " else _in_timestamp(_g))",
    "duration": "(_g if (_g := {code}).__class__ is _timedelta and _DMIN <= _g <= _DMAX"
    " else _in_duration(_g))",
    "string": "(_g if (_g := {code}).__class__ is str else _in_string(_g))",
    "enum": "(_g if (_g := {code}).__class__ is str else _in_string(_g))",
    "bytes": "(_g if (_g := {code}).__class__ is bytes else _in_bytes(_g))",
}
# A timestamp subtracted from `now` (since(t), now - t) needs only its class checked,
# because the prologue has checked `now`'s offset to be fixed (a `timezone`): Python
# then subtracts the instants whatever t's zone is (its tzinfo is not now's object,
# or it is that fixed offset), which is what _in_timestamp's conversion to UTC gives;
# a naive t makes the subtraction raise. The class check stays: any other value may
# have a subtraction of its own (`now - timedelta` is a datetime), and subclasses go
# to the interpreter as before.
_FROM_NOW_GUARD = "(_g if (_g := {code}).__class__ is _datetime else _in_timestamp(_g))"
#: Code for an int result that must stay within int64 (CEL's overflow is an error).
_INT_RESULT = "(_g if (_g := {code}).bit_length() < 64 else _check_int(_g))"


class _Raise(Exception):
    """Raised by generated code to hand over to the interpreter."""


def _bail(*_args: Any) -> Any:
    raise _Raise


def _c_all(items: Any, pred: Callable[[Any], Any]) -> bool:
    for x in _iterable(items):
        r = pred(x)
        if r is False:
            return False
        if r is not True:
            raise _Raise
    return True


def _c_exists(items: Any, pred: Callable[[Any], Any]) -> bool:
    for x in _iterable(items):
        r = pred(x)
        if r is True:
            return True
        if r is not False:
            raise _Raise
    return False


def _c_exists_one(items: Any, pred: Callable[[Any], Any]) -> bool:
    n = 0
    for x in _iterable(items):
        n += stdlib.check_bool(pred(x))
    return n == 1


def _c_map(
    items: Any, fn: Callable[[Any], Any], pred: Callable[[Any], Any] | None = None
) -> list[Any]:
    if pred is None:
        return [fn(x) for x in _iterable(items)]
    return [fn(x) for x in _iterable(items) if stdlib.check_bool(pred(x))]


def _c_filter(items: Any, pred: Callable[[Any], Any]) -> list[Any]:
    return [x for x in _iterable(items) if stdlib.check_bool(pred(x))]


def _iterable(items: Any) -> Any:
    if items.__class__ is _Charged:
        return items
    if stdlib.kind(items) not in ("list", "map"):
        raise _Raise
    return items


class _Charged:
    """A macro's range whose iteration charges the budget (in code that counts)."""

    __slots__ = ("budget", "items", "step")

    def __init__(self, budget: Budget, items: Any, step: int) -> None:
        self.budget = budget
        self.items = _iterable(items)
        self.step = step

    def __iter__(self) -> Any:
        charge, step = self.budget.charge, self.step
        for x in self.items:
            charge(step)
            yield x


_RUNTIME: dict[str, Any] = {
    "_Decimal": Decimal,
    "_madd": stdlib.MONEY_EXACT.add,
    "_msub": stdlib.MONEY_EXACT.subtract,
    "_mmul": stdlib.MONEY_EXACT.multiply,
    "_mdiv": stdlib.MONEY_DIVISION.divide,
    "_timezone": timezone,
    "_DMIN": -stdlib.MAX_DURATION,
    "_DMAX": stdlib.MAX_DURATION,
    "_datetime": datetime,
    "_timedelta": timedelta,
    "_bail": _bail,
    "_in_int": stdlib.input_int,
    "_in_double": stdlib.input_double,
    "_in_money": stdlib.input_money,
    "_in_timestamp": stdlib.input_timestamp,
    "_in_duration": stdlib.input_duration,
    "_in_string": stdlib.input_string,
    "_in_bytes": stdlib.input_bytes,
    "_check_int": stdlib.check_int,
    "_check_dur": stdlib.check_duration,
    "_int_div": stdlib.int_div,
    "_int_mod": stdlib.int_mod,
    "_double_div": stdlib.double_div,
    "_add": stdlib.add,
    "_sub": stdlib.sub,
    "_mul": stdlib.mul,
    "_div": stdlib.div,
    "_mod": stdlib.mod,
    "_neg": stdlib.neg,
    "_not": stdlib.logical_not,
    "_eq": stdlib.eq,
    "_rel": stdlib.relation,
    "_in": stdlib.contains_elem,
    "_index": stdlib.index,
    "_select": stdlib.select,
    "_has": stdlib.has_field,
    "_make_map": stdlib.make_map,
    "_size": stdlib.size,
    "_contains": stdlib.contains,
    "_starts": stdlib.starts_with,
    "_ends": stdlib.ends_with,
    "_matches": stdlib.matches,
    "_acc": stdlib.accessor,
    "_since": stdlib.since,
    "_c_all": _c_all,
    "_c_exists": _c_exists,
    "_c_exists_one": _c_exists_one,
    "_c_map": _c_map,
    "_c_filter": _c_filter,
    "_int": stdlib.to_int,
    "_double": stdlib.to_double,
    "_string": stdlib.to_string,
    "_bytes": stdlib.to_bytes,
    "_bool": stdlib.to_bool,
    "_money": stdlib.to_money,
    "_timestamp": stdlib.to_timestamp,
    "_duration": stdlib.to_duration,
    "_type": stdlib.type_of,
    "_dyn": stdlib.dyn,
    "_date": stdlib.to_date,
    "_days_between": stdlib.days_between,
}
#: The optional values' functions, each under a generated name (`_opt0`, ...).
_OPTIONAL_HELPERS = {name: f"_opt{i}" for i, name in enumerate(stdlib.OPTIONAL_FUNCTIONS)}
_RUNTIME.update({_OPTIONAL_HELPERS[n]: fn for n, fn in stdlib.OPTIONAL_FUNCTIONS.items()})
_MONEY_OPS = {"+": "_madd", "-": "_msub", "*": "_mmul"}
#: Function -> the runtime helper that computes it (accessors and since() apart).
_HELPERS = {
    "size": "_size",
    "contains": "_contains",
    "startsWith": "_starts",
    "endsWith": "_ends",
    "matches": "_matches",
    "int": "_int",
    "double": "_double",
    "string": "_string",
    "bytes": "_bytes",
    "bool": "_bool",
    "money": "_money",
    "timestamp": "_timestamp",
    "duration": "_duration",
    "type": "_type",
    "dyn": "_dyn",
    "date": "_date",
    "daysBetween": "_days_between",
    **_OPTIONAL_HELPERS,
}
_MACROS = {
    "all": "_c_all",
    "exists": "_c_exists",
    "exists_one": "_c_exists_one",
    "map": "_c_map",
    "filter": "_c_filter",
}
# Declared objects (dotted declarations) are not guarded: every operation on
# them (select, has, index, in, size) already fails on a value that is not a map.
_INPUT_CONTAINERS = {"list": "_in_list", "map": "_in_map"}


def _in_list(v: Any) -> Any:
    if stdlib.kind(v) != "list":
        raise _Raise
    return v


def _in_map(v: Any) -> Any:
    if stdlib.kind(v) != "map":
        raise _Raise
    return v


_RUNTIME["_in_list"] = _in_list
_RUNTIME["_in_map"] = _in_map
_RUNTIME["_Budget"] = Budget
_RUNTIME["_Charged"] = _Charged
_RUNTIME["_STOPPED"] = STOPPED
#: Result kinds of a `+` that may build a sized value (charged in code that counts).
_BUILT_BY_PLUS = frozenset({"string", "bytes", "list", "dyn"})


class _Emitter:
    def __init__(self, checked: CheckedExpr) -> None:
        self.checked = checked
        self.types = checked.types
        self.counted = checked.counted
        self.consts: dict[str, Any] = {}
        self.temps = 0
        #: comprehension variable -> its generated name, innermost scope last
        self.scopes: list[dict[str, str]] = []

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def const(self, value: Any) -> str:
        name = f"_k{len(self.consts)}"
        self.consts[name] = value
        return name

    def type(self, node: ast.Expr) -> Type:
        return self.types[node.id]

    def kind(self, node: ast.Expr) -> str:
        return self.types[node.id].kind

    # -- expressions ------------------------------------------------------------------
    def gen(self, node: ast.Expr) -> str:
        code = self._gen(node)
        declared = self.checked.inputs.get(node.id)
        if declared is not None:
            guard = _GUARDS.get(declared.kind)
            if guard is not None:
                return guard.format(code=code)
            container = _INPUT_CONTAINERS.get(declared.kind)
            if container is not None:
                return (
                    f"(_g if (_g := {code}).__class__ is {'list' if declared.kind == 'list' else 'dict'}"
                    f" else {container}(_g))"
                )
        return code

    def from_now(self, node: ast.Expr) -> str:
        """Code for a timestamp that is subtracted from `now` (see _FROM_NOW_GUARD)."""
        declared = self.checked.inputs.get(node.id)
        if declared is not None and declared.kind == "timestamp":
            return _FROM_NOW_GUARD.format(code=self._gen(node))
        return self.gen(node)

    def is_now(self, node: ast.Expr) -> bool:
        """``node`` reads `now` itself (as _gen decides: not a comprehension variable or a
        constant of that name)."""
        return (
            isinstance(node, ast.Ident)
            and node.name == "now"
            and not any(node.name in scope for scope in self.scopes)
            and node.id not in self.checked.constants
        )

    def strict_bool(self, node: ast.Expr) -> str:
        """Code for ``node`` that yields True/False or raises (never another truthy value)."""
        code = self.gen(node)
        if self.sure_bool(node):
            return code
        return f"((_g := {code}) is True or (_g is not False and _bail()))"

    def sure_bool(self, node: ast.Expr) -> bool:
        match node:
            case ast.Literal(kind="bool") | ast.Logical() | ast.Has():
                return True
            case ast.Unary(op="!"):
                return True
            case ast.Binary(op=op):
                return op in ("<", "<=", ">", ">=", "==", "!=", "in")
            case ast.Comprehension(macro=m):
                return m in ("all", "exists", "exists_one")
            case ast.Call(function=f):
                return f in _BOOL_FUNCTIONS
        if node.id in self.checked.named:  # its function returns CEL's value, of its type
            return self.kind(node) == "bool"
        declared = self.checked.inputs.get(node.id)
        return declared is not None and declared.kind == "bool"

    def _gen(self, node: ast.Expr) -> str:
        match node:
            case ast.Literal():
                return self.literal(node)
            case ast.Ident(name=name):
                for scope in reversed(self.scopes):
                    if name in scope:
                        return scope[name]
                if node.id in self.checked.constants:
                    return self.const(self.checked.constants[node.id])
                if node.id in self.checked.named:
                    # A named condition or value: its own compiled function, shared by every
                    # expression that names it; on any error it raises, so this one hands over.
                    return f"{self.const(self.checked.named[node.id].function)}(variables, now)"
                if name == "now":
                    return "now"
                if node.id not in self.checked.inputs and name in stdlib.TYPES:
                    return self.const(stdlib.TYPES[name])
                return f"variables[{name!r}]"
            case ast.Select():
                if node.id in self.checked.constants:  # google.protobuf.Timestamp
                    return self.const(self.checked.constants[node.id])
                if self.kind(node.operand) == "optional":  # optional chaining
                    sel = _OPTIONAL_HELPERS[ast.OPTIONAL_SELECT]
                    return f"{sel}({self.gen(node.operand)}, {node.field!r})"
                return f"{self.gen(node.operand)}[{node.field!r}]"
            case ast.Has():
                return f"_has({self.gen(node.operand)}, {node.field!r})"
            case ast.Index():
                return self.index(node)
            case ast.Unary():
                return self.unary(node)
            case ast.Binary():
                return self.binary(node)
            case ast.Logical():
                word = " and " if node.op == "&&" else " or "
                parts = [self.strict_bool(x) for x in _flatten(node, node.op)]
                return "(" + word.join(parts) + ")"
            case ast.Conditional():
                return f"({self.gen(node.then)} if {self.strict_bool(node.cond)} else {self.gen(node.otherwise)})"
            case ast.ListLit():
                return self.built(
                    len(node.items), "[" + "".join(self.gen(i) + ", " for i in node.items) + "]"
                )
            case ast.MapLit():
                return self.built(len(node.entries), self.map_literal(node))
            case ast.Call():
                return self.call(node)
            case ast.Comprehension():
                return self.comprehension(node)
        raise TypeError(node)  # pragma: no cover

    def built(self, size: int, code: str) -> str:
        """``code`` builds a literal of ``size`` entries: charged first where code counts."""
        return f"(_b.charge({size:d}) or {code})" if self.counted else code

    def map_literal(self, node: ast.MapLit) -> str:
        keys = [k for k, _ in node.entries]
        if all(isinstance(k, ast.Literal) and k.kind == "string" for k in keys) and len(
            {k.value for k in keys}  # type: ignore[union-attr]
        ) == len(keys):
            return "{" + ", ".join(f"{self.gen(k)}: {self.gen(v)}" for k, v in node.entries) + "}"
        pairs = ", ".join(f"({self.gen(k)}, {self.gen(v)})" for k, v in node.entries)
        return f"_make_map([{pairs}])"

    def literal(self, node: ast.Literal) -> str:
        money = self.checked.money_literals.get(node.id)
        if money is not None:
            return self.const(money)
        if node.kind == "period":
            return self.const(self.checked.periods[node.id])
        exact = _REPR_LITERALS.get(node.kind)
        if (exact is not None and type(node.value) is exact) or (
            node.kind == "double"
            and type(node.value) is float
            and node.value == node.value
            and abs(node.value) != float("inf")
        ):
            return repr(node.value)
        return self.const(node.value)  # doubles (inf, nan, exact repr) and durations

    def index(self, node: ast.Index) -> str:
        ot, it = self.type(node.operand), self.type(node.index)
        a, b = self.gen(node.operand), self.gen(node.index)
        if ot.kind == "optional":  # optional chaining
            return f"{_OPTIONAL_HELPERS[ast.OPTIONAL_INDEX]}({a}, {b})"
        if (
            ot.kind in ("map", "object")
            and it.kind == "string"
            and (ot.kind == "object" or ot.params[0].kind == "string")
        ):
            return f"{a}[{b}]"
        if (
            ot.kind == "list"
            and isinstance(node.index, ast.Literal)
            and node.index.kind == "int"
            and node.index.value >= 0
        ):
            return f"{a}[{b}]"
        return f"_index({a}, {b})"

    def beside_money(self, node: ast.Expr, other: str, code: str) -> str:
        """An int literal compared with money becomes the equal Decimal constant (exact):
        Python then compares two Decimals instead of converting the int on every call."""
        if other == "money" and isinstance(node, ast.Literal) and type(node.value) is int:
            return self.const(Decimal(node.value))
        return code

    def unary(self, node: ast.Unary) -> str:
        if node.op == "!":
            return f"(not {self.strict_bool(node.operand)})"
        k = self.kind(node.operand)
        a = self.gen(node.operand)
        if k == "money":
            return f"{a}.copy_negate()"  # exact, as stdlib.neg
        if k in ("double", "duration"):
            return f"(-{a})"
        if k == "int":
            return _INT_RESULT.format(code=f"-{a}")
        return f"_neg({a})"

    def binary(self, node: ast.Binary) -> str:
        op = node.op
        lk, rk = self.kind(node.left), self.kind(node.right)
        if op == "-" and lk == rk == "timestamp" and self.is_now(node.left):
            return f"(now - {self.from_now(node.right)})"
        a, b = self.gen(node.left), self.gen(node.right)
        if self.counted and op == "+" and self.kind(node) in _BUILT_BY_PLUS:
            t1, t2 = self.temp(), self.temp()
            return f"(_b.concat(({t1} := {a}), ({t2} := {b})) or _add({t1}, {t2}))"
        if op in _RELATIONS or op in ("==", "!="):
            a, b = self.beside_money(node.left, rk, a), self.beside_money(node.right, lk, b)
        if op in _RELATIONS:
            if (lk in NUMERIC and rk in NUMERIC) or (lk == rk and lk in _ORDERED_SAME):
                return f"({a} {_PY_OPS[op]} {b})"
            return f"_rel({op!r}, {a}, {b})"
        if op in ("==", "!="):
            if (
                (lk in NUMERIC and rk in NUMERIC)
                or (lk == rk and lk in _PY_EQ_KINDS)
                or (lk in _STRINGS and rk in _STRINGS)
            ):
                return f"({a} {_PY_OPS[op]} {b})"
            return f"({'' if op == '==' else 'not '}_eq({a}, {b}))"
        if op == "in":
            rt = self.type(node.right)
            if (rt.kind == "list" and rt.params[0].kind == "string" and lk == "string") or (
                rt.kind == "map" and lk == "string" and rt.params[0].kind == "string"
            ):
                return f"({a} in {b})"
            return f"_in({b}, {a})"
        if op in _RING and lk == rk == "int":
            return _INT_RESULT.format(code=f"{a} {_PY_OPS[op]} {b}")
        if op in _RING and lk == rk == "double":
            return f"({a} {_PY_OPS[op]} {b})"
        # Money runs in stdlib's contexts, not the ambient one: a result that is
        # not exact (or a division by zero) raises, and the interpreter reports it.
        if op in _RING and "money" in (lk, rk) and {lk, rk} <= {"money", "int"}:
            return f"{_MONEY_OPS[op]}({a}, {b})"
        if op == "/" and lk == "money" and rk in ("money", "int"):
            return f"_mdiv({a}, {b})"
        if op == "+" and lk == rk and lk in ("string", "bytes"):
            return f"({a} + {b})"
        if op == "+" and {lk, rk} == {"timestamp", "duration"}:
            return f"({a} + {b})"
        if op == "-" and lk == "timestamp" and rk != "period":
            return f"({a} - {b})"
        if op in _ADDITIVE and lk == rk == "duration":
            return f"_check_dur({a} {_PY_OPS[op]} {b})"
        if op == "/" and lk == rk == "int":
            return f"_int_div({a}, {b})"
        if op == "%" and lk == rk == "int":
            return f"_int_mod({a}, {b})"
        if op == "/" and lk == rk == "double":
            return f"_double_div({a}, {b})"
        fn = {"+": "_add", "-": "_sub", "*": "_mul", "/": "_div", "%": "_mod"}[op]
        return f"{fn}({a}, {b})"

    def call(self, node: ast.Call) -> str:
        name = node.function
        args_nodes = list((node.target, *node.args) if node.target else node.args)
        if name in _FOLDABLE and len(args_nodes) == 1 and isinstance(args_nodes[0], ast.Literal):
            return self.const(_FOLDABLE[name](args_nodes[0].value))
        if name == "matches" and isinstance(args_nodes[1], ast.Literal):
            pattern = self.const(stdlib.compile_regex(args_nodes[1].value))
            subject = args_nodes[0]
            code = self.gen(subject)
            if self.kind(subject) != "string":
                code = f"(_g if (_g := {code}).__class__ is str else _bail())"
            return f"({pattern}.search({code}) is not None)"
        if name == "since" and self.kind(args_nodes[0]) == "timestamp":
            return f"(now - {self.from_now(args_nodes[0])})"
        args = [self.gen(a) for a in args_nodes]
        kinds = [self.kind(a) for a in args_nodes]
        if name == "size" and kinds[0] in ("string", "bytes", "list", "map"):
            return f"len({args[0]})"
        if name in ("contains", "startsWith", "endsWith") and kinds == ["string", "string"]:
            if name == "contains":
                return f"({args[1]} in {args[0]})"
            method = "startswith" if name == "startsWith" else "endswith"
            return f"{args[0]}.{method}({args[1]})"
        if name == "since":
            return f"_since(now, {args[0]})"
        if name in stdlib.ACCESSORS:
            return f"_acc({name!r}, {', '.join(args)})"
        if name in stdlib.TIME_FUNCTIONS:
            fn, rules = self.const(stdlib.TIME_FUNCTIONS[name]), self.const(self.checked.time_rules)
            return f"{fn}({', '.join((rules, *args))})"
        return f"{_HELPERS[name]}({', '.join(args)})"

    def comprehension(self, node: ast.Comprehension) -> str:
        rng = self.gen(node.range)
        if self.counted:
            # As the interpreter: 1 an iteration, 1 more for what map()/filter() may add.
            step = 2 if node.macro in ("map", "filter") else 1
            rng = f"_Charged(_b, {rng}, {step:d})"
        param = f"_v{len(self.scopes)}"
        self.scopes.append({node.var: param})
        try:
            pred = (
                f"lambda {param}: {self.strict_bool(node.predicate)}"
                if node.predicate is not None
                else None
            )
            transform = (
                f"lambda {param}: {self.gen(node.transform)}"
                if node.transform is not None
                else None
            )
        finally:
            self.scopes.pop()
        helper = _MACROS[node.macro]
        if node.macro == "map":
            return f"{helper}({rng}, {transform}{', ' + pred if pred else ''})"
        return f"{helper}({rng}, {pred})"


def _flatten(node: ast.Expr, op: str) -> list[ast.Expr]:
    if isinstance(node, ast.Logical) and node.op == op:
        return [*_flatten(node.left, op), *_flatten(node.right, op)]
    return [node]


def generate(checked: CheckedExpr) -> tuple[str, dict[str, Any]]:
    """Python source of ``evaluate(variables, now)`` and the constants it needs."""
    e = _Emitter(checked)
    body = e.gen(checked.root)
    # A missing, naive or named-zone `now` goes to the interpreter, which
    # reports the first two and computes on instants for the third.
    prologue = (
        "        if now.tzinfo.__class__ is not _timezone: _bail()\n" if checked.uses_now else ""
    )
    if e.counted:
        prologue += f"        _b = _Budget({e.const(checked.cost_limit)})\n"
    src = (
        "def evaluate(variables=_EMPTY, now=None):\n"
        "    try:\n"
        f"{prologue}"
        f"        return {body}\n"
        "    except _STOPPED as e:\n"
        "        raise _stopped(e) from None\n"
        "    except Exception:\n"
        "        return _slow(variables, now)\n"
    )
    return src, e.consts


def build(
    checked: CheckedExpr,
    slow: Callable[[Any, Any], Any],
    stopped: Callable[[BaseException], Exception],
) -> tuple[Callable[..., Any], str]:
    """Compile ``checked`` into a function; ``slow`` is the interpreter fallback, and
    ``stopped`` the error for an evaluation stopped for cost, memory or stack depth."""
    src, consts = generate(checked)
    namespace: dict[str, Any] = {
        **_RUNTIME,
        **consts,
        "_slow": slow,
        "_stopped": stopped,
        "_EMPTY": {},
    }
    try:
        code = compile(src, f"<rulekit expression {checked.source.name}>", "exec")
    except (SyntaxError, MemoryError, RecursionError):
        # Python's compiler has nesting limits of its own: such an expression
        # is evaluated by the interpreter alone (same semantics, slower).
        def interpreted(variables: Any = None, now: Any = None) -> Any:
            return slow(variables, now)

        return interpreted, ""
    exec(code, namespace)
    fn: Callable[..., Any] = namespace["evaluate"]
    return fn, src
