"""``rulekit convert`` and the canonical YAML form: a policy printed in either form from its AST.

Both front ends build the same :mod:`rulekit.policy.ast`, so one tree prints as a .rk
file (then laid out by :mod:`rulekit.tools.formatter`) or as YAML in the one canonical
layout (which ``rulekit fmt`` also gives YAML policies). What the tree does not hold is
the comments: they are read from the text and attached to the *anchors* of the tree
(the header, each declaration, state, ``every`` block, ``use``, clock and transition),
by position:

- a comment on a line of its own goes before the next anchor (its *leading* comments);
  a blank line before it (or before the anchor) is kept as one;
- a comment after code goes after the anchor that starts on its line (its *trailing*
  comment); on a line that opens a block (``facts {``, ``transitions:``) it leads the
  block's first anchor, on any other line it trails the anchor above;
- comments after the last anchor end the file.

Comments inside an expression are part of its text and stay in it. The leading
comments of a top-level section's first entry are printed above the section (``facts
{``, ``constants:``), but for a ``rulekit: ignore`` directive, which stays on the entry
whose line it names. What cannot be carried is said by :attr:`Converted.dropped`: a
``//`` comment inside a YAML expression's string but outside the expression itself,
which the .rk form has no place for.

Every result is compiled again and refused unless it has the original's content hash
(:class:`ConvertError`), as ``rulekit fmt`` does: a printer bug never changes a policy.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import yaml

from rulekit.core.diagnostics import Diagnostic
from rulekit.policy import CheckResult, artifact, ast, compile_source
from rulekit.tools import formatter

__all__ = ["ConvertError", "Converted", "convert", "format_yaml_checked"]


class ConvertError(Exception):
    """The policy cannot be converted: its errors, or a result that would mean another thing."""

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics or []


@dataclass(frozen=True)
class Converted:
    """A converted policy: its text and the comments that could not be carried."""

    text: str
    #: (line, column, comment) of each comment of the input left out of ``text``
    dropped: list[tuple[int, int, str]]


# -- comments ------------------------------------------------------------------------------


@dataclass
class _Comment:
    pos: int
    body: str  # the text after `//` or `#`
    own_line: bool
    opens_block: bool  # the code before it on its line ends with `{` or `:`


@dataclass
class _Notes:
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)  # at most one
    blank: bool = False


_RK_COMMENT = re.compile(r"//([^\n]*)")
_YAML_COMMENT = re.compile(r"(?:^|(?<=[ \t]))#([^\n]*)", re.MULTILINE)


def _describe(text: str, pos: int, body: str) -> _Comment:
    line_start = text.rfind("\n", 0, pos) + 1
    code = text[line_start:pos].strip()
    return _Comment(pos, body.rstrip(), not code, code.endswith(("{", ":")))


def _rk_comments(text: str, tree: ast.Policy) -> list[_Comment]:
    """The comments of a .rk file outside expressions, from the gaps between its tokens."""
    tokens = formatter.tokens(formatter.parse_tree(text))
    inside = sorted((e.root.span.start, e.root.span.end) for e in _expressions(tree))
    starts = [s for s, _ in inside]
    out = []
    pos = 0
    for tok in [*tokens, None]:
        end = len(text) if tok is None else tok.start_pos or 0
        for m in _RK_COMMENT.finditer(text, pos, end):
            i = bisect.bisect_right(starts, m.start()) - 1
            if i >= 0 and inside[i][0] <= m.start() < inside[i][1]:
                continue  # part of an expression's text
            out.append(_describe(text, m.start(), m.group(1)))
        if tok is not None:
            pos = max(pos, tok.end_pos or 0)
    return out


def _yaml_comments(text: str) -> list[_Comment]:
    """The comments of a YAML file, from the gaps between the scanner's tokens."""
    out = []
    pos = 0
    for tok in [*yaml.scan(text, Loader=yaml.SafeLoader), None]:
        end = len(text) if tok is None else tok.start_mark.index
        if end > pos:
            for m in _YAML_COMMENT.finditer(text, pos, end):
                out.append(_describe(text, m.start(), m.group(1)))
        if tok is not None:
            pos = max(pos, tok.end_mark.index)
            if isinstance(tok, yaml.ScalarToken) and tok.style in ("|", ">"):
                # a comment after a block scalar's header (`when: |  # why`) is in its token
                start = tok.start_mark.index
                line_end = text.find("\n", start)
                header = _YAML_COMMENT.search(text[start : line_end if line_end >= 0 else None])
                if header is not None:
                    out.append(_describe(text, start + header.start(), header.group(1)))
    return out


def _expressions(tree: ast.Policy) -> Iterator[ast.ExprRef]:
    """Every expression of the tree (for the spans comments inside them lie in)."""
    stack: list[object] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.ExprRef):
            yield node
        elif isinstance(node, tuple):
            stack.extend(node)
        elif isinstance(node, ast.Located):
            stack.extend(getattr(node, f) for f in node.__dataclass_fields__)


