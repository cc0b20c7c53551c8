"""Compile time of many distinct conditions, and a cross-check of what they compute.

``rulekit.expr.expression.parse_and_check`` is used, not ``compile_expression``, so
the expression cache never answers. Two figures: parse + check alone (code
generation is deferred to first use), timed in alternation with its baseline, Lark
alone parsing the same text with the same grammar (the floor of any parser built on
Lark), and the same plus ``.compile()`` (the full Python code generation). Each generated condition must check; each is
then evaluated on random facts by its generated code and by the reference
interpreter (``explain``), which must agree.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import lark

import rulekit
import rulekit.expr.expression
from benchmarks.conditions import DECLARATIONS, generate, random_facts, shape
from benchmarks.measure import alternating_best, best_batch_time
from benchmarks.workload import FAST_REFUND, FAST_REFUND_DECLARATIONS
from rulekit.core.grammars import grammar_text


@dataclass
class CompileMany:
    count: int
    shapes: int
    #: Mean length of a condition, in characters.
    mean_chars: float
    #: Seconds for all conditions (best repetition): parse + check.
    check_seconds: float
    #: Seconds for all conditions (best repetition): parse + check + .compile().
    full_seconds: float
    #: Seconds for Lark alone to parse all conditions (best repetition, timed in
    #: alternation with parse + check): the same grammar into Lark's own parse tree, with
    #: Lark's own contextual lexer and no rulekit callbacks, so the floor of a Lark parser.
    lark_seconds: float = 0.0
    check_reps: int = 0
    full_reps: int = 0
    #: (source, first line of the error) of conditions that did not compile.
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: Evaluations cross-checked, how many of them ended in an evaluation error.
    crosschecked: int = 0
    errors: int = 0
    #: Descriptions of evaluations where generated code and interpreter disagree.
    disagreements: list[str] = field(default_factory=list)


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _crosscheck(
    expr: rulekit.Expression, facts: list[dict[str, Any]], now: datetime, out: CompileMany
) -> None:
    for variables in facts:
        out.crosschecked += 1
        explained = expr.explain(variables, now=now)
        try:
            value: Any = expr.evaluate(variables, now=now)
            error = None
        except rulekit.EvaluationError as e:
            value, error = None, str(e)
        if (error is None) != (explained.error is None):
            out.disagreements.append(
                f"{expr.source}\n    generated code: {error or repr(value)}\n"
                f"    interpreter:    {explained.error or repr(explained.value)}"
            )
        elif error is None and not _same(value, explained.value):
            out.disagreements.append(
                f"{expr.source}\n    generated code: {value!r}\n    interpreter:    {explained.value!r}"
            )
        elif error is not None:
            out.errors += 1


def compile_many(
    count: int, seed: int, reps: int, min_time: float, now: datetime, facts_per_condition: int = 8
) -> CompileMany:
    sources = generate(count, seed)
    result = CompileMany(
        count=len(sources),
        shapes=len({shape(s) for s in sources}),
        mean_chars=sum(map(len, sources)) / len(sources),
        check_seconds=0.0,
        full_seconds=0.0,
    )

    # Warm-up on other conditions: builds the parser and fills the first-use caches.
    for source in [FAST_REFUND, *generate(20, seed + 1, exclude=frozenset(sources))]:
        decls = FAST_REFUND_DECLARATIONS if source == FAST_REFUND else DECLARATIONS
        rulekit.expr.expression.parse_and_check(source, decls).compile()

    # Every condition must check; the ones that do are evaluated both ways.
    rng = random.Random(seed)
    facts = [random_facts(rng, now) for _ in range(facts_per_condition)]
    for source in sources:
        try:
            expr = rulekit.expr.expression.parse_and_check(source, DECLARATIONS)
        except rulekit.CompileError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            result.failures.append((source, first))
            continue
        _crosscheck(expr, facts, now, result)

    def check_all() -> None:
        for source in sources:
            with contextlib.suppress(rulekit.CompileError):
                rulekit.expr.expression.parse_and_check(source, DECLARATIONS)

    def compile_all() -> None:
        for source in sources:
            with contextlib.suppress(rulekit.CompileError):
                rulekit.expr.expression.parse_and_check(source, DECLARATIONS).compile()

    bare = lark.Lark(grammar_text("cel.lark"), parser="lalr", lexer="contextual")

    def lark_all() -> None:
        for source in sources:
            with contextlib.suppress(lark.exceptions.UnexpectedInput):
                bare.parse(source)

    lark_all()  # Lark builds each state's scanner on first use
    (result.lark_seconds, result.check_seconds), result.check_reps = alternating_best(
        [lark_all, check_all], reps, min_time
    )
    result.full_seconds, result.full_reps = best_batch_time(compile_all, reps, min_time)
    return result
