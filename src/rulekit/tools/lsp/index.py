"""Every name a policy declares and every place it is written, read from its syntax tree.

Definition, references, rename, hover and the outline all ask one question: which
name is at this offset, and where else is it? The index answers it from one walk
of the tree (linear in its size; expressions walked without recursion), in offsets
of the file the author edits (a YAML policy's expressions are mapped back from
their embedded sources).

Names are keyed by kind and name. States are keyed by name across the file: a
fragment's transitions name states of every workflow that uses it, so one state
name is one thing to rename.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

from rulekit.core.source import Source, Span
from rulekit.expr import ast as expr_ast
from rulekit.expr.checker import CheckedExpr
from rulekit.policy import ast, ir


@dataclass(frozen=True)
class Occurrence:
    """One place a name is written: its declaration (``definition``) or a use."""

    #: state, event, fact, constant, condition, enum, member, effect, clock, fragment,
    #: workflow or actor
    kind: str
    #: the name; an enum member's is ``Enum.member``
    name: str
    span: Span
    definition: bool
    #: the workflow or fragment a state is written in (None elsewhere)
    container: str | None = None


@dataclass(frozen=True)
class ExprSite:
    """An expression of the policy, where it is in the file, and its checked form if the
    whole policy checked (types of its sub-expressions)."""

    ref: ast.ExprRef
    span: Span
    checked: CheckedExpr | None


@dataclass
class Index:
    tree: ast.Policy
    policy: ir.Policy | None
    occurrences: list[Occurrence] = field(default_factory=list)
    exprs: list[ExprSite] = field(default_factory=list)
    #: (kind, name) -> the declarations (several when a name is declared twice)
    declared: dict[tuple[str, str], list[Occurrence]] = field(default_factory=dict)
    #: the declaration nodes by (kind, name), for hover
    nodes: dict[tuple[str, str], object] = field(default_factory=dict)

    def at(self, offset: int) -> Occurrence | None:
        """The name written at ``offset`` (its end included, where editors put the cursor)."""
        starts = [o.span.start for o in self.occurrences]
        i = bisect.bisect_right(starts, offset) - 1
        # Occurrences do not overlap, but one may end where the next starts (the cursor
        # after the first is in both): look back over the few starting at or before it.
        for o in reversed(self.occurrences[max(0, i - 3) : i + 1]):
            if o.span.start <= offset <= o.span.end:
                return o
        return None

    def uses(self, kind: str, name: str) -> list[Occurrence]:
        """Every occurrence of the name, its declarations first."""
        found = [o for o in self.occurrences if o.kind == kind and o.name == name]
        return sorted(found, key=lambda o: (not o.definition, o.span.start))

    def expr_at(self, offset: int) -> ExprSite | None:
        for site in self.exprs:
            if site.span.start <= offset <= site.span.end:
                return site
        return None

    def names(self, kind: str) -> list[str]:
        """The names of that kind that are declared, in the order declared."""
        return [name for (k, name) in self.declared if k == kind]


def host_span(source: Source, span: Span) -> Span:
    """``span`` of ``source`` as offsets of the file it is embedded in (itself if not)."""
    if source.host is None or source.origin is None:
        return span
    last = len(source.origin) - 1
    start = source.origin[max(0, min(span.start, last))]
    end = source.origin[max(0, min(span.end, last))]
    return Span(start, max(start, end))


def build(tree: ast.Policy, policy: ir.Policy | None) -> Index:
    """The index of a parsed policy; ``policy`` (the checked form) adds expression types."""
    checked: dict[int, CheckedExpr] = {}
    if policy is not None:
        for e in _ir_exprs(policy):
            checked[id(e.compiled.checked.root)] = e.compiled.checked
    index = Index(tree, policy)
    _Walker(index, checked).policy(tree)
    index.occurrences.sort(key=lambda o: (o.span.start, o.span.end))
    index.exprs.sort(key=lambda s: s.span.start)
    return index


def _ir_exprs(policy: ir.Policy) -> Iterator[ir.Expr]:
    for c in policy.conditions.values():
        yield c.expr
    for wf in policy.workflows.values():
        transitions = [t for s in wf.states.values() for t in s.transitions]
        for clock in wf.clocks.values():
            yield clock.length
            if clock.counting_from is not None:
                yield clock.counting_from
            transitions.append(clock.expiry)
        for t in transitions:
            for e in (t.guard, t.deadline, t.start):
                if e is not None:
                    yield e
            for emit in t.emits:
                yield from (e for _, e in emit.args)
            yield from (a.value for a in t.assigns)
            yield from (c.by for c in t.clocks if c.by is not None)


class _Walker:
    def __init__(self, index: Index, checked: dict[int, CheckedExpr]) -> None:
        self.index = index
        self.checked = checked
        tree = index.tree
        self.facts = {f.path.text for f in tree.facts}
        self.constants = {c.name.text for c in tree.constants}
        self.conditions = {c.name.text for c in tree.conditions}
        self.members: dict[str, str] = {}
        for enum in tree.enums:
            for m in enum.members:
                self.members.setdefault(m.text, enum.name.text)
        self.enums = {e.name.text for e in tree.enums}

    def add(
        self,
        kind: str,
        name: ast.Name | None,
        definition: bool = False,
        container: str | None = None,
    ) -> None:
        if name is None or not name.text:
            return
        span = host_span(name.source, name.span)
        o = Occurrence(kind, name.text, span, definition, container)
        self.index.occurrences.append(o)
        if definition:
            self.index.declared.setdefault((kind, name.text), []).append(o)

    def declare(
        self, kind: str, name: ast.Name, node: object, container: str | None = None
    ) -> None:
        self.add(kind, name, True, container)
        self.index.nodes.setdefault((kind, name.text), node)

    def policy(self, tree: ast.Policy) -> None:
        for f in tree.facts:
            self.declare("fact", f.path, f)
            self.type_ref(f.type)
            for a in f.by:
                self.add("actor", a)
            if f.default is not None:
                self.expr(f.default)
        for enum in tree.enums:
            self.declare("enum", enum.name, enum)
            for m in enum.members:
                key = ast.Name(m.source, m.span, f"{enum.name.text}.{m.text}")
                self.declare("member", key, enum)
        for c in tree.constants:
            self.declare("constant", c.name, c)
            self.expr(c.expr)
        for cond in tree.conditions:
            self.declare("condition", cond.name, cond)
            self.expr(cond.expr)
        for a in tree.actors:
            self.declare("actor", a, a)
        for ev in tree.events:
            self.declare("event", ev.name, ev)
            for fd in ev.payload:
                self.type_ref(fd.type)
            for a in ev.actors:
                self.add("actor", a)
        for ef in tree.effects:
            self.declare("effect", ef.name, ef)
            for fd in ef.params:
                self.type_ref(fd.type)
        for wf in (*tree.fragments, *tree.workflows):
            self.workflow(wf)

    def workflow(self, wf: ast.Workflow) -> None:
        self.declare("fragment" if wf.is_fragment else "workflow", wf.name, wf)
        where = wf.name.text
        for r in wf.requires:
            self.add("fact", r)
        for part in wf.parts:
            if isinstance(part, ast.State):
                self.declare("state", part.name, part, where)
                for t in part.transitions:
                    self.transition(t, where)
            elif isinstance(part, ast.EveryBlock):
                for s in part.states:
                    self.add("state", s, container=where)
                for t in part.transitions:
                    self.transition(t, where)
            elif isinstance(part, ast.Use):
                self.add("fragment", part.fragment)
            else:
                self.declare("clock", part.name, part, where)
                self.add("event", part.start_event)
                for s in (*part.paused_in, *part.expiry_in):
                    self.add("state", s, container=where)
                for e in (part.length, part.counting_from):
                    if e is not None:
                        self.expr(e)
                self.transition(part.expiry, where)

    def transition(self, t: ast.Transition, where: str) -> None:
        if t.kind == "event":
            self.add("event", t.event)
        for a in t.actors or ():
            self.add("actor", a)
        for e in (t.condition, t.deadline, t.start, t.guard):
            if e is not None:
                self.expr(e)
        self.add("state", t.target, container=where)
        for emit in t.emits:
            self.add("effect", emit.effect)
            for _, e in emit.args:
                self.expr(e)
        for assign in t.assigns:
            self.add("fact", assign.fact)
            self.expr(assign.expr)
        for c in t.clocks:
            self.add("clock", c.clock)
            if c.by is not None:
                self.expr(c.by)

    def type_ref(self, t: ast.TypeRef) -> None:
        stack = [t]
        while stack:
            ref = stack.pop()
            if ref.name in self.enums:
                span = host_span(ref.source, ref.span)
                name = ast.Name(ref.source, ref.span, ref.name)
                if ref.source.host is None:  # the span of `Service?` may cover the `?`
                    name = ast.Name(
                        ref.source, Span(span.start, span.start + len(ref.name)), ref.name
                    )
                self.add("enum", name)
            stack.extend(ref.args)

    def expr(self, ref: ast.ExprRef) -> None:
        source = ref.source
        site = ExprSite(ref, host_span(source, ref.root.span), self.checked.get(id(ref.root)))
        self.index.exprs.append(site)
        nodes = expr_ast.walk(ref.root)
        bound = {n.var for n in nodes if isinstance(n, expr_ast.Comprehension)}
        # The dotted path each name spells, with where it starts, children before parents:
        # linear, as a path longer than every fact's is not carried on.
        longest = max((len(f) for f in self.facts), default=0)
        paths: dict[int, tuple[str, int]] = {}
        for node in reversed(nodes):
            if isinstance(node, expr_ast.Select | expr_ast.Has):
                inner = paths.get(id(node.operand))
                if inner is None:
                    continue
                dotted = f"{inner[0]}.{node.field}"
                if len(dotted) > longest:
                    continue
                if isinstance(node, expr_ast.Select):
                    paths[id(node)] = (dotted, inner[1])
                if dotted in self.facts:
                    span = Span(inner[1], node.field_span.end)
                    self.add("fact", ast.Name(source, span, dotted))
            elif isinstance(node, expr_ast.Ident) and node.name not in bound:
                paths[id(node)] = (node.name, node.span.start)
                if node.name in self.constants:
                    self.add("constant", ast.Name(source, node.span, node.name))
                elif node.name in self.conditions:
                    self.add("condition", ast.Name(source, node.span, node.name))
            elif (
                isinstance(node, expr_ast.Literal)
                and node.kind == "string"
                and isinstance(node.value, str)
                and node.value in self.members
                and node.span.end - node.span.start == len(node.value) + 2
            ):
                span = Span(node.span.start + 1, node.span.end - 1)
                name = f"{self.members[node.value]}.{node.value}"
                self.add("member", ast.Name(source, span, name))
