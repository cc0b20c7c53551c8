"""The policy checker: names, types and structure -> the compiled policy (IR).

Reports every problem it finds in one run, each with a stable code and the
place it was written; builds :class:`rulekit.policy.ir.Policy` only when there
is no error. Fragments are inlined into the workflows that use them and
``every state`` blocks are expanded into the states they apply to here, so
the runtime sees plain states and transitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rulekit.core import calendar as cal
from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.source import Source, Span, read_text
from rulekit.expr import ast as expr_ast
from rulekit.expr import parser as expr_parser
from rulekit.expr import stdlib
from rulekit.expr.checker import check as check_expr
from rulekit.expr.convert import ConversionError, convert, to_data
from rulekit.expr.cost import DEFAULT_COST_LIMIT, MAX_COST_LIMIT, parse_cost_limit
from rulekit.expr.expression import Expression
from rulekit.expr.types import (
    BUILTIN_NAMES,
    DYN,
    NUMERIC,
    DeclarationError,
    Declarations,
    Type,
    TypeSyntaxError,
    enum_of,
    parse_type,
)
from rulekit.policy import ast, ir, soon

#: Names the policy language gives a meaning: facts may not take them.
RESERVED_FACT_ROOTS = frozenset({"event", "actor"}) | BUILTIN_NAMES
#: Words the condition language cannot read as a fact's first name, and after a dot.
UNREADABLE = expr_parser.RESERVED | expr_parser.KEYWORDS
UNREADABLE_FIELDS = expr_ast.CEL_KEYWORDS
_RESERVED_WHY = {
    "event": "`event` is the payload of the event being handled",
    "actor": "`actor` is the sender of the event being handled",
    "now": "`now` is the evaluation time",
}
#: Help for names a condition reads that are not declared.
_NAME_HINTS = {
    "event": "`event` (the payload) exists only in transitions `on` an event",
    "actor": "`actor` (the sender) exists only in transitions `on` an event",
    "*": "declare it under `facts`, or as a `const`",
}
SYSTEM_ACTOR = "system"
#: How deep a declared type may nest (`list(list(int))` is 3): deeper is an RK0316, never a
#: RecursionError in the code that reads, prints or converts it.
MAX_TYPE_NESTING = 32


def _kind(decl: ast.ConditionDecl) -> str:
    return "value" if decl.value else "condition"


def position(node: ast.Located) -> ir.Position:
    return _pos(node.source, node.span)


def _pos(source: Source, span: Span) -> ir.Position:
    start = source.position(span.start)
    end = source.position(span.end)
    return ir.Position(source.file, start.line, start.column, end.line, end.column)


@dataclass
class _Scope:
    """What expressions of one kind of place may read."""

    env: dict[str, Type]
    constants: dict[str, tuple[Type, object]]
    #: the named conditions checked so far
    named: dict[str, Expression] = field(default_factory=dict)


@dataclass
class _Checker:
    policy: ast.Policy
    diagnostics: list[Diagnostic] = field(default_factory=list)
    enums: dict[str, Type] = field(default_factory=dict)
    fact_types: dict[str, ir.Fact] = field(default_factory=dict)
    env: dict[str, Type] = field(default_factory=dict)
    constants: dict[str, ir.Constant] = field(default_factory=dict)
    actors: dict[str, ast.Name] = field(default_factory=dict)
    events: dict[str, ir.Event] = field(default_factory=dict)
    effects: dict[str, ir.EffectDecl] = field(default_factory=dict)
    fragments: dict[str, ast.Workflow] = field(default_factory=dict)
    # A transition written once (in a fragment or an `every state` block) is
    # checked once, however many states it lands in.
    parts_memo: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    reported: set[tuple[int, int]] = field(default_factory=set)
    written: dict[int, ast.Transition] = field(default_factory=dict)
    scopes: dict[str | None, _Scope] = field(default_factory=dict)
    cost_limit: int = DEFAULT_COST_LIMIT
    conditions: dict[str, ir.Condition] = field(default_factory=dict)
    #: named conditions that did not check: a name of one is not reported again where used
    broken: set[str] = field(default_factory=set)
    time_rules: cal.TimeRules = stdlib.DEFAULT_TIME_RULES
    #: the clocks of the workflow being built (what `start`, `stop`, ... may name)
    clocks: dict[str, ir.Clock] = field(default_factory=dict)
    #: a clock's expressions and expiry clauses, checked once (a fragment's, for every use)
    clock_memo: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    clock_reported: set[tuple[int, int]] = field(default_factory=set)
    #: every clock the workflow being built declares, with an error or not
    clock_names: set[str] = field(default_factory=set)

    #: the `migrate from` blocks that checked, by the version they migrate from
    migrations: dict[str, ir.Migration] = field(default_factory=dict)

    # -- reporting ------------------------------------------------------------------
    def error(
        self,
        code: str,
        message: str,
        node: ast.Located,
        help: str | None = None,
        notes: Iterable[str] = (),
    ) -> None:
        self.diagnostics.append(
            diag.make(code, message, node.source, node.span, help=help, notes=notes)
        )

    def duplicates(
        self, names: Iterable[ast.Name], what: str, where: str = ""
    ) -> dict[str, ast.Name]:
        seen: dict[str, ast.Name] = {}
        for n in names:
            if n.text in seen:
                first = seen[n.text]
                p = first.source.position(first.span.start)
                self.error(
                    "RK0301",
                    f"{what} `{n.text}`{where} is declared twice",
                    n,
                    notes=[f"first declared at {first.source.file}:{p.line}:{p.column}"],
                    help="rename one of them, or remove the repeat",
                )
            else:
                seen[n.text] = n
        return seen

    def unknown(
        self, code: str, what: str, name: ast.Name, known: Iterable[str], extra: str = ""
    ) -> None:
        known = list(known)
        import difflib  # only when there is a mistake to suggest a fix for

        close = difflib.get_close_matches(name.text, known, n=1, cutoff=0.6)
        if what == "state" and name.text == "stay":
            help_ = (
                "to stay in the state, write `stay` without the arrow: `... stay`, not `-> stay`"
            )
        elif close:
            help_ = f"did you mean `{close[0]}`?"
        elif known:
            help_ = (
                f"known {what}s: "
                + ", ".join(sorted(known)[:10])
                + (", ..." if len(known) > 10 else "")
            )
        else:
            help_ = f"declare the {what} first"
        self.error(code, f"unknown {what} `{name.text}`{extra}", name, help_)

    # -- declarations -----------------------------------------------------------------
    def type_of(self, ref: ast.TypeRef) -> Type:
        if ref.nesting() > MAX_TYPE_NESTING:
            self.error(
                "RK0316",
                f"type nested too deeply (more than {MAX_TYPE_NESTING} levels)",
                ref,
                "declare the data flatter, or use dyn for a part whose shape does not matter",
            )
            return DYN
        try:
            return parse_type(str(ref), self.enums)
        except TypeSyntaxError as e:
            self.error("RK0316", str(e), ref, None)
            return DYN

    def declarations(self) -> None:
        p = self.policy
        if p.timezone is not None:
            try:
                self.time_rules = cal.TimeRules(p.timezone.text, stdlib.time_zone(p.timezone.text))
            except stdlib.CelError as e:
                self.error("RK0315", str(e), p.timezone)
        self.calendars()
        if p.cost_limit is not None:
            limit = parse_cost_limit(p.cost_limit.text)
            if limit is None:
                self.error(
                    "RK0319",
                    f"the cost limit must be a whole number from 1 to {MAX_COST_LIMIT:,},"
                    f" not `{p.cost_limit.text}`",
                    p.cost_limit,
                    f"leave it out for the default, {DEFAULT_COST_LIMIT:,}"
                    " (see docs/expressions.md, Cost)",
                )
            else:
                self.cost_limit = limit
        for decl in p.enums:
            self.duplicates(decl.members, "value", f" of enum {decl.name.text}")
        for name in self.duplicates([e.name for e in p.enums], "enum"):
            decl = next(e for e in p.enums if e.name.text == name)
            self.enums[name] = enum_of(name, tuple(dict.fromkeys(m.text for m in decl.members)))
        self.facts()
        self.declare_constants()
        self.fact_defaults()
        self.declare_conditions()
        self.actors = self.duplicates(p.actors, "actor")
        if SYSTEM_ACTOR in self.actors:
            self.error(
                "RK0317",
                "`system` is the engine itself and cannot be declared as an actor",
                self.actors[SYSTEM_ACTOR],
                "remove it: deadlines and automatic transitions act as system",
            )
        for fact in p.facts:
            for a in fact.by:
                if a.text == SYSTEM_ACTOR:
                    self.error(
                        "RK0304",
                        "`system` is the engine itself: it supplies no facts from outside",
                        a,
                        "remove it: facts the engine sets are written with `set` in transitions",
                    )
                elif a.text not in self.actors:
                    self.unknown("RK0304", "actor", a, self.actors)
        self.duplicates([e.name for e in p.events], "event")
        for ev in p.events:
            for a in ev.actors:
                if a.text not in self.actors:
                    self.unknown("RK0304", "actor", a, self.actors)
            self.duplicates(
                [f.name for f in ev.payload], "payload field", f" of event {ev.name.text}"
            )
            fields = tuple(ir.Field(f.name.text, self.type_of(f.type)) for f in ev.payload)
            self.events.setdefault(
                ev.name.text,
                ir.Event(
                    ev.name.text,
                    tuple(dict.fromkeys(a.text for a in ev.actors)),
                    fields,
                    position(ev),
                ),
            )
        self.duplicates([e.name for e in p.effects], "effect")
        for ef in p.effects:
            self.duplicates([f.name for f in ef.params], "parameter", f" of effect {ef.name.text}")
            fields = tuple(ir.Field(f.name.text, self.type_of(f.type)) for f in ef.params)
            self.effects.setdefault(ef.name.text, ir.EffectDecl(ef.name.text, fields, position(ef)))
        self.duplicates([f.name for f in p.fragments], "fragment")
        self.duplicates([w.name for w in p.workflows], "workflow")
        self.fragments = {f.name.text: f for f in p.fragments}

    def calendars(self) -> None:
        """Read each declared calendar's file (relative to the policy's): its content goes
        into the compiled artifact, so a compiled policy never reads it again."""
        if not self.policy.calendars:
            return
        found = []
        seen = self.duplicates([d.name for d in self.policy.calendars], "calendar")
        for decl in self.policy.calendars:
            if seen.get(decl.name.text) is not decl.name:
                continue
            path = Path(decl.source.file).parent / decl.file.text
            try:
                text = read_text(path)
            except (OSError, UnicodeDecodeError) as e:
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                self.error(
                    "RK0001",
                    f"cannot read the calendar file {decl.file.text}: {reason}",
                    decl.file,
                    "the path is relative to the policy's file",
                )
                continue
            try:
                found.append(cal.read_file(decl.name.text, text))
            except cal.CalendarError as e:
                self.error(
                    "RK0212",
                    f"calendar `{decl.name.text}` ({decl.file.text}): {e}",
                    decl.file,
                    "a calendar file holds weekend: [saturday, sunday], holidays: [YYYY-MM-DD or"
                    " {from: DATE, to: DATE}, ...] and working_days: [YYYY-MM-DD, ...]",
                )
        self.time_rules = cal.TimeRules(self.time_rules.zone, self.time_rules.tz, tuple(found))

    def facts(self) -> None:
        seen = self.duplicates([f.path for f in self.policy.facts], "fact")
        good = Declarations()
        for decl in self.policy.facts:
            if seen.get(decl.path.text) is not decl.path:
                continue
            segments = decl.path.text.split(".")
            root = segments[0]
            if root in RESERVED_FACT_ROOTS:
                why = _RESERVED_WHY.get(
                    root, f"`{root}` is a built-in name of the condition language"
                )
                self.error(
                    "RK0317",
                    f"`{root}` is a reserved name and cannot start a fact",
                    decl.path,
                    f"{why}; pick another name",
                )
                continue
            unreadable = [root] if root in UNREADABLE else []
            unreadable += [seg for seg in segments[1:] if seg in UNREADABLE_FIELDS]
            if unreadable:
                self.error(
                    "RK0317",
                    f"`{unreadable[0]}` is a reserved word of the condition language: "
                    f"no condition could read `{decl.path.text}`",
                    decl.path,
                    f"pick another name, such as `{unreadable[0]}_info`",
                )
                continue
            t = self.type_of(decl.type)
            try:
                good.add(decl.path.text, t)
            except DeclarationError as e:
                self.error(
                    "RK0301",
                    f"fact `{decl.path.text}` conflicts with another: {e.message}",
                    decl.path,
                )
                continue
            self.fact_types[decl.path.text] = ir.Fact(
                decl.path.text,
                t,
                decl.optional,
                position(decl),
                tuple(dict.fromkeys(a.text for a in decl.by)),
            )
        self.env = good.build()

    def declare_constants(self) -> None:
        seen = self.duplicates([c.name for c in self.policy.constants], "constant")
        for decl in self.policy.constants:
            name = decl.name.text
            if seen.get(name) is not decl.name:
                continue
            if name in self.env or name in RESERVED_FACT_ROOTS:
                self.error(
                    "RK0301",
                    f"constant `{name}` has the name of a fact or a built-in name",
                    decl.name,
                )
                continue
            found = self.constant_value(
                decl.expr, None, f"constant `{name}`", "RK0314", "a constant's value"
            )
            if found is not None:
                compiled, value = found
                self.constants[name] = ir.Constant(
                    name, compiled.type, value, decl.expr.text, decl.note, position(decl)
                )

    def constant_value(
        self, ref: ast.ExprRef, want: Type | None, what: str, code: str, fixed: str
    ) -> tuple[ir.Expr, Any] | None:
        """A value fixed when the policy is compiled (a constant's, a fact's default): it
        reads no fact and not `now`, and survives the artifact; ``want``: its type."""
        scope = _Scope(dict(self.env), {k: (c.type, c.value) for k, c in self.constants.items()})
        compiled = self.expression(ref, scope, None, what, code, want)
        if compiled is None:
            return None
        checked = compiled.compiled.checked
        if checked.variables or checked.uses_now:
            read = sorted(checked.variables) + (["now"] if checked.uses_now else [])
            self.error(
                code,
                f"{what} reads {', '.join(f'`{r}`' for r in read)}",
                ref,
                f"{fixed} is fixed when the policy is compiled: it cannot read facts or now",
            )
            return None
        try:
            value = compiled.compiled.evaluate({})
        except Exception as e:
            self.error(code, f"{what} cannot be computed: {e}", ref)
            return None
        # A period is kept as its text and the calendar it counts on (artifact.py).
        if compiled.type.kind != "period" and not _storable(value, compiled.type):
            self.error(
                code,
                f"{what} ({compiled.type}) cannot be written into a compiled "
                "artifact and read back as the same value",
                ref,
                "constants are values a fact could hold: bool, int, double, money, string, "
                "time, duration, enums, and lists or string-keyed maps of them; or a "
                "calendar period",
            )
            return None
        return compiled, value

    def fact_defaults(self) -> None:
        """`order.period: duration = 7d`: a constant expression of the fact's type (RK0335);
        the fact reads as it while not set, so it is optional."""
        for decl in self.policy.facts:
            fact = self.fact_types.get(decl.path.text)
            if decl.default is None or fact is None:
                continue
            what = f"the default of `{fact.path}`"
            found = self.constant_value(decl.default, fact.type, what, "RK0335", "a default")
            if found is not None:  # as the fact's type (an int default of a double fact)
                value = convert(to_data(found[1]), fact.type, fact.path)
                self.fact_types[fact.path] = replace(fact, optional=True, default=value)

    def declare_conditions(self) -> None:
        """Named conditions (bool) and values (any type): each checked once, after those it
        names (a cycle is RK0333); over facts and constants only (`event` or `actor` is
        RK0334)."""
        decls: dict[str, ast.ConditionDecl] = {}
        seen = self.duplicates(
            [c.name for c in self.policy.conditions],
            "named value or condition"
            if any(c.value for c in self.policy.conditions)
            else "condition",
        )
        # Canonical order, whatever the layout: conditions, then values, each as declared
        # (the YAML form has them in two sections); each is checked after those it names.
        for decl in sorted(self.policy.conditions, key=lambda d: d.value):
            name = decl.name.text
            kind = _kind(decl)
            if seen.get(name) is not decl.name:
                continue
            if name in self.env or name in self.constants or name in RESERVED_FACT_ROOTS:
                self.error(
                    "RK0301",
                    f"{kind} `{name}` has the name of a fact, a constant or a built-in name",
                    decl.name,
                    f"rename the {kind}",
                )
                continue
            decls[name] = decl
        names: dict[str, list[str]] = {}
        for name, decl in decls.items():
            kind = _kind(decl)
            idents = [n for n in expr_ast.walk(decl.expr.root) if isinstance(n, expr_ast.Ident)]
            for n in idents:
                if n.name in ("event", "actor"):
                    self.error(
                        "RK0334",
                        f"{kind} `{name}` reads `{n.name}`, which only a transition on an "
                        "event has",
                        ast.Name(decl.expr.source, n.span, n.name),
                        f"a named {kind} is over facts and constants: "
                        + (
                            f"test `{n.name}` in the guard that names `{name}`"
                            if not decl.value
                            else f"read `{n.name}` where `{name}` is used"
                        ),
                    )
                    self.broken.add(name)
            names[name] = list(dict.fromkeys(n.name for n in idents if n.name in decls))
        scope = _Scope(dict(self.env), {k: (c.type, c.value) for k, c in self.constants.items()})
        pending = [n for n in decls if n not in self.broken]
        while pending:
            ready = [n for n in pending if all(d not in pending for d in names[n])]
            if not ready:
                self.condition_cycle(pending, names, decls)
                self.broken.update(pending)
                return
            for name in ready:
                pending.remove(name)
                decl = decls[name]
                if any(d in self.broken for d in names[name]):
                    self.broken.add(name)  # what it names is reported already
                    continue
                expected = None if decl.value else ("bool",)
                compiled = self.expression(decl.expr, scope, expected, f"{_kind(decl)} `{name}`")
                if compiled is None:
                    self.broken.add(name)
                    continue
                scope.named[name] = compiled.compiled
                self.conditions[name] = ir.Condition(name, compiled, position(decl), decl.value)

    def condition_cycle(
        self,
        pending: list[str],
        names: Mapping[str, list[str]],
        decls: Mapping[str, ast.ConditionDecl],
    ) -> None:
        """RK0333 for a cycle among ``pending`` (each names another of them)."""
        path, at = [pending[0]], {pending[0]: 0}
        while True:
            following = next(d for d in names[path[-1]] if d in pending)
            if following in at:
                cycle = path[at[following] :]
                break
            at[following] = len(path)
            path.append(following)
        first = min(cycle, key=lambda n: decls[n].span.start)
        i = cycle.index(first)
        route = [*cycle[i:], *cycle[:i], first]
        kinds = {_kind(decls[n]) for n in cycle}
        named = {
            frozenset({"condition"}): "named conditions",
            frozenset({"value"}): "named values",
        }.get(frozenset(kinds), "named values and conditions")
        kind = _kind(decls[first])
        self.error(
            "RK0333",
            f"{named} name each other in a cycle: " + " -> ".join(route),
            decls[first].name,
            f"a {kind} cannot depend on itself: write the shared part as a {kind} of its own",
        )

    # -- expressions ------------------------------------------------------------------
    def expression(
        self,
        ref: ast.ExprRef,
        scope: _Scope,
        expected: Sequence[str] | None,
        what: str,
        code: str = "RK0205",
        want: Type | None = None,
    ) -> ir.Expr | None:
        checked, problems = check_expr(
            ref.root,
            ref.source,
            scope.env,
            scope.constants,
            _NAME_HINTS,
            self.cost_limit,
            scope.named,
            self.time_rules,
        )
        # A condition that did not check was reported where it is written, not where named.
        unreported = {f"undeclared name `{n}`" for n in self.broken}
        self.diagnostics.extend(d for d in problems if d.message not in unreported)
        if problems:
            return None
        t = checked.type
        ok = expected is None or t.is_dynamic or t.kind in expected
        if want is not None:
            ok = assignable(t, want)
            if ok and want.kind == "enum" and _string_literal(ref) is not None:
                value = _string_literal(ref)
                if value not in [m for m, _ in want.fields]:
                    self.error(
                        "RK0208",
                        f'"{value}" is not a value of {want.name}',
                        ref,
                        f"{want.name} is one of: " + ", ".join(m for m, _ in want.fields),
                    )
                    return None
        if not ok:
            wanted = (
                f"of type {want}" if want else " or ".join(_A.get(k, k) for k in expected or ())
            )
            self.error(code, f"{what} must be {wanted}, but `{ref.text}` is {t}", ref)
            return None
        return ir.Expr(
            ref.text, _pos(ref.source, ref.root.span), Expression(checked, None, embedded=True)
        )

    def scope_for(self, t: ast.Transition) -> _Scope:
        event = t.event.text if t.kind == "event" and t.event is not None else None
        if event not in self.scopes:
            self.scopes[event] = self._scope(t)
        return self.scopes[event]

    def _scope(self, t: ast.Transition) -> _Scope:
        env = dict(self.env)
        if t.kind == "event" and t.event is not None and t.event.text in self.events:
            ev = self.events[t.event.text]
            env["event"] = Type(
                "object", name="event", fields=tuple(sorted((f.name, f.type) for f in ev.payload))
            )
            env["actor"] = enum_of("actor", tuple(self.actors))
        return _Scope(
            env,
            {k: (c.type, c.value) for k, c in self.constants.items()},
            {k: c.expr.compiled for k, c in self.conditions.items()},
        )

    # -- workflows --------------------------------------------------------------------
    def workflows(self) -> dict[str, ir.Workflow]:
        out: dict[str, ir.Workflow] = {}
        for wf in self.policy.workflows:
            built = self.workflow(wf)
            if built is not None and wf.name.text not in out:
                out[wf.name.text] = built
        # What no workflow reached (an unused fragment, a block that applies to no
        # state) is still checked, except for targets, which depend on the workflow.
        for body in (*self.policy.fragments, *self.policy.workflows):
            for part in body.parts:
                for t in part.transitions if isinstance(part, ast.State | ast.EveryBlock) else ():
                    if id(t) not in self.parts_memo:
                        self.parts_memo[id(t)] = self.transition_parts(t)
                if isinstance(part, ast.ClockDecl) and id(part) not in self.clock_memo:
                    self.clock_memo[id(part)] = self.clock_parts(part)
        for frag in self.policy.fragments:
            for part in frag.parts:
                if isinstance(part, ast.Use):
                    self.error(
                        "RK0313",
                        "a fragment cannot use another fragment",
                        part,
                        f"use `{part.fragment.text}` in the workflows instead",
                    )
        return out

    def workflow(self, wf: ast.Workflow) -> ir.Workflow | None:
        # Canonical order, whatever the layout of the file: the workflow's own
        # states and blocks first, then each used fragment's, in order of use.
        states: list[tuple[ast.State, str]] = [
            (p, "state") for p in wf.parts if isinstance(p, ast.State)
        ]
        blocks: list[tuple[ast.EveryBlock, str]] = [
            (p, "every") for p in wf.parts if isinstance(p, ast.EveryBlock)
        ]
        used: set[str] = set()
        clock_decls = [p for p in wf.parts if isinstance(p, ast.ClockDecl)]
        for part in wf.parts:
            if isinstance(part, ast.Use):
                frag = self.fragments.get(part.fragment.text)
                if frag is None:
                    self.unknown("RK0313", "fragment", part.fragment, self.fragments)
                    continue
                if frag.name.text in used:
                    self.error(
                        "RK0301",
                        f"fragment `{frag.name.text}` is used twice in workflow {wf.name.text}",
                        part.fragment,
                        "remove the repeated `use`",
                    )
                    continue
                used.add(frag.name.text)
                origin = f"fragment {frag.name.text}"
                for fp in frag.parts:
                    if isinstance(fp, ast.State):
                        states.append((fp, origin))
                    elif isinstance(fp, ast.EveryBlock):
                        blocks.append((fp, origin))
                    elif isinstance(fp, ast.ClockDecl):
                        clock_decls.append(fp)
        by_name = self.duplicates(
            [s.name for s, _ in states], "state", f" of workflow {wf.name.text}"
        )
        first = {id(s.name): s for s, _ in states}
        decl = {name: first[id(n)] for name, n in by_name.items()}
        own_states = {id(s) for s, origin in states if origin == "state"}
        origins = {id(s): origin for s, origin in states}
        initials = [s for s in decl.values() if s.initial]
        if len(initials) != 1:
            msg = (
                f"workflow `{wf.name.text}` has no initial state"
                if not initials
                else f"workflow `{wf.name.text}` has {len(initials)} initial states"
            )
            notes = [f"`{s.name.text}` at {position(s)}" for s in initials]
            self.error("RK0306", msg, wf.name, "mark exactly one state `initial state ...`", notes)
        for s in decl.values():
            if s.final and s.transitions:
                self.error(
                    "RK0307",
                    f"final state `{s.name.text}` has transitions",
                    s.transitions[0],
                    "a case in a final state is closed; make the state non-final or move the transition",
                )
            if s.final and s.initial:
                self.error("RK0307", f"state `{s.name.text}` is both initial and final", s.name)
            if s.outcome is not None and not s.final:
                self.error(
                    "RK0318",
                    f"state `{s.name.text}` has an outcome but is not final",
                    s.outcome,
                    "only final states have outcomes: mark it `final state` or drop `outcome`",
                )
            if s.waits is not None and s.final:
                self.error(
                    "RK0318",
                    f"final state `{s.name.text}` is marked as waiting",
                    s.name,
                    "a final state waits for nothing: drop `waits`",
                )
            if s.unbounded and s.waits is None:
                self.error(
                    "RK0318",
                    f"state `{s.name.text}` is marked unbounded but does not say what it waits for",
                    s.name,
                    'give the reason with it: waits: "the platform reviews at its own pace"',
                )
        non_final = [n for n, s in decl.items() if not s.final]
        extra: dict[str, list[tuple[ast.Transition, str]]] = {n: [] for n in decl}
        for block, origin in blocks:
            for n in block.states:
                if n.text not in decl:
                    self.unknown("RK0302", "state", n, decl, f" in workflow {wf.name.text}")
                elif block.mode == "in" and decl[n.text].final:
                    self.error("RK0307", f"`every state in` names final state `{n.text}`", n)
            listed = {n.text for n in block.states}
            if block.mode == "all":
                applies = non_final
            elif block.mode == "except":
                applies = [n for n in non_final if n not in listed]
            else:
                applies = [n for n in non_final if n in listed]
            kind = "every state" if origin == "state" else origin
            for state_name in applies:
                extra[state_name].extend((t, kind) for t in block.transitions)
        self.clocks = self.workflow_clocks(wf, clock_decls, decl)
        ir_states: dict[str, ir.State] = {}
        for name, s in decl.items():
            transitions: list[ir.Transition] = []
            own = "state" if id(s) in own_states else origins[id(s)]
            for t, origin in [*((t, own) for t in s.transitions), *extra[name]]:
                built = self.transition(t, name, decl, origin, wf)
                if built is not None:
                    transitions.append(built)
            outcome = s.outcome.text if s.outcome is not None else (name if s.final else None)
            ir_states[name] = ir.State.build(
                name,
                s.initial,
                s.final,
                outcome,
                s.waits,
                s.cite,
                tuple(transitions),
                position(s),
                s.unbounded,
                s.assumption,
            )
        self.auto_cycles(wf, ir_states)
        if len(initials) != 1:
            return None
        requires: list[str] = []
        for needed in wf.requires:
            fact = self.fact_types.get(needed.text)
            if fact is None:
                self.unknown("RK0310", "fact", needed, self.fact_types)
            elif not fact.optional:
                self.error(
                    "RK0310",
                    f"`{needed.text}` is required for every workflow already",
                    needed,
                    "`requires` names optional facts (declared with `?`) that this workflow needs",
                )
            else:
                requires.append(needed.text)
        return ir.Workflow(
            wf.name.text,
            initials[0].name.text,
            ir_states,
            position(wf.name),
            tuple(requires),
            self.clocks,
        )

    def transition(
        self,
        t: ast.Transition,
        state: str,
        states: Mapping[str, ast.State],
        origin: str,
        wf: ast.Workflow,
    ) -> ir.Transition | None:
        if id(t) not in self.parts_memo:
            self.parts_memo[id(t)] = self.transition_parts(t)
        parts = self.parts_memo[id(t)]
        target = None
        if t.target is not None:
            target = t.target.text
            if target not in states:
                if (id(t), id(wf)) not in self.reported:
                    self.reported.add((id(t), id(wf)))
                    self.unknown(
                        "RK0302", "state", t.target, states, f" in workflow {wf.name.text}"
                    )
                return None
        if parts is None:
            return None
        actions = self.clock_actions(t, wf)
        if actions is None:
            return None
        built = ir.Transition(
            kind=t.kind,
            source=state,
            target=target,
            origin=origin,
            at=position(t),
            clocks=actions,
            **{k: v for k, v in parts.items() if k != "clock_lengths"},
        )
        self.written[id(built)] = t
        return built

    def transition_parts(self, t: ast.Transition) -> dict[str, Any] | None:
        """Check what does not depend on the state the transition lands in."""
        scope = self.scope_for(t)
        ok = True
        parts: dict[str, Any] = {"cite": t.cite, "assumption": t.assumption}
        if t.kind == "event":
            assert t.event is not None
            ev = self.events.get(t.event.text)
            if ev is None:
                self.unknown("RK0303", "event", t.event, self.events)
                return None
            actors = ev.actors
            if t.actors is not None:
                for a in t.actors:
                    if a.text not in self.actors:
                        self.unknown("RK0304", "actor", a, self.actors)
                        ok = False
                    elif a.text not in ev.actors:
                        self.error(
                            "RK0305",
                            f"`{a.text}` may not send `{ev.name}`",
                            a,
                            f"`{ev.name}` is sent by {', '.join(ev.actors) or 'nobody'}; "
                            f"add `{a.text}` to its declaration or remove it here",
                        )
                        ok = False
                actors = tuple(a.text for a in t.actors if a.text in ev.actors)
            parts["event"] = ev.name
            parts["actors"] = actors
        if t.condition is not None:
            parts["guard"] = self.expression(t.condition, scope, ("bool",), "the condition")
            ok &= parts["guard"] is not None
            if t.kind == "soon" and parts["guard"] is not None:
                parts["deadline"] = self.instant(t.condition, parts["guard"], scope)
                ok &= parts["deadline"] is not None
        if t.guard is not None:
            parts["guard"] = self.expression(t.guard, scope, ("bool",), "the condition")
            ok &= parts["guard"] is not None
        if t.deadline is not None:
            want = ("duration", "period") if t.kind == "after" else ("timestamp",)
            what = "the delay of `after`" if t.kind == "after" else "the time of `at`"
            parts["deadline"] = self.expression(t.deadline, scope, want, what, "RK0308")
            ok &= parts["deadline"] is not None
        if t.start is not None:
            parts["start"] = self.expression(
                t.start, scope, ("timestamp",), "the start of `from`", "RK0308"
            )
            ok &= parts["start"] is not None
        for adj in t.adjust:
            if adj.kind == "end_of_day":
                parts["end_of_day"] = True
                continue
            name = adj.calendar.text if adj.calendar is not None else None
            try:
                rolled = self.time_rules.pick(
                    name, "`rolled to a working day`", "`rolled to a working day in {}`"
                )
            except cal.CalendarChoice as e:
                self.error(e.code, e.message, adj.calendar or adj, e.help)
                ok = False
                continue
            parts["rolled"] = rolled.name
        emits = []
        for em in t.emits:
            built = self.emit(em, scope)
            ok &= built is not None
            if built is not None:
                emits.append(built)
        parts["emits"] = tuple(emits)
        assigns = []
        for assign in t.assigns:
            fact = self.fact_types.get(assign.fact.text)
            if fact is None:
                self.unknown("RK0310", "fact", assign.fact, self.fact_types)
                ok = False
                continue
            if _is_null(assign.expr):
                # `set x = null` clears an optional fact.
                if not fact.optional:
                    self.error(
                        "RK0309",
                        f"`{assign.fact.text}` is required: it cannot be set to null",
                        assign.expr,
                        "only optional facts (declared with `?`) can be cleared",
                    )
                    ok = False
                    continue
                value = self.expression(assign.expr, scope, None, "")
            else:
                value = self.expression(
                    assign.expr,
                    scope,
                    None,
                    f"the value of `{assign.fact.text}`",
                    "RK0309",
                    fact.type,
                )
            ok &= value is not None
            if value is not None:
                assigns.append(ir.Assign(assign.fact.text, value))
        parts["assigns"] = tuple(assigns)
        lengths: dict[int, ir.Expr] = {}
        for action in t.clocks:
            if action.by is not None:
                length = self.expression(
                    action.by,
                    scope,
                    ("duration", "period"),
                    f"the length `{action.clock.text}` is extended by",
                    "RK0308",
                )
                ok &= length is not None
                if length is not None:
                    lengths[id(action)] = length
        parts["clock_lengths"] = lengths
        if t.reschedule is not None:
            if t.target is not None:
                self.error(
                    "RK0338",
                    f"`reschedule` on a transition to `{t.target.text}`: only a `stay` reschedules",
                    t.reschedule,
                    "entering a state counts its deadlines from the entry already; to count "
                    "them again without leaving it, write `stay ... reschedule`",
                )
                ok = False
            parts["reschedule"] = True
        return parts if ok else None

    def instant(self, condition: ast.ExprRef, guard: ir.Expr, scope: _Scope) -> ir.Expr | None:
        """The instant an `as soon as` condition (checked: ``guard``) becomes true (its
        deadline), or RK0332."""
        solved = soon.solve(guard.compiled.checked)
        if isinstance(solved, soon.Unsolvable):
            self.diagnostics.append(
                diag.make("RK0332", solved.message, condition.source, solved.span, help=solved.help)
            )
            return None
        src = Source(solved.instant, condition.source.name)
        parsed = expr_parser.parse(src)
        assert parsed.ast is not None, solved.instant  # joined from parts that parsed
        checked, problems = check_expr(
            parsed.ast,
            src,
            scope.env,
            scope.constants,
            cost_limit=self.cost_limit,
            named=scope.named,
            time_rules=self.time_rules,
        )
        if problems or checked.type.kind != "timestamp":
            self.error(
                "RK0332",
                f"cannot compute when this becomes true: `{solved.instant}` is not a time",
                condition,
                "compare `now` with a time, or `since(t)` with a duration",
            )
            return None
        return ir.Expr(
            solved.instant,
            _pos(condition.source, condition.root.span),
            Expression(checked, None, embedded=True),
        )

    # -- clocks -----------------------------------------------------------------------
    def clock_parts(self, c: ast.ClockDecl) -> dict[str, Any] | None:
        """What does not depend on the workflow: its length, start, and expiry's clauses."""
        scope = self.scope_for(c.expiry)
        length = self.expression(
            c.length,
            scope,
            ("duration", "period"),
            f"the length of clock `{c.name.text}`",
            "RK0308",
        )
        counting = None
        if c.counting_from is not None:
            counting = self.expression(
                c.counting_from, scope, ("timestamp",), "the start of `counting from`", "RK0308"
            )
        event = None
        if c.start_event is not None:
            ev = self.events.get(c.start_event.text)
            if ev is None:
                self.unknown("RK0303", "event", c.start_event, self.events)
            event = ev
        if id(c.expiry) not in self.parts_memo:
            self.parts_memo[id(c.expiry)] = self.transition_parts(c.expiry)
        expiry = self.parts_memo[id(c.expiry)]
        if (
            length is None
            or (c.counting_from is not None and counting is None)
            or (c.start_event is not None and event is None)
            or expiry is None
        ):
            return None
        return {"length": length, "counting": counting, "expiry": expiry}

    def workflow_clocks(
        self, wf: ast.Workflow, decls: list[ast.ClockDecl], states: Mapping[str, ast.State]
    ) -> dict[str, ir.Clock]:
        """The workflow's clocks, checked against its states (RK0302, RK0331)."""
        first = self.duplicates([c.name for c in decls], "clock", f" of workflow {wf.name.text}")
        self.clock_names = set(first)
        out: dict[str, ir.Clock] = {}
        self.clocks = {}
        for c in decls:
            if first.get(c.name.text) is not c.name:
                continue
            if id(c) not in self.clock_memo:
                self.clock_memo[id(c)] = self.clock_parts(c)
            parts = self.clock_memo[id(c)]
            ok = parts is not None
            for listed, what in ((c.paused_in, "paused in"), (c.expiry_in, "on expiry in")):
                for n in listed:
                    if n.text not in states:
                        self.unknown("RK0302", "state", n, states, f" in workflow {wf.name.text}")
                        ok = False
                    elif states[n.text].final:
                        self.error(
                            "RK0331",
                            f"clock `{c.name.text}` names final state `{n.text}` ({what})",
                            n,
                            "a case in a final state is closed: its clocks no longer count",
                        )
                        ok = False
            target = c.expiry.target
            if target is not None and target.text not in states:
                self.unknown("RK0302", "state", target, states, f" in workflow {wf.name.text}")
                ok = False
            if not ok or parts is None:
                continue
            # Its own clock actions are checked against the clocks declared so far and after.
            expiry = ir.Transition(
                kind="expiry",
                source="",
                target=target.text if target is not None else None,
                origin="clock",
                at=position(c.expiry),
                **{k: v for k, v in parts["expiry"].items() if k != "clock_lengths"},
            )
            out[c.name.text] = ir.Clock(
                c.name.text,
                parts["length"],
                c.starts,
                c.start_event.text if c.start_event is not None else None,
                parts["counting"],
                tuple(dict.fromkeys(n.text for n in c.paused_in)),
                tuple(dict.fromkeys(n.text for n in c.expiry_in)),
                expiry,
                position(c),
            )
        # The expiries' own `start`/`stop`/... clauses, now that every clock is known.
        self.clocks = out
        for c in decls:
            built = out.get(c.name.text)
            if built is None or first.get(c.name.text) is not c.name:
                continue
            actions = self.clock_actions(c.expiry, wf)
            if actions is None:
                del out[c.name.text]
            elif actions:
                out[c.name.text] = replace(built, expiry=replace(built.expiry, clocks=actions))
        return out

    def clock_actions(
        self, t: ast.Transition, wf: ast.Workflow
    ) -> tuple[ir.ClockAction, ...] | None:
        """A transition's clauses on clocks, resolved against the workflow's clocks (in the
        order they are declared), or None after an error (RK0330, RK0331)."""
        if not t.clocks:
            return ()
        parts = self.parts_memo.get(id(t))
        lengths: Mapping[int, ir.Expr] = parts["clock_lengths"] if parts else {}
        report = (id(t), id(wf)) not in self.clock_reported
        seen: dict[str, ast.ClockAction] = {}
        ok = True
        for action in t.clocks:
            name = action.clock.text
            if name not in self.clocks and name in self.clock_names:
                ok = False  # a clock with an error of its own (reported there)
            elif name not in self.clocks:
                if report:
                    self.unknown(
                        "RK0330", "clock", action.clock, self.clocks, f" in workflow {wf.name.text}"
                    )
                ok = False
            elif name in seen:
                if report:
                    self.error(
                        "RK0331",
                        f"clock `{name}` is acted on twice by one transition",
                        action,
                        f"keep one: `{seen[name].verb} {name}` is written before",
                    )
                ok = False
            else:
                seen[name] = action
        self.clock_reported.add((id(t), id(wf)))
        if not ok:
            return None
        order = list(self.clocks)
        return tuple(
            ir.ClockAction(a.verb, a.clock.text, lengths.get(id(a)))
            for a in sorted(seen.values(), key=lambda a: order.index(a.clock.text))
        )

    def emit(self, em: ast.Emit, scope: _Scope) -> ir.Emit | None:
        decl = self.effects.get(em.effect.text)
        if decl is None:
            self.unknown("RK0311", "effect", em.effect, self.effects)
            return None
        params = {f.name: f.type for f in decl.params}
        given: dict[str, ir.Expr] = {}
        ok = True
        for name, ref in em.args:
            if name.text not in params:
                self.unknown("RK0311", "parameter", name, params, f" of effect `{decl.name}`")
                ok = False
                continue
            if name.text in given:
                self.error("RK0311", f"argument `{name.text}` given twice", name)
                ok = False
                continue
            value = self.expression(
                ref, scope, None, f"argument `{name.text}`", "RK0309", params[name.text]
            )
            if value is None:
                ok = False
            else:
                given[name.text] = value
        missing = [p for p in params if p not in given and p not in {n.text for n, _ in em.args}]
        if missing:
            self.error(
                "RK0311",
                f"`{decl.name}` needs {', '.join(f'`{m}`' for m in missing)}",
                em,
                f"write it as emit {decl.name}({', '.join(f'{p}: ...' for p in params)})",
            )
            ok = False
        if not ok:
            return None
        return ir.Emit(decl.name, tuple((p, given[p]) for p in params))

    # -- migrations -------------------------------------------------------------------
    def migration_blocks(self, workflows: Mapping[str, ir.Workflow]) -> None:
        """Check each `migrate from` block against this version (RK0340, RK0342); what
        it says about the old version is checked when that is at hand
        (:func:`check_migration`)."""
        seen: dict[str, ast.Name] = {}
        for m in self.policy.migrations:
            built = self.migration(m, workflows)
            version = m.from_version.text
            if version in seen or version == self.policy.version:
                why = "twice" if version in seen else "though it is this policy's own version"
                self.error(
                    "RK0342",
                    f'`migrate from "{version}"` is written {why}',
                    m.from_version,
                    "write one block per earlier version",
                )
            elif built is not None:
                self.migrations[version] = built
            seen.setdefault(version, m.from_version)

    def migration(
        self, m: ast.Migration, workflows: Mapping[str, ir.Workflow]
    ) -> ir.Migration | None:
        ok = True
        states: dict[str, dict[str, str]] = {}
        for sm in m.states:
            wf = workflows.get(sm.workflow.text)
            if wf is None:
                self.unknown("RK0340", "workflow", sm.workflow, workflows, " to migrate to")
                ok = False
                continue
            if sm.new.text not in wf.states:
                extra = f" to migrate to in workflow {wf.name}"
                self.unknown("RK0340", "state", sm.new, wf.states, extra)
                ok = False
                continue
            mapped = states.setdefault(wf.name, {})
            if sm.old.text in mapped:
                self.error(
                    "RK0342",
                    f"state `{sm.old.text}` of workflow {wf.name} is mapped twice",
                    sm.old,
                    "a case in that state can move to one state only: keep one mapping",
                )
                ok = False
                continue
            mapped[sm.old.text] = sm.new.text
        deadlines = "keep"
        for key, value in m.options:
            if key.text != "deadlines" or value.text not in ("keep", "recompute"):
                self.error(
                    "RK0342",
                    f"`{key.text} {value.text}` is not a migration clause",
                    key,
                    "write `deadlines keep` or `deadlines recompute`",
                )
                ok = False
            else:
                deadlines = value.text
        scope = _Scope(
            dict(self.env),
            {k: (c.type, c.value) for k, c in self.constants.items()},
            {k: c.expr.compiled for k, c in self.conditions.items()},
        )
        assigns = []
        for assign in m.assigns:
            fact = self.fact_types.get(assign.fact.text)
            if fact is None:
                self.unknown("RK0310", "fact", assign.fact, self.fact_types)
                ok = False
                continue
            checked = self.expression(
                assign.expr, scope, None, f"the value of `{assign.fact.text}`", "RK0309", fact.type
            )
            if checked is None:
                ok = False
            else:
                assigns.append(ir.Assign(assign.fact.text, checked))
        if not ok:
            return None
        return ir.Migration(m.from_version.text, states, tuple(assigns), deadlines, position(m))

    def auto_cycles(self, wf: ast.Workflow, states: Mapping[str, ir.State]) -> None:
        """Automatic transitions that would chain forever once their condition holds."""
        edges: dict[str, list[ir.Transition]] = {
            n: [t for t in s.automatic if t.target is not None and not t.assigns]
            for n, s in states.items()
        }
        reported: set[frozenset[str]] = set()
        for start in states:
            # Follow chains from `start` looking for a way back (short: depth <= number of states).
            stack: list[tuple[str, list[ir.Transition]]] = [(start, [])]
            while stack:
                node, path = stack.pop()
                for t in edges.get(node, ()):
                    assert t.target is not None
                    cycle = [*path, t]
                    if t.target == start:
                        key = frozenset(x.source for x in cycle)
                        texts = {x.guard.text if x.guard else "true" for x in cycle}
                        if key not in reported and (len(texts) == 1 or texts == {"true"}):
                            reported.add(key)
                            written = self.written[id(cycle[0])]
                            route = " -> ".join([*(x.source for x in cycle), start])
                            self.diagnostics.append(
                                diag.make(
                                    "RK0312",
                                    f"automatic transitions loop forever: {route}",
                                    written.source,
                                    written.span,
                                    help="once the condition holds, nothing stops the loop: make the conditions "
                                    "exclusive, set a fact on the way, or wait for an event",
                                    notes=[f"condition: {next(iter(texts))}"],
                                )
                            )
                    elif t.target not in {x.source for x in cycle} and len(cycle) < len(states):
                        stack.append((t.target, cycle))


