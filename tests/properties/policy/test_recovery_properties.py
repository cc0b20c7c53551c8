"""Syntax error recovery (issue 16) on one token deleted or inserted anywhere in a valid
policy (the shipped ones, the test policies, the support-SLA example): checking never
raises; every position reported lies inside the file; a text the grammar rejects (Lark's
own parser, without rulekit, says so) has at least one error and no tree, and exactly
one when the token deleted or inserted is one of the policy's own (one mistake, one
diagnostic: no cascades).
"""

from __future__ import annotations

from functools import cache

import lark
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from rulekit.analysis import check_source
from rulekit.core.grammars import grammar_text
from support import ROOT

from .helpers import PROPS

SEEDS = sorted(
    [
        ROOT / "rules" / "kuaishou_after_sales.rk",
        ROOT / "examples" / "support_sla" / "support_sla.rk",
        *(ROOT / "tests" / "policies").glob("*.rk"),
    ]
)
_WORDS = (
    "{ } ( ) [ ] -> = == , : . + * and or not ! ? # state on when after emit set cite stay "
    'final initial const event by x 1 48h "s" "open'
)
#: Words and symbols of both languages, inserted where they may not belong.
VOCABULARY = _WORDS.split(" ")


@cache
def _grammar() -> lark.Lark:
    """The reference: Lark's own LALR parser of the two grammars, no rulekit code."""
    return lark.Lark(
        grammar_text("rules.lark") + "\n" + grammar_text("cel.lark"), start="policy", parser="lalr"
    )


@cache
def _seed(index: int) -> tuple[str, tuple[lark.Token, ...]]:
    text = SEEDS[index].read_text(encoding="utf-8")
    return text, tuple(_grammar().parse_interactive(text).iter_parse())


def _rejected(text: str) -> bool:
    try:
        _grammar().parse(text)
    except lark.exceptions.UnexpectedInput:
        return True
    return False


@st.composite
def one_token_changed(draw: st.DrawFn) -> tuple[str, bool]:
    """A valid policy with one token deleted, or one inserted before a token (another of
    its own, or a word of :data:`VOCABULARY`); and whether the token is the policy's own."""
    text, tokens = _seed(draw(st.integers(0, len(SEEDS) - 1)))
    at = draw(st.sampled_from(tokens))
    start, end = at.start_pos or 0, at.end_pos or 0
    how = draw(st.sampled_from(["delete", "repeat", "insert"]))
    if how == "delete":
        return text[:start] + text[end:], True
    word = (
        str(draw(st.sampled_from(tokens))) if how == "repeat" else draw(st.sampled_from(VOCABULARY))
    )
    return text[:start] + word + " " + text[start:], how == "repeat"


@settings(PROPS, max_examples=150)
@given(changed=one_token_changed())
def test_one_token_deleted_or_inserted_is_reported_once_in_place(
    changed: tuple[str, bool],
) -> None:
    text, own = changed
    result = check_source(text, "rk", "changed.rk")  # never raises
    lines = text.split("\n")
    for d in result.diagnostics:
        note(str(d))
        assert 1 <= d.line <= d.end_line <= len(lines)
        assert 1 <= d.column <= len(lines[d.line - 1]) + 1
        assert 1 <= d.end_column <= len(lines[d.end_line - 1]) + 2
    if not _rejected(text):
        return
    errors = [d for d in result.diagnostics if d.severity == "error"]
    event(f"{len(errors)} error(s)")
    assert errors and result.tree is None and result.policy is None
    if own:
        assert len(errors) == 1