def _anchors(tree: ast.Policy, extra: list[int]) -> list[tuple[int, int]]:
    """(position, id of node) of every node comments attach to, in the order of the text.
    ``extra``: more positions of the header (the YAML form's header keys)."""
    nodes: list[ast.Located] = [
        *tree.facts,
        *tree.enums,
        *tree.constants,
        *tree.conditions,
        *tree.events,
        *tree.effects,
        *tree.calendars,
        *tree.migrations,
    ]
    for w in (*tree.fragments, *tree.workflows):
        nodes.append(w.name)
        for part in w.parts:
            nodes.append(part)
            if isinstance(part, ast.State | ast.EveryBlock):
                nodes.extend(part.transitions)
    out = [(tree.name.span.start, id(tree))] + [(p, id(tree)) for p in extra]
    out += [(n.span.start, id(n)) for n in nodes]
    if tree.actors:
        out += [(a.span.start, id(tree.actors)) for a in tree.actors]
    return sorted(out)


def _attach(
    text: str, comments: list[_Comment], anchors: list[tuple[int, int]]
) -> dict[int, _Notes]:
    """Each comment attached to its anchor (the rules of the module's docstring), and which
    anchors have a blank line before them; key 0 holds the comments that end the file."""
    notes: dict[int, _Notes] = {}
    positions = [p for p, _ in anchors]
    line_of = _lines(text)
    for c in comments:
        i = bisect.bisect_right(positions, c.pos)  # anchors[i] is the next one
        target: int | None = None
        leading = True
        same_line = i > 0 and line_of(positions[i - 1]) == line_of(c.pos)
        if not c.own_line and i > 0 and (same_line or not c.opens_block):
            target, leading = anchors[i - 1][1], False
        if target is None:
            target = anchors[i][1] if i < len(anchors) else 0  # 0: the end of the file
        n = notes.setdefault(target, _Notes())
        # one trailing comment per anchor (the rest would run into it): more lead it
        (n.before if leading or n.after else n.after).append(c.body)
    # a blank line before an anchor (or before its leading comments)
    lines = text.split("\n")
    for pos, key in anchors:
        first = line_of(pos) - 1
        found = notes.get(key)
        count = len(found.before) if found else 0
        # walk up over the leading comment lines
        k = first - 1
        while k >= 0 and count and lines[k].strip().startswith(("//", "#")):
            k, count = k - 1, count - 1
        if k >= 0 and not lines[k].strip():
            notes.setdefault(key, _Notes()).blank = True
    return notes


def _is_directive(body: str) -> bool:
    """A comment that is a suppression directive (``rulekit: ignore ...``)."""
    return body.lstrip().startswith("rulekit:")


def _lines(text: str) -> _LineOf:
    """The 1-based line of an offset in ``text``."""
    return _LineOf([m.end() for m in re.finditer("\n", text)])


@dataclass
class _LineOf:
    breaks: list[int]

    def __call__(self, pos: int) -> int:
        return bisect.bisect_right(self.breaks, pos) + 1


