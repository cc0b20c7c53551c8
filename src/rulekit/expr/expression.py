"""Conditions on their own: ``rulekit.compile_expression`` and :class:`Expression`.

The pipeline for one expression: parse (:mod:`rulekit.expr.parser`), check
(:mod:`rulekit.expr.checker`), compile to Python (:mod:`rulekit.expr.codegen`)
with the reference interpreter (:mod:`rulekit.expr.interpreter`) as its
fallback and explain engine.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from rulekit.core import calendar as cal
from rulekit.core import canonical
from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.errors import CompileError, EvaluationError
from rulekit.core.source import Source, Span, read_text
from rulekit.expr import ast, parser, stdlib
from rulekit.expr.checker import CheckedExpr, check
from rulekit.expr.cost import DEFAULT_COST_LIMIT, MAX_COST_LIMIT
from rulekit.expr.interpreter import Explanation, Interpreter
from rulekit.expr.types import DeclarationError, Type, build_environment

#: Format tag of :meth:`Expression.to_dict` output. /2: the hash is over
#: :mod:`rulekit.core.canonical`'s JSON form (/1 hashed JSON with spaces after
#: separators, so /1 data does not verify: compile its source again).
FORMAT = "rulekit.expr.expression/2"

Declarations = Mapping[str, str]


class Evaluator(Protocol):
    """The compiled function of an :class:`Expression` (see :attr:`Expression.function`)."""

    def __call__(
        self, variables: Mapping[str, Any] | None = ..., now: datetime | None = ...
    ) -> Any: ...


class Expression:
    """A checked, compiled expression. Immutable; safe to share between threads.

    >>> e = compile_expression("order.amount < 300 && !order.shipped",
    ...                        declarations={"order.amount": "money", "order.shipped": "bool"})
    >>> e.evaluate({"order": {"amount": 128, "shipped": False}})
    True
    """

    __slots__ = (
        "_function",
        "_hash",
        "_interp",
        "_offset",
        "checked",
        "declarations",
        "python_source",
        "source",
    )

    def __init__(
        self, checked: CheckedExpr, declarations: Declarations | None, *, embedded: bool = False
    ) -> None:
        """``embedded``: the expression is part of a larger source (a rule file);
        its ``source`` is then its own text, and serialized spans are relative to it."""
        self.checked = checked
        if embedded:
            self.source = checked.source.snippet(checked.root.span)
            self._offset = checked.root.span.start
        else:
            self.source = checked.source.text
            self._offset = 0
        self.declarations = dict(declarations) if declarations is not None else None
        self._hash: str | None = None
        self._interp = Interpreter(checked)
        self.python_source: str | None = None
        # Generated on first use, so checking a policy never pays for code it does not run.
        self._function: Evaluator | None = None

    def evaluate(
        self, variables: Mapping[str, Any] | None = None, now: datetime | None = None
    ) -> Any:
        """The value of the expression for ``variables`` at time ``now``.

        ``variables`` maps top-level names to plain Python values (None: no
        variables); ``now`` is an aware datetime, needed only if the expression
        reads ``now`` or ``since()``. Raises :class:`EvaluationError` when the
        expression fails. The Python code is generated on the first call (or by
        :meth:`compile`).
        """
        function = self._function
        if function is None:
            function = self._generate()
        return function(variables, now)

    @property
    def function(self) -> Evaluator:
        """The compiled function itself: ``function(variables, now=None)`` gives what
        :meth:`evaluate` gives (the same values, the same errors) without the method
        call in between. Fetch it once for a hot loop (the engine does); reading it
        generates the code if that was not done yet."""
        function = self._function
        return function if function is not None else self._generate()

    def compile(self) -> None:
        """Generate and compile the Python code now (otherwise done on first evaluate)."""
        if self._function is None:
            self._generate()

    def _generate(self) -> Evaluator:
        # Imported on first use: checking a policy compiles none of its conditions.
        from rulekit.expr import codegen

        function, self.python_source = codegen.build(self.checked, self._slow, self._interp.stopped)
        self._function = function
        return function

    @property
    def hash(self) -> str:
        """Content hash of the source, declarations and checked tree (``sha256:...``)."""
        if self._hash is None:
            self._hash = _content_hash(
                self.source, self.declarations, self._tree(), _rules_data(self.checked.time_rules)
            )
        return self._hash

    def _tree(self) -> dict[str, Any]:
        tree: dict[str, Any] = ast.shift_json(ast.to_json(self.checked.root), -self._offset)
        return tree

    @property
    def type(self) -> Type:
        """The static type of the result (``dyn`` when it depends on untyped values)."""
        return self.checked.type

    @property
    def cost(self) -> tuple[int, int]:
        """The estimated (min, max) cost of one evaluation (see docs/expressions.md, "Cost").

        >>> compile_expression("[1, 2, 3].all(x, x > 0)").cost
        (4, 13)
        """
        return self.checked.cost.min, self.checked.cost.max

    @property
    def cost_limit(self) -> int:
        """The limit the estimate was checked against; also each evaluation's budget."""
        return self.checked.cost_limit

    @property
    def variables(self) -> frozenset[str]:
        """The top-level names the expression reads from its variables."""
        return self.checked.variables

    def _slow(self, variables: Any, now: Any) -> Any:
        if variables is None:
            variables = {}
        elif not isinstance(variables, Mapping):
            raise EvaluationError(
                f"variables must be a mapping of names to values, not {type(variables).__name__}",
                source=self.source,
            )
        if now is not None and not isinstance(now, datetime):
            raise EvaluationError(
                f"now must be a datetime, not {type(now).__name__}", source=self.source
            )
        return self._interp.evaluate(variables, now)

    def explain(
        self, variables: Mapping[str, Any] | None = None, *, now: datetime | None = None
    ) -> Explanation:
        """The value with a trace of each clause and the values it read.

        Never raises for evaluation errors: they are in ``.error`` and in the
        clauses that failed.
        """
        if variables is not None and not isinstance(variables, Mapping):
            raise EvaluationError(
                "variables must be a mapping of names to values", source=self.source
            )
        return self._interp.explain(variables or {}, now)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: source, declarations, checked AST and content hash
        (and the cost limit, when it is not the default)."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "source": self.source,
            "declarations": self.declarations,
            "hash": self.hash,
            "ast": self._tree(),
        }
        if self.cost_limit != DEFAULT_COST_LIMIT:
            out["cost_limit"] = self.cost_limit
        rules = _rules_data(self.checked.time_rules)
        if rules is not None:  # only when given: other expressions serialize as before
            out["time_rules"] = rules
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Expression:
        """Re-create an expression from :meth:`to_dict` output without re-parsing.

        Raises :class:`CompileError` if the data is not a valid serialized expression.
        """
        source_text = data.get("source") if isinstance(data, Mapping) else None
        src = Source(source_text if isinstance(source_text, str) else "", "<serialized expression>")

        def fail(message: str) -> CompileError:
            return CompileError([diag.make("RK0501", message, src, Span(0, 0))])

        fmt = data.get("format") if isinstance(data, Mapping) else None
        if isinstance(fmt, str) and fmt != FORMAT and fmt.startswith("rulekit.expr.expression/"):
            raise fail(
                f"a serialized expression of format {fmt!r}, which this rulekit does not read "
                f"(it reads {FORMAT!r}): compile its source again"
            )
        if not isinstance(data, Mapping) or fmt != FORMAT or not isinstance(source_text, str):
            raise fail(f"not a serialized rulekit expression (expected format {FORMAT!r})")
        decls = data.get("declarations")
        if decls is not None and not (
            isinstance(decls, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in decls.items())
        ):
            raise fail("declarations must map names to type names")
        ids = itertools.count(1)
        try:
            root = ast.from_json(data.get("ast"), lambda: next(ids))
        except ast.ASTFormatError as e:
            raise fail(str(e)) from None
        try:
            rules = _rules_from_data(data.get("time_rules"))
        except (ValueError, TypeError, KeyError) as e:
            raise fail(f"time_rules: {e}") from None
        if data.get("hash") != _content_hash(
            source_text, decls, data.get("ast"), data.get("time_rules")
        ):
            raise fail(
                "content hash does not match the source, declarations and tree (edited by hand?)"
            )
        limit = data.get("cost_limit", DEFAULT_COST_LIMIT)
        if type(limit) is not int or not 1 <= limit <= MAX_COST_LIMIT:
            raise fail(f"cost_limit must be an integer from 1 to {MAX_COST_LIMIT}")
        return _check_and_build(src, root, decls, cost_limit=limit, time_rules=rules)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_from_dict_for_pickle, (self.to_dict(),))


