"""Syntax error recovery: every syntax error of a text in one run, each reported once.

The parsers (conditions, :mod:`rulekit.expr.parser`; policies,
:mod:`rulekit.policy.parser`) first parse a text the fast way (Lark's own loop), which
stops at the first error. Only when that fails do they parse it again here, driving
Lark's interactive LALR parser token by token and repairing as the best compilers do:

- **insertion**: when one token (a closing bracket, a comma, `->`, a name) would let the
  parser take the token it choked on, it is inserted and the parse goes on;
- **panic mode**: otherwise tokens are skipped until one that starts a statement
  (:class:`Statements`: in a policy a declaration keyword, a transition or state keyword
  or a fact's name first on its line, or a `}` that closes a block the skipped tokens did
  not open; in a condition, the `and` or `or` that starts its next clause); the parser's
  stack is then popped back to a state that takes it, dropping the broken statement;
- **no cascades**: after an error, further errors are not reported until the parser has
  taken a token that starts a statement, so one mistake gives one diagnostic;
- **bounded**: at most :data:`MAX_ERRORS` are described (the last one notes how many more
  there were), each token is looked at a bounded number of times, and the work of
  popping and trying insertions is capped by a budget linear in the file's length.

Values the callbacks build from broken pieces become :data:`BROKEN`, which the parent's
callback passes on; a problem a callback finds in a node built from broken pieces is a
follow-on and not reported. The tree of a text with syntax errors is never used: the
checker runs only on texts that parse (docs/diagnostics.md, "Every syntax error, once").

Everything a parse needs lives in one :class:`_Recovery`, made for that parse: many
documents may be parsed at once.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import lark
from lark import Token
from lark.parsers.lalr_analysis import Shift

from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.source import Source
from rulekit.expr.parser import Problem, current

#: The most syntax errors described for one file; the last one says how many more there were.
MAX_ERRORS = 100
#: The work recovery may do (popping, trying insertions, describing) per character of
#: the text, and on top of that: beyond it, it stops and says so.
WORK_PER_CHARACTER = 64
WORK_BASE = 100_000


class _Broken:
    """The value of a piece of the tree built from broken input (see :data:`BROKEN`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "BROKEN"


#: What a callback returns when its input was broken or it found a problem in it.
BROKEN: Final = _Broken()


@dataclass(frozen=True)
class Statements:
    """Where a grammar's statements start: what the parser resynchronizes on after an
    error, and what ends the silence after one. Blocks are `{ ... }` (the terminals
    LBRACE and RBRACE) in both grammars."""

    #: tokens that start a statement wherever they stand
    anywhere: frozenset[str]
    #: tokens that start one when they are the first on their line (elsewhere they may
    #: stand inside one: `every state`, a guard's `when`, `starts at open`, a name, or
    #: be a stray word in it: `on approve const -> b`)
    line_start: frozenset[str] = frozenset()
    #: of those, the ones that start a statement only where a block's items stand (a
    #: state that takes the block's `}` too: the `on expiry` that ends a clock's
    #: declaration is no statement of its own)
    in_blocks: frozenset[str] = frozenset()
    #: a keyword's text -> its terminal: a keyword where the parser, stuck at an error,
    #: expected none was read as a name (the contextual lexer); where it would start a
    #: statement, it is taken for the keyword it spells
    keywords: Mapping[str, str] = field(default_factory=dict)


#: A condition's clauses: after an error, the next `and` or `or` starts afresh.
CLAUSES = Statements(
    frozenset({"AND", "OR", "ANDAND", "OROR"}), keywords={"and": "AND", "or": "OR"}
)

#: Tokens tried, in this order, as the one missing before the token the parser choked on.
_INSERTIONS = ("RPAR", "RSQB", "RBRACE", "COMMA", "ARROW", "COLON", "IDENT")


def parse(
    parser: lark.Lark,
    source: Source,
    describe: Callable[[lark.exceptions.UnexpectedInput, Source], Diagnostic],
    statements: Statements,
) -> list[Diagnostic]:
    """The syntax errors of ``source``, each described by ``describe``, found by parsing
    it with recovery, resynchronizing where ``statements`` start, and the problems the
    callbacks recovered from (at most :data:`MAX_ERRORS` in all). Run it inside
    :func:`rulekit.expr.parser.parsing`: the callbacks read and add to its context."""
    recovery = _Recovery(parser, source, describe, statements)
    recovery.run()
    return recovery.finish()


class _Recovery:
    """One parse with recovery: the parser, what was reported, and the repair state."""

    def __init__(
        self,
        parser: lark.Lark,
        source: Source,
        describe: Callable[[lark.exceptions.UnexpectedInput, Source], Diagnostic],
        statements: Statements,
    ) -> None:
        self.source, self.describe, self.statements = source, describe, statements
        #: the problems the callbacks recovered from, in the parse's context
        self.recovered = current().recovered
        self.ip = parser.parse_interactive(source.text)
        state = self.ip.parser_state
        conf = copy.copy(state.parse_conf)
        conf.callbacks = {rule: self._guarded(cb) for rule, cb in conf.callbacks.items()}
        state.parse_conf = conf
        self.state = state
        self.states: dict[Any, dict[str, tuple[Any, Any]]] = conf.states
        self.found: list[Diagnostic] = []
        self.hidden = 0
        #: errors are not reported until a token that starts a statement is taken
        self.quiet = False
        #: tokens are skipped until one that starts a statement fits the parser's stack
        self.panic = False
        #: `{` skipped in panic mode and not yet closed: their `}` are skipped too
        self.skipped_braces = 0
        #: token types that fit nowhere on the stack as it is (it does not change in panic)
        self.unfit: set[str] = set()
        #: the line the previous token ended on (a token on a later one is first on its line)
        self.line = 0
        #: the work left for popping, trying insertions and describing errors
        self.budget = WORK_PER_CHARACTER * len(source.text) + WORK_BASE

    # -- callbacks ----------------------------------------------------------------------
    def _guarded(self, callback: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``callback`` made total: a problem it finds is reported (unless its input was
        broken, or an error was just reported: a follow-on), and any failure on broken
        input gives :data:`BROKEN`. What it recovers from after an error (`=` read as
        `==` where a repair put it) is dropped too."""
        recovered = self.recovered

        def call(children: Any) -> Any:
            quiet, size = self.quiet, len(recovered)
            try:
                return callback(children)
            except Problem as p:
                if not quiet and not _broken(children):
                    self.report(
                        partial(diag.make, p.code, p.message, self.source, p.span, help=p.help)
                    )
                    self.quiet = True
                return BROKEN
            except Exception:
                if _broken(children) or self.found or self.hidden:
                    return BROKEN  # built from pieces a repair made up
                raise
            finally:
                if quiet:
                    del recovered[size:]

        return call

    # -- the parse ----------------------------------------------------------------------
    def run(self) -> None:
        """Lex and feed every token, repairing at each error, then the end of the input."""
        thread: Any = self.ip.lexer_thread  # (Lark leaves it untyped)
        tokens = thread.lex(self.state)
        last: Token | None = None
        while self.budget > 0:
            try:
                tok = next(tokens)
            except StopIteration:
                break
            except lark.exceptions.UnexpectedCharacters as e:
                self.unexpected_character(e)
                tokens = thread.lex(self.state)
                continue
            except lark.exceptions.UnexpectedToken as e:
                # a terminal of another parser state: the lexer has read past it
                e.interactive_parser = self.ip
                self.take(e.token, e)
                tokens = thread.lex(self.state)
                continue
            last = tok
            self.take(tok, None)
        if self.budget <= 0 or self.panic or self.quiet:
            return
        end = Token.new_borrow_pos("$END", "", last) if last else Token("$END", "", 0, 1, 1)
        try:
            self.state.feed_token(end, True)
        except lark.exceptions.UnexpectedToken as e:
            e.interactive_parser = self.ip
            self.report(partial(self.describe, e, self.source))

    def take(self, tok: Token, error: lark.exceptions.UnexpectedToken | None) -> None:
        """Feed ``tok`` (or handle ``error``, the lexer's, raised for it), repairing."""
        first_on_line = (tok.line or 0) > self.line
        self.line = tok.end_line or tok.line or 0
        if self.quiet and not self.panic and tok.type == "IDENT":
            # after an error, a keyword read as a name starts the next statement
            kind = self.starts_statement(tok, first_on_line)
            if kind is not None and kind != tok.type:
                self.panic, self.skipped_braces, self.unfit = True, 0, set()
        if self.panic:
            self.resync(tok, first_on_line)
            return
        if error is None:
            boundary = self.quiet and self.at_boundary()
            try:
                self.state.feed_token(tok)
            except lark.exceptions.UnexpectedToken as e:
                e.interactive_parser = self.ip
                error = e
            else:
                if self.quiet and self.speaks_again(tok, first_on_line, boundary):
                    self.quiet = False
                return
        if not self.quiet:
            self.budget -= len(self.state.state_stack) * 8
            self.report(partial(self.describe, error, self.source))
        self.quiet = True
        kind = self.starts_statement(tok, first_on_line)
        # (a keyword read as a name, first on its line, starts the next statement: no
        # insertion makes it a name again)
        if kind is None or kind == tok.type:
            inserted = self.insert(tok)
            if inserted is not None:
                made, boundary = inserted  # (a `}` made up may close a block for a stray word)
                speaks = made != "RBRACE" and self.speaks_again(tok, first_on_line, boundary)
                self.quiet = not speaks
                return
        self.panic, self.skipped_braces, self.unfit = True, 0, set()
        self.resync(tok, first_on_line)

    def at_boundary(self) -> bool:
        """Whether the parser stands where a block's items do (it would take their `}`)."""
        return "RBRACE" in self.states[self.state.state_stack[-1]]

    def speaks_again(self, tok: Token, first_on_line: bool, boundary: bool) -> bool:
        """Whether taking ``tok`` as it is, where the parser stood at a ``boundary`` of
        statements or not, ends the silence after an error: it starts a statement (one of
        a block's items at a boundary), and is not a `}` (which may end a block the
        mistake opened)."""
        kind = self.starts_statement(tok, first_on_line)
        if kind != tok.type or kind == "RBRACE":
            return False
        return kind not in self.statements.in_blocks or boundary

    def insert(self, tok: Token) -> tuple[str, bool] | None:
        """Insert the one token that lets the parser take ``tok`` (see :data:`_INSERTIONS`)
        and feed ``tok``: the token inserted, and whether the parser then stood at a
        boundary of statements (None: no insertion helps)."""
        choices = self.states[self.state.state_stack[-1]]
        for kind in _INSERTIONS:
            if kind in choices and self.fits([kind, tok.type]):
                made = Token.new_borrow_pos(kind, "", tok)
                try:
                    self.state.feed_token(made)
                    boundary = self.at_boundary()
                    self.state.feed_token(tok)
                except lark.exceptions.UnexpectedToken:  # pragma: no cover - fits() said so
                    return None
                return kind, boundary
        return None

    def resync(self, tok: Token, first_on_line: bool) -> None:
        """In panic mode: feed ``tok`` if it starts a statement and some state on the stack
        takes it (popping the states above), else skip it."""
        if tok.type == "LBRACE":
            self.skipped_braces += 1
            return
        if tok.type == "RBRACE" and self.skipped_braces:
            self.skipped_braces -= 1
            return
        kind = self.starts_statement(tok, first_on_line)
        if kind is None or kind in self.unfit:
            return
        stack, states, values = self.state.state_stack, self.states, self.state.value_stack
        left_open = False  # whether the states to pop hold a block's `{`
        for depth in range(len(stack) - 1, -1, -1):
            self.budget -= 1
            popped = getattr(values[depth], "type", None) if depth < len(values) else None
            if popped == "RBRACE":
                break  # a block the parser saw closed is not opened again
            left_open = left_open or popped == "LBRACE"
            choices = states[stack[depth]]
            if kind not in choices or (
                kind in self.statements.in_blocks and "RBRACE" not in choices
            ):
                continue  # what starts a line starts a statement where a block's `}` may stand
            if not self.fits([kind], depth + 1):
                continue
            del stack[depth + 1 :]
            del self.state.value_stack[depth:]
            retyped = tok if kind == tok.type else Token.new_borrow_pos(kind, str(tok), tok)
            try:
                self.state.feed_token(retyped)
            except lark.exceptions.UnexpectedToken:  # pragma: no cover - fits() said so
                return
            self.panic = False
            # What starts a statement speaks again; but a `}` may end a block the mistake
            # opened, and a statement outside a block left open may be a stray word in it.
            self.quiet = kind == "RBRACE" or left_open
            return
        self.unfit.add(kind)

    def starts_statement(self, tok: Token, first_on_line: bool) -> str | None:
        """The terminal ``tok`` stands for as the start of a statement (None: it starts none).

        A word followed by `.` or `(` is a name (`event.reason`), whatever the lexer made
        of it, and one followed by a letter is the start of a longer word (the stuck
        parser's lexer reads `as` in `assumption` when it takes `as` and no name). A
        keyword where the stuck parser expected no keyword was read as a name: where it
        would start a statement, it is taken for the keyword it spells."""
        kind, statements = tok.type, self.statements
        end = tok.end_pos or 0
        after = self.source.text[end : end + 1]
        named = after in (".", "(")  # (a fact's name is a name followed by a dot)
        if after.isalnum() or after == "_" or (named and kind != "IDENT"):
            return None
        if kind == "IDENT" and not named:
            keyword = statements.keywords.get(str(tok))
            if keyword in statements.anywhere or (
                first_on_line and keyword in statements.line_start
            ):
                return keyword
        if kind in statements.anywhere:
            return kind
        if not first_on_line:
            return None
        return kind if kind in statements.line_start else None

    def fits(self, kinds: list[str], height: int | None = None) -> bool:
        """Whether the parser, with its stack cut to ``height`` states, takes the tokens
        ``kinds`` in turn: simulated on the tables, the stack left as it is."""
        stack = self.state.state_stack
        base = len(stack) if height is None else height
        pushed: list[Any] = []
        states = self.states
        for kind in kinds:
            while True:
                self.budget -= 1
                top = pushed[-1] if pushed else stack[base - 1]
                action = states[top].get(kind)
                if action is None:
                    return False
                if action[0] is Shift:
                    pushed.append(action[1])
                    break
                size = len(action[1].expansion)
                from_pushed = min(size, len(pushed))
                del pushed[len(pushed) - from_pushed :]
                base -= size - from_pushed
                if base < 1:
                    return False
                top = pushed[-1] if pushed else stack[base - 1]
                pushed.append(states[top][action[1].origin.name][1])
        return True

    def unexpected_character(self, e: lark.exceptions.UnexpectedCharacters) -> None:
        """Report a character no token starts with and skip it (an unterminated string:
        the rest of its line)."""
        lexer_state: Any = self.ip.lexer_thread.state
        counter = lexer_state.line_ctr
        whole = lexer_state.text
        text = whole if isinstance(whole, str) else whole.text
        pos = counter.char_pos
        if not self.quiet and not self.panic:
            self.report(partial(self.describe, e, self.source))
        self.quiet = True
        skip = 1
        if text[pos] in "\"'":
            end = text.find("\n", pos)
            skip = max(1, (len(text) if end < 0 else end) - pos)
        counter.feed(text[pos : pos + skip])
        self.line = counter.line

    # -- what is reported ---------------------------------------------------------------
    def report(self, describe: Callable[[], Diagnostic]) -> None:
        """Keep the error ``describe`` says, or only count it past :data:`MAX_ERRORS`."""
        if len(self.found) < MAX_ERRORS:
            self.found.append(describe())
        else:
            self.hidden += 1

    def finish(self) -> list[Diagnostic]:
        """The errors found, with the problems the callbacks recovered from on the way
        (`=` for `==`, ...), in order; the last notes how many more were not shown, and
        whether recovery gave up (its budget spent)."""
        source = self.source
        recovered = [
            diag.make(p.code, p.message, source, p.span, help=p.help) for p in self.recovered
        ]
        found = sorted([*self.found, *recovered], key=diag.sort_key)
        hidden = self.hidden + max(0, len(found) - MAX_ERRORS)
        del found[MAX_ERRORS:]
        notes: list[str] = []
        if hidden:
            notes.append(f"{hidden} more syntax error{'s' * (hidden != 1)} not shown")
        if self.budget <= 0:
            notes.append("the file is too broken to look further: fix these errors first")
        if notes and found:
            found[-1] = dataclasses.replace(found[-1], notes=(*found[-1].notes, *notes))
        return found


def _broken(children: Any) -> bool:
    """Whether a callback's children hold :data:`BROKEN` (lists of them one level down)."""
    if not isinstance(children, list | tuple):
        return children is BROKEN
    return any(
        c is BROKEN or (isinstance(c, list | tuple) and any(x is BROKEN for x in c))
        for c in children
    )
