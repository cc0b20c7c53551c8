"""Type checker: resolves names and types, never changes the tree.

What it learns goes into :class:`CheckedExpr` tables keyed by node id: the
static type of every node, which nodes read caller-supplied values (and what
type was declared for them), and which double literals are read exactly as
money. Every problem is a diagnostic; checking carries on past errors (a node
that failed gets the ``error`` type, which silences follow-on reports).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from rulekit.core import calendar as cal
from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.source import Source, Span
from rulekit.expr import ast, stdlib
from rulekit.expr.cost import DEFAULT_COST_LIMIT, ZERO, Estimate, estimate
from rulekit.expr.types import (
    BOOL,
    BYTES,
    DATE,
    DOUBLE,
    DURATION,
    DYN,
    ERROR,
    INT,
    MONEY,
    NULL,
    NUMERIC,
    PERIOD,
    STRING,
    TIMESTAMP,
    TYPE,
    Type,
    join,
    list_of,
    map_of,
    optional_of,
)


class Named(Protocol):
    """A named condition or value of a policy (``condition eligible = ...``, ``value due
    = ...``), checked once: an expression that names it is checked against its type and
    reads, evaluates it with its compiled function (code generation) or its tree (the
    interpreter), and keeps no copy of it. :class:`rulekit.expr.expression.Expression` is one."""

    @property
    def checked(self) -> CheckedExpr: ...

    @property
    def function(self) -> Callable[[Any, datetime | None], Any]: ...


@dataclass(frozen=True)
class CheckedExpr:
    """A parsed and checked expression: the tree plus what the checker learned."""

    source: Source
    root: ast.Expr
    types: Mapping[int, Type]
    #: node id -> declared type, for nodes that read a caller-supplied value.
    inputs: Mapping[int, Type]
    #: double literal node id -> the exact decimal it spells (used beside money).
    money_literals: Mapping[int, Decimal]
    #: top-level names the expression reads from the caller's variables.
    variables: frozenset[str]
    uses_now: bool
    #: node id -> value, for names that are constants of a policy.
    constants: Mapping[int, object] = field(default_factory=dict)
    #: what evaluating it may cost (:mod:`rulekit.expr.cost`), and the limit it was checked
    #: against, which is also its run-time budget.
    cost: Estimate = ZERO
    cost_limit: int = DEFAULT_COST_LIMIT
    #: node id -> the named condition or value an identifier names (``condition eligible = ...``)
    named: Mapping[int, Named] = field(default_factory=dict)
    #: the zone and calendars calendar time counts in (a policy's; UTC outside one)
    time_rules: cal.TimeRules = stdlib.DEFAULT_TIME_RULES
    #: period literal node id -> the period bound to that zone and calendar
    periods: Mapping[int, cal.BoundPeriod] = field(default_factory=dict)

    @property
    def type(self) -> Type:
        return self.types[self.root.id]

    @property
    def counted(self) -> bool:
        """Whether an evaluation must count its cost: the estimate cannot vouch for it."""
        return self.cost.max > self.cost_limit or self.cost.assumed


_TYPE_IDENTS = frozenset(stdlib.TYPES) - {"dyn", "date", "period"}
_ORDERED = frozenset(
    {"int", "double", "money", "string", "bytes", "bool", "timestamp", "duration", "date"}
)

# Signatures: name -> [(style, parameter kinds, result)]. style: global, member or both.
# Parameter kinds: a type kind, "list", "map" (maps and objects) or "any".
_Sig = tuple[str, tuple[str, ...], Type]
_FUNCTIONS: dict[str, list[_Sig]] = {
    "size": [("both", (k,), INT) for k in ("string", "bytes", "list", "map")],
    "contains": [("member", ("string", "string"), BOOL)],
    "startsWith": [("member", ("string", "string"), BOOL)],
    "endsWith": [("member", ("string", "string"), BOOL)],
    "matches": [("both", ("string", "string"), BOOL)],
    "int": [("global", (k,), INT) for k in ("int", "double", "money", "string", "timestamp")],
    "double": [("global", (k,), DOUBLE) for k in ("int", "double", "money", "string")],
    "string": [
        ("global", (k,), STRING)
        for k in (
            "string",
            "int",
            "double",
            "money",
            "bool",
            "bytes",
            "timestamp",
            "duration",
            "type",
        )
    ],
    "bytes": [("global", (k,), BYTES) for k in ("string", "bytes")],
    "bool": [("global", (k,), BOOL) for k in ("bool", "string")],
    "money": [("global", (k,), MONEY) for k in ("money", "int", "string")],
    "timestamp": [("global", (k,), TIMESTAMP) for k in ("string", "int", "timestamp")],
    "duration": [("global", (k,), DURATION) for k in ("string", "duration")],
    "type": [("global", ("any",), TYPE)],
    "dyn": [("global", ("any",), DYN)],
    "since": [("global", ("timestamp",), DURATION)],
    # Calendar time (docs/time.md): a zone or calendar left out is the policy's.
    "date": [("global", (k,), DATE) for k in ("string", "date")],
    "daysBetween": [("global", ("date", "date"), INT)],
    "localDate": [("member", ("timestamp",), DATE), ("member", ("timestamp", "string"), DATE)],
    "atTime": [
        ("member", ("date", "string"), TIMESTAMP),
        ("member", ("date", "string", "string"), TIMESTAMP),
    ],
    "isWorkingDay": [("member", ("date",), BOOL), ("member", ("date", "string"), BOOL)],
    "nextWorkingDay": [("member", ("date",), DATE), ("member", ("date", "string"), DATE)],
}
_FUNCTIONS["string"].append(("global", ("date",), STRING))
for _name in ("startOfDay", "endOfDay"):
    _FUNCTIONS[_name] = [
        ("member", (k, *zone), TIMESTAMP)
        for k in ("date", "timestamp")
        for zone in ((), ("string",))
    ]
#: Functions whose last argument, when given, names a calendar / a zone.
_CALENDAR_ARGUMENT = {"isWorkingDay": 2, "nextWorkingDay": 2}
_ZONE_ARGUMENT = {"localDate": 2, "atTime": 3, "startOfDay": 2, "endOfDay": 2}
for _name in stdlib.ACCESSORS:
    _FUNCTIONS[_name] = [("member", ("timestamp",), INT), ("member", ("timestamp", "string"), INT)]
    if _name in ("getHours", "getMinutes", "getSeconds", "getMilliseconds"):
        _FUNCTIONS[_name].append(("member", ("duration",), INT))

# Conversions whose literal argument can be checked before anything runs.
_CONST_CHECKS = {
    "timestamp": stdlib.to_timestamp,
    "duration": stdlib.to_duration,
    "money": stdlib.to_money,
    "int": stdlib.to_int,
    "double": stdlib.to_double,
    "bool": stdlib.to_bool,
    "date": stdlib.to_date,
}

# Arithmetic: (op, left kind, right kind) -> result.
_ARITH: dict[tuple[str, str, str], Type] = {}
for _op in "+-*/":
    _ARITH[(_op, "int", "int")] = INT
    _ARITH[(_op, "double", "double")] = DOUBLE
_ARITH[("%", "int", "int")] = INT
for _op in "+-":
    _ARITH[(_op, "money", "money")] = MONEY
    _ARITH[(_op, "money", "int")] = MONEY
    _ARITH[(_op, "int", "money")] = MONEY
    _ARITH[(_op, "duration", "duration")] = DURATION
_ARITH[("*", "money", "int")] = MONEY
_ARITH[("*", "int", "money")] = MONEY
_ARITH[("/", "money", "int")] = MONEY
_ARITH[("+", "string", "string")] = STRING
_ARITH[("+", "bytes", "bytes")] = BYTES
_ARITH[("+", "timestamp", "duration")] = TIMESTAMP
_ARITH[("+", "duration", "timestamp")] = TIMESTAMP
_ARITH[("-", "timestamp", "timestamp")] = DURATION
_ARITH[("-", "timestamp", "duration")] = TIMESTAMP
for _op in "+-":
    _ARITH[(_op, "timestamp", "period")] = TIMESTAMP
    _ARITH[(_op, "date", "period")] = DATE

#: Functions of optional values: name -> (how it is called, number of arguments
#: counting the target of a method).
_OPTIONAL_CALLS: dict[str, tuple[str, int]] = {
    ast.OPTIONAL_SELECT: ("global", 2),
    ast.OPTIONAL_INDEX: ("global", 2),
    "optional.of": ("global", 1),
    "optional.ofNonZeroValue": ("global", 1),
    "optional.none": ("global", 0),
    "hasValue": ("member", 1),
    "value": ("member", 1),
    "orValue": ("member", 2),
    "or": ("member", 2),
}

#: The protobuf names CEL gives the types of timestamps and durations.
_PROTOBUF_TYPES: dict[tuple[str, ...], str] = {
    ("google", "protobuf", "Timestamp"): "timestamp",
    ("google", "protobuf", "Duration"): "duration",
}

_RELATIONS = frozenset({"<", "<=", ">", ">=", "==", "!=", "in"})
_OP_WORDS = {"&&": "`&&` (and)", "||": "`||` (or)", "!": "`!` (not)"}


class _Checker:
    def __init__(
        self,
        source: Source,
        env: Mapping[str, Type] | None,
        constants: Mapping[str, tuple[Type, object]],
        hints: Mapping[str, str],
        time_rules: cal.TimeRules,
        named: Mapping[str, Named] | None = None,
    ) -> None:
        self.source = source
        self.time_rules = time_rules
        self.periods: dict[int, cal.BoundPeriod] = {}
        self.env = env
        self.named_names = named or {}
        self.named: dict[int, Named] = {}
        self.constant_names = constants
        self.hints = hints
        self.constants: dict[int, object] = {}
        self.types: dict[int, Type] = {}
        self.inputs: dict[int, Type] = {}
        self.money_literals: dict[int, Decimal] = {}
        self.variables: set[str] = set()
        self.uses_now = False
        self.diagnostics: list[Diagnostic] = []
        # Comprehension variables: name -> (type, ranges over caller-supplied values).
        self.scopes: list[dict[str, tuple[Type, bool]]] = []
        self.not_in_relation: set[int] = set()

    # -- reporting ------------------------------------------------------------------
    def error(self, code: str, message: str, span: Span, help: str | None = None) -> Type:
        self.diagnostics.append(diag.make(code, message, self.source, span, help=help))
        return ERROR

    def text(self, node: ast.Expr) -> str:
        return self.source.snippet(node.span)

    # -- dispatch ---------------------------------------------------------------------
    def check(self, node: ast.Expr) -> Type:
        kind = type(node)
        malformed = _MALFORMED.get(kind)
        t = malformed(self, node) if malformed is not None else None
        if t is None:
            visit = _CHECKS.get(kind)
            if visit is None:
                raise TypeError(node)  # pragma: no cover - not a node of the tree
            t = visit(self, node)
        self.types[node.id] = t
        return t

    # What the parser could never have built (a hand-made or edited tree) is refused
    # here, so nothing reaches code generation that did not pass the same rules as
    # source text. Each returns the error type, or None for a well-formed node.
    def malformed_name(self, node: ast.Ident | ast.Select | ast.Has) -> Type | None:
        if isinstance(node, ast.Ident):
            name, ok = node.name, ast.is_name(node.name)
        else:
            name, ok = node.field, ast.is_selector(node.field)
        if not ok:
            return self.error("RK0107", f"{name[:40]!r} is not a name", node.span)
        return None

    def malformed_macro(self, node: ast.Comprehension) -> Type | None:
        if not ast.is_name(node.var):
            return self.error("RK0107", f"{node.var[:40]!r} is not a name", node.var_span)
        shape = (node.predicate is not None, node.transform is not None)
        if shape not in ast.MACRO_SHAPES.get(node.macro, ()):
            return self.error(
                "RK0109", f"{node.macro[:40]!r} is not a macro of that form", node.span
            )
        return None

    def malformed_operator(self, node: ast.Unary | ast.Binary | ast.Logical) -> Type | None:
        if node.op not in ast.OPERATORS[type(node)]:
            return self.error("RK0203", f"unknown operator {node.op[:10]!r}", node.span)
        return None

    def malformed_literal(self, node: ast.Literal) -> Type | None:
        if type(node.value) is not ast.LITERAL_VALUES.get(node.kind):
            return self.error("RK0108", f"not a {node.kind[:20]} literal", node.span)
        return None

    def literal(self, node: ast.Literal) -> Type:
        if node.kind == "period":
            return self.period_literal(node)
        return _LITERAL_TYPES[node.kind]

    def period_literal(self, node: ast.Literal) -> Type:
        p: cal.Period = node.value
        calendar = None
        if p.unit == "working day":
            try:
                calendar = self.time_rules.pick(
                    p.calendar, f"`{node.text}`", f"`{p.count} {p.unit}s in {{}}`"
                )
            except cal.CalendarChoice as e:
                return self.error(e.code, e.message, node.span, e.help)
        self.periods[node.id] = cal.BoundPeriod(p, self.time_rules.tz, calendar)
        return PERIOD

    def logical(self, node: ast.Logical) -> Type:
        for side in (node.left, node.right):
            self.expect_bool(side, f"{_OP_WORDS[node.op]} needs bool operands")
        return BOOL

    def conditional(self, node: ast.Conditional) -> Type:
        self.expect_bool(node.cond, "the condition of `? :` must be a bool")
        a, b = self.check(node.then), self.check(node.otherwise)
        j = join(a, b)
        if j is None:
            return self.error(
                "RK0203",
                f"the branches of `? :` have different types: {a} and {b}",
                node.span,
                "make both branches the same type (or wrap one in dyn())",
            )
        return j

    def list_lit(self, node: ast.ListLit) -> Type:
        elem: Type | None = None
        for item in node.items:
            t = self.check(item)
            elem = t if elem is None else (join(elem, t) or DYN)
        return list_of(elem or DYN)

    def map_lit(self, node: ast.MapLit) -> Type:
        kt: Type | None = None
        vt: Type | None = None
        for k, v in node.entries:
            tk, tv = self.check(k), self.check(v)
            if tk.kind not in ("int", "bool", "string", "dyn", "error"):
                self.error("RK0203", f"a map key must be an int, bool or string, not {tk}", k.span)
            kt = tk if kt is None else (join(kt, tk) or DYN)
            vt = tv if vt is None else (join(vt, tv) or DYN)
        return map_of(kt or DYN, vt or DYN)

    def expect_bool(self, node: ast.Expr, what: str) -> None:
        t = self.check(node)
        if t.kind not in ("bool", "dyn", "error"):
            help_ = None
            if t.kind in NUMERIC or t.kind in ("string", "timestamp", "duration"):
                help_ = f"compare it to something, e.g. `{self.text(node)} == ...` or `{self.text(node)} > ...`"
            self.error("RK0205", f"{what}; `{self.text(node)}` is {t}", node.span, help_)

    # -- names ------------------------------------------------------------------------
    def ident(self, node: ast.Ident) -> Type:
        name = node.name
        for scope in reversed(self.scopes):
            if name in scope:
                t, from_input = scope[name]
                if from_input:
                    # An element of a caller-supplied list (or key of a map) is
                    # checked against its declared type like any input.
                    self.inputs[node.id] = t
                return t
        if name == "now":
            self.uses_now = True
            return TIMESTAMP
        if name == "dyn":
            return self.error(
                "RK0201",
                "`dyn` is a function, not a value",
                node.span,
                "write dyn(x) to use x without a static type",
            )
        if name in self.constant_names:
            t, value = self.constant_names[name]
            self.constants[node.id] = value
            return t
        named = self.named_names.get(name)
        if named is not None:
            self.named[node.id] = named
            self.variables |= named.checked.variables
            self.uses_now |= named.checked.uses_now
            return named.checked.type
        if name in _TYPE_IDENTS:
            return TYPE
        if self.env is None:
            self.variables.add(name)
            self.inputs[node.id] = DYN
            return DYN
        if name in self.env:
            self.variables.add(name)
            self.inputs[node.id] = self.env[name]
            return self.env[name]
        return self.error("RK0201", f"undeclared name `{name}`", node.span, self.suggest_name(name))

    def is_bound(self, name: str) -> bool:
        """Whether ``name`` is a variable here: of a macro, a constant, or declared."""
        return (
            any(name in scope for scope in self.scopes)
            or name in self.constant_names
            or (self.env is not None and name in self.env)
        )

    def suggest_name(self, name: str) -> str | None:
        assert self.env is not None
        paths = list(_paths(self.env))
        ends = [p for p in paths if p.rsplit(".", 1)[-1] == name]
        if ends:
            return "did you mean " + " or ".join(f"`{p}`" for p in ends[:3]) + "?"
        local = [n for scope in self.scopes for n in scope]
        import difflib  # only when there is a mistake to suggest a fix for

        close = difflib.get_close_matches(
            name,
            [*self.env, *local, *self.constant_names, *self.named_names, "now"],
            n=1,
            cutoff=0.6,
        )
        if close:
            return f"did you mean `{close[0]}`?"
        if name in self.hints:
            return self.hints[name]
        if "*" in self.hints:
            return self.hints["*"]
        if not self.env:
            return "declare it, or compile without declarations to leave names untyped"
        return "declared names: " + ", ".join(sorted(self.env)[:8])

    def select(self, node: ast.Select) -> Type:
        type_name = _PROTOBUF_TYPES.get(ast.path_of(node) or ())
        if type_name is not None and not self.is_bound("google"):
            # google.protobuf.Timestamp and .Duration: CEL's names of those types
            self.constants[node.id] = stdlib.TYPES[type_name]
            return TYPE
        t = self.check(node.operand)
        if t.kind == "optional":  # optional chaining: o.f is o.?f
            found = self.field_type(t.params[0], node.field, node.operand, node.field_span)
            result = ERROR if found.kind == "error" else optional_of(found)
        else:
            result = self.field_type(t, node.field, node.operand, node.field_span)
        if node.operand.id in self.inputs and result.kind != "error":
            self.inputs[node.id] = result
        return result

    def field_type(self, t: Type, name: str, operand: ast.Expr, span: Span) -> Type:
        if t.kind == "object":
            ft = t.field(name)
            if ft is None and t.params:  # a qualified name declared with names below it
                return self.field_type(t.params[0], name, operand, span)
            if ft is None:
                import difflib  # only when there is a mistake to suggest a fix for

                close = difflib.get_close_matches(name, [f for f, _ in t.fields], n=1, cutoff=0.5)
                help_ = (
                    f"did you mean `{t.name}.{close[0]}`?"
                    if close
                    else ("fields of " + t.name + ": " + ", ".join(f for f, _ in t.fields))
                )
                return self.error("RK0202", f"`{t.name}` has no field `{name}`", span, help_)
            return ft
        if t.kind == "map":
            if t.params[0].kind not in ("string", "dyn"):
                return self.error(
                    "RK0202", f"cannot select `.{name}` on {t}: its keys are not strings", span
                )
            return t.params[1]
        if t.is_dynamic:
            return DYN
        return self.error(
            "RK0202", f"`{self.text(operand)}` is {_a(t)}; it has no field `{name}`", span
        )

    def has(self, node: ast.Has) -> Type:
        t = self.check(node.operand)
        if t.kind == "optional":  # has(o.f): o holds a value with field f
            t = t.params[0]
        if t.kind in ("object", "map") or t.is_dynamic:
            if t.kind != "error":
                self.field_type(t, node.field, node.operand, node.field_span)
            return BOOL
        return self.error(
            "RK0203",
            f"has() needs a map or object; `{self.text(node.operand)}` is {_a(t)}",
            node.operand.span,
        )

    def index(self, node: ast.Index) -> Type:
        t = self.check(node.operand)
        it = self.check(node.index)
        result: Type
        if t.kind == "optional":  # optional chaining: o[i] is o[?i]
            found = self.optional_element(t.params[0], it, node.operand, node.index)
            result = ERROR if found.kind == "error" else optional_of(found)
        elif t.kind == "list":
            if it.kind not in ("int", "dyn", "error"):
                return self.error(
                    "RK0203", f"a list index must be an int, not {it}", node.index.span
                )
            result = t.params[0]
        elif t.kind == "map":
            if not (it.is_dynamic or t.params[0].is_dynamic or _comparable(it, t.params[0])):
                return self.error("RK0203", f"key of type {it} for {t}", node.index.span)
            result = t.params[1]
        elif t.kind == "object":
            if isinstance(node.index, ast.Literal) and node.index.kind == "string":
                result = self.field_type(t, node.index.value, node.operand, node.index.span)
            elif it.kind in ("string", "dyn", "error"):
                result = DYN
            else:
                return self.error(
                    "RK0203", f"the key of `{t.name}` must be a string, not {it}", node.index.span
                )
        elif t.is_dynamic:
            result = DYN
        else:
            return self.error(
                "RK0203",
                f"`{self.text(node.operand)}` is {t}; it cannot be indexed",
                node.span,
                "only lists and maps can be indexed with [ ]",
            )
        if node.operand.id in self.inputs and result.kind != "error":
            self.inputs[node.id] = result
        return result

    # -- operators --------------------------------------------------------------------
    def unary(self, node: ast.Unary) -> Type:
        if node.op == "!":
            t = self.check(node.operand)
            if t.kind in ("bool", "dyn", "error"):
                return BOOL
            help_ = None
            if node.id in self.not_in_relation:
                help_ = "`not` binds tighter than comparisons: write `not (a < b)` to negate a comparison"
            return self.error(
                "RK0205",
                f"`!` (not) needs a bool; `{self.text(node.operand)}` is {t}",
                node.span,
                help_,
            )
        t = self.check(node.operand)
        if t.kind in ("int", "double", "money", "duration", "period") or t.is_dynamic:
            return t
        return self.error("RK0203", f"no matching overload: `-` of {t}", node.span)

    def binary(self, node: ast.Binary) -> Type:
        op = node.op
        if op in _RELATIONS and isinstance(node.left, ast.Unary) and node.left.op == "!":
            self.not_in_relation.add(node.left.id)
        lt, rt = self.check(node.left), self.check(node.right)
        if lt.kind == "error" or rt.kind == "error":
            return BOOL if op in _RELATIONS else ERROR
        lt, rt = self.money_literal(node.left, lt, rt), self.money_literal(node.right, rt, lt)
        if "period" in (lt.kind, rt.kind) and (op, lt.kind, rt.kind) not in _ARITH:
            return self.period_misuse(node, lt, rt)
        if op in _RELATIONS:
            return self.relation(node, lt, rt)
        if lt.is_dynamic or rt.is_dynamic:
            return DYN
        if lt.kind == rt.kind == "list" and op == "+":
            return list_of(join(lt.params[0], rt.params[0]) or DYN)
        result = _ARITH.get((op, lt.kind, rt.kind))
        if result is not None:
            return result
        if op in "*/" and lt.kind == rt.kind == "money" and node.right.id in self.money_literals:
            return MONEY  # scaling by an exact factor: order.amount * 0.5, order.amount / 1.5
        if op == "*" and lt.kind == rt.kind == "money" and node.left.id in self.money_literals:
            return MONEY
        help_ = None
        if {lt.kind, rt.kind} == {"money", "double"}:
            help_ = 'money never mixes with double; write the amount as money("12.50") or a literal'
        elif {lt.kind, rt.kind} == {"int", "double"}:
            help_ = "there are no implicit conversions: use double(...) or int(...)"
        elif "string" in (lt.kind, rt.kind) and op == "+":
            help_ = "convert with string(...) first"
        elif lt.kind == rt.kind == "money" and op in "*/":
            help_ = "money is scaled by an int or an exact decimal written after it: order.amount / 2, order.amount * 0.5"
        return self.error("RK0203", f"no matching overload: {lt} {op} {rt}", node.op_span, help_)

    def period_misuse(self, node: ast.Binary, lt: Type, rt: Type) -> Type:
        """A calendar period where only a time or a date may take it: say which to write."""
        op = node.op
        if lt.is_dynamic or rt.is_dynamic:
            return BOOL if op in _RELATIONS else DYN
        period, other = (node.left, node.right) if lt.kind == "period" else (node.right, node.left)
        p, o = self.text(period), self.text(other)
        kinds = {lt.kind, rt.kind}
        if op in _RELATIONS and "duration" in kinds:
            message = f"a duration cannot be compared with a calendar period (`{p}`)"
            t = "t"
            if isinstance(other, ast.Call) and other.function == "since" and other.args:
                t = self.text(other.args[0])
            help_ = (
                f"compare times instead: `now <= {t} + {p}` for `since({t}) <= {p}`; or, for"
                " a fixed length of time, write a duration (10d is exactly 240 hours)"
            )
        elif "duration" in kinds:
            message = f"a duration and a calendar period (`{p}`) cannot be added together"
            help_ = (
                f"add them to a time one after the other: `t + {p} + {o}`; a duration is a"
                " fixed length (48h, 10d), a period is counted on the calendar"
            )
        elif kinds == {"period"}:
            message = f"calendar periods cannot be {'compared' if op in _RELATIONS else 'combined'}"
            help_ = (
                "1 month is not a fixed number of days: add each period to a time or a"
                f" date, `t + {self.text(node.left)} + {self.text(node.right)}`"
            )
        elif op == "+" and period is node.left and other_kind(lt, rt) in ("timestamp", "date"):
            message = f"no matching overload: {lt} {op} {rt}"
            help_ = f"write the time or date first: `{o} + {p}`"
        else:
            message = f"no matching overload: {lt} {op} {rt}"
            help_ = f"a period (`{p}`) is added to or subtracted from a time or a date"
        return self.error("RK0211", message, node.op_span, help_)

    def money_literal(self, node: ast.Expr, t: Type, other: Type) -> Type:
        """A double literal beside money is read exactly as the decimal it spells."""
        if other.kind == "money" and isinstance(node, ast.Literal) and node.kind == "double":
            self.money_literals[node.id] = stdlib.money_literal(node.text)
            self.types[node.id] = MONEY
            return MONEY
        return t

    def relation(self, node: ast.Binary, lt: Type, rt: Type) -> Type:
        op = node.op
        if op == "in":
            if rt.kind == "list" or rt.kind == "map":
                ok = _comparable(lt, rt.params[0])
                if ok and lt.kind == "enum" and isinstance(node.right, ast.ListLit):
                    for item in node.right.items:
                        self.enum_literal(item, lt)
            elif rt.kind == "object":
                ok = lt.kind in ("string", "dyn")
            else:
                ok = rt.is_dynamic
                if not ok:
                    return self.error(
                        "RK0203",
                        f"`in` needs a list or map on its right; got {rt}",
                        node.right.span,
                    )
            if not ok:
                return self.error("RK0203", f"cannot look for {lt} in {rt}", node.op_span)
            return BOOL
        if op in ("==", "!="):
            if _comparable(lt, rt):
                self.enum_literal(node.left, rt)
                self.enum_literal(node.right, lt)
                return BOOL
            return self.error(
                "RK0203",
                f"`{op}` compares values of one type; got {lt} and {rt}",
                node.op_span,
                _quoted_number_help(node, lt, rt) or _optional_help(lt, rt),
            )
        if lt.is_dynamic or rt.is_dynamic:
            return BOOL
        if (lt.kind in NUMERIC and rt.kind in NUMERIC) or (
            lt.kind == rt.kind and lt.kind in _ORDERED
        ):
            return BOOL
        help_ = _quoted_number_help(node, lt, rt) or _optional_help(lt, rt)
        if isinstance(node.left, ast.Unary) and node.left.op == "!":
            help_ = (
                "`not` binds tighter than comparisons: write `not (a < b)` to negate a comparison"
            )
        return self.error("RK0203", f"no matching overload: {lt} {op} {rt}", node.op_span, help_)

    def enum_literal(self, node: ast.Expr, other: Type) -> None:
        """A string literal compared with an enum must name one of its values."""
        if other.kind == "enum" and isinstance(node, ast.Literal) and node.kind == "string":
            members = [m for m, _ in other.fields]
            if node.value not in members:
                import difflib  # only when there is a mistake to suggest a fix for

                close = difflib.get_close_matches(node.value, members, n=1, cutoff=0.5)
                self.error(
                    "RK0208",
                    f"{node.text} is not a value of {other.name}",
                    node.span,
                    f'did you mean "{close[0]}"?'
                    if close
                    else f"{other.name} is one of: " + ", ".join(members),
                )

    # -- calls ------------------------------------------------------------------------
    def call(self, node: ast.Call) -> Type:
        arg_types = [
            self.check(a) for a in ((node.target, *node.args) if node.target else node.args)
        ]
        name = node.function
        if name in _OPTIONAL_CALLS:
            return self.optional_call(node, arg_types)
        sigs = _FUNCTIONS.get(name)
        if sigs is None:
            if node.target is not None and self.types.get(node.target.id, DYN).kind == "error":
                return ERROR
            import difflib  # only when there is a mistake to suggest a fix for

            close = difflib.get_close_matches(name, list(_FUNCTIONS), n=1, cutoff=0.6)
            return self.error(
                "RK0204",
                f"unknown function `{name}`",
                node.name_span,
                f"did you mean `{close[0]}`?"
                if close
                else "see docs/expressions.md for the functions",
            )
        if any(t.kind == "error" for t in arg_types):
            return ERROR
        style = "member" if node.target is not None else "global"
        styled = [s for s in sigs if s[0] in (style, "both")]
        if not styled:
            if style == "global":
                help_ = f"call it as a method: x.{name}(...)"
            else:
                help_ = f"call it as a function: {name}(x)"
            return self.error("RK0203", f"`{name}` is not called like that", node.name_span, help_)
        for _style, params, result in styled:
            if len(params) == len(arg_types) and all(
                _param_ok(p, t) for p, t in zip(params, arg_types, strict=True)
            ):
                self.const_check(node)
                if name == "since":
                    self.uses_now = True
                return result
        shown = ", ".join(str(t) for t in arg_types)
        accepted = "; ".join(
            (f"{p[0]}.{name}({', '.join(p[1:])})" if s == "member" else f"{name}({', '.join(p)})")
            for s, p, _ in styled
        )
        help_ = f"accepted: {accepted}"
        if name == "since" and arg_types and arg_types[0].kind != "timestamp":
            help_ = "since(t) takes a timestamp (a time fact) and gives the duration from t to now"
        return self.error("RK0203", f"no matching overload: {name}({shown})", node.span, help_)

    def optional_call(self, node: ast.Call, arg_types: list[Type]) -> Type:
        """CEL's optional values: `m.?f`, `l[?i]`, optional.of/none/ofNonZeroValue(), and
        the methods hasValue(), value(), orValue(x), or(o) of an optional."""
        name = node.function
        if any(t.kind == "error" for t in arg_types):
            return ERROR
        style, arity = _OPTIONAL_CALLS[name]
        if (node.target is not None) != (style == "member"):
            how = f"x.{name}(...)" if style == "member" else f"{name}(...)"
            return self.error(
                "RK0203", f"`{name}` is not called like that", node.name_span, f"write {how}"
            )
        if len(arg_types) != arity:
            shown = ", ".join(str(t) for t in arg_types)
            return self.error("RK0203", f"no matching overload: {name}({shown})", node.span)
        if style == "global":
            if name == "optional.none":
                return optional_of(DYN)
            if name in ("optional.of", "optional.ofNonZeroValue"):
                return optional_of(arg_types[0])
            operand = node.args[0]
            t = arg_types[0]
            inner = t.params[0] if t.kind == "optional" else t
            if name == ast.OPTIONAL_SELECT:
                lit = node.args[1]
                if not (isinstance(lit, ast.Literal) and isinstance(lit.value, str)):
                    return self.error("RK0109", "`.?` selects a field by its name", lit.span)
                found = self.field_type(inner, lit.value, operand, lit.span)
            else:
                found = self.optional_element(inner, arg_types[1], operand, node.args[1])
            if found.kind == "error":
                return ERROR
            result = optional_of(found)
            if operand.id in self.inputs:
                self.inputs[node.id] = result
            return result
        assert node.target is not None
        t = arg_types[0]
        if t.kind != "optional" and not t.is_dynamic:
            return self.error(
                "RK0220",
                f"`.{name}()` needs an optional value; `{self.text(node.target)}` is {_a(t)}",
                node.name_span,
                "optional values come from `m.?field`, `list[?i]` and optional.of(x); for a"
                " default where a field is absent, write `m.?field.orValue(default)`",
            )
        inner = t.params[0] if t.kind == "optional" else DYN
        if name == "hasValue":
            return BOOL
        if name == "value":
            result = inner
        else:
            other = arg_types[1]
            if name == "or" and other.kind != "optional" and not other.is_dynamic:
                return self.error(
                    "RK0220",
                    f"`.or()` takes another optional value; `{self.text(node.args[0])}` is"
                    f" {_a(other)}",
                    node.args[0].span,
                    "to fall back to a plain value, write .orValue(x)",
                )
            other_inner = other.params[0] if other.kind == "optional" else DYN
            joined = join(inner, other if name == "orValue" else other_inner)
            if joined is None:
                return self.error(
                    "RK0203",
                    f"the default of `.{name}()` must be {_a(inner)}, not {_a(other)}",
                    node.args[0].span,
                )
            if name == "or":
                return optional_of(joined)
            result = joined
        if node.target.id in self.inputs and not result.is_dynamic:
            self.inputs[node.id] = result  # the value the caller gave: checked as declared
        return result

    def optional_element(self, t: Type, it: Type, operand: ast.Expr, index: ast.Expr) -> Type:
        """The element `operand[?index]` may hold (``operand`` of type ``t``, ``index`` of
        type ``it``), or the error type."""
        if t.kind == "list" and it.kind in ("int", "dyn"):
            return t.params[0]
        if t.kind == "map" and (it.is_dynamic or _comparable(it, t.params[0])):
            return t.params[1]
        if t.kind == "object" and it.kind in ("string", "dyn"):
            if isinstance(index, ast.Literal) and isinstance(index.value, str):
                return self.field_type(t, index.value, operand, index.span)
            return DYN
        if t.is_dynamic:
            return DYN
        return self.error(
            "RK0203",
            f"`{self.text(operand)}` is {t}; it cannot be indexed with {it}",
            index.span,
        )

    def const_check(self, node: ast.Call) -> None:
        """Literal arguments of conversions and patterns are checked now, not at run time."""
        args = list((node.target, *node.args) if node.target else node.args)
        try:
            if (
                node.function in _CONST_CHECKS
                and len(args) == 1
                and isinstance(args[0], ast.Literal)
            ):
                _CONST_CHECKS[node.function](args[0].value)
            elif node.function == "matches" and isinstance(args[1], ast.Literal):
                self.regex_literal(args[1])
            elif (
                node.function in stdlib.ACCESSORS
                and len(args) == 2
                and isinstance(args[1], ast.Literal)
            ):
                stdlib.time_zone(args[1].value)
            elif len(args) == _ZONE_ARGUMENT.get(node.function) and isinstance(
                args[-1], ast.Literal
            ):
                stdlib.time_zone(args[-1].value)
            if node.function == "atTime" and isinstance(args[1], ast.Literal):
                stdlib.parse_wall_time(args[1].value)
        except stdlib.CelError as e:
            self.error("RK0207", str(e), node.span)
        if node.function in _CALENDAR_ARGUMENT:
            self.calendar_argument(node, args)

    def calendar_argument(self, node: ast.Call, args: list[ast.Expr]) -> None:
        """A calendar is named by a string literal, and must be one the policy declares;
        left out, the policy must declare exactly one."""
        known = [c.name for c in self.time_rules.calendars]
        if len(args) < _CALENDAR_ARGUMENT[node.function]:
            name, span = None, node.name_span
        else:
            arg = args[-1]
            if not (isinstance(arg, ast.Literal) and arg.kind == "string"):
                self.error(
                    "RK0212",
                    "a calendar is named by a string literal",
                    arg.span,
                    "write its name in quotes, as declared: " + (", ".join(known) or "(none)"),
                )
                return
            name, span = arg.value, arg.span
        try:
            self.time_rules.pick(name, f"`{node.function}`", f'`{node.function}("{{}}")`')
        except cal.CalendarChoice as e:
            self.error(e.code, e.message, span, e.help)

    def regex_literal(self, lit: ast.Literal) -> None:
        """A pattern literal RE2 refuses is RK0209, the caret on the part RE2 names."""
        if not isinstance(lit.value, str):
            return  # not a string: the overload check has reported it
        try:
            stdlib.compile_regex(lit.value)
        except stdlib.RegexError as e:
            span = _part_span(self.text(lit), lit.value, e.part, lit.span)
            self.error("RK0209", f"invalid regular expression: {e.reason}", span, e.help)

    def comprehension(self, node: ast.Comprehension) -> Type:
        rt = self.check(node.range)
        if rt.kind == "list" or rt.kind == "map":
            var = rt.params[0]
        elif rt.kind == "object":
            var = STRING
        elif rt.is_dynamic:
            var = DYN
        else:
            self.error(
                "RK0203",
                f"{node.macro}() needs a list or map; `{self.text(node.range)}` is {rt}",
                node.range.span,
            )
            var = ERROR
        self.scopes.append({node.var: (var, node.range.id in self.inputs and not var.is_dynamic)})
        try:
            if node.predicate is not None:
                self.expect_bool(node.predicate, f"the condition of {node.macro}() must be a bool")
            out = self.check(node.transform) if node.transform is not None else None
        finally:
            self.scopes.pop()
        if node.macro in ("all", "exists", "exists_one"):
            return BOOL
        if node.macro == "filter":
            return list_of(var)
        assert out is not None
        return list_of(out)


def _part_span(written: str, value: str, part: str, literal: Span) -> Span:
    """Where ``part`` of a string literal's ``value`` is in its source text
    (``written``, with prefix, quotes and escapes): its first occurrence as
    written, or the whole literal when the part cannot be found."""
    unprefixed = written.lstrip("rR")
    quote = 3 if unprefixed[:3] in ('"""', "'''") else 1
    opening = len(written) - len(unprefixed) + quote
    at = written.find(part, opening, len(written) - quote) if part and part in value else -1
    if at < 0:
        return literal
    return Span(literal.start + at, literal.start + at + len(part))


