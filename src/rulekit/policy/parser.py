"""The .rk front end: policy text -> :mod:`rulekit.policy.ast`, or diagnostics.

One LALR parser reads the policy language (grammar/rules.lark) and the
condition language (grammar/cel.lark) together, so an expression inside a
rule is parsed by the very grammar and callbacks that parse it alone, and its
spans are offsets into the policy file.
"""

from __future__ import annotations

import re
from typing import Any

import lark
from lark import Token

from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.grammars import grammar_text, lalr_parser
from rulekit.core.source import Source, Span
from rulekit.expr import parser as expr_parser
from rulekit.expr import recovery
from rulekit.expr.parser import ExpressionBuilder, Problem, current
from rulekit.expr.parser import token_span as _tok_span
from rulekit.policy import ast


def _src() -> Source:
    """The source being parsed, for the nodes the callbacks build."""
    return current().source


def _name(tok: Token) -> ast.Name:
    return ast.Name(_src(), _tok_span(tok), str(tok))


def _sp(x: Any) -> Span:
    if isinstance(x, Token):
        return _tok_span(x)
    return x.span  # type: ignore[no-any-return]


def _cover(*xs: Any) -> Span:
    spans = [_sp(x) for x in xs if x is not None]
    return Span(min(s.start for s in spans), max(s.end for s in spans))


def _expr(node: Any) -> ast.ExprRef:
    return ast.ExprRef(_src(), node.span, expr_parser.finish(node, current()))


def _text(tok: Token) -> str:
    kind, value = expr_parser.decode_string(str(tok), tok.start_pos or 0)
    if kind != "string":
        raise Problem("RK0101", "expected a text string here, not bytes", _tok_span(tok))
    return str(value)