def _from_dict_for_pickle(data: dict[str, Any]) -> Expression:
    return Expression.from_dict(data)


def _content_hash(
    source: str, declarations: Mapping[str, str] | None, tree: Any, rules: Any = None
) -> str:
    body = {
        "source": source,
        "declarations": dict(declarations) if declarations is not None else None,
        "ast": tree,
    }
    if rules is not None:  # a zone or calendars given: part of what the expression means
        body["time_rules"] = rules
    return canonical.content_hash(body)


def _rules_data(rules: cal.TimeRules) -> dict[str, Any] | None:
    """A standalone expression's zone and calendars as data; None for the default (UTC)."""
    if rules.zone == "UTC" and not rules.calendars:
        return None
    return {
        "timezone": rules.zone,
        "calendars": [{"name": c.name, **c.to_data()} for c in rules.calendars],
    }


def _rules_from_data(data: Any) -> cal.TimeRules | None:
    """:func:`_rules_data` read back, checked as a calendar file is."""
    if data is None:
        return None
    if not isinstance(data, Mapping) or not isinstance(data.get("timezone"), str):
        raise ValueError("expected {timezone: NAME, calendars: [...]}")
    try:
        tz = stdlib.time_zone(data["timezone"])
    except stdlib.CelError as e:
        raise ValueError(str(e)) from None
    calendars = data.get("calendars", [])
    if not isinstance(calendars, list):
        raise ValueError("calendars must be a list")
    found = []
    for c in calendars:
        if not isinstance(c, Mapping) or not _NAME.fullmatch(str(c.get("name"))):
            raise ValueError("a calendar needs a name")
        found.append(cal.calendar_from_data(c["name"], {k: v for k, v in c.items() if k != "name"}))
    return cal.TimeRules(data["timezone"], tz, tuple(found))


