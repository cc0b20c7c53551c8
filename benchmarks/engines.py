"""The engines compared: the hand-written Python baseline, rulekit and its peers.

Each engine states the fast-refund condition in its own language and gets a
*batch runner*: a function from the plain records (and ``now``) to one result
per record. Whatever an engine needs beyond plain Python values (celpy's
``celtypes``, Zen's JSON-like values, rule-engine's ``now`` symbol) is built
inside the runner, so input conversion counts in its time.

Peers are optional: a peer that is not installed becomes a :class:`Missing`
row with the ``pip install`` command, never an error.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import rulekit
import rulekit.expr.expression
from benchmarks.workload import FAST_REFUND, FAST_REFUND_DECLARATIONS, Record

#: records, now -> one result per record.
Runner = Callable[[Sequence[Record], datetime], list[Any]]


@dataclass(frozen=True)
class Engine:
    """One row of the table: how to compile the condition and run it on records."""

    name: str
    version: str
    #: The fast-refund condition in this engine's language.
    source: str
    #: Source -> compiled object (this is what the compile column times).
    compile: Callable[[str], Any]
    #: Compiled object -> batch runner (the evals/s column times the runner).
    runner: Callable[[Any], Runner]
    #: An engine's result -> a plain Python value, for comparing with the baseline.
    normalize: Callable[[Any], Any]
    #: Ratio to the baseline: a target for rulekit, an earlier measurement for peers.
    target: float | None = None
    reference: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Missing:
    """A peer that is not installed (its row says how to install it)."""

    name: str
    package: str


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _identity(value: Any) -> Any:
    return value


# -- (a) the ceiling: hand-written Python compiled from a source string -------------

BASELINE_SOURCE = """\
def cond(v, now):
    return (
        v["shop"]["fast_refund_enabled"]
        and now - v["order"]["paid_at"] <= SIX_H
        and v["order"]["amount"] < 300
        and not v["order"]["shipped"]
    )