def _storable(value: Any, t: Type) -> bool:
    """Does ``value`` survive the artifact: written as data, read back as type ``t``?"""
    try:
        back = convert(to_data(value), t, "constant")
    except (ConversionError, ValueError, TypeError, RecursionError):
        return False
    return _same(back, value)


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(type(k) is str and _same(a[k], b[k]) for k in a)
    return bool(a == b)


_A = {
    "bool": "a bool",
    "duration": "a duration",
    "timestamp": "a time",
    "period": "a calendar period",
}


def _is_null(ref: ast.ExprRef) -> bool:
    return isinstance(ref.root, expr_ast.Literal) and ref.root.kind == "null"


def _string_literal(ref: ast.ExprRef) -> str | None:
    root = ref.root
    if isinstance(root, expr_ast.Literal) and root.kind == "string":
        return str(root.value)
    return None


def assignable(actual: Type, want: Type) -> bool:
    """Whether a value of type ``actual`` may stand where ``want`` is declared (a fact, an
    effect parameter): the same kind, dyn on either side, int as money or double, a string as
    an enum (checked against its values elsewhere) and an enum as a string."""
    if actual.is_dynamic or want.is_dynamic:
        return True
    if want.kind == "money":
        return actual.kind in ("money", "int")
    if want.kind == "double":
        return actual.kind in ("double", "int")
    if want.kind == "enum":
        return actual.kind == "string" or actual == want
    if want.kind in NUMERIC:
        return actual.kind == want.kind
    if want.kind in ("list", "map"):
        return actual.kind == want.kind
    if want.kind == "string":
        return actual.kind in ("string", "enum")
    return actual.kind == want.kind