_LITERAL_TYPES = {
    "int": INT,
    "double": DOUBLE,
    "string": STRING,
    "bytes": BYTES,
    "bool": BOOL,
    "null": NULL,
    "duration": DURATION,
}


def other_kind(lt: Type, rt: Type) -> str:
    """The kind of the operand beside a period."""
    return rt.kind if lt.kind == "period" else lt.kind


def _a(t: Type) -> str:
    """A type with its article, for messages: "an int", "a string", "money"."""
    if t.kind in ("money", "dyn", "error"):
        return str(t)
    return ("an " if str(t)[:1] in "aeiou" else "a ") + str(t)


def _param_ok(param: str, t: Type) -> bool:
    if param == "any" or t.is_dynamic:
        return True
    if param == "map":
        return t.kind in ("map", "object")
    return t.kind == param


def _comparable(a: Type, b: Type) -> bool:
    if a.is_dynamic or b.is_dynamic or a.kind == "null_type" or b.kind == "null_type":
        return True
    if a.kind == "enum" or b.kind == "enum":
        # Enum values are strings: comparable with strings and with enums
        # (`actor == evidence.party`: the sender against a Party).
        return {a.kind, b.kind} <= {"enum", "string"}
    if a.kind in NUMERIC and b.kind in NUMERIC:
        return True
    if {a.kind, b.kind} <= {"map", "object"}:
        return True
    if a.kind != b.kind:
        return False
    if a.kind in ("list", "map"):
        return all(_comparable(x, y) for x, y in zip(a.params, b.params, strict=True))
    return True


