"""rulekit's lexer (rulekit.core.grammars.ContextualLexer) reads exactly what Lark's contextual
lexer reads: the same tokens with the same positions, and the same syntax errors, on
conditions and policies whole and broken (issue 14: it exists only to be faster)."""

from __future__ import annotations

import random
from typing import Any

import lark
import pytest

from rulekit.core.grammars import ContextualLexer, grammar_text
from support import ROOT, TESTS

CEL = grammar_text("cel.lark")
RULES = grammar_text("rules.lark") + "\n" + CEL
#: Pieces inserted into valid text to break it in the places where lexers differ: keywords
#: where names stand, numbers next to dots and units, quotes, comments, line breaks.
PIECES = [
    *"()[]{}.,!&|=<>-+*/%?:\"'\\ 0123456789abxyz_\n\t",
    " and ", "andx", " in", "inx", "not", "note", "true", "null", "state", "on", "->",
    "1h", "1h30m", "0x1F", "1u", "1.5", "1e3", ".5", "'''", '"""', 'r"', "b'", "\\x",
    "//c\n", "/* */", "\r\n", "µ", "9223372036854775808",
]  # fmt: skip


def _texts(rng: random.Random) -> list[tuple[str, str]]:
    """(start rule, text): the shipped policy, every golden input and mutants of them."""
    whole: list[tuple[str, str]] = [
        ("policy", (ROOT / "rules" / "kuaishou_after_sales.rk").read_text())
    ]
    whole += [
        ("policy", p.read_text()) for p in sorted((TESTS / "golden" / "policies").glob("*.rk"))
    ]
    whole += [
        ("start", p.read_text()) for p in sorted((TESTS / "golden" / "expressions").glob("*.cel"))
    ]
    out = list(whole)
    for _ in range(600):
        start, text = rng.choice(whole)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(text) + 1)
            if rng.random() < 0.3:
                text = text[:i] + text[i + rng.randint(1, 4) :]
            else:
                text = text[:i] + rng.choice(PIECES) + text[i:]
        out.append((start, text))
    return out


def _tokens(tree: Any) -> list[tuple[Any, ...]]:
    if isinstance(tree, lark.Token):
        return [(tree.type, str(tree), tree.start_pos, tree.line, tree.column, tree.end_line,
                 tree.end_column, tree.end_pos)]  # fmt: skip
    if isinstance(tree, lark.Tree):
        return [("tree", str(tree.data)), *(x for c in tree.children for x in _tokens(c))]
    return [repr(tree)]


def _outcome(parser: lark.Lark, text: str) -> Any:
    try:
        return _tokens(parser.parse(text))
    except lark.exceptions.UnexpectedInput as e:
        shown: list[Any] = [type(e).__name__, e.line, e.column, getattr(e, "pos_in_stream", None)]
        if isinstance(e, lark.exceptions.UnexpectedToken):
            shown += [_tokens(e.token), sorted(e.expected), sorted(e.interactive_parser.accepts())]
            shown += [[_tokens(t) for t in e.token_history or ()]]
        else:
            shown += [sorted(getattr(e, "allowed", None) or ())]
        return shown


@pytest.mark.parametrize("start", ["start", "policy"])
def test_reads_what_lark_s_contextual_lexer_reads(start: str) -> None:
    grammar = CEL if start == "start" else RULES
    ours = lark.Lark(
        grammar, parser="lalr", lexer=ContextualLexer, start=start, maybe_placeholders=True
    )
    larks = lark.Lark(
        grammar, parser="lalr", lexer="contextual", start=start, maybe_placeholders=True
    )
    texts = [text for s, text in _texts(random.Random(14)) if s == start]
    errors = 0
    for text in texts:
        expected = _outcome(larks, text)
        assert _outcome(ours, text) == expected, text
        errors += isinstance(expected[0], str)
    assert 100 < errors < len(texts)  # the mutants break it in many ways, not all of them