def check(policy: ast.Policy) -> tuple[ir.Policy | None, list[Diagnostic]]:
    """Check a parsed policy; the IR is returned only when there are no errors."""
    c = _Checker(policy)
    c.declarations()
    workflows = c.workflows()
    c.migration_blocks(workflows)
    problems = sorted(c.diagnostics, key=diag.sort_key)
    if any(d.severity == "error" for d in problems):
        return None, problems
    p = policy
    result = ir.Policy(
        name=p.name.text,
        version=p.version,
        source_doc=p.source_doc,
        timezone=p.timezone.text if p.timezone else None,
        facts=c.fact_types,
        enums={k: tuple(m for m, _ in t.fields) for k, t in c.enums.items()},
        constants=c.constants,
        actors=tuple(c.actors),
        events=c.events,
        effects=c.effects,
        workflows=workflows,
        file=p.source.file,
        cost_limit=c.cost_limit,
        conditions=c.conditions,
        calendars=c.time_rules.calendars,
        migrations=c.migrations,
    )
    return result, problems


def check_migration(new: ir.Policy, old: ir.Policy, source: Source) -> list[Diagnostic]:
    """Check ``new``'s `migrate from` block for ``old`` against ``old`` itself.

    Every state of the old version that can hold an open case (reachable from its
    initial state, not final) must land somewhere: mapped, or kept by name (RK0341);
    a mapping must name a state the old version has (RK0343); and a required fact the
    old version did not have must be given a value (RK0343). ``source`` is the new
    policy's text, for the carets."""
    where = f'`migrate from "{old.version}"`'
    migration = new.migrations.get(old.version or "")
    problems: list[Diagnostic] = []

    def report(code: str, message: str, at: ir.Position, help: str) -> None:
        start = source.offset(at.line, at.column) or 0
        end = source.offset(at.end_line, at.end_column) or start
        span = Span(start, max(end, start + 1))
        problems.append(diag.make(code, message, source, span, help=help))

    if migration is None:
        head = ir.Position(source.file, 1, 1, 1, 1)
        known = ", ".join(f'"{v}"' for v in new.migrations) or "none"
        report(
            "RK0341",
            f'version {new.version} has no `migrate from "{old.version}"` block',
            head,
            f"add one to say how its cases move over (blocks written: {known})",
        )
        return problems
    for wf_name, old_wf in old.workflows.items():
        new_wf = new.workflows.get(wf_name)
        mapping = migration.states.get(wf_name, {})
        for old_state in mapping:
            if old_state not in old_wf.states:
                report(
                    "RK0343",
                    f"state `{old_state}` is not a state of workflow {wf_name} "
                    f"in version {old.version}",
                    migration.at,
                    "map the old version's states: " + ", ".join(sorted(old_wf.states)),
                )
        for state in _open_states(old_wf):
            target = mapping.get(state, state)
            if new_wf is None or target not in new_wf.states:
                report(
                    "RK0341",
                    f"{where} leaves state `{state}` of workflow {wf_name} unmapped: "
                    f"version {new.version} has no such state",
                    migration.at,
                    f"add `state {wf_name}.{state} -> NEW_STATE` to the block",
                )
    added = {a.fact for a in migration.assigns}
    for name, fact in new.facts.items():
        if name in old.facts or name in added or fact.optional or fact.default is not None:
            continue
        report(
            "RK0343",
            f"{where} gives no value to `{name}`, a required fact version "
            f"{old.version} did not have",
            migration.at,
            f"add `set {name} = ...` to the block",
        )
    return sorted(problems, key=diag.sort_key)


def _open_states(wf: ir.Workflow) -> list[str]:
    """The states of ``wf`` a case can wait in: reachable from the initial one, not final."""
    seen, todo = {wf.initial}, [wf.initial]
    while todo:
        state = wf.states[todo.pop()]
        for t in state.transitions:
            if t.target is not None and t.target not in seen and t.target in wf.states:
                seen.add(t.target)
                todo.append(t.target)
    return sorted(s for s in seen if not wf.states[s].final)
