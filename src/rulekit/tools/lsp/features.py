"""The editor features, as pure functions of an :class:`~.document.Analysis` and an offset.

Offsets are character offsets into the document's text; :mod:`.server` converts
them to and from the client's line and column. A position the index knows
nothing about gives nothing (None or an empty list), never an error; a rename
that cannot be done raises :class:`RenameError` saying why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from rulekit.core.grammars import grammar_text
from rulekit.core.source import Span
from rulekit.expr import ast as expr_ast
from rulekit.expr import parser as expr_parser
from rulekit.expr.checker import signatures
from rulekit.policy import ast, ir
from rulekit.policy.checker import RESERVED_FACT_ROOTS
from rulekit.tools.convert import format_yaml_checked
from rulekit.tools.formatter import FormatError, format_checked
from rulekit.tools.lsp.document import Analysis
from rulekit.tools.lsp.index import Index, Occurrence, host_span

#: The kinds of name a rename may change (a workflow's name is its clients' too).
RENAMEABLE = frozenset(
    {"state", "event", "constant", "fact", "condition", "enum", "member", "clock", "effect"}
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


class RenameError(Exception):
    """A rename refused: the message says why, for the editor to show."""


@dataclass(frozen=True)
class Hover:
    markdown: str
    span: Span


@dataclass(frozen=True)
class Completion:
    label: str
    #: what it is: keyword, state, event, fact, field, constant, condition, member,
    #: function, fragment
    kind: str
    detail: str | None = None
    documentation: str | None = None


@dataclass(frozen=True)
class Symbol:
    name: str
    kind: str
    span: Span
    selection: Span
    detail: str | None = None
    children: list[Symbol] = field(default_factory=list)


# -- names ----------------------------------------------------------------------------------


def _occurrence(an: Analysis, offset: int) -> tuple[Index, Occurrence] | None:
    index = an.index
    if index is None or not 0 <= offset <= len(an.text):
        return None
    o = index.at(offset)
    return None if o is None else (index, o)


def definition(an: Analysis, offset: int) -> list[Span]:
    """Where the name at ``offset`` is declared: a state in the same workflow or fragment
    first, else every state of that name (a fragment's target is in each workflow using it)."""
    found = _occurrence(an, offset)
    if found is None:
        return []
    index, o = found
    decls = index.declared.get((o.kind, o.name), [])
    if o.kind == "state":
        mine = [d for d in decls if d.container == o.container]
        decls = mine or decls
    return [d.span for d in decls]


def references(an: Analysis, offset: int, include_declaration: bool = True) -> list[Span]:
    """Every place the name at ``offset`` is written in the document."""
    found = _occurrence(an, offset)
    if found is None:
        return []
    index, o = found
    return [u.span for u in index.uses(o.kind, o.name) if include_declaration or not u.definition]


def prepare_rename(an: Analysis, offset: int) -> tuple[Span, str] | None:
    """The span and text of the name a rename at ``offset`` would change; None where
    there is no name; RenameError for a name that cannot be renamed (or stale text)."""
    found = _occurrence(an, offset)
    if found is None:
        return None
    _, o = found
    if not an.fresh:
        raise RenameError("the document has syntax errors: fix them before renaming")
    if o.kind not in RENAMEABLE:
        raise RenameError(f"a {o.kind}'s name is not renamed here")
    return o.span, an.text[o.span.start : o.span.end]


def rename(an: Analysis, offset: int, new_name: str) -> list[tuple[Span, str]]:
    """The edits that rename the name at ``offset`` everywhere in the document."""
    prepared = prepare_rename(an, offset)
    if prepared is None:
        raise RenameError("there is no name to rename here")
    index = an.index
    assert index is not None
    o = index.at(offset)
    assert o is not None
    new_name = new_name.strip()
    _check_new_name(index, o, new_name)
    if o.kind == "member":
        enum = o.name.split(".")[0]
        if f"{enum}.{new_name}" in index.names("member"):
            raise RenameError(f"{enum} already has a member `{new_name}`")
    return [(u.span, new_name) for u in index.uses(o.kind, o.name)]


def _check_new_name(index: Index, o: Occurrence, new: str) -> None:
    shape = _PATH if o.kind == "fact" else _IDENT
    if not shape.fullmatch(new):
        what = "a dotted path of names (order.amount)" if o.kind == "fact" else "a name"
        raise RenameError(f"`{new}` is not {what}")
    words = new.split(".")
    reserved = _keywords() | expr_parser.RESERVED | expr_parser.KEYWORDS
    for w in words:
        if w in reserved:
            raise RenameError(f"`{w}` is a keyword or reserved word")
    if o.kind == "fact" and words[0] in RESERVED_FACT_ROOTS:
        raise RenameError(f"`{words[0]}` is reserved: no fact path may start with it")
    old = o.name.split(".")[-1] if o.kind == "member" else o.name
    if new == old or o.kind == "member":
        return
    # constants, named conditions and fact paths' roots share one namespace in expressions
    clash = {o.kind}
    if o.kind in ("constant", "condition"):
        clash = {"constant", "condition"}
        if new in {p.split(".")[0] for p in index.names("fact")}:
            raise RenameError(f"`{new}` is already the start of a fact path")
    if o.kind == "fact":
        taken = index.names("constant") + index.names("condition")
        if words[0] in taken:
            raise RenameError(f"`{words[0]}` is already a constant or condition")
    for kind in clash:
        if (kind, new) in index.declared:
            article = "an" if kind[0] in "aeiou" else "a"
            raise RenameError(f"{article} {kind} named `{new}` already exists")


# -- hover ----------------------------------------------------------------------------------


def hover(an: Analysis, offset: int) -> Hover | None:
    """What the name or sub-expression at ``offset`` is: its declaration, type and notes."""
    index = an.index
    if index is None or not 0 <= offset <= len(an.text):
        return None
    o = index.at(offset)
    if o is not None:
        text = _describe(an, index, o)
        if text is not None:
            return Hover(text, o.span)
    return _expression_type(an, index, offset)


def _describe(an: Analysis, index: Index, o: Occurrence) -> str | None:
    node = index.nodes.get((o.kind, o.name))
    policy = index.policy
    if isinstance(node, ast.FactDecl):
        lines = [_code(f"{node.path.text}: {node.type}{'?' if node.optional else ''}")]
        doc = _comment(index, node)
        if doc:
            lines.append(doc)
        if node.default is not None:
            lines.append(f"Reads as `{node.default.text}` while it is not set.")
        if node.by:
            lines.append("Supplied by: " + ", ".join(a.text for a in node.by))
        return "\n\n".join(lines)
    if isinstance(node, ast.ConstDecl):
        lines = [_code(f"const {node.name.text} = {node.expr.text}")]
        const = policy.constants.get(node.name.text) if policy is not None else None
        if const is not None:
            lines.append(f"Type: `{const.type}`")
        doc = _comment(index, node)
        if doc:
            lines.append(doc)
        if node.note is not None:
            lines.append(f"*{node.note[0]}:* {node.note[1]}")
        return "\n\n".join(lines)
    if isinstance(node, ast.ConditionDecl):
        kind = "value" if node.value else "condition"
        lines = [_code(f"{kind} {node.name.text} = {node.expr.text}")]
        cond = policy.conditions.get(node.name.text) if policy is not None else None
        if cond is not None:
            lines.append(f"Type: `{cond.expr.type}`")
        return "\n\n".join(lines)
    if isinstance(node, ast.EventDecl):
        payload = ", ".join(f"{f.name.text}: {f.type}" for f in node.payload)
        head = f"event {node.name.text}" + (f"({payload})" if payload else "")
        lines = [_code(head)]
        lines.append("Payload: " + (payload if payload else "none"))
        senders = ", ".join(a.text for a in node.actors) or "the integration only"
        lines.append(f"Sent by: {senders}")
        return "\n\n".join(lines)
    if isinstance(node, ast.State):
        return _describe_state(index, o, node)
    if isinstance(node, ast.EnumDecl):
        members = ", ".join(m.text for m in node.members)
        if o.kind == "member":
            return (
                _code(f"enum {node.name.text} {{ {members} }}")
                + f"\n\nA value of {node.name.text}."
            )
        return _code(f"enum {node.name.text} {{ {members} }}")
    if isinstance(node, ast.EffectDecl):
        params = ", ".join(f"{f.name.text}: {f.type}" for f in node.params)
        return _code(f"effect {node.name.text}({params})")
    if isinstance(node, ast.ClockDecl):
        return _code(f"clock {node.name.text} = {node.length.text}")
    if isinstance(node, ast.Workflow):
        kind = "fragment" if node.is_fragment else "workflow"
        states = [p.name.text for p in node.parts if isinstance(p, ast.State)]
        return _code(f"{kind} {node.name.text}") + "\n\nStates: " + ", ".join(states)
    if isinstance(node, ast.Name) and o.kind == "actor":
        sends = [e.name.text for e in index.tree.events if any(a.text == o.name for a in e.actors)]
        return _code(f"actor {o.name}") + "\n\nMay send: " + (", ".join(sends) or "nothing")
    return None


def _describe_state(index: Index, o: Occurrence, node: ast.State) -> str:
    decls = index.declared.get(("state", o.name), [])
    mine = [d for d in decls if d.container == o.container] or decls
    where = mine[0].container if mine else None
    chosen = node
    for part in _parts(index, where):
        if isinstance(part, ast.State) and part.name.text == o.name:
            chosen = part
    head = ("initial " if chosen.initial else "") + ("final " if chosen.final else "")
    lines = [_code(f"{head}state {o.name}")]
    if where:
        lines.append(f"In {where}.")
    if chosen.cite:
        lines.append(f"Cites: “{chosen.cite}”")
    if chosen.waits:
        lines.append(f"Waits: {chosen.waits}")
    deadlines = []
    policy = index.policy
    if policy is not None:
        for wf in policy.workflows.values():
            st = wf.states.get(o.name)
            if st is None or (where in policy.workflows and wf.name != where):
                continue
            for t in st.deadlines:
                deadlines.append(f"- {_deadline(t)} ({wf.name})")
    else:
        for written in chosen.transitions:
            if written.kind in ("after", "at") and written.deadline is not None:
                target = written.target.text if written.target is not None else "stay"
                deadlines.append(f"- {written.kind} {written.deadline.text} -> {target}")
    if deadlines:
        lines.append("Deadlines:\n" + "\n".join(dict.fromkeys(deadlines)))
    elif not chosen.final:
        lines.append("No deadline: it waits for an event.")
    return "\n\n".join(lines)


def _deadline(t: ir.Transition) -> str:
    written = t.written if t.kind != "soon" else "as soon as " + (t.guard.text if t.guard else "")
    target = t.target if t.target is not None else "stay"
    cite = f" — “{t.cite}”" if t.cite else ""
    return f"{written} -> {target}{cite}"


def _parts(index: Index, where: str | None) -> list[ast.Part]:
    for wf in (*index.tree.fragments, *index.tree.workflows):
        if wf.name.text == where:
            return list(wf.parts)
    return []


def _code(text: str) -> str:
    return f"```rulekit\n{text}\n```"


def _comment(index: Index, node: ast.Located) -> str | None:
    """The comment written after the declaration on its line, else the comment lines
    right above it: a fact's or constant's documentation."""
    source = node.source.host or node.source
    text = source.text
    span = host_span(node.source, node.span)
    marker = "#" if source.name.lower().endswith((".yaml", ".yml")) else "//"
    line_end = text.find("\n", span.end)
    line_end = len(text) if line_end < 0 else line_end
    rest = text[span.end : line_end]
    at = rest.find(marker)
    if at >= 0 and '"' not in rest[:at]:
        return rest[at + len(marker) :].strip() or None
    above: list[str] = []
    line_start = text.rfind("\n", 0, span.start) + 1
    while line_start > 0 and len(above) < 20:
        prev_start = text.rfind("\n", 0, line_start - 1) + 1
        prev = text[prev_start : line_start - 1].strip()
        if not prev.startswith(marker):
            break
        above.insert(0, prev[len(marker) :].strip())
        line_start = prev_start
    return " ".join(above) or None


def _expression_type(an: Analysis, index: Index, offset: int) -> Hover | None:
    """The type of the smallest sub-expression at ``offset``. While the policy does not
    check, the same expression (same text) of the last version that did answers."""
    site = index.expr_at(offset)
    if site is None:
        return None
    typed, shift = site, 0
    if site.checked is None and an.typed is not None:
        same = [s for s in an.typed.exprs if s.checked is not None and s.ref.text == site.ref.text]
        if same:
            typed = min(same, key=lambda s: abs(s.span.start - site.span.start))
            shift = site.span.start - typed.span.start
    if typed.checked is None:
        return None
    at = offset - shift
    source = typed.ref.source
    best: tuple[expr_ast.Expr, Span] | None = None
    for node in expr_ast.walk(typed.ref.root):
        span = host_span(source, node.span)
        if span.start <= at <= span.end and (
            best is None or span.end - span.start <= best[1].end - best[1].start
        ):
            best = (node, span)
    if best is None or best[0].id not in typed.checked.types:
        return None
    node, span = best
    written = source.snippet(node.span)
    shown = Span(span.start + shift, span.end + shift)
    return Hover(_code(f"{written}: {typed.checked.types[node.id]}"), shown)


# -- completion -----------------------------------------------------------------------------


@cache
def _keywords() -> frozenset[str]:
    """The rule language's keywords, read from its grammar (``EVERY: "every"``)."""
    words = re.findall(r'^[A-Z_]+\s*:\s*"([a-z_]+)"', grammar_text("rules.lark"), re.M)
    return frozenset(words)


# .rk (`-> s`, `on e`) and the YAML form (`to: s`, `on: e`, `{on: e, to: s}`)
_AFTER_ARROW = re.compile(r"(?:->|(?:^|[\s{,-])to:)\s*(\w*)$")
_AFTER_ON = re.compile(r"(?:^|[\s{,-])(?:on|starts on|on:)\s+(\w*)$")
_AFTER_USE = re.compile(r"(?:^|\s)use\s+(\w*)$")
_STATE_LIST = re.compile(r"(?:every\s+state\s+(?:in|except)|paused in|expiry in)\s+[\w,\s]*?(\w*)$")
_IN_STRING = re.compile(r'([A-Za-z_][\w.]*)\s*(?:==|!=)\s*"(\w*)$')
_DOTTED = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\.(\w*)$")


def completion(an: Analysis, offset: int) -> list[Completion]:
    """What may be written at ``offset``, from the text before it on its line."""
    index = an.index
    if index is None or not 0 <= offset <= len(an.text):
        return []
    line_start = an.text.rfind("\n", 0, offset) + 1
    before = an.text[line_start:offset]
    if len(before) > 4000:  # a pathological line: look at its end only
        before = before[-4000:]
    m = _IN_STRING.search(before)
    if m:
        return _members(index, m.group(1))
    if before.count('"') % 2 == 1:
        return []
    if _AFTER_ARROW.search(before) or _STATE_LIST.search(before):
        return [Completion(s, "state") for s in dict.fromkeys(index.names("state"))]
    if _AFTER_ON.search(before):
        return [_event(index, e) for e in index.names("event")]
    if _AFTER_USE.search(before):
        return [Completion(f, "fragment") for f in index.names("fragment")]
    m = _DOTTED.search(before)
    if m:
        return _fields(index, m.group(1))
    return _anything(index)


def _event(index: Index, name: str) -> Completion:
    node = index.nodes.get(("event", name))
    detail = None
    if isinstance(node, ast.EventDecl):
        detail = ", ".join(f"{f.name.text}: {f.type}" for f in node.payload) or None
    return Completion(name, "event", detail)


def _members(index: Index, path: str) -> list[Completion]:
    """The values of the enum the compared path has (of every enum if it is not known)."""
    enum: str | None = None
    fact = index.nodes.get(("fact", path))
    if isinstance(fact, ast.FactDecl):
        enum = fact.type.name
    elif path.startswith("event."):
        fieldname = path.split(".", 1)[1]
        for ev in index.tree.events:
            for f in ev.payload:
                if f.name.text == fieldname and ("enum", f.type.name) in index.declared:
                    enum = f.type.name
    out: list[Completion] = []
    for e in index.tree.enums:
        if enum is None or e.name.text == enum:
            out.extend(Completion(m.text, "member", e.name.text) for m in e.members)
    return out


def _fields(index: Index, prefix: str) -> list[Completion]:
    if prefix == "event":
        found: dict[str, Completion] = {}
        for ev in index.tree.events:
            for p in ev.payload:
                found.setdefault(
                    p.name.text, Completion(p.name.text, "field", str(p.type), ev.name.text)
                )
        return list(found.values())
    out: dict[str, Completion] = {}
    for f in index.tree.facts:
        path = f.path.text
        if path.startswith(prefix + "."):
            rest = path[len(prefix) + 1 :]
            head, dot, _ = rest.partition(".")
            detail = "object" if dot else f"{f.type}{'?' if f.optional else ''}"
            out.setdefault(head, Completion(head, "field", detail, _comment(index, f)))
    if out:
        return list(out.values())
    # not a fact path: a member function of whatever it is
    return [
        Completion(name, "function", sigs[0], "\n".join(sigs))
        for name, sigs in signatures().items()
        if any(s.split("(")[0].endswith("." + name) for s in sigs)
    ]


def _anything(index: Index) -> list[Completion]:
    out = [Completion(k, "keyword") for k in sorted(_keywords())]
    roots = dict.fromkeys(p.split(".")[0] for p in index.names("fact"))
    out.extend(Completion(r, "fact", "facts") for r in roots)
    out.append(Completion("event", "keyword", "the event being handled"))
    for c in index.tree.constants:
        out.append(Completion(c.name.text, "constant", c.expr.text))
    for cond in index.tree.conditions:
        out.append(Completion(cond.name.text, "condition", cond.expr.text))
    for name, sigs in signatures().items():
        if any(not s.split("(")[0].count(".") for s in sigs):
            out.append(Completion(name, "function", sigs[0], "\n".join(sigs)))
    for macro in ("all", "exists", "exists_one", "filter", "map"):
        out.append(Completion(macro, "function", f"list.{macro}(x, predicate)"))
    out.append(Completion("has", "function", "has(a.b) -> bool"))
    return out


# -- outline and formatting -----------------------------------------------------------------


def symbols(an: Analysis) -> list[Symbol]:
    """The outline: facts, enums, constants, conditions, events, effects, then each
    fragment and workflow with its states."""
    index = an.index
    if index is None or not an.fresh:
        return []
    tree = index.tree

    def sym(kind: str, name: ast.Name, node: ast.Located, detail: str | None = None) -> Symbol:
        whole = host_span(node.source, node.span)
        sel = host_span(name.source, name.span)
        whole = Span(min(whole.start, sel.start), max(whole.end, sel.end))
        return Symbol(name.text, kind, whole, sel, detail)

    out = [sym("fact", f.path, f, f"{f.type}{'?' if f.optional else ''}") for f in tree.facts]
    for e in tree.enums:
        s = sym("enum", e.name, e)
        s.children.extend(sym("member", m, m) for m in e.members)
        out.append(s)
    out.extend(sym("constant", c.name, c, c.expr.text) for c in tree.constants)
    out.extend(sym("condition", c.name, c, c.expr.text) for c in tree.conditions)
    out.extend(sym("event", ev.name, ev) for ev in tree.events)
    out.extend(sym("effect", ef.name, ef) for ef in tree.effects)
    for wf in (*tree.fragments, *tree.workflows):
        s = sym("fragment" if wf.is_fragment else "workflow", wf.name, wf)
        for part in wf.parts:
            if isinstance(part, ast.State):
                flags = [w for w, on in (("initial", part.initial), ("final", part.final)) if on]
                s.children.append(sym("state", part.name, part, " ".join(flags) or None))
            elif isinstance(part, ast.ClockDecl):
                s.children.append(sym("clock", part.name, part))
        out.append(s)
    return out


def formatting(an: Analysis) -> str | None:
    """The document in ``rulekit fmt``'s layout (.rk or the canonical YAML form), or None
    when it cannot be formatted (a scenario file, or errors in it)."""
    layout = {"rk": format_checked, "yaml": format_yaml_checked}.get(an.kind or "")
    if layout is None:
        return None
    try:
        return layout(an.text, an.path)
    except FormatError:
        return None