class _PolicyBuilder(ExpressionBuilder):
    """Callbacks for the policy grammar; expression callbacks are inherited."""

    def dotted_name(self, c: list[Token]) -> ast.Name:
        parts = [t for t in c if t.type == "IDENT"]
        return ast.Name(_src(), _cover(c[0], c[-1]), ".".join(str(p) for p in parts))

    def header(self, c: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"name": c[1], "span": _cover(c[0], c[1])}
        for attr in c[2:]:
            if attr[0] in out:
                word = {"source_doc": "source"}.get(attr[0], attr[0])
                current().recovered.append(
                    Problem(
                        "RK0315",
                        f"the policy's `{word}` is given twice",
                        attr[2],
                        "keep one of them",
                    )
                )
            out[attr[0]] = attr[1]
        return out

    def version(self, c: list[Token]) -> tuple[str, str, Span]:
        return ("version", _text(c[1]), _cover(c[0], c[1]))

    def source_doc(self, c: list[Token]) -> tuple[str, str, Span]:
        return ("source_doc", _text(c[1]), _cover(c[0], c[1]))

    def timezone(self, c: list[Token]) -> tuple[str, ast.Name, Span]:
        return ("timezone", ast.Name(_src(), _tok_span(c[1]), _text(c[1])), _cover(c[0], c[1]))

    def cost_limit(self, c: list[Token]) -> tuple[str, ast.Name, Span]:
        # Any number or string is read, so the checker can say what is wrong with it (RK0319).
        return ("cost_limit", ast.Name(_src(), _tok_span(c[1]), str(c[1])), _cover(c[0], c[1]))

    def type_ref(self, c: list[Any]) -> ast.TypeRef:
        args = tuple(x for x in c[1:] if isinstance(x, ast.TypeRef))
        return ast.TypeRef(_src(), _cover(c[0], c[-1]), str(c[0]), args)

    def fact_record(self, c: list[Token]) -> tuple[str, Token]:
        return ("record", c[1])

    def fact_default(self, c: list[Any]) -> tuple[str, ast.ExprRef]:
        return ("default", _expr(c[1]))

    def fact_decl(self, c: list[Any]) -> ast.FactDecl:
        record: Token | None = None
        if isinstance(c[-1], tuple) and c[-1][0] == "record":  # `record "why"`
            record = c[-1][1]
            c = c[:-1]
        by: tuple[ast.Name, ...] = ()
        if isinstance(c[-1], list):  # `by ACTOR, ...`
            by = tuple(c[-1])
            c = c[:-2]
        default: ast.ExprRef | None = None
        if isinstance(c[-1], tuple):  # `= EXPR`
            default = c[-1][1]
            c = c[:-1]
        optional = c[-1] is not None and isinstance(c[-1], Token) and c[-1].type == "QMARK"
        end = (
            record
            if record is not None
            else by[-1]
            if by
            else default
            if default is not None
            else c[-1]
            if c[-1] is not None
            else c[2]
        )
        return ast.FactDecl(
            _src(),
            _cover(c[0], end),
            c[0],
            c[2],
            optional,
            by,
            _text(record) if record is not None else None,
            default,
        )

    def facts(self, c: list[Any]) -> tuple[str, list[ast.FactDecl]]:
        return ("facts", [x for x in c if isinstance(x, ast.FactDecl)])

    def enum_decl(self, c: list[Any]) -> tuple[str, ast.EnumDecl]:
        idents = [t for t in c if isinstance(t, Token) and t.type == "IDENT"]
        return (
            "enums",
            ast.EnumDecl(
                _src(), _cover(c[0], c[-1]), _name(idents[0]), tuple(_name(t) for t in idents[1:])
            ),
        )

    def note(self, c: list[Token]) -> tuple[str, str]:
        return (str(c[0]), _text(c[1]))

    def const_decl(self, c: list[Any]) -> tuple[str, ast.ConstDecl]:
        note = c[4] if len(c) > 4 else None
        return (
            "constants",
            ast.ConstDecl(_src(), _cover(c[0], c[3]), _name(c[1]), _expr(c[3]), note),
        )

    def condition_decl(self, c: list[Any]) -> tuple[str, ast.ConditionDecl]:
        return (
            "conditions",
            ast.ConditionDecl(_src(), _cover(c[0], c[3]), _name(c[1]), _expr(c[3])),
        )

    def value_decl(self, c: list[Any]) -> tuple[str, ast.ConditionDecl]:
        return (
            "conditions",
            ast.ConditionDecl(_src(), _cover(c[0], c[3]), _name(c[1]), _expr(c[3]), value=True),
        )

    def calendar_decl(self, c: list[Token]) -> tuple[str, ast.CalendarDecl]:
        file = ast.Name(_src(), _tok_span(c[3]), _text(c[3]))
        return ("calendars", ast.CalendarDecl(_src(), _cover(c[0], c[3]), _name(c[1]), file))

    def migrate_decl(self, c: list[Any]) -> tuple[str, ast.Migration]:
        version = ast.Name(_src(), _tok_span(c[2]), _text(c[2]))
        states = tuple(x for x in c if isinstance(x, ast.StateMap))
        assigns = tuple(a for x in c if isinstance(x, tuple) and x[0] == "set" for a in x[1])
        options = tuple(x[1] for x in c if isinstance(x, tuple) and x[0] == "option")
        migration = ast.Migration(_src(), _cover(c[0], c[2]), version, states, assigns, options)
        return ("migrations", migration)

    def migrate_state(self, c: list[Token]) -> ast.StateMap:
        return ast.StateMap(_src(), _cover(c[0], c[5]), _name(c[1]), _name(c[3]), _name(c[5]))

    def migrate_set(self, c: list[Any]) -> tuple[str, list[ast.Assign]]:
        return self.set_facts(c)

    def migrate_option(self, c: list[Token]) -> tuple[str, tuple[ast.Name, ast.Name]]:
        return ("option", (_name(c[0]), _name(c[1])))

    def actors_decl(self, c: list[Token]) -> tuple[str, list[ast.Name]]:
        return ("actors", [_name(t) for t in c if t.type == "IDENT"])

    def field_decl(self, c: list[Any]) -> ast.FieldDecl:
        return ast.FieldDecl(_src(), _cover(c[0], c[2]), _name(c[0]), c[2])

    def payload(self, c: list[Any]) -> tuple[ast.FieldDecl, ...]:
        return tuple(x for x in c if isinstance(x, ast.FieldDecl))

    def event_decl(self, c: list[Any]) -> tuple[str, ast.EventDecl]:
        payload: tuple[ast.FieldDecl, ...] = ()
        rest = c[2:]
        if rest and isinstance(rest[0], tuple):
            payload = rest[0]
            rest = rest[1:]
        elif rest and rest[0] is None:
            rest = rest[1:]
        actors = tuple(_name(t) for t in rest if isinstance(t, Token) and t.type == "IDENT")
        return ("events", ast.EventDecl(_src(), _cover(c[0], c[-1]), _name(c[1]), payload, actors))

    def effect_decl(self, c: list[Any]) -> tuple[str, ast.EffectDecl]:
        params = c[2] if len(c) > 2 and isinstance(c[2], tuple) else ()
        return ("effects", ast.EffectDecl(_src(), _cover(c[0], c[1]), _name(c[1]), params))

    # -- workflows ------------------------------------------------------------------
    def fragment(self, c: list[Any]) -> tuple[str, ast.Workflow]:
        parts = tuple(x for x in c[3:-1])
        return ("fragments", ast.Workflow(_src(), _cover(c[0], c[1]), _name(c[1]), parts, True))

    def workflow(self, c: list[Any]) -> tuple[str, ast.Workflow]:
        requires = tuple(x for x in c if isinstance(x, ast.Name))
        brace = next(i for i, x in enumerate(c) if isinstance(x, Token) and x.type == "LBRACE")
        parts = tuple(c[brace + 1 : -1])
        return (
            "workflows",
            ast.Workflow(_src(), _cover(c[0], c[1]), _name(c[1]), parts, False, requires),
        )

    def use_fragment(self, c: list[Token]) -> ast.Use:
        return ast.Use(_src(), _cover(c[0], c[1]), _name(c[1]))

    def outcome(self, c: list[Token]) -> ast.Name:
        return _name(c[1])

    def waits(self, c: list[Token | None]) -> tuple[str, str] | tuple[str, str, bool]:
        text = c[-1]
        assert text is not None
        if c[1] is not None and c[1].type == "UNBOUNDED":
            return ("waits", _text(text), True)
        return ("waits", _text(text))

    def cite(self, c: list[Token]) -> tuple[str, str]:
        return ("cite", _text(c[1]))

    def rule_assumption(self, c: list[Token]) -> tuple[str, str]:
        return ("assumption", _text(c[1]))

    def state_body(self, c: list[Any]) -> list[ast.Transition]:
        return [x for x in c if isinstance(x, ast.Transition)]

    def state(self, c: list[Any]) -> ast.State:
        initial = final = False
        i = 0
        if isinstance(c[0], Token) and c[0].type in ("INITIAL", "FINAL"):
            initial, final = c[0].type == "INITIAL", c[0].type == "FINAL"
            i = 1
        elif c[0] is None:
            i = 1
        name_tok = c[i + 1]
        outcome = waits = cite = assumption = None
        unbounded = False
        transitions: list[ast.Transition] = []
        for x in c[i + 2 :]:
            if isinstance(x, ast.Name):
                outcome = x
            elif isinstance(x, tuple) and x[0] == "waits":
                waits = x[1]
                unbounded = len(x) > 2
            elif isinstance(x, tuple) and x[0] == "cite":
                cite = x[1]
            elif isinstance(x, tuple) and x[0] == "assumption":
                assumption = x[1]
            elif isinstance(x, list):
                transitions = x
        start = c[i] if c[0] is None else c[0]
        return ast.State(
            _src(),
            _cover(start, name_tok),
            _name(name_tok),
            initial,
            final,
            outcome,
            waits,
            cite,
            tuple(transitions),
            unbounded,
            assumption,
        )

    def ident_list(self, c: list[Token]) -> list[ast.Name]:
        return [_name(t) for t in c if t.type == "IDENT"]

    def every_block(self, c: list[Any]) -> ast.EveryBlock:
        mode, names = "all", []
        if isinstance(c[2], Token) and c[2].type in ("EXCEPT", "IN"):
            mode = "except" if c[2].type == "EXCEPT" else "in"
            names = c[3]
        transitions = tuple(x for x in c if isinstance(x, ast.Transition))
        return ast.EveryBlock(_src(), _cover(c[0], c[1]), mode, tuple(names), transitions)

    # -- transitions ----------------------------------------------------------------
    def on_event(self, c: list[Any]) -> dict[str, Any]:
        actors = c[3] if len(c) > 3 and c[3] is not None else None
        return {
            "kind": "event",
            "event": _name(c[1]),
            "actors": tuple(actors) if actors else None,
            "span": _cover(c[0], c[1]),
        }

    def on_condition(self, c: list[Any]) -> dict[str, Any]:
        return {"kind": "auto", "condition": _expr(c[1]), "span": _cover(c[0], c[1])}

    def on_soon(self, c: list[Any]) -> dict[str, Any]:
        return {"kind": "soon", "condition": _expr(c[3]), "span": _cover(c[0], c[2])}

    def on_after(self, c: list[Any]) -> dict[str, Any]:
        adjust = _adjust(c)
        c = [x for x in c if not isinstance(x, ast.Adjust)]
        start = _expr(c[3]) if len(c) > 3 and c[3] is not None else None
        return {
            "kind": "after",
            "deadline": _expr(c[1]),
            "start": start,
            "span": _cover(c[0], c[1]),
            "adjust": adjust,
        }

    def on_at(self, c: list[Any]) -> dict[str, Any]:
        return {
            "kind": "at",
            "deadline": _expr(c[1]),
            "span": _cover(c[0], c[1]),
            "adjust": _adjust(c),
        }

    def rolled(self, c: list[Token]) -> ast.Adjust:
        named = _name(c[3]) if len(c) > 3 else None
        return ast.Adjust(_src(), _cover(c[1], c[-1]), "rolled", named)

    def end_of_day(self, c: list[Token]) -> ast.Adjust:
        return ast.Adjust(_src(), _tok_span(c[1]), "end_of_day")

    def guard(self, c: list[Any]) -> tuple[str, ast.ExprRef]:
        return ("guard", _expr(c[1]))

    def goto(self, c: list[Token]) -> tuple[str, ast.Name | None]:
        return ("target", _name(c[1]))

    def stay(self, c: list[Token]) -> tuple[str, ast.Name | None]:
        return ("target", None)

    def effect_arg(self, c: list[Any]) -> tuple[ast.Name, ast.ExprRef]:
        return (_name(c[0]), _expr(c[2]))

    def effect_args(self, c: list[Any]) -> list[tuple[ast.Name, ast.ExprRef]]:
        return [x for x in c if isinstance(x, tuple)]

    def emit(self, c: list[Any]) -> tuple[str, ast.Emit]:
        args = c[2] if len(c) > 2 and c[2] is not None else []
        return ("emit", ast.Emit(_src(), _cover(c[0], c[1]), _name(c[1]), tuple(args)))

    def assignment(self, c: list[Any]) -> ast.Assign:
        return ast.Assign(_src(), _cover(c[0], c[2]), c[0], _expr(c[2]))

    def set_facts(self, c: list[Any]) -> tuple[str, list[ast.Assign]]:
        return ("set", [x for x in c if isinstance(x, ast.Assign)])

    def _clock_action(self, verb: str, c: list[Any]) -> tuple[str, ast.ClockAction]:
        by = _expr(c[3]) if len(c) > 3 else None
        end = c[3] if by is not None else c[1]
        return ("clock", ast.ClockAction(_src(), _cover(c[0], end), verb, _name(c[1]), by))

    def clock_start(self, c: list[Any]) -> tuple[str, ast.ClockAction]:
        return self._clock_action("start", c)

    def clock_restart(self, c: list[Any]) -> tuple[str, ast.ClockAction]:
        return self._clock_action("restart", c)

    def clock_stop(self, c: list[Any]) -> tuple[str, ast.ClockAction]:
        return self._clock_action("stop", c)

    def clock_extend(self, c: list[Any]) -> tuple[str, ast.ClockAction]:
        return self._clock_action("extend", c)

    def reschedule(self, c: list[Token]) -> tuple[str, ast.Located]:
        return ("reschedule", ast.Located(_src(), _tok_span(c[0])))

    def starts_at_open(self, c: list[Token]) -> tuple[str, str, None]:
        return ("starts", "open", None)

    def starts_on(self, c: list[Token]) -> tuple[str, str, ast.Name]:
        return ("starts", "event", _name(c[2]))

    def clock_counting(self, c: list[Any]) -> tuple[str, ast.ExprRef]:
        return ("counting", _expr(c[2]))

    def clock_paused(self, c: list[Any]) -> tuple[str, list[ast.Name]]:
        return ("paused", c[2])

    def clock_expiry(self, c: list[Any]) -> tuple[str, tuple[ast.Name, ...], ast.Transition]:
        states: list[ast.Name] = next((x for x in c if isinstance(x, list)), [])
        rest = [x for x in c if isinstance(x, tuple)]
        trig = {"kind": "expiry", "span": _cover(c[0], c[1])}
        return ("expiry", tuple(states), self._transition(trig, rest))

    def clock_decl(self, c: list[Any]) -> ast.ClockDecl:
        parts = {x[0]: x for x in c[4:] if isinstance(x, tuple)}
        starts = parts.get("starts", ("starts", "transition", None))
        counting = parts.get("counting")
        paused = parts.get("paused")
        _, expiry_in, expiry = parts["expiry"]
        return ast.ClockDecl(
            _src(),
            _cover(c[0], c[1]),
            _name(c[1]),
            _expr(c[3]),
            starts[1],
            starts[2],
            counting[1] if counting is not None else None,
            tuple(paused[1]) if paused is not None else (),
            expiry_in,
            expiry,
        )

    def transition(self, c: list[Any]) -> ast.Transition:
        return self._transition(c[0], c[1:])

    def _transition(self, trig: dict[str, Any], clauses: list[Any]) -> ast.Transition:
        guard = target = cite = assumption = reschedule = None
        emits: list[ast.Emit] = []
        assigns: list[ast.Assign] = []
        clocks: list[ast.ClockAction] = []
        for x in clauses:
            if x is None:
                continue
            key, value = x
            if key == "clock":
                clocks.append(value)
            elif key == "guard":
                guard = value
            elif key == "target":
                target = value
            elif key == "emit":
                emits.append(value)
            elif key == "set":
                assigns.extend(value)
            elif key == "cite":
                cite = value
            elif key == "assumption":
                assumption = value
            elif key == "reschedule":
                reschedule = value
        return ast.Transition(
            _src(),
            trig["span"],
            trig["kind"],
            trig.get("event"),
            trig.get("actors"),
            trig.get("condition"),
            trig.get("deadline"),
            trig.get("start"),
            guard,
            target,
            tuple(emits),
            tuple(assigns),
            cite,
            assumption,
            tuple(clocks),
            trig.get("adjust", ()),
            reschedule,
        )

    def policy(self, c: list[Any]) -> ast.Policy:
        header: dict[str, Any] = c[0]
        groups: dict[str, list[Any]] = {
            k: []
            for k in (
                "facts",
                "enums",
                "constants",
                "actors",
                "events",
                "effects",
                "fragments",
                "workflows",
                "conditions",
                "calendars",
                "migrations",
            )
        }
        for key, value in c[1:]:
            if isinstance(value, list):
                groups[key].extend(value)
            else:
                groups[key].append(value)
        return ast.Policy(
            _src(),
            header["span"],
            header["name"],
            header.get("version"),
            header.get("source_doc"),
            header.get("timezone"),
            header.get("cost_limit"),
            *(tuple(groups[k]) for k in groups),
        )