"""


def _baseline_compile(source: str) -> Callable[[Record, datetime], bool]:
    namespace: dict[str, Any] = {"SIX_H": timedelta(hours=6)}
    exec(compile(source, "<baseline>", "exec"), namespace)
    fn: Callable[[Record, datetime], bool] = namespace["cond"]
    return fn


def _baseline_runner(cond: Callable[[Record, datetime], bool]) -> Runner:
    def run(records: Sequence[Record], now: datetime) -> list[Any]:
        return [cond(r, now) for r in records]

    return run


def baseline() -> Engine:
    return Engine(
        name="(a) hand-written Python",
        version="",
        source=BASELINE_SOURCE,
        compile=_baseline_compile,
        runner=_baseline_runner,
        normalize=_identity,
        note="the condition written by hand as Python source, passed through compile(): the ceiling",
    )


# -- rulekit ------------------------------------------------------------------------


def _rulekit_compile(source: str) -> rulekit.Expression:
    # Uncached (parse + check) plus code generation, which evaluate would do lazily.
    expr = rulekit.expr.expression.parse_and_check(source, FAST_REFUND_DECLARATIONS)
    expr.compile()
    return expr


def _rulekit_runner(expr: rulekit.Expression) -> Runner:
    def run(records: Sequence[Record], now: datetime) -> list[Any]:
        return [expr.evaluate(r, now=now) for r in records]

    return run


def _rulekit_function_runner(expr: rulekit.Expression) -> Runner:
    def run(records: Sequence[Record], now: datetime) -> list[Any]:
        function = expr.function
        return [function(r, now) for r in records]

    return run


#: The goal for rulekit's evaluations, times (a) (issue 14).
RULEKIT_TARGET = 0.8


def rulekit_engines() -> list[Engine]:
    """Two rows: the method as documented, and the compiled function called as (a) is."""
    return [
        Engine(
            name="rulekit evaluate()",
            version=rulekit.__version__,
            source=FAST_REFUND,
            compile=_rulekit_compile,
            runner=_rulekit_runner,
            normalize=_identity,
            target=RULEKIT_TARGET,
            note="expr.evaluate(record, now=NOW) on the plain records, the documented call (a"
            " method, with `now` by keyword); compile = parse_and_check + .compile()",
        ),
        Engine(
            name="rulekit .function",
            version=rulekit.__version__,
            source=FAST_REFUND,
            compile=_rulekit_compile,
            runner=_rulekit_function_runner,
            normalize=_identity,
            target=RULEKIT_TARGET,
            note="f = expr.function (the compiled function evaluate() calls), then f(record, NOW)"
            " on the plain records: called as (a) is, positionally and without a method; what"
            " the engine does with its guards",
        ),
    ]


# -- cel-python ---------------------------------------------------------------------

CEL_SOURCE = (
    'shop.fast_refund_enabled && now - order.paid_at <= duration("6h")'
    " && order.amount < 300.0 && !order.shipped"
)


def _celpy_engines() -> list[Engine | Missing]:
    try:
        celpy: Any = importlib.import_module("celpy")
    except ImportError:
        return [Missing("cel-python", "cel-python")]
    celtypes: Any = celpy.celtypes
    json_to_cel: Callable[[Any], Any] = celpy.json_to_cel
    map_type, string_type, double_type = celtypes.MapType, celtypes.StringType, celtypes.DoubleType

    def to_cel(value: Any) -> Any:
        # json_to_cel, plus Decimal (CEL has no decimal type: money becomes a double).
        if isinstance(value, Mapping):
            return map_type({string_type(k): to_cel(v) for k, v in value.items()})
        if isinstance(value, Decimal):
            return double_type(float(value))
        return json_to_cel(value)

    def runner(program: Any) -> Runner:
        def run(records: Sequence[Record], now: datetime) -> list[Any]:
            cel_now = celtypes.TimestampType(now)
            out = []
            for r in records:
                activation = {name: to_cel(value) for name, value in r.items()}
                activation["now"] = cel_now
                out.append(program.evaluate(activation))
            return out

        return run

    def normalize(value: Any) -> Any:
        return bool(value) if isinstance(value, celtypes.BoolType) else value

    def make(name: str, runner_class: Any, reference: float | None, note: str) -> Engine:
        # celpy keeps one Lark parser per process (CELParser.CEL_PARSER), built with the
        # tree class of the first Environment's runner: a CompiledRunner cannot program
        # trees parsed for an InterpretedRunner. Each environment gets its own parser
        # (celpy documents resetting CEL_PARSER for this) and compiles with it.
        parser_class = celpy.celparser.CELParser
        parser_class.CEL_PARSER = None
        env = celpy.Environment(runner_class=runner_class)
        parser = parser_class.CEL_PARSER

        def compile_cel(source: str) -> Any:
            parser_class.CEL_PARSER = parser
            return env.program(env.compile(source))

        return Engine(
            name=name,
            version=_version("cel-python"),
            source=CEL_SOURCE,
            compile=compile_cel,
            runner=runner,
            normalize=normalize,
            reference=reference,
            note=note,
        )

    shared = (
        "each record converted with celtypes/json_to_cel inside the loop (amount as a double,"
        " CEL has no decimal); now is a variable"
    )
    return [
        make("cel-python", celpy.InterpretedRunner, 0.0014, f"default InterpretedRunner; {shared}"),
        make(
            "cel-python CompiledRunner",
            celpy.CompiledRunner,
            None,
            f"its transpile-to-Python runner, for comparison; {shared}",
        ),
    ]


# -- rule-engine --------------------------------------------------------------------

RULE_ENGINE_SOURCE = (
    'shop["fast_refund_enabled"] and now - order["paid_at"] <= t"PT6H"'
    ' and order["amount"] < 300 and not order["shipped"]'
)


def _rule_engine_engines() -> list[Engine | Missing]:
    try:
        rule_engine: Any = importlib.import_module("rule_engine")
    except ImportError:
        return [Missing("rule-engine", "rule-engine")]
    context = rule_engine.Context(resolver=rule_engine.resolve_item, default_timezone="utc")

    def runner(rule: Any) -> Runner:
        def run(records: Sequence[Record], now: datetime) -> list[Any]:
            # $now is rule-engine's wall clock, so the fixed now goes in as a symbol.
            return [rule.evaluate({**r, "now": now}) for r in records]

        return run

    return [
        Engine(
            name="rule-engine",
            version=_version("rule-engine"),
            source=RULE_ENGINE_SOURCE,
            compile=lambda source: rule_engine.Rule(source, context=context),
            runner=runner,
            normalize=_identity,
            reference=0.008,
            note=(
                'takes Decimal and datetime as they are; since() is written `now - paid_at <= t"PT6H"`'
                " with the fixed now added to each record inside the loop ($now reads the wall clock);"
                ' mapping["key"] access (dot access on dicts is deprecated in rule-engine 5)'
            ),
        )
    ]


# -- zen-engine -----------------------------------------------------------------------

ZEN_SOURCE = (
    'shop.fast_refund_enabled and d(order.paid_at).add("6h") >= d(now)'
    " and order.amount < 300 and not order.shipped"
)


def _json_like(value: Any) -> Any:
    """Plain Python -> the JSON-like values Zen takes (it rejects Decimal and datetime)."""
    if isinstance(value, Mapping):
        return {k: _json_like(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _zen_engines() -> list[Engine | Missing]:
    try:
        zen: Any = importlib.import_module("zen")
    except ImportError:
        return [Missing("zen-engine", "zen-engine")]

    def runner(expression: Any) -> Runner:
        def run(records: Sequence[Record], now: datetime) -> list[Any]:
            zen_now = now.isoformat()
            out = []
            for r in records:
                context = _json_like(r)
                context["now"] = zen_now
                out.append(expression.evaluate(context))
            return out

        return run

    return [
        Engine(
            name="zen-engine",
            version=_version("zen-engine"),
            source=ZEN_SOURCE,
            compile=zen.compile_expression,
            runner=runner,
            normalize=_identity,
            reference=0.08,
            note=(
                "zen.compile_expression(...).evaluate(context); each record converted inside the loop"
                " (times as ISO 8601 strings, amounts as floats); since() is written"
                ' `d(order.paid_at).add("6h") >= d(now)`'
            ),
        )
    ]


def all_engines() -> list[Engine | Missing]:
    """The baseline first, then rulekit, then the peers (installed or not)."""
    return [
        baseline(),
        *rulekit_engines(),
        *_celpy_engines(),
        *_rule_engine_engines(),
        *_zen_engines(),
    ]