# -- scalars -------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _plain_reads_as(text: str) -> str | None:
    """The tag YAML gives ``text`` written plain after ``k: `` (None: not as written)."""
    try:
        node = yaml.compose("k: " + text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
        return None
    value = node.value[0][1]
    if not isinstance(value, yaml.ScalarNode) or value.value != text or value.style:
        return None
    return str(value.tag).rsplit(":", 1)[-1]


#: The tags of plain scalars rulekit reads as their text, by kind of scalar (docs/language.md,
#: "YAML 1.1 pitfalls"): true/false are booleans, and an empty or `null` value is no text.
_READ_AS_WRITTEN = {
    "name": ("str",),
    "text": ("str", "int", "float", "timestamp"),
    "expr": ("str", "int", "float", "timestamp", "bool", "null"),
    "expr!": ("str", "int", "float", "timestamp", "bool"),  # where the schema takes no null
}
_NAME = re.compile(r"[A-Za-z_][\w.]*\??")
_FLOW_SAFE = re.compile(r"[A-Za-z_][\w.]*(\([\w.()]*\))?")


def _yaml_scalar(text: str, kind: str, indent: int) -> str:
    """``text`` as a YAML scalar at ``indent``: plain where YAML reads it as written (as
    text: a name, a type, a note; or, for an expression, any scalar but true/false/null),
    a literal block for several lines, else single-quoted (double-quoted, with escapes,
    when it holds a character that is not printable)."""
    if kind == "bool":
        return text
    if "\n" not in text and text == text.strip() and text:
        if _plain_reads_as(text) in _READ_AS_WRITTEN[kind]:
            return text
    elif "\n" in text and text and not text[0].isspace() and text == text.rstrip():
        pad = " " * (indent + 2)
        block = "|-\n" + "\n".join(pad + line if line else "" for line in text.split("\n"))
        try:
            node = yaml.compose("k: " + block.replace("\n" + pad, "\n  "), Loader=yaml.SafeLoader)
            if isinstance(node, yaml.MappingNode) and node.value[0][1].value == text:
                return block
        except yaml.YAMLError:
            pass
    if text.isprintable():
        return "'" + text.replace("'", "''") + "'"
    return json.dumps(text, ensure_ascii=False)


# -- the YAML form -------------------------------------------------------------------------


@dataclass
class _Scalar:
    text: str
    kind: str = "name"  # name (also a type), text, expr or bool


@dataclass
class _Map:
    entries: list[tuple[str, _Node, int | None]]  # key, value, id of the node it anchors
    flow: bool = False
    spaced: bool = False  # a blank line between entries (workflows, as in the .rk form)


@dataclass
class _Seq:
    items: list[tuple[_Node, int | None]]
    flow: bool = False


_Node = _Scalar | _Map | _Seq


def _names(names: tuple[ast.Name, ...], one_as_scalar: bool = False) -> _Node:
    if one_as_scalar and len(names) == 1:
        return _Scalar(names[0].text)
    return _Seq([(_Scalar(n.text), None) for n in names], flow=True)


class _YamlBuilder:
    def __init__(self, whole: bool) -> None:
        self.whole = whole

    def expr(self, e: ast.ExprRef, kind: str = "expr") -> _Scalar:
        """An expression's text; from YAML to YAML the whole string around it (its comments)."""
        if self.whole and e.source.host is not None:
            return _Scalar(e.source.text.strip(), kind)
        return _Scalar(e.text, kind)

    def policy(self, p: ast.Policy) -> _Map:
        top: list[tuple[str, _Node, int | None]] = [("policy", _Scalar(p.name.text), id(p))]
        for key, value in (("version", p.version), ("source", p.source_doc)):
            if value is not None:
                top.append((key, _Scalar(value, "text"), None))
        if p.timezone is not None:
            top.append(("timezone", _Scalar(p.timezone.text, "text"), None))
        if p.cost_limit is not None:
            top.append(("cost_limit", _Scalar(_unquote(p.cost_limit.text), "text"), None))
        sections: list[tuple[str, _Node, int | None]] = [
            (
                "calendars",
                _Map([(c.name.text, _Scalar(c.file.text, "text"), id(c)) for c in p.calendars]),
                None,
            ),
            ("facts", _Map([(f.path.text, self.fact(f), id(f)) for f in p.facts]), None),
            ("enums", _Map([(e.name.text, _names(e.members), id(e)) for e in p.enums]), None),
            (
                "constants",
                _Map([(c.name.text, self.constant(c), id(c)) for c in p.constants]),
                None,
            ),
        ]
        for key, is_value in (("conditions", False), ("values", True)):
            named: list[tuple[str, _Node, int | None]] = [
                (c.name.text, self.expr(c.expr, "expr!"), id(c))
                for c in p.conditions
                if c.value == is_value
            ]
            sections.append((key, _Map(named), None))
        # the actors line carries the actors' comments
        sections.append(("actors", _names(p.actors), id(p.actors)))
        sections.append(
            ("events", _Map([(e.name.text, self.event(e), id(e)) for e in p.events]), None)
        )
        sections.append(
            ("effects", _Map([(e.name.text, _fields(e.params), id(e)) for e in p.effects]), None)
        )
        sections.append(
            (
                "migrate",
                _Map([(m.from_version.text, self.migration(m), id(m)) for m in p.migrations]),
                None,
            )
        )
        for key, flows in (("fragments", p.fragments), ("workflows", p.workflows)):
            entries: list[tuple[str, _Node, int | None]] = [
                (w.name.text, self.workflow(w), id(w.name)) for w in flows
            ]
            sections.append((key, _Map(entries, spaced=True), None))
        return _Map(top + [s for s in sections if not _empty(s[1])])

    def migration(self, m: ast.Migration) -> _Map:
        """A `migrate from` block as the YAML form's ``migrate`` entry."""
        by_workflow: dict[str, list[tuple[str, _Node, int | None]]] = {}
        for sm in m.states:
            by_workflow.setdefault(sm.workflow.text, []).append(
                (sm.old.text, _Scalar(sm.new.text), None)
            )
        entries: list[tuple[str, _Node, int | None]] = [
            ("states", _Map([(wf, _Map(olds), None) for wf, olds in by_workflow.items()]), None),
            ("set", _Map([(a.fact.text, self.expr(a.expr), None) for a in m.assigns]), None),
        ]
        entries += [(k.text, _Scalar(v.text), None) for k, v in m.options]
        return _Map([e for e in entries if not _empty(e[1])])

    def fact(self, f: ast.FactDecl) -> _Node:
        t = _Scalar(str(f.type) + ("?" if f.optional else ""))
        if not (f.by or f.record is not None or f.default is not None):
            return t
        m = _Map([("type", t, None)], flow=True)
        if f.default is not None:
            m.entries.append(("default", self.expr(f.default, "expr!"), None))
        if f.by:
            m.entries.append(("by", _names(f.by), None))
        if f.record is not None:
            m.entries.append(("record", _Scalar(f.record, "text"), None))
        return m

    def constant(self, c: ast.ConstDecl) -> _Node:
        if c.note is None:
            return self.expr(c.expr)
        return _Map(
            [("value", self.expr(c.expr), None), (c.note[0], _Scalar(c.note[1], "text"), None)],
            flow=True,
        )

    def event(self, e: ast.EventDecl) -> _Node:
        m = _Map([("by", _names(e.actors, True), None)], flow=True)
        if e.payload:
            m.entries.append(("payload", _fields(e.payload), None))
        return m

    def workflow(self, w: ast.Workflow) -> _Map:
        m = _Map([])
        if w.requires:
            m.entries.append(("requires", _names(w.requires), None))
        uses = [u for u in w.parts if isinstance(u, ast.Use)]
        if uses:
            m.entries.append(("use", _names(tuple(u.fragment for u in uses), True), id(uses[0])))
        clocks = [c for c in w.parts if isinstance(c, ast.ClockDecl)]
        if clocks:
            m.entries.append(
                ("clocks", _Map([(c.name.text, self.clock(c), id(c)) for c in clocks]), None)
            )
        states = [s for s in w.parts if isinstance(s, ast.State)]
        if states:
            m.entries.append(
                ("states", _Map([(s.name.text, self.state(s), id(s)) for s in states]), None)
            )
        every = [b for b in w.parts if isinstance(b, ast.EveryBlock)]
        if every:
            m.entries.append(("every", _Seq([(self.every(b), id(b)) for b in every]), None))
        return m

    def state(self, s: ast.State) -> _Map:
        m = _Map([], flow=True)
        for key, on in (("initial", s.initial), ("final", s.final)):
            if on:
                m.entries.append((key, _Scalar("true", "bool"), None))
        if s.outcome is not None:
            m.entries.append(("outcome", _Scalar(s.outcome.text), None))
        if s.waits is not None:
            m.entries.append(("waits", _Scalar(s.waits, "text"), None))
        if s.unbounded:
            m.entries.append(("unbounded", _Scalar("true", "bool"), None))
        for key, text in (("cite", s.cite), ("assumption", s.assumption)):
            if text is not None:
                m.entries.append((key, _Scalar(text, "text"), None))
        if s.transitions:
            m.entries.append(("transitions", self.transitions(s.transitions), None))
        return m

    def every(self, b: ast.EveryBlock) -> _Map:
        m = _Map([])
        if b.mode != "all":
            m.entries.append((b.mode, _names(b.states), None))
        m.entries.append(("transitions", self.transitions(b.transitions), None))
        return m

    def clock(self, c: ast.ClockDecl) -> _Map:
        m = _Map([("length", self.expr(c.length), None)])
        if c.starts == "open":
            m.entries.append(("starts", _Scalar("open"), None))
        elif c.start_event is not None:
            m.entries.append(("starts_on", _Scalar(c.start_event.text), None))
        if c.counting_from is not None:
            m.entries.append(("counting_from", self.expr(c.counting_from), None))
        if c.paused_in:
            m.entries.append(("paused_in", _names(c.paused_in), None))
        expiry = _Map([])
        if c.expiry_in:
            expiry.entries.append(("in", _names(c.expiry_in), None))
        self.result(c.expiry, expiry)
        m.entries.append(("on_expiry", expiry, None))
        return m

    def transitions(self, ts: tuple[ast.Transition, ...]) -> _Seq:
        return _Seq([(self.transition(t), id(t)) for t in ts])

    def transition(self, t: ast.Transition) -> _Map:
        m = _Map([])
        add = m.entries.append
        if t.kind == "event":
            assert t.event is not None
            add(("on", _Scalar(t.event.text), None))
            if t.actors:
                add(("by", _names(t.actors, True), None))
        elif t.kind == "auto":
            assert t.condition is not None
            add(("when", self.expr(t.condition), None))
        elif t.kind == "soon":
            assert t.condition is not None
            add(("as_soon_as", self.expr(t.condition), None))
        else:
            assert t.deadline is not None
            add((t.kind, self.expr(t.deadline), None))
            if t.start is not None:
                add(("from", self.expr(t.start), None))
            for a in t.adjust:
                if a.kind == "rolled":
                    named = a.calendar.text if a.calendar is not None else "true"
                    add(
                        (
                            "rolled_to_working_day",
                            _Scalar(named, "bool" if a.calendar is None else "name"),
                            None,
                        )
                    )
                else:
                    add(("end_of_day", _Scalar("true", "bool"), None))
        if t.guard is not None:
            add(("when", self.expr(t.guard), None))
        self.result(t, m)
        return m

    def result(self, t: ast.Transition, m: _Map) -> None:
        """The target and clauses of a transition (or a clock's expiry) into ``m``."""
        add = m.entries.append
        if t.target is not None:
            add(("to", _Scalar(t.target.text), None))
        else:
            add(("stay", _Scalar("true", "bool"), None))
        if t.reschedule is not None:
            add(("reschedule", _Scalar("true", "bool"), None))
        if t.emits:
            items: list[tuple[_Node, int | None]] = []
            for e in t.emits:
                if e.args:
                    args = _Map([(k.text, self.expr(v), None) for k, v in e.args])
                    items.append((_Map([(e.effect.text, args, None)]), None))
                else:
                    items.append((_Scalar(e.effect.text), None))
            add(("emit", _Seq(items, flow=all(isinstance(i, _Scalar) for i, _ in items)), None))
        if t.assigns:
            add(("set", _Map([(a.fact.text, self.expr(a.expr), None) for a in t.assigns]), None))
        for verb in ("start", "restart", "stop"):
            names = tuple(a.clock for a in t.clocks if a.verb == verb)
            if names:
                add((verb, _names(names, True), None))
        extend = [
            (a.clock.text, self.expr(a.by), None)
            for a in t.clocks
            if a.verb == "extend" and a.by is not None
        ]
        if extend:
            add(("extend", _Map(extend), None))  # type: ignore[arg-type]
        for key, text in (("cite", t.cite), ("assumption", t.assumption)):
            if text is not None:
                add((key, _Scalar(text, "text"), None))


def _empty(node: _Node) -> bool:
    return (
        not node.entries
        if isinstance(node, _Map)
        else not node.items
        if isinstance(node, _Seq)
        else False
    )


def _fields(fields: tuple[ast.FieldDecl, ...]) -> _Map:
    return _Map([(f.name.text, _Scalar(str(f.type)), None) for f in fields], flow=True)


def _unquote(text: str) -> str:
    """A .rk header's ``cost_limit`` as written: a number, or a string literal."""
    return text[1:-1] if text[:1] in ("'", '"') else text


_WIDTH = 100
_HEADER_KEYS = frozenset(["policy", "version", "source", "timezone", "cost_limit"])


class _YamlPrinter:
    """Writes the :class:`_Map` of a policy as YAML lines, each anchored entry with its
    comments (leading lines at its indentation, the trailing one after its first line)."""

    def __init__(self, notes: dict[int, _Notes]) -> None:
        self.notes = notes
        self.lines: list[str] = []

    def comments(self, key: int | None, indent: int) -> None:
        n = self.notes.get(key) if key is not None else None
        if n is not None:
            for body in n.before:
                self.lines.append(" " * indent + "#" + body)

    def after(self, key: int | None) -> str:
        n = self.notes.get(key) if key is not None else None
        if n is None or not n.after:
            return ""
        return "  #" + n.after[0]

    def blank(self, key: int | None) -> bool:
        n = self.notes.get(key) if key is not None else None
        return n is not None and n.blank

    def has_notes(self, key: int | None) -> bool:
        n = self.notes.get(key) if key is not None else None
        return n is not None and bool(n.before or n.after)

    def top(self, m: _Map) -> None:
        for key, value, anchor in m.entries:
            if key not in _HEADER_KEYS:
                self.lines.append("")
                if isinstance(value, _Map) and value.entries:
                    first = value.entries[0][2]
                    found = self.notes.get(first) if first is not None else None
                    if found is not None:
                        # a section's heading comments above it; a `rulekit: ignore`
                        # directive stays on the entry whose line it names
                        heading = [b for b in found.before if not _is_directive(b)]
                        found.before = [b for b in found.before if _is_directive(b)]
                        self.lines.extend("#" + b for b in heading)
            self.comments(anchor, 0)
            self.value(_yaml_key(key) + ":", value, anchor, 0)

    def entry(self, key: str, value: _Node, anchor: int | None, indent: int) -> None:
        self.value(" " * indent + _yaml_key(key) + ":", value, anchor, indent)

    def value(self, head: str, value: _Node, anchor: int | None, indent: int) -> None:
        trailing = self.after(anchor)
        if isinstance(value, _Scalar):
            text = _yaml_scalar(value.text, value.kind, indent)
            if "\n" in text:
                first, rest = text.split("\n", 1)
                self.lines.append(head + " " + first + trailing)
                self.lines.extend(rest.split("\n"))
            else:
                self.lines.append(head + " " + text + trailing)
            return
        flow = self.flow(value)
        if isinstance(value, _Map) and not value.entries:
            flow = "{}"
        elif isinstance(value, _Seq) and not value.items:
            flow = "[]"
        if flow is not None and len(head) + 1 + len(flow) + len(trailing) <= _WIDTH:
            self.lines.append(head + " " + flow + trailing)
            return
        self.lines.append(head + trailing)
        self.block(value, indent + 2)

    def block(self, value: _Map | _Seq, indent: int) -> None:
        if isinstance(value, _Map):
            for n, (key, v, anchor) in enumerate(value.entries):
                if n and (self.blank(anchor) or value.spaced):
                    self.lines.append("")
                self.comments(anchor, indent)
                self.entry(key, v, anchor, indent)
            return
        for n, (item, anchor) in enumerate(value.items):
            if n and self.blank(anchor):
                self.lines.append("")
            self.comments(anchor, indent)
            if isinstance(item, _Map) and item.entries and self.flow(item) is None:
                mark = len(self.lines)
                key, v, a = item.entries[0]
                self.value(" " * (indent + 2) + _yaml_key(key) + ":", v, anchor, indent + 2)
                self.lines[mark] = " " * indent + "- " + self.lines[mark][indent + 2 :]
                for key, v, a in item.entries[1:]:
                    self.entry(key, v, a, indent + 2)
            else:
                self.value(" " * indent + "-", item, anchor, indent)

    def flow(self, value: _Node) -> str | None:
        """``value`` on one line (`[a, b]`, `{k: v}`), if it may be: its maps and lists
        marked so, names and types only, no comments inside."""
        if isinstance(value, _Scalar):
            if value.kind == "bool":
                return value.text
            if (
                value.kind == "name"
                and _FLOW_SAFE.fullmatch(value.text)
                and _plain_reads_as(value.text) in ("str", "bool")
            ):
                return value.text
            return None
        if not value.flow:
            return None
        parts: list[str] = []
        if isinstance(value, _Map):
            for key, v, anchor in value.entries:
                inner = self.flow(v)
                if inner is None or self.has_notes(anchor) or not _NAME.fullmatch(key):
                    return None
                parts.append(f"{key}: {inner}")
            return "{" + ", ".join(parts) + "}"
        for item, anchor in value.items:
            inner = self.flow(item)
            if inner is None or self.has_notes(anchor):
                return None
            parts.append(inner)
        return "[" + ", ".join(parts) + "]"


def _yaml_key(key: str) -> str:
    """Keys are read as written (`on:` is the key `on`): plain unless not a name."""
    return key if _NAME.fullmatch(key) else json.dumps(key)


def to_yaml(tree: ast.Policy, notes: dict[int, _Notes], whole: bool) -> str:
    """The policy in the canonical YAML layout, with its comments."""
    for w in (*tree.fragments, *tree.workflows):  # one `use:` line holds every use's comments
        uses = [id(u) for u in w.parts if isinstance(u, ast.Use)]
        for other in uses[1:]:
            if other in notes:
                moved = notes.pop(other)
                first = notes.setdefault(uses[0], _Notes())
                first.before += moved.before + moved.after[first.after == [] :]
                first.after = first.after or moved.after[:1]
    printer = _YamlPrinter(notes)
    printer.top(_YamlBuilder(whole).policy(tree))
    end = notes.get(0)
    if end is not None and end.before:
        printer.lines.append("")
        printer.lines.extend("#" + body for body in end.before)
    return "\n".join(line.rstrip() for line in printer.lines) + "\n"


# -- the .rk form --------------------------------------------------------------------------


#: Where a statement may break (its clauses), and the width past which it does; a
#: statement with an expression written on several lines always does.
_BREAK = "\x1f"
_RK_WIDTH = 88


def _rk_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _rk_names(names: tuple[ast.Name, ...]) -> str:
    return ", ".join(n.text for n in names)


def _rk_fields(fields: tuple[ast.FieldDecl, ...]) -> str:
    return "(" + ", ".join(f"{f.name.text}: {f.type}" for f in fields) + ")" if fields else ""


class _RkPrinter:
    """Writes a policy as .rk statements, each with its comments, for the formatter to lay out."""

    def __init__(self, notes: dict[int, _Notes]) -> None:
        self.notes = notes
        self.lines: list[str] = []

    def line(
        self, anchor: int | None, text: str, first_in_block: bool = False, blank: bool = False
    ) -> None:
        """A statement on a line of its own, after its leading comments, with its trailing one."""
        n = self.notes.get(anchor) if anchor is not None else None
        if self.lines and (blank or (not first_in_block and n is not None and n.blank)):
            self.lines.append("")
        if n is not None:
            self.lines.extend("//" + body for body in n.before)
            n.before = []
        flat = text.replace(_BREAK, " ")
        comment = "  //" + n.after[0] if n is not None and n.after else ""
        if "\n" in flat or len(flat) > _RK_WIDTH:
            head, _, rest = text.partition(_BREAK)
            if rest and "\n" not in head:  # after the first line: the line of its anchor
                head, comment = head + comment, ""
            text = head + ("\n" + rest.replace(_BREAK, "\n") if rest else "")
        else:
            text = flat
        self.lines.append(text + comment)

    def policy(self, p: ast.Policy) -> None:
        head = f"policy {p.name.text}"
        if p.version is not None:
            head += _BREAK + f"version {_rk_string(p.version)}"
        if p.source_doc is not None:
            head += _BREAK + f"source {_rk_string(p.source_doc)}"
        if p.timezone is not None:
            head += _BREAK + f"timezone {_rk_string(p.timezone.text)}"
        if p.cost_limit is not None:
            limit = p.cost_limit.text
            head += (
                _BREAK
                + f"cost_limit {limit if re.fullmatch(r'[0-9]+', limit) or limit[:1] in chr(34) + chr(39) else _rk_string(limit)}"
            )
        self.line(id(p), head)
        groups: list[list[tuple[int, str]]] = [
            [
                (id(c), f"calendar {c.name.text} from {_rk_string(c.file.text)}")
                for c in p.calendars
            ],
        ]
        for group in groups:
            for n, (anchor, text) in enumerate(group):
                self.line(anchor, text, blank=n == 0)
        if p.facts:
            self.lines.append("")
            first = self.notes.get(id(p.facts[0]))
            if first is not None:  # the block's heading comments above it, but a
                # `rulekit: ignore` directive stays on the fact whose line it names
                self.lines.extend("//" + b for b in first.before if not _is_directive(b))
                first.before = [b for b in first.before if _is_directive(b)]
            self.lines.append("facts {")
            for n, f in enumerate(p.facts):
                self.line(id(f), self.fact(f), first_in_block=n == 0)
            self.lines.append("}")
        rest: list[list[tuple[int, str]]] = [
            [(id(e), f"enum {e.name.text} {{ {_rk_names(e.members)} }}") for e in p.enums],
            [(id(c), self.constant(c)) for c in p.constants],
            [
                (id(c), f"{'value' if c.value else 'condition'} {c.name.text} = {c.expr.text}")
                for c in p.conditions
            ],
            [(id(p.actors), f"actors {_rk_names(p.actors)}")] if p.actors else [],
            [
                (id(e), f"event {e.name.text}{_rk_fields(e.payload)} by {_rk_names(e.actors)}")
                for e in p.events
            ],
            [(id(e), f"effect {e.name.text}{_rk_fields(e.params)}") for e in p.effects],
        ]
        for group in rest:
            for n, (anchor, text) in enumerate(group):
                self.line(anchor, text, blank=n == 0)
        for m in p.migrations:
            self.line(id(m), f"migrate from {_rk_string(m.from_version.text)} {{", blank=True)
            self.lines.extend(
                f"  state {sm.workflow.text}.{sm.old.text} -> {sm.new.text}" for sm in m.states
            )
            if m.assigns:
                sets = ", ".join(f"{a.fact.text} = {a.expr.text}" for a in m.assigns)
                self.lines.append(f"  set {sets}")
            self.lines.extend(f"  {k.text} {v.text}" for k, v in m.options)
            self.lines.append("}")
        for w in (*p.fragments, *p.workflows):
            self.workflow(w)
        end = self.notes.get(0)
        if end is not None and end.before:
            self.lines.append("")
            self.lines.extend("//" + body for body in end.before)

    def fact(self, f: ast.FactDecl) -> str:
        text = f"{f.path.text}: {f.type}{'?' if f.optional else ''}"
        if f.default is not None:
            text += f" = {f.default.text}"
        if f.by:
            text += f" by {_rk_names(f.by)}"
        if f.record is not None:
            text += _BREAK + f"record {_rk_string(f.record)}"
        return text

    def constant(self, c: ast.ConstDecl) -> str:
        text = f"const {c.name.text} = {c.expr.text}"
        if c.note is not None:
            text += _BREAK + f"{c.note[0]} {_rk_string(c.note[1])}"
        return text

    def workflow(self, w: ast.Workflow) -> None:
        if w.is_fragment:
            head = f"fragment {w.name.text} {{"
        else:
            requires = f" requires {_rk_names(w.requires)}" if w.requires else ""
            head = f"workflow {w.name.text}{requires} {{"
        self.line(id(w.name), head, blank=True)
        for n, part in enumerate(w.parts):
            first = n == 0
            if isinstance(part, ast.State):
                self.state(part, first)
            elif isinstance(part, ast.EveryBlock):
                mode = f" {part.mode} {_rk_names(part.states)}" if part.mode != "all" else ""
                self.line(id(part), f"every state{mode} {{", first)
                self.transitions(part.transitions)
                self.lines.append("}")
            elif isinstance(part, ast.Use):
                self.line(id(part), f"use {part.fragment.text}", first)
            else:
                self.line(id(part), self.clock(part), first)
        self.lines.append("}")

    def state(self, s: ast.State, first: bool) -> None:
        text = "initial state" if s.initial else "final state" if s.final else "state"
        text += f" {s.name.text}"
        if s.outcome is not None:
            text += f" outcome {s.outcome.text}"
        if s.waits is not None:
            text += _BREAK + f"waits {'unbounded ' if s.unbounded else ''}{_rk_string(s.waits)}"
        if s.cite is not None:
            text += _BREAK + f"cite {_rk_string(s.cite)}"
        if s.assumption is not None:
            text += _BREAK + f"assumption {_rk_string(s.assumption)}"
        if not s.transitions:
            self.line(id(s), text, first)
            return
        self.line(id(s), text + " {", first)
        self.transitions(s.transitions)
        self.lines.append("}")

    def transitions(self, ts: tuple[ast.Transition, ...]) -> None:
        for n, t in enumerate(ts):
            self.line(id(t), self.transition(t), n == 0)

    def clock(self, c: ast.ClockDecl) -> str:
        text = f"clock {c.name.text} = {c.length.text}"
        if c.starts == "open":
            text += " starts at open"
        elif c.start_event is not None:
            text += f" starts on {c.start_event.text}"
        if c.counting_from is not None:
            text += f" counting from {c.counting_from.text}"
        if c.paused_in:
            text += f" paused in {_rk_names(c.paused_in)}"
        text += _BREAK + "on expiry"
        if c.expiry_in:
            text += f" in {_rk_names(c.expiry_in)}"
        return text + self.result(c.expiry)

    def transition(self, t: ast.Transition) -> str:
        if t.kind == "event":
            assert t.event is not None
            text = f"on {t.event.text}"
            if t.actors:
                text += f" by {_rk_names(t.actors)}"
        elif t.kind in ("auto", "soon"):
            assert t.condition is not None
            text = f"{'when' if t.kind == 'auto' else 'as soon as'} {t.condition.text}"
        else:
            assert t.deadline is not None
            text = f"{t.kind} {t.deadline.text}"
            if t.start is not None:
                text += f" from {t.start.text}"
            for a in t.adjust:
                if a.kind == "rolled":
                    named = f" in {a.calendar.text}" if a.calendar is not None else ""
                    text += f", rolled to a working day{named}"
                else:
                    text += ", end of day"
        if t.guard is not None:
            text += f" when {t.guard.text}"
        result = self.result(t)
        return text + ("\n" + result[1:] if "\n" in text else result)

    def result(self, t: ast.Transition) -> str:
        text = f" -> {t.target.text}" if t.target is not None else " stay"
        for e in t.emits:
            args = ", ".join(f"{k.text}: {v.text}" for k, v in e.args)
            text += _BREAK + f"emit {e.effect.text}" + (f"({args})" if e.args else "")
        if t.assigns:
            text += _BREAK + "set " + ", ".join(f"{a.fact.text} = {a.expr.text}" for a in t.assigns)
        for a in t.clocks:
            text += _BREAK + f"{a.verb} {a.clock.text}"
            if a.by is not None:
                text += f" by {a.by.text}"
        if t.reschedule is not None:
            text += _BREAK + "reschedule"
        if t.cite is not None:
            text += _BREAK + f"cite {_rk_string(t.cite)}"
        if t.assumption is not None:
            text += _BREAK + f"assumption {_rk_string(t.assumption)}"
        return text


def to_rk(tree: ast.Policy, notes: dict[int, _Notes]) -> str:
    """The policy as a .rk file, with its comments, in ``rulekit fmt``'s layout."""
    printer = _RkPrinter(notes)
    printer.policy(tree)
    return formatter.format_text("\n".join(printer.lines) + "\n")


# -- the entry points ----------------------------------------------------------------------


def _read(text: str, fmt: str, filename: str) -> tuple[CheckResult, ast.Policy, dict[int, _Notes]]:
    """The input checked, its tree, and its comments attached to the tree's anchors."""
    result = compile_source(text, fmt, filename)
    errors = [d for d in result.diagnostics if d.severity == "error"]
    if result.tree is None or errors:
        raise ConvertError(f"{filename}: not converted: it has errors", errors)
    tree = result.tree
    if fmt == "rk":
        comments = _rk_comments(text, tree)
        extra: list[int] = []
    else:
        comments = _yaml_comments(text)
        extra = _header_positions(text)
    return result, tree, _attach(text, comments, _anchors(tree, extra))


def _header_positions(text: str) -> list[int]:
    """Where a YAML policy's header keys (version, source, ...) are: comments among them
    belong to the header."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    pairs = root.value if isinstance(root, yaml.MappingNode) else []
    return [k.start_mark.index for k, _ in pairs if str(k.value) in _HEADER_KEYS]


def _hash(result: CheckResult) -> str | None:
    return None if result.policy is None else str(artifact.to_json(result.policy)["hash"])


def _same(before: CheckResult, out: str, fmt: str, filename: str, what: str) -> None:
    after = compile_source(out, fmt, filename)
    if _hash(after) != _hash(before):
        raise ConvertError(
            f"{filename}: not {what}: the result would compile to a different content hash "
            f"(a part of this policy that the {fmt} form cannot write the same way, or a bug "
            "in rulekit: please report it with this file)"
        )


def convert(text: str, source_format: str, target: str, filename: str) -> Converted:
    """``text`` (a policy in ``source_format``, rk or yaml) written in ``target``.

    Raises :class:`ConvertError` with the diagnostics when the policy has errors, and
    when the result would not compile to the same content hash.
    """
    before, tree, notes = _read(text, source_format, filename)
    dropped: list[tuple[int, int, str]] = []
    if target == "yaml":
        out = to_yaml(tree, notes, whole=source_format == "yaml")
    else:
        if source_format == "yaml":
            dropped = _dropped_in_yaml_strings(tree)
        out = to_rk(tree, notes)
    _same(before, out, target, filename, "converted")
    return Converted(out, dropped)


def _dropped_in_yaml_strings(tree: ast.Policy) -> list[tuple[int, int, str]]:
    """The ``//`` comments in YAML expression strings before or after the expression."""
    out = []
    for e in _expressions(tree):
        if e.source.host is None:
            continue
        for lo, hi in ((0, e.root.span.start), (e.root.span.end, len(e.source.text))):
            for m in _RK_COMMENT.finditer(e.source.text, lo, hi):
                at = e.source.position(m.start())
                out.append((at.line, at.column, m.group().rstrip()))
    return sorted(out)


def format_yaml_checked(text: str, filename: str) -> str:
    """A YAML policy in the canonical YAML layout, comments kept, after making sure the
    result means the same (the same content hash, or for a policy with errors the same
    errors). Raises :class:`formatter.FormatError` when it does not parse or would change."""
    result = compile_source(text, "yaml", filename)
    # not YAML, not the schema's shape, or an expression that does not parse (which the
    # YAML front end leaves out of the tree): nothing to lay out without losing it
    syntax = [d for d in result.diagnostics if d.code[:4] in ("RK01", "RK04")]
    if result.tree is None or any(d.severity == "error" for d in syntax):
        raise formatter.FormatError(f"{filename}: not formatted: it has syntax errors", syntax)
    notes = _attach(text, _yaml_comments(text), _anchors(result.tree, _header_positions(text)))
    out = to_yaml(result.tree, notes, whole=True)
    if out == text:
        return out
    if formatter.meaning(result) != formatter.meaning(compile_source(out, "yaml", filename)):
        what = "a different content hash" if result.policy is not None else "other errors"
        raise formatter.FormatError(
            f"{filename}: not formatted: the formatted policy would compile to {what} "
            "(a bug in rulekit fmt: please report it with this file)"
        )
    return out