# Keywords of the policy language, as syntax errors name them.
expr_parser.KEYWORD_NAMES.update(
    {
        name: f"`{name.lower()}`"
        for name in (
            "POLICY",
            "VERSION",
            "SOURCE",
            "TIMEZONE",
            "COST_LIMIT",
            "FACTS",
            "ENUM",
            "CONST",
            "CONDITION",
            "VALUE",
            "ACTORS",
            "EVENT",
            "EFFECT",
            "BY",
            "FRAGMENT",
            "WORKFLOW",
            "REQUIRES",
            "USE",
            "INITIAL",
            "FINAL",
            "STATE",
            "OUTCOME",
            "WAITS",
            "UNBOUNDED",
            "RECORD",
            "EVERY",
            "EXCEPT",
            "ON",
            "WHEN",
            "AFTER",
            "FROM",
            "AT",
            "STAY",
            "EMIT",
            "SET",
            "CITE",
            "ASSUMPTION",
            "NOTE",
            "CALENDAR",
            "MIGRATE",
            "CLOCK",
            "STARTS",
            "OPEN",
            "COUNTING",
            "PAUSED",
            "EXPIRY",
            "START",
            "RESTART",
            "STOP",
            "EXTEND",
            "AS",
            "SOON",
        )
    }
    | {"ARROW": "`->`", "ROLLED": "`rolled to a working day`", "END_OF_DAY": "`end of day`"}
)
_KEYWORDS = {name.strip("`") for name in expr_parser.KEYWORD_NAMES.values()}
#: Keywords that only ever begin a declaration, wherever they stand.
_DECLARATIONS = frozenset(
    {
        "FACTS",
        "ENUM",
        "CONST",
        "CONDITION",
        "VALUE",
        "ACTORS",
        "EVENT",
        "EFFECT",
        "FRAGMENT",
        "WORKFLOW",
        "CALENDAR",
        "MIGRATE",
        "CLOCK",
        "USE",
        "INITIAL",
        "FINAL",
        "EVERY",
    }
)
#: What starts one of a block's items: a state, a transition, a fact's name.
_ITEMS = frozenset({"STATE", "ON", "WHEN", "AFTER", "AT", "AS", "IDENT"})
#: Where a policy's statements start, for syntax error recovery: a `}` ending a block,
#: and first on their line a declaration, or a block's item where the block's items stand.
_STATEMENTS = recovery.Statements(
    anywhere=frozenset({"RBRACE"}),
    line_start=_DECLARATIONS | _ITEMS,
    in_blocks=_ITEMS,
    keywords={text.strip("`"): name for name, text in expr_parser.KEYWORD_NAMES.items()},
)


