"""``rulekit fmt``: one layout for .rk files, keeping every comment and the author's grouping.

The policy is parsed (by the grammar :mod:`rulekit.policy.parser` uses, without its
callbacks) and printed again from its tokens, with comments put back where they were by
position, as gofmt and ``opa fmt`` do: a comment on the line of a token stays after it
(a trailing comment), a comment on lines of its own stays on its own lines before the
next token, at that token's indentation.

What the layout fixes: each declaration, fact, state, ``every`` block, clock and
transition starts a line, indented two spaces per block; one space between words (none
inside ``a.b``, ``f(x)``, before ``,`` ``:`` ``?``); runs of blank lines become one, and
there are none at the start or end of a block; a trailing comment is at least two spaces
after the code (further when the author put it further) and lines in a row with trailing
comments have them aligned. What it keeps, as gofmt does: where the author broke a
statement's line (between clauses, after a comma), the continuation indented two spaces
(a list's continuation lines align with its first element); and each expression byte for
byte, its own line breaks and comments included, since an expression's text is part of
the policy's content hash (so no line is wrapped: that is the author's to do).

:func:`format_checked` refuses a result that does not compile to the same content hash
(or, for a policy with errors, to the same errors) as the original.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

import lark
from lark import Token, Tree

from rulekit.core.diagnostics import Diagnostic
from rulekit.core.grammars import grammar_text, lalr_parser
from rulekit.core.source import Source
from rulekit.policy import CheckResult, artifact, compile_source, parser

__all__ = ["FormatError", "format_checked", "format_text"]

#: Each of these starts a line of its own.
_STATEMENTS = frozenset(
    [
        "header",
        "facts",
        "enum_decl",
        "const_decl",
        "condition_decl",
        "value_decl",
        "actors_decl",
        "event_decl",
        "effect_decl",
        "fragment",
        "workflow",
        "calendar_decl",
        "migrate_decl",
        "migrate_state",
        "migrate_set",
        "migrate_option",
        "fact_decl",
        "state",
        "every_block",
        "use_fragment",
        "clock_decl",
        "transition",
    ]
)
#: Blocks whose content is indented one level (an enum's braces hold one line).
_BLOCKS = frozenset(["facts", "fragment", "workflow", "state_body", "every_block", "migrate_decl"])
#: Lists whose continuation lines align with their first element.
_LISTS = frozenset(["set_facts", "migrate_set", "effect_args", "payload", "ident_list"])
_LIST_PUNCTUATION = frozenset(["SET", "LPAR", "RPAR", "COMMA"])
_NO_SPACE_BEFORE = frozenset(["COMMA", "RPAR", "COLON", "QMARK", "DOT", "LPAR"])
_NO_SPACE_AFTER = frozenset(["LPAR", "DOT"])
_NO_BREAK_BEFORE = frozenset(["COMMA", "COLON", "QMARK", "DOT", "LPAR", "LBRACE"])
_OPENING = frozenset(["LPAR", "LBRACE"])
_CLOSING = frozenset(["RPAR", "RBRACE"])
_COMMENT = re.compile(r"//[^\n]*")
_INDENT = "  "


class FormatError(Exception):
    """The file cannot be formatted: its syntax errors, or a formatting that would change it."""

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics or []


@dataclass
class _Unit:
    """A token of the policy language, or a whole expression (kept as written)."""

    start: int
    end: int
    text: str
    kind: str  # the token's type; EXPR for an expression
    statement: int | None = None  # the indent level of the statement it starts
    close: int | None = None  # the indent level of the block it closes
    continuation: int = 0  # the indent level of its statement's continuation lines
    list_id: int | None = None  # the list it is the first element of
    after_comma_of: int | None = None  # the list whose comma it follows


@dataclass
class _Line:
    indent: int
    text: str
    comment: str | None = None
    comment_gap: int = 0  # the spaces before the comment in the input


@dataclass
class _Printer:
    lines: list[_Line] = field(default_factory=list)
    list_columns: dict[int, int] = field(default_factory=dict)

    def newline(self, indent: int, blank: bool = False) -> None:
        if blank and self.lines and self.lines[-1].text:
            self.lines.append(_Line(0, ""))
        self.lines.append(_Line(indent, ""))

    def newline_at(self, column: int) -> None:
        self.lines.append(_Line(0, " " * column))

    def line_start(self) -> int:
        """The column where the text of the current line starts."""
        line = self.lines[-1]
        last = line.text.rsplit("\n", 1)[-1]
        if "\n" in line.text:
            return len(last) - len(last.lstrip(" "))
        return len(_INDENT) * line.indent + len(last) - len(last.lstrip(" "))

    def column(self) -> int:
        line = self.lines[-1]
        if "\n" in line.text:  # after an expression written on several lines
            return len(line.text.rsplit("\n", 1)[1])
        return len(_INDENT) * line.indent + len(line.text)

    def add(self, text: str, space: bool) -> None:
        line = self.lines[-1]
        if line.text and space:
            line.text += " "
        line.text += text

    def comment(self, text: str, gap: int) -> None:
        """A comment after the code of the current line (alone on it when there is none)."""
        line = self.lines[-1]
        if line.text:
            line.comment, line.comment_gap = text, gap
        else:
            line.text = text

    def render(self) -> str:
        out: list[str] = []
        run: list[int] = []
        rendered = [(_INDENT * ln.indent + ln.text) if ln.text else "" for ln in self.lines]

        def flush() -> None:
            # Trailing comments on lines in a row at one indentation: one column, each at
            # least two spaces after its code and as far as the author put it from it.
            if run:
                ends = {i: len(rendered[i].rsplit("\n", 1)[-1]) for i in run}
                col = max(ends[i] + max(2, self.lines[i].comment_gap) for i in run)
                for i in run:
                    rendered[i] += " " * (col - ends[i]) + str(self.lines[i].comment)
                run.clear()

        for i, ln in enumerate(self.lines):
            if ln.comment is not None:
                if run and self.lines[run[-1]].indent != ln.indent:
                    flush()
                run.append(i)
            else:
                flush()
        flush()
        out = [r.rstrip() for r in rendered]
        while out and not out[-1]:
            out.pop()
        return "\n".join(out) + "\n"


@cache
def _rule_names() -> frozenset[str]:
    text = grammar_text("rules.lark")
    names = re.findall(r"^\??([a-z_]+)\s*:", text, re.MULTILINE)
    return frozenset(names + re.findall(r"->\s*([a-z_]+)", text))


_tree_parser: lark.Lark | None = None


def parse_tree(text: str) -> Tree[Token]:
    global _tree_parser
    if _tree_parser is None:
        _tree_parser = lalr_parser(
            "fmt-tree",
            grammar_text("rules.lark") + "\n" + grammar_text("cel.lark"),
            start="policy",
            maybe_placeholders=False,
        )
    return _tree_parser.parse(text)


def tokens(node: Tree[Token]) -> list[Token]:
    return [t for t in node.scan_values(lambda v: isinstance(v, Token))]


def _units(tree: Tree[Token], text: str) -> list[_Unit]:
    """The policy's tokens in order, each expression as one unit, with their layout roles."""
    rules = _rule_names()
    units: list[_Unit] = []
    lists = 0

    def walk(node: Tree[Token], depth: int, cont: int) -> None:
        nonlocal lists
        first = len(units)
        if node.data in _STATEMENTS:
            cont = depth + 1
        list_id: int | None = None
        if node.data in _LISTS:
            lists += 1
            list_id = lists
        first_element = True
        for n, child in enumerate(node.children):
            inner = depth + 1 if node.data in _BLOCKS else depth
            if node.data == "clock_expiry" and n == 1:
                cont += 1  # `on expiry` starts a line of the clock's; its clauses go further
            k = len(units)
            if isinstance(child, Token):
                unit = _Unit(
                    child.start_pos or 0,
                    child.end_pos or 0,
                    re.sub(r"\s+", " ", str(child)),  # `rolled  to a working day`
                    child.type,
                    continuation=cont,
                )
                if child.type == "RBRACE" and node.data in _BLOCKS:
                    unit.close = depth
                units.append(unit)
            elif child.data in rules:
                walk(child, inner, cont)
            else:  # an expression, as written
                toks = tokens(child)
                start, end = toks[0].start_pos or 0, toks[-1].end_pos or 0
                units.append(_Unit(start, end, text[start:end], "EXPR", continuation=cont))
            is_element = not (isinstance(child, Token) and child.type in _LIST_PUNCTUATION)
            if list_id is not None and is_element and len(units) > k:
                if first_element:
                    units[k].list_id, first_element = list_id, False
                elif k and units[k - 1].kind == "COMMA":
                    units[k].after_comma_of = list_id
        if node.data in _STATEMENTS and len(units) > first:
            units[first].statement = depth

    walk(tree, 0, 1)
    return units