def _check_and_build(
    src: Source,
    root: ast.Expr,
    declarations: Declarations | None,
    earlier: Sequence[Diagnostic] = (),
    *,
    cost_limit: int,
    time_rules: cal.TimeRules | None = None,
) -> Expression:
    env = None
    if declarations is not None:
        try:
            env = _environment(tuple(declarations.items()))
        except DeclarationError as e:
            raise CompileError(
                [diag.make("RK0206", f"declaration `{e.name}`: {e.message}", src, Span(0, 0))],
            ) from None
    checked, problems = check(root, src, env, cost_limit=cost_limit, time_rules=time_rules)
    problems = sorted([*earlier, *problems], key=diag.sort_key)
    if problems:
        raise CompileError(problems, diag.render_all(problems, {src.file: src}))
    return Expression(checked, declarations)


_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*\Z")


@lru_cache(maxsize=256)
def _environment(items: tuple[tuple[str, str], ...]) -> Mapping[str, Type]:
    """Declarations -> types, once per distinct set (a policy compiles many guards against one)."""
    return MappingProxyType(build_environment(dict(items), qualified=True))


def parse_and_check(
    source: str | Source,
    declarations: Declarations | None = None,
    *,
    cost_limit: int = DEFAULT_COST_LIMIT,
    time_rules: cal.TimeRules | None = None,
) -> Expression:
    """Uncached compile (see :func:`compile_expression`)."""
    src = source if isinstance(source, Source) else Source(source)
    result = parser.parse(src)
    if result.ast is None:
        raise CompileError(result.diagnostics, diag.render_all(result.diagnostics, {src.file: src}))
    return _check_and_build(
        src,
        result.ast,
        declarations,
        result.diagnostics,
        cost_limit=cost_limit,
        time_rules=time_rules,
    )