def _adjust(c: list[Any]) -> tuple[ast.Adjust, ...]:
    """A deadline's modifiers; one given twice is reported (and kept once)."""
    out: dict[str, ast.Adjust] = {}
    for a in c:
        if not isinstance(a, ast.Adjust):
            continue
        if a.kind in out:
            word = "rolled to a working day" if a.kind == "rolled" else "end of day"
            current().recovered.append(
                Problem("RK0101", f"`{word}` is given twice", a.span, "keep one of them")
            )
            continue
        out[a.kind] = a
    return tuple(out.values())


def _after_dot(text: str, start: int) -> bool:
    """Whether the word at ``start`` follows `.` or `.?` (a field's name, not a keyword)."""
    before = text[:start].rstrip()
    return before.removesuffix("?").rstrip().endswith(".")


def _syntax_diagnostic(e: lark.exceptions.UnexpectedInput, source: Source) -> Diagnostic:
    """The expression language's syntax message, said better where the policy's shape is known."""
    text = source.text
    if isinstance(e, lark.exceptions.UnexpectedToken):
        tok = e.token
        prev = (getattr(e, "token_history", None) or [None])[-1]
        if tok.type == "$END" and not re.sub(r"//[^\n]*", "", text).strip():
            return diag.make(
                "RK0101",
                "there is no policy in this file",
                source,
                Span(0, min(1, len(text))),
                help='a policy starts with its header: policy NAME version "..."',
            )
        if (
            prev is not None
            and prev.type == "IDENT"
            and str(prev) in _KEYWORDS
            and not _after_dot(text, prev.start_pos or 0)  # `order.value` is a field
        ):
            return diag.make(
                "RK0101",
                f"`{prev}` is a keyword, not a name: is a name missing before it?",
                source,
                _tok_span(prev),
                help="after `->` comes the target state: `-> refunded set ...`"
                if str(prev) in ("set", "emit", "cite")
                else None,
            )
        try:
            accepts = set(e.interactive_parser.accepts())  # type: ignore[no-untyped-call]
        except Exception:  # pragma: no cover - lark's own estimate
            accepts = set(e.expected)
        if prev is not None and "BY" in accepts and (tok.line or 0) > (prev.line or 0):
            return diag.make(
                "RK0101",
                f"expected `by` after `{prev}`: who may send it?",
                source,
                _tok_span(prev),
                help=f"name the actors that send it: event {prev} by consumer",
            )
        if str(tok) in "+-*/%" and text[tok.end_pos or 0 : (tok.end_pos or 0) + 1] == "=":
            return diag.make(
                "RK0101",
                f"there is no `{tok}=`",
                source,
                Span(tok.start_pos or 0, (tok.end_pos or 0) + 1),
                help=f"write the new value in full: set x = x {tok} 1",
            )
    return expr_parser.syntax_diagnostic(e, source)