def _gap(text: str) -> list[tuple[int, str]]:
    """The whitespace and comments between two units: (line breaks before, comment) pairs,
    the last with an empty comment (the line breaks before the next unit)."""
    out: list[tuple[int, str]] = []
    pos = 0
    for m in _COMMENT.finditer(text):
        out.append((text.count("\n", pos, m.start()), m.group()))
        pos = m.end()
    out.append((text.count("\n", pos), ""))
    return out


def format_text(text: str) -> str:
    """``text`` (a policy that parses) laid out canonically."""
    units = _units(parse_tree(text), text)
    p = _Printer()
    p.lines.append(_Line(0, ""))
    prev: _Unit | None = None
    pos = 0
    openers: list[int] = []  # where the lines holding the open brackets start
    for unit in units:
        gap = _gap(text[pos : unit.start])
        # where the unit goes if it starts a line
        if unit.statement is not None:
            indent = unit.statement
        elif unit.close is not None:
            indent = unit.close
        else:
            indent = unit.continuation
        comment_indent = indent + 1 if unit.close is not None else indent
        fresh = prev is None or prev.kind == "LBRACE"  # no blank line first in a block
        broke = False
        for n, (breaks, comment) in enumerate(gap[:-1]):
            if n == 0 and breaks == 0 and prev is not None:
                p.comment(comment, text.index(comment, pos) - pos)
                continue
            if prev is not None or n > 0 or p.lines[-1].text:
                p.newline(comment_indent, blank=breaks > 1 and not fresh)
            else:
                p.lines[-1].indent = comment_indent
            p.add(comment, space=False)
            fresh = False
            broke = True
        breaks = gap[-1][0]
        if prev is None:
            if broke or p.lines[-1].text:
                p.newline(indent, blank=breaks > 1)
            p.lines[-1].indent = indent
            p.add(unit.text, space=False)
        elif unit.close is not None and prev.kind == "LBRACE" and not broke:
            p.add(unit.text, space=False)  # an empty block: `{}`
        elif unit.statement is not None or unit.close is not None:
            p.newline(indent, blank=breaks > 1 and not fresh and unit.close is None)
            p.add(unit.text, space=False)
        elif broke or len(gap) > 1 or (breaks and _may_break(prev, unit)):
            if unit.after_comma_of is not None and unit.after_comma_of in p.list_columns:
                p.newline_at(p.list_columns[unit.after_comma_of])
            elif unit.kind in _CLOSING and openers:
                p.newline_at(openers[-1])  # under the start of the line that opened it
            else:
                p.newline(indent)
            p.add(unit.text, space=False)
        else:
            space = unit.kind not in _NO_SPACE_BEFORE and prev.kind not in _NO_SPACE_AFTER
            p.add(unit.text, space=space)
        if unit.kind in _OPENING:
            openers.append(p.line_start())
        elif unit.kind in _CLOSING and openers:
            openers.pop()
        if unit.list_id is not None and "\n" not in unit.text:
            p.list_columns[unit.list_id] = p.column() - len(unit.text)
        prev = unit
        pos = unit.end
    for breaks, comment in _gap(text[pos:])[:-1]:
        if breaks == 0 and prev is not None and p.lines[-1].text:
            p.comment(comment, text.index(comment, pos) - pos)
        else:
            p.newline(0, blank=breaks > 1)
            p.add(comment, space=False)
    return p.render()