def _optional_help(lt: Type, rt: Type) -> str | None:
    if "optional" in (lt.kind, rt.kind) and lt.kind != rt.kind:
        return "an optional value may hold nothing: take it out with .orValue(default), or .value()"
    return None


def _quoted_number_help(node: ast.Binary, lt: Type, rt: Type) -> str | None:
    for side, other in ((node.left, rt), (node.right, lt)):
        if isinstance(side, ast.Literal) and side.kind == "string" and other.kind in NUMERIC:
            try:
                float(side.value)
            except ValueError:
                continue
            return f"write the number without quotes: {side.value}"
    return None


#: The check of each kind of node, and the test for a malformed one (tables: faster than
#: matching on the node's class, for every node of every condition).
_CHECKS: dict[type, Callable[[_Checker, Any], Type]] = {
    ast.Literal: _Checker.literal,
    ast.Ident: _Checker.ident,
    ast.Select: _Checker.select,
    ast.Has: _Checker.has,
    ast.Index: _Checker.index,
    ast.Call: _Checker.call,
    ast.Unary: _Checker.unary,
    ast.Binary: _Checker.binary,
    ast.Logical: _Checker.logical,
    ast.Conditional: _Checker.conditional,
    ast.ListLit: _Checker.list_lit,
    ast.MapLit: _Checker.map_lit,
    ast.Comprehension: _Checker.comprehension,
}
_MALFORMED: dict[type, Callable[[_Checker, Any], Type | None]] = {
    ast.Ident: _Checker.malformed_name,
    ast.Select: _Checker.malformed_name,
    ast.Has: _Checker.malformed_name,
    ast.Comprehension: _Checker.malformed_macro,
    ast.Unary: _Checker.malformed_operator,
    ast.Binary: _Checker.malformed_operator,
    ast.Logical: _Checker.malformed_operator,
    ast.Literal: _Checker.malformed_literal,
}