_parser: lark.Lark | None = None


def _get_parser() -> lark.Lark:
    global _parser
    if _parser is None:
        _parser = lalr_parser(
            "rules",
            grammar_text("rules.lark") + "\n" + grammar_text("cel.lark"),
            start="policy",
            transformer=_PolicyBuilder(),
            maybe_placeholders=True,
        )
    return _parser


def parse(source: Source) -> tuple[ast.Policy | None, list[Diagnostic]]:
    """Parse a .rk policy. Returns the AST (None if unreadable) and the problems found.

    A policy that does not parse is parsed again with recovery (:mod:`.recovery`), so
    every syntax error is reported, not only the first; it has no tree."""
    parser = _get_parser()
    with expr_parser.parsing(source) as context:
        try:
            policy: ast.Policy = parser.parse(source.text)  # type: ignore[assignment]
        except (Problem, lark.exceptions.UnexpectedInput):
            broken = True
        else:
            broken = False
    if broken:
        with expr_parser.parsing(source):
            return None, recovery.parse(parser, source, _syntax_diagnostic, _STATEMENTS)
    problems = [
        diag.make(p.code, p.message, source, p.span, help=p.help) for p in context.recovered
    ]
    for ref in _expressions(policy):
        invalid = expr_parser.check_tree(ref.root, context)
        if invalid is not None:
            problems.append(
                diag.make(invalid.code, invalid.message, source, invalid.span, help=invalid.help)
            )
    return policy, problems


