"""Finding the files the wheel carries, in a checkout or in an installed wheel.

The Lark grammars live in ``grammar/`` at the top of the repository, the example
policy in ``rules/``; the wheel carries them as ``rulekit/grammar/`` and
``rulekit/rules/`` (see pyproject.toml). An installed copy must never need a
checkout, so the package location is tried first.
"""

from __future__ import annotations

import copy
import hashlib
import os
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import lark

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the rulekit package


def shipped_dir(name: str, marker: str) -> Path:
    """The folder ``name`` (holding the file ``marker``), inside the package or the checkout."""
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent.parent / name):
        if (candidate / marker).is_file():
            return candidate
    raise RuntimeError(
        f"rulekit's {name} files are missing: reinstall the package "
        f"(looked in {_PACKAGE_DIR / name} and the repository's {name}/)"
    )


@cache
def grammar_dir() -> Path:
    return shipped_dir("grammar", "cel.lark")


def grammar_text(name: str) -> str:
    """The text of ``grammar/<name>``."""
    return (grammar_dir() / name).read_text(encoding="utf-8")


def cache_dir() -> Path | None:
    """Where built parsers are kept: ``$XDG_CACHE_HOME/rulekit`` (else ``~/.cache/rulekit``).

    None when there is no such place (no home directory): parsers are then built each time.
    """
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        root = Path(base) if base else Path.home() / ".cache"
    except RuntimeError:
        return None
    return root / "rulekit"


class ContextualLexer(lark.lexer.Lexer):
    """Lark's contextual lexer, token for token and error for error, with less work per token.

    As Lark's, it matches at each position only the terminals the parser's current state
    accepts (and the ignored ones), with Lark's own scanner for that set of terminals, so
    a keyword is read as a name where only a name can stand. It differs in what it does
    around each match: it yields no token object for whitespace and comments, and counts
    lines only across text that may hold a line break, instead of feeding every token to
    a line counter. When nothing matches, Lark's own lexers take over from that position,
    so every syntax error is raised exactly as Lark raises it. tests/test_lexer.py holds
    it to Lark's contextual lexer, token for token, on whole and broken texts.
    """

    __future_interface__ = 2  # lex() is given the lexer's and the parser's state

    def __init__(self, conf: Any) -> None:
        self._conf = conf
        self._ignore: frozenset[str] = frozenset(conf.ignore)
        self._by_accepts: dict[frozenset[str], tuple[Any, ...]] = {}
        self._by_state: dict[Any, tuple[Any, ...]] = {}
        self._root: Any = None

    def _scanner(self, parser_state: Any) -> tuple[Any, ...]:
        """(match, callbacks, newline types, Lark's lexer) of the parser's current state,
        built as Lark's contextual lexer builds it, once per set of accepted terminals."""
        state = parser_state.position
        accepts = frozenset(parser_state.parse_conf.states[state])
        entry = self._by_accepts.get(accepts)
        if entry is None:
            conf = copy.copy(self._conf)
            conf.terminals = [
                t for n in accepts | self._ignore if (t := conf.terminals_by_name.get(n))
            ]
            conf.skip_validation = True  # Lark checked every terminal when it built the parser
            lexer = lark.lexer.BasicLexer(conf)
            mres = lexer.scanner._mres
            match = mres[0].match if len(mres) == 1 else None
            entry = (match, lexer.callback, lexer.newline_types, lexer)
            self._by_accepts[accepts] = entry
        self._by_state[state] = entry
        return entry

    def lex(self, lexer_state: Any, parser_state: Any) -> Iterator[lark.Token]:
        whole = lexer_state.text  # a str (Lark 1.2) or a TextSlice (Lark 1.3)
        text, end = (whole, len(whole)) if isinstance(whole, str) else (whole.text, whole.end)
        counter = lexer_state.line_ctr
        pos, line, line_start = counter.char_pos, counter.line, counter.line_start_pos
        stack = parser_state.state_stack
        by_state, ignore, token = self._by_state, self._ignore, lark.Token
        while pos < end:
            entry = by_state.get(stack[-1]) or self._scanner(parser_state)
            match, callbacks, newline_types, lexer = entry
            m = match(text, pos, end) if match is not None else None
            if m is None:  # nothing matches here (or a scanner of several patterns): Lark's
                counter.char_pos, counter.line, counter.line_start_pos = pos, line, line_start
                counter.column = pos - line_start + 1
                yield from self._lark_from_here(lexer, lexer_state, parser_state)
                return
            kind, new = m.lastgroup, m.end()
            first_line, column = line, pos - line_start + 1
            if kind in newline_types:
                breaks = text.count("\n", pos, new)
                if breaks:
                    line += breaks
                    line_start = text.rindex("\n", pos, new) + 1
            if kind in ignore and kind not in callbacks:
                pos = new
                continue
            t = token(kind, m.group(), pos, first_line, column, line, new - line_start + 1, new)
            if kind in callbacks:
                t = callbacks[kind](t)
            pos = new
            if kind not in ignore:  # (an ignored token with a callback: called, then dropped)
                lexer_state.last_token = t
                yield t
        counter.char_pos, counter.line, counter.line_start_pos = pos, line, line_start
        counter.column = pos - line_start + 1

    def _lark_from_here(self, lexer: Any, lexer_state: Any, parser_state: Any) -> Iterator[Any]:
        """Lark's contextual lexer from the current position on (its errors included)."""
        if self._root is None:
            conf = copy.copy(self._conf)
            conf.skip_validation = True
            self._root = lark.lexer.BasicLexer(conf)
        try:
            while True:
                yield lexer.next_token(lexer_state, parser_state)
                lexer = self._scanner(parser_state)[3]
        except EOFError:
            return
        except lark.exceptions.UnexpectedCharacters as e:
            # Lark's contextual lexer: a terminal of another state here is an unexpected
            # token (a better message); nothing at all is the unexpected character.
            try:
                last = lexer_state.last_token
                tok = self._root.next_token(lexer_state, parser_state)
            except lark.exceptions.UnexpectedCharacters:
                raise e from None
            raise lark.exceptions.UnexpectedToken(  # type: ignore[no-untyped-call]
                tok,
                e.allowed,
                state=parser_state,
                token_history=[last],
                terminals_by_name=self._root.terminals_by_name,
            ) from None


def lalr_parser(name: str, grammar: str, **options: Any) -> lark.Lark:
    """A Lark LALR parser for ``grammar`` with :class:`ContextualLexer`, built once per
    install and then loaded from disk.

    Building the tables takes 60-150 ms per grammar, on every start of the CLI;
    loading them from Lark's cache takes a tenth of that. The file is named by the
    grammar's digest and the Lark and Python versions, so installs that share a home
    directory keep their own; Lark checks a digest of the grammar and options inside it,
    and rebuilds (silently) when the file is missing, stale, damaged or unwritable.
    """
    options = {"parser": "lalr", "lexer": ContextualLexer, **options}
    folder = cache_dir()
    if folder is None:
        return lark.Lark(grammar, **options)
    key = hashlib.sha256(
        f"{grammar}\0{lark.__version__}\0{sys.version_info[:2]}\0{ContextualLexer.__qualname__}".encode()
    ).hexdigest()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return lark.Lark(grammar, **options)
    return lark.Lark(grammar, cache=str(folder / f"{name}-{key[:16]}.lark"), **options)