def _may_break(prev: _Unit, unit: _Unit) -> bool:
    """Whether the author's line break between two units is kept: not inside `a.b`, not
    before `,` `:` `?` `{` or a payload's `(`; after `(` and before `)` or an enum's `}`
    it is (a payload or arguments written one to a line)."""
    return unit.kind not in _NO_BREAK_BEFORE and prev.kind != "DOT"


def format_checked(text: str, filename: str) -> str:
    """``text`` formatted, after making sure the result means the same.

    Raises :class:`FormatError` with the diagnostics when the text does not parse, and
    when the formatted text would compile to another content hash (or, for a policy
    with errors, to other errors): a formatter bug must never change a policy.
    """
    source = Source(text, filename)
    tree, problems = parser.parse(source)
    errors = [d for d in problems if d.severity == "error"]
    if tree is None or errors:
        raise FormatError(f"{filename}: not formatted: it has syntax errors", errors)
    out = format_text(text)
    if out == text:
        return out
    before, after = compile_source(text, "rk", filename), compile_source(out, "rk", filename)
    if meaning(before) != meaning(after):
        what = "a different content hash" if before.policy is not None else "other errors"
        raise FormatError(
            f"{filename}: not formatted: the formatted policy would compile to {what} "
            "(a bug in rulekit fmt: please report it with this file)"
        )
    return out


def meaning(result: CheckResult) -> object:
    if result.policy is not None:
        return artifact.to_json(result.policy)["hash"]
    return [(d.code, d.message) for d in result.diagnostics]