def _expressions(policy: ast.Policy) -> list[ast.ExprRef]:
    out = [c.expr for c in policy.constants] + [c.expr for c in policy.conditions]
    out.extend(f.default for f in policy.facts if f.default is not None)
    out.extend(a.expr for m in policy.migrations for a in m.assigns)
    for wf in (*policy.fragments, *policy.workflows):
        for part in wf.parts:
            transitions: tuple[ast.Transition, ...] = ()
            if isinstance(part, ast.State | ast.EveryBlock):
                transitions = part.transitions
            elif isinstance(part, ast.ClockDecl):
                out.extend(x for x in (part.length, part.counting_from) if x is not None)
                transitions = (part.expiry,)
            for t in transitions:
                out.extend(x for x in (t.condition, t.deadline, t.start, t.guard) if x is not None)
                out.extend(e for em in t.emits for _, e in em.args)
                out.extend(a.expr for a in t.assigns)
                out.extend(a.by for a in t.clocks if a.by is not None)
    return out


_comment_scanner: re.Pattern[str] | None = None


def comment_spans(text: str) -> list[Span]:
    """Where the ``//`` comments of a .rk text are, from ``//`` to the end of the line.

    A ``//`` inside a string or a backquoted field name is not a comment: the text is
    scanned with the grammar's own STRING, QUOTED_FIELD and COMMENT terminals, so this
    agrees with the parser (which drops comments) without a parse, even of a text that
    does not parse.
    """
    global _comment_scanner
    if _comment_scanner is None:
        grammar = _get_parser()
        strings = [grammar.get_terminal(n).pattern.to_regexp() for n in ("STRING", "QUOTED_FIELD")]
        comment = grammar.get_terminal("COMMENT").pattern.to_regexp()
        _comment_scanner = re.compile("|".join(f"(?:{s})" for s in strings) + f"|(?P<c>{comment})")
    return [Span(*m.span()) for m in _comment_scanner.finditer(text) if m.lastgroup == "c"]
