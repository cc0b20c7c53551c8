"""The editors' TextMate grammar (editors/vscode/syntaxes) keeps up with the language.

The grammar is tested by tokenizing in `./dev editors`, which needs Node.js; these checks
need only Python, so they run with every `./dev test`: a keyword, operator or function
added to grammar/*.lark or to the checker without its highlighting fails here, and so does
a keyword that would not end an embedded condition (its words would be read as CEL).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import lark
import pytest

from rulekit.core.grammars import grammar_text
from rulekit.expr.checker import _FUNCTIONS
from rulekit.expr.parser import MACROS
from support import ROOT

SYNTAXES = ROOT / "editors" / "vscode" / "syntaxes"
GRAMMARS: dict[str, dict[str, Any]] = {
    g["scopeName"]: g
    for g in (json.loads(p.read_text(encoding="utf-8")) for p in SYNTAXES.glob("*.tmLanguage.json"))
}
EMBEDDED = "meta.embedded.expression.cel"
#: Brackets open and close regions (begin/end rules), which the tokenizing tests check.
BRACKETS = {"LPAR", "RPAR", "LSQB", "RSQB", "LBRACE", "RBRACE"}


def _terminals(name: str) -> dict[str, str]:
    """A grammar's keywords and operators as written: terminal name -> text.

    A keyword of several words (`rolled to a working day`) is a regular expression with
    blanks between its words; it is written here with single spaces.
    """
    text = grammar_text("rules.lark") + "\n" + grammar_text("cel.lark")
    start = "policy" if name == "rules.lark" else "start"
    parser = lark.Lark(text, start=start, parser="lalr")
    own = set(re.findall(r"^([A-Z_]+)(?:\.\d+)?:", grammar_text(name), re.M))
    out = {}
    for t in parser.terminals:
        if t.name not in own or t.name in BRACKETS:
            continue
        if isinstance(t.pattern, lark.lexer.PatternStr):
            out[t.name] = t.pattern.value
        elif re.fullmatch(r"[a-z]+(?:\[ \\t\]\+[a-z]+)*", t.pattern.value):
            out[t.name] = t.pattern.value.replace(r"[ \t]+", " ")
    return out


def _rules(scope: str, key: str | None = None, seen: set[str] | None = None) -> Iterator[Any]:
    """Every rule reachable from a grammar's top (or one repository entry), following
    includes, in the order the tokenizer tries them."""
    seen = set() if seen is None else seen
    where = f"{scope}#{key}" if key else scope
    if where in seen:
        return
    seen.add(where)
    grammar = GRAMMARS[scope]
    yield from _walk(
        scope, grammar["repository"][key] if key else {"patterns": grammar["patterns"]}, seen
    )


def _walk(scope: str, rule: dict[str, Any], seen: set[str]) -> Iterator[Any]:
    yield rule
    for captures in (rule.get(c, {}) for c in ("captures", "beginCaptures", "endCaptures")):
        for capture in captures.values():
            yield from _walk(scope, capture, seen)
    for pattern in rule.get("patterns", []):
        yield from _walk(scope, pattern, seen)
    include = rule.get("include")
    if include in ("$self", "$base"):
        yield from _rules(scope, None, seen)
    elif include and include.startswith("#"):
        yield from _rules(scope, include[1:], seen)
    elif include:
        other, _, entry = include.partition("#")
        yield from _rules(other, entry or None, seen)


RK_RULES = list(_rules("source.rk"))


def _highlighted(text: str, families: tuple[str, ...]) -> list[str]:
    """The scopes of the reachable single-token rules that read `text` whole."""
    return [
        rule["name"]
        for rule in RK_RULES
        if "match" in rule
        and rule.get("name", "").startswith(families)
        and re.fullmatch(rule["match"], text)
    ]


@pytest.mark.parametrize(
    ("lark_file", "terminal", "text"),
    [(f, n, t) for f in ("rules.lark", "cel.lark") for n, t in sorted(_terminals(f).items())],
)
def test_every_keyword_and_operator_is_highlighted(
    lark_file: str, terminal: str, text: str
) -> None:
    """Wherever the contextual rules leave it, a keyword is still a keyword to the grammar."""
    words = re.fullmatch(r"[a-z_ ]+", text)
    families = (
        ("keyword.", "storage.", "constant.language.")
        if words
        else ("keyword.operator.", "punctuation.", "invalid.illegal.operator.")
    )
    assert _highlighted(text, families), (
        f"{lark_file}'s {terminal} ({text!r}) is not highlighted by the editor grammar: add it"
        " to a rule in editors/vscode/syntaxes/ (rk.tmLanguage.json's #keywords, or"
        " cel.tmLanguage.json's #operators), then run ./dev editors --update"
    )


def _embedded_regions() -> list[dict[str, Any]]:
    """The rules that embed CEL up to the next word of the policy language."""
    regions = [r for r in RK_RULES if r.get("contentName") == EMBEDDED]
    # A fact's default ends with its line too (or at `by`, `record`): `$` ends its end.
    return [r for r in regions if not r["end"].endswith("|$")]


def test_conditions_are_embedded_cel() -> None:
    """Every region of a condition holds the condition language's grammar, and only it."""
    regions = [r for r in RK_RULES if r.get("contentName") == EMBEDDED]
    assert _embedded_regions() and len(regions) > len(_embedded_regions())
    for region in regions:
        assert region["patterns"] == [{"include": "source.cel"}], region["begin"]


@pytest.mark.parametrize("keyword", sorted(_terminals("rules.lark").values()))
def test_every_keyword_ends_an_embedded_condition(keyword: str) -> None:
    """`when a > 1 emit x` is a condition and a clause; `event.emit` stays a field path."""
    if keyword.startswith(("rolled", "end of")):  # a deadline modifier, after a comma
        probe, at = f"x, {keyword}", 1
    else:
        probe, at = f"x {keyword} y", 2
    for region in _embedded_regions():
        end = re.compile(region["end"])
        assert end.match(probe, at), (region["begin"], keyword)
        if keyword.isidentifier():
            assert not end.match(f"x.{keyword} y", 2), (region["begin"], keyword)
            assert not end.match(f"{keyword}.x", 0), (region["begin"], keyword)


@pytest.mark.parametrize(
    ("name", "style"),
    sorted(
        [(n, s) for n, sigs in _FUNCTIONS.items() for s in {sig[0] for sig in sigs}]
        + [(m, "member") for m in MACROS]
        + [("has", "global")]
    ),
)
def test_every_function_is_highlighted_as_one(name: str, style: str) -> None:
    """The checker's functions and macros read as built-ins where they are called."""
    probes = {"global": [f"{name}(x)"], "member": [f".{name}(x)"]}
    probes["both"] = probes["global"] + probes["member"]
    entries = {"global": "calls", "member": "members"}
    for probe in probes[style]:
        entry = entries["member" if probe.startswith(".") else "global"]
        scopes = []
        for rule in (r for r in _rules("source.cel", entry) if "match" in r):
            m = re.match(rule["match"], probe)
            if m is None:
                continue
            named = {"0": rule.get("name")} | {
                k: v.get("name") for k, v in rule.get("captures", {}).items()
            }
            scopes = [
                s for k, s in named.items() if s and (m.group(int(k)) or "").lstrip(".") == name
            ]
            break  # the first rule that matches is the one the tokenizer takes
        assert any(s.startswith("support.function.") for s in scopes), (probe, scopes)
