"""Finding 3 of issue #11: one regular expression stalled every write.

`'aaaaaaaaaaaaaaaaaaaaaaaaaaaa!'.matches('^(a+)+$')` took 14 s under Python's
backtracking `re`, and through a guard it held the store's write lock as long.
`matches` is now RE2: linear in the text, RE2's syntax, and none of the
constructs that need backtracking. Each test here failed on the old code: the
catastrophic patterns ran for minutes (the bound is generous, the point is that
it is bounded), the refused constructs were accepted or reported as RK0207, and
the valid RE2 was refused or matched wrongly.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

import rulekit
from rulekit import CompileError, EvaluationError, compile_expression
from rulekit.runtime import Engine

# Far above what RE2 needs (milliseconds), far below what backtracking needs.
BOUND_S = 2.0

CATASTROPHIC = ["^(a+)+$", "^(a|a)*$", "^(a|aa)+$", "^(a*)*b$", "(x+x+)+y"]
SUBJECTS = ["a" * 28 + "!", "a" * 10_000 + "!", "x" * 10_000]

GUARDED = """
policy sec.regex
facts {
  note: string
}
actors consumer
event comment(text: string) by consumer
workflow review {
  initial state open {
    on comment stay set note = event.text
    when note.matches("^(a+)+$") -> flagged
  }
  final state flagged
}
"""


@pytest.mark.parametrize("pattern", CATASTROPHIC)
@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: f"{len(s)}chars")
def test_catastrophic_pattern_is_bounded(pattern: str, subject: str) -> None:
    expr = compile_expression(f"s.matches({pattern!r})", {"s": "string"})
    for evaluate in (expr.evaluate, expr._interp.evaluate):
        start = time.monotonic()
        evaluate({"s": subject}, None)
        assert time.monotonic() - start < BOUND_S, (pattern, len(subject))


@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: f"{len(s)}chars")
def test_catastrophic_pattern_computed_at_run_time_is_bounded(subject: str) -> None:
    expr = compile_expression("s.matches(p)", {"s": "string", "p": "string"})
    start = time.monotonic()
    assert expr.evaluate({"s": subject, "p": "^(a+)+$"}) is False
    assert time.monotonic() - start < BOUND_S


@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: f"{len(s)}chars")
def test_catastrophic_pattern_in_a_guard_does_not_hold_the_step(subject: str) -> None:
    engine = Engine(rulekit.loads(GUARDED, "rk", filename="regex.rk"))
    at = datetime(2026, 3, 1, tzinfo=UTC)
    case = engine.open("review", {"note": ""}, at=at)
    start = time.monotonic()
    engine.send(case, "comment", "consumer", {"text": subject}, at=at)
    assert time.monotonic() - start < BOUND_S
    assert case.state.name == "open"
    engine.send(case, "comment", "consumer", {"text": "aaaa"}, at=at)
    assert case.state.name == "flagged"


# Constructs that need a backtracking matcher, and Python-only syntax: refused when the
# expression is checked (RK0209), with the caret on the construct inside the literal.
REFUSED = [
    ("atomic group", "a(?>b)", "(?>"),
    ("possessive quantifier", "a++", "++"),
    ("conditional", "(a)?(?(1)b|c)", "(?("),
    ("back-reference", r"(a)\1", r"\1"),
    ("named back-reference", "(?P<x>a)(?P=x)", "(?P"),
    ("lookahead", "a(?=b)", "(?="),
    ("negative lookahead", "a(?!b)", "(?!"),
    ("lookbehind", "(?<=a)b", "(?<="),
    ("negative lookbehind", "(?<!a)b", "(?<!"),
    ("Python end of text", r"b\Z", r"\Z"),
    ("repetition over 1000", "a{1001}", "{1001}"),
]


@pytest.mark.parametrize(("what", "pattern", "part"), REFUSED, ids=[r[0] for r in REFUSED])
def test_non_re2_literal_is_rk0209_pointing_into_the_literal(
    what: str, pattern: str, part: str
) -> None:
    text = f's.matches(r"{pattern}")'
    with pytest.raises(CompileError) as info:
        compile_expression(text, {"s": "string"})
    [d] = info.value.diagnostics
    assert d.code == "RK0209", what
    column = text.index(part, len('s.matches(r"')) + 1
    assert f"<expression>:1:{column}: error[RK0209]" in info.value.rendered, what


@pytest.mark.parametrize(("what", "pattern", "part"), REFUSED, ids=[r[0] for r in REFUSED])
def test_non_re2_pattern_at_run_time_is_an_evaluation_error(
    what: str, pattern: str, part: str
) -> None:
    expr = compile_expression("s.matches(p)", {"s": "string", "p": "string"})
    for evaluate in (expr.evaluate, expr._interp.evaluate):
        with pytest.raises(EvaluationError, match="invalid regular expression") as info:
            evaluate({"s": "ab", "p": pattern}, None)
        assert part in str(info.value), what


BACKTRACKING = REFUSED[:9]


@pytest.mark.parametrize(
    ("what", "pattern", "part"), BACKTRACKING, ids=[r[0] for r in BACKTRACKING]
)
def test_backtracking_constructs_say_why(what: str, pattern: str, part: str) -> None:
    with pytest.raises(CompileError) as info:
        compile_expression(f's.matches(r"{pattern}")', {"s": "string"})
    assert "help: RE2 has no backtracking constructs" in info.value.rendered, what


# Valid RE2 that the old code refused (RK0207) or answered wrongly.
VALID = [
    (r"^[[:alpha:]]+$", "Refund", True),
    (r"^[[:alpha:]]+$", "Refund1", False),
    (r"^\pL+$", "Mañana", True),
    (r"^\p{Greek}+$", "αβγ", True),
    (r"\p{Greek}", "abc", False),
    (r"^\PL+$", "123", True),
    (r"b\z", "ab", True),
    (r"^\Qa.b\E$", "axb", False),
    (r"\d", "٣", False),  # RE2's \d is ASCII; Python's re matched every script's digits
    ("a$", "a\n", False),  # RE2's $ is the end of the text; Python's re also matched before \n
]


@pytest.mark.parametrize(("pattern", "subject", "expected"), VALID)
def test_valid_re2(pattern: str, subject: str, expected: bool) -> None:
    expr = compile_expression(f's.matches(r"{pattern}")', {"s": "string"})
    for evaluate in (expr.evaluate, expr._interp.evaluate):
        assert evaluate({"s": subject}, None) is expected


def test_a_lone_surrogate_is_an_evaluation_error() -> None:
    expr = compile_expression('s.matches("a")', {"s": "string"})
    for evaluate in (expr.evaluate, expr._interp.evaluate):
        with pytest.raises(EvaluationError, match="not valid Unicode"):
            evaluate({"s": "\udfff"}, None)