@lru_cache(maxsize=4096)
def _cached(
    source: str,
    decl_items: tuple[tuple[str, str], ...] | None,
    cost_limit: int,
    time_rules: cal.TimeRules | None,
) -> Expression:
    return parse_and_check(
        source,
        dict(decl_items) if decl_items is not None else None,
        cost_limit=cost_limit,
        time_rules=time_rules,
    )


def standalone_time_rules(
    timezone: str | None = None, calendars: Mapping[str, str | os.PathLike[str]] | None = None
) -> cal.TimeRules | None:
    """The zone and working-day calendars a standalone condition counts calendar time in:
    ``timezone`` an IANA name or an offset (default UTC), ``calendars`` names and the
    paths of calendar files (docs/time.md). None when neither is given. Raises
    ValueError naming what is wrong; OSError when a file cannot be read."""
    if timezone is None and not calendars:
        return None
    try:
        tz = stdlib.time_zone(timezone) if timezone is not None else stdlib.DEFAULT_TIME_RULES.tz
    except stdlib.CelError as e:
        raise ValueError(f"timezone: {e}") from None
    found = []
    for name, path in (calendars or {}).items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"calendar name {name!r}: a calendar is named like a variable (cn)")
        try:
            found.append(cal.read_file(name, read_text(Path(path))))
        except cal.CalendarError as e:
            raise ValueError(f"calendar {name} ({path}): {e}") from None
    return cal.TimeRules(timezone or "UTC", tz, tuple(found))


def compile_expression(
    source: str,
    declarations: Declarations | None = None,
    *,
    cost_limit: int = DEFAULT_COST_LIMIT,
    timezone: str | None = None,
    calendars: Mapping[str, str | os.PathLike[str]] | None = None,
) -> Expression:
    """Parse, type-check (when ``declarations`` are given) and compile a CEL expression.

    ``declarations`` maps names to type names (``{"order.amount": "money"}``);
    without it every name is dynamically typed. Compiling the same source and
    declarations again returns the cached :class:`Expression`.
    ``cost_limit`` bounds what one evaluation may cost: an expression whose
    estimated cost may exceed it is an RK0210 error, and an evaluation that
    goes over it stops with an :class:`EvaluationError` (docs/expressions.md, "Cost").
    ``timezone`` (an IANA name, default UTC) is where calendar periods and local dates
    count, as a policy's ``timezone`` is; ``calendars`` maps names to calendar files for
    working days (docs/time.md). Raises :class:`CompileError` listing every problem
    found; ValueError for a bad argument (an unknown zone, a calendar that is not one).

    >>> compile_expression("since(order.paid_at) <= 6h", {"order.paid_at": "time"}).type
    Type(kind='bool', params=(), name='', fields=())
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, not {type(source).__name__}")
    if type(cost_limit) is not int or not 1 <= cost_limit <= MAX_COST_LIMIT:
        raise ValueError(
            f"cost_limit must be an int from 1 to {MAX_COST_LIMIT}, not {cost_limit!r}"
        )
    key = None
    if declarations is not None:
        key = tuple(sorted((str(k), str(v)) for k, v in declarations.items()))
    return _cached(source, key, cost_limit, standalone_time_rules(timezone, calendars))