def _paths(env: Mapping[str, Type], prefix: str = "") -> list[str]:
    out = []
    for name, t in env.items():
        full = prefix + name
        out.append(full)
        if t.kind == "object":
            out.extend(_paths(dict(t.fields), full + "."))
    return out


def signatures() -> dict[str, list[str]]:
    """Each function's overloads as an author writes them (``string.contains(string) -> bool``,
    ``size(list) -> int``): what an editor offers when completing a call."""
    out: dict[str, list[str]] = {}
    for name, sigs in sorted(_FUNCTIONS.items()):
        for style, params, result in sigs:
            shown = []
            if style in ("global", "both"):
                shown.append(f"{name}({', '.join(params)}) -> {result}")
            if style in ("member", "both"):
                rest = ", ".join(params[1:])
                shown.append(f"{params[0]}.{name}({rest}) -> {result}")
            out.setdefault(name, []).extend(shown)
    return out


def check(
    root: ast.Expr,
    source: Source,
    env: Mapping[str, Type] | None,
    constants: Mapping[str, tuple[Type, object]] | None = None,
    hints: Mapping[str, str] | None = None,
    cost_limit: int = DEFAULT_COST_LIMIT,
    named: Mapping[str, Named] | None = None,
    time_rules: cal.TimeRules | None = None,
) -> tuple[CheckedExpr, list[Diagnostic]]:
    """Check ``root``; ``env`` None means no declarations (all names dynamic).

    ``constants`` are names with a known type and value (a policy's constants);
    ``named`` the named conditions and values it may read, each already checked;
    ``hints`` the help line for particular undeclared names (``"*"``: any other);
    ``cost_limit`` the most its estimated cost may be (RK0210 past it); ``time_rules``
    the zone and calendars calendar periods and local dates count in (default: UTC).
    """
    rules = time_rules or stdlib.DEFAULT_TIME_RULES
    c = _Checker(source, env, constants or {}, hints or {}, rules, named)
    c.check(root)
    cost = ZERO
    if not c.diagnostics:
        cost = estimate(root, c.types, c.inputs, c.constants)
        if c.named:  # each use of a named condition costs what evaluating it costs
            used = [n.checked.cost for n in c.named.values()]
            cost = Estimate(
                cost.min,
                cost.max + sum(e.max for e in used),
                cost.assumed or any(e.assumed for e in used),
            )
        if cost.max > cost_limit:
            c.error(
                "RK0210",
                f"expression may cost too much to evaluate: up to {cost.max:,} "
                f"(the limit is {cost_limit:,})",
                root.span,
                "nested macros multiply their ranges, and `+` in a macro can double what it"
                " builds: iterate over smaller lists, un-nest, or raise the limit (`cost_limit`"
                " in the policy header; compile_expression(..., cost_limit=N))",
            )
    checked = CheckedExpr(
        source=source,
        root=root,
        types=c.types,
        inputs=c.inputs,
        money_literals=c.money_literals,
        variables=frozenset(c.variables),
        uses_now=c.uses_now,
        constants=c.constants,
        cost=cost,
        cost_limit=cost_limit,
        named=c.named,
        time_rules=rules,
        periods=c.periods,
    )
    return checked, sorted(c.diagnostics, key=diag.sort_key)
