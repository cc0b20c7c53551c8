"""The YAML front end: a policy in YAML -> :mod:`rulekit.policy.ast`.

The same model as the .rk language. The structure is checked against the
JSON Schema shipped in the package (``schemas/policy-yaml.schema.json``);
every node keeps its position in the YAML file, and expressions inside
strings are parsed by the condition grammar as sources *embedded* in the
YAML file, so an error points at the offending character inside the string
(as cel-go's ``policy/source.go`` does).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from rulekit.core import diagnostics as diag
from rulekit.core.diagnostics import Diagnostic
from rulekit.core.source import Source, Span
from rulekit.expr import parser as expr_parser
from rulekit.policy import ast

if TYPE_CHECKING:
    import jsonschema


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the YAML form."""
    text = resources.files("rulekit").joinpath("schemas/policy-yaml.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


class _Invalid(Exception):
    pass


#: Values reached again through YAML aliases before the document counts as a bomb.
MAX_ALIASED = 10_000


class _TooLarge(Exception):
    pass


@dataclass
class _Reader:
    source: Source
    diagnostics: list[Diagnostic]
    seen: set[int] = field(default_factory=set)
    aliased: int = 0

    # -- YAML nodes -> plain data, with positions -------------------------------------
    def plain(self, node: yaml.Node) -> Any:
        # Aliases make a document's tree larger than its text: a few dozen can
        # expand to millions of nodes. No real policy comes close to the limit.
        if id(node) in self.seen:
            self.aliased += 1
            if self.aliased > MAX_ALIASED:
                raise _TooLarge
        else:
            self.seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key, value in node.value:
                # Keys as written: YAML 1.1 would read `on:` as the bool true.
                k = str(key.value) if isinstance(key, yaml.ScalarNode) else str(self.plain(key))
                if k in out:
                    self.error(
                        "RK0403",
                        f"key `{k}` appears twice in this map",
                        key,
                        "YAML keeps only the last one; merge them into one entry",
                    )
                out[k] = self.plain(value)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.plain(v) for v in node.value]
        assert isinstance(node, yaml.ScalarNode)
        if node.tag == "tag:yaml.org,2002:bool" and node.value.lower() in ("true", "false"):
            return node.value.lower() == "true"  # YAML 1.2: yes/no/on/off are text
        if node.tag == "tag:yaml.org,2002:null" and node.style is None:
            return None
        return node.value  # every other scalar as written (2023-01-31 stays text)

    def span(self, node: yaml.Node) -> Span:
        return Span(node.start_mark.index, max(node.end_mark.index, node.start_mark.index + 1))

    def error(self, code: str, message: str, node: yaml.Node, help: str | None = None) -> None:
        self.diagnostics.append(diag.make(code, message, self.source, self.span(node), help=help))

    # -- building the AST -------------------------------------------------------------
    def name(self, node: yaml.Node) -> ast.Name:
        if not isinstance(node, yaml.ScalarNode):
            self.error("RK0402", f"expected a name here, not {_kind_of(node)}", node)
            return ast.Name(self.source, self.span(node), "")
        return ast.Name(self.source, self.span(node), str(node.value).strip())

    def text(self, node: yaml.Node | None) -> str | None:
        return None if node is None else str(node.value)

    def expr(self, node: yaml.Node) -> ast.ExprRef:
        """Parse a scalar as an expression, positions mapped into the YAML file."""
        if node.tag.startswith("!") and not str(node.value).strip():
            self.error(
                "RK0402",
                f"YAML reads `{node.tag}` as a tag, not as an expression",
                node,
                'quote the expression: when: "!order.shipped" (or write `not order.shipped`)',
            )
            raise _Invalid
        embedded = _embedded(self.source, node)
        result = expr_parser.parse(embedded)
        self.diagnostics.extend(result.diagnostics)
        if result.ast is None:
            raise _Invalid
        return ast.ExprRef(embedded, result.ast.span, result.ast)

    def type_ref(self, node: yaml.Node) -> tuple[ast.TypeRef, bool]:
        text = str(node.value).strip()
        optional = text.endswith("?")
        text = text.removesuffix("?").strip()
        return _type_ref(text, self.source, self.span(node)), optional

    def policy(self, root: yaml.MappingNode) -> ast.Policy:
        m = _mapping(root)
        facts = []
        for key, value in _pairs(m.get("facts")):
            if not isinstance(key, yaml.ScalarNode) or not _DOTTED.fullmatch(str(key.value)):
                shown = f"`{key.value}`" if isinstance(key, yaml.ScalarNode) else _kind_of(key)
                self.error(
                    "RK0402",
                    f"a fact's name is names joined by dots, like `order.amount`, not {shown}",
                    key,
                )
                continue
            by: tuple[ast.Name, ...] = ()
            record = None
            default = None
            if isinstance(
                value, yaml.MappingNode
            ):  # {type: "string?", by: [consumer], record: why, default: 7d}
                fm = _mapping(value)
                by = tuple(self.name(a) for a in _items(fm.get("by")))
                record = str(fm["record"].value) if "record" in fm else None
                default = self.expr(fm["default"]) if "default" in fm else None
                value = fm["type"]
            t, optional = self.type_ref(value)
            facts.append(
                ast.FactDecl(
                    self.source, self.span(key), self.name(key), t, optional, by, record, default
                )
            )
        enums = [
            ast.EnumDecl(
                self.source,
                self.span(key),
                self.name(key),
                tuple(self.name(v) for v in value.value),
            )
            for key, value in _pairs(m.get("enums"))
        ]
        constants = []
        for key, value in _pairs(m.get("constants")):
            note = None
            if isinstance(value, yaml.MappingNode):
                cm = _mapping(value)
                if "assumption" in cm and "note" in cm:
                    self.error(
                        "RK0402",
                        "give a constant either an `assumption` or a `note`, not both",
                        cm["note"],
                    )
                for kind in ("assumption", "note"):
                    if kind in cm:
                        note = (kind, str(cm[kind].value))
                value = cm["value"]
            constants.append(
                self.guarded(
                    lambda k=key, v=value, n=note: ast.ConstDecl(
                        self.source, self.span(k), self.name(k), self.expr(v), n
                    )
                )
            )
        conditions = [
            self.guarded(
                lambda k=key, v=value, is_value=section == "values": ast.ConditionDecl(
                    self.source, self.span(k), self.name(k), self.expr(v), is_value
                )
            )
            for section in ("conditions", "values")
            for key, value in _pairs(m.get(section))
        ]
        actors = tuple(self.name(v) for v in _items(m.get("actors")))
        events = []
        for key, value in _pairs(m.get("events")):
            em = _mapping(value)
            payload = tuple(self.field(k, v) for k, v in _pairs(em.get("payload")))
            events.append(
                ast.EventDecl(
                    self.source,
                    self.span(key),
                    self.name(key),
                    payload,
                    tuple(self.name(a) for a in _items(em.get("by"))),
                )
            )
        effects = [
            ast.EffectDecl(
                self.source,
                self.span(key),
                self.name(key),
                tuple(self.field(k, v) for k, v in _pairs(value)),
            )
            for key, value in _pairs(m.get("effects"))
        ]
        fragments = [self.workflow(k, v, True) for k, v in _pairs(m.get("fragments"))]
        workflows = [self.workflow(k, v, False) for k, v in _pairs(m.get("workflows"))]
        calendars = tuple(
            ast.CalendarDecl(self.source, self.span(key), self.name(key), self.name(value))
            for key, value in _pairs(m.get("calendars"))
        )
        migrations = tuple(
            self.guarded(lambda k=key, v=value: self.migration(k, v))
            for key, value in _pairs(m.get("migrate"))
        )
        tz = m.get("timezone")
        cost_limit = m.get("cost_limit")
        return ast.Policy(
            self.source,
            self.span(m["policy"]),
            self.name(m["policy"]),
            self.text(m.get("version")),
            self.text(m.get("source")),
            self.name(tz) if tz is not None else None,
            self.name(cost_limit) if cost_limit is not None else None,
            tuple(facts),
            tuple(enums),
            tuple(c for c in constants if c is not None),
            actors,
            tuple(events),
            tuple(effects),
            tuple(fragments),
            tuple(workflows),
            tuple(c for c in conditions if c is not None),
            calendars,
            tuple(x for x in migrations if x is not None),
        )

    def migration(self, key: yaml.Node, value: yaml.Node) -> ast.Migration:
        """``migrate: {"1": {states: {WF: {OLD: NEW}}, set: {FACT: EXPR}, deadlines: keep}}``:
        the .rk form's ``migrate from "1" { ... }``."""
        m = _mapping(value)
        states = tuple(
            ast.StateMap(self.source, self.span(old), self.name(wf), self.name(old), self.name(new))
            for wf, olds in _pairs(m.get("states"))
            for old, new in _pairs(olds)
        )
        assigns = tuple(
            ast.Assign(self.source, self.span(k), self.name(k), self.expr(v))
            for k, v in _pairs(m.get("set"))
        )
        options = tuple(
            (self.name(k), self.name(v)) for k, v in _pairs(value) if k.value == "deadlines"
        )
        return ast.Migration(self.source, self.span(key), self.name(key), states, assigns, options)

    def guarded(self, build: Any) -> Any:
        """Build a node; an expression that did not parse drops it (already reported)."""
        try:
            return build()
        except _Invalid:
            return None

    def field(self, key: yaml.Node, value: yaml.Node) -> ast.FieldDecl:
        t, _ = self.type_ref(value)
        return ast.FieldDecl(self.source, self.span(key), self.name(key), t)

    def workflow(self, key: yaml.Node, value: yaml.Node, is_fragment: bool) -> ast.Workflow:
        m = _mapping(value)
        parts: list[ast.Part] = []
        for skey, svalue in _pairs(m.get("states")):
            sm = _mapping(svalue) if isinstance(svalue, yaml.MappingNode) else {}
            outcome = sm.get("outcome")
            parts.append(
                ast.State(
                    self.source,
                    self.span(skey),
                    self.name(skey),
                    _truthy(sm.get("initial")),
                    _truthy(sm.get("final")),
                    self.name(outcome) if outcome is not None else None,
                    self.text(sm.get("waits")),
                    self.text(sm.get("cite")),
                    self.transitions(sm.get("transitions")),
                    _truthy(sm.get("unbounded")),
                    self.text(sm.get("assumption")),
                )
            )
        for block in _items(m.get("every")):
            bm = _mapping(block)
            if "except" in bm and "in" in bm:
                self.error("RK0402", "an `every` block takes `except` or `in`, not both", bm["in"])
            mode = "except" if "except" in bm else "in" if "in" in bm else "all"
            names = tuple(self.name(n) for n in _items(bm.get(mode))) if mode != "all" else ()
            parts.append(
                ast.EveryBlock(
                    self.source,
                    self.span(block),
                    mode,
                    names,
                    self.transitions(bm.get("transitions")),
                )
            )
        for use in _items(m.get("use")):
            parts.append(ast.Use(self.source, self.span(use), self.name(use)))
        for ckey, cvalue in _pairs(m.get("clocks")):
            built = self.guarded(lambda k=ckey, v=cvalue: self.clock(k, v))
            if built is not None:
                parts.append(built)
        requires = tuple(self.name(n) for n in _items(m.get("requires")))
        if requires and is_fragment:
            self.error("RK0402", "`requires` belongs to a workflow, not a fragment", m["requires"])
        return ast.Workflow(
            self.source, self.span(key), self.name(key), tuple(parts), is_fragment, requires
        )

    def transitions(self, node: yaml.Node | None) -> tuple[ast.Transition, ...]:
        out = []
        for item in _items(node):
            built = self.guarded(lambda i=item: self.transition(i))
            if built is not None:
                out.append(built)
        return tuple(out)

    def transition(self, node: yaml.MappingNode) -> ast.Transition:
        m = _mapping(node)
        triggers = [k for k in ("on", "after", "at", "as_soon_as") if k in m]
        problems: list[tuple[yaml.Node, str, str | None]] = []
        if len(triggers) > 1:
            problems.append(
                (
                    m[triggers[1]],
                    f"a transition has one trigger, but this one has "
                    f"`{triggers[0]}` and `{triggers[1]}`",
                    "split it into two transitions",
                )
            )
        if "by" in m and "on" not in m:
            problems.append((m["by"], "`by` goes with `on`: only events have senders", None))
        if "as_soon_as" in m and "when" in m:
            problems.append(
                (
                    m["when"],
                    "`as_soon_as` is its own condition: it takes no `when`",
                    "join them with `and`",
                )
            )
        if "from" in m and "after" not in m:
            problems.append(
                (m["from"], "`from` goes with `after`: it is where the delay counts from", None)
            )
        for key in ("rolled_to_working_day", "end_of_day"):
            if key in m and "after" not in m and "at" not in m:
                problems.append((m[key], f"`{key}` goes with `after` or `at`", None))
        for at, message, help_ in problems:
            self.error("RK0402", message, at, help_)
        if problems:
            raise _Invalid
        event = actors = condition = deadline = start = guard = None
        adjust: tuple[ast.Adjust, ...] = ()
        if "on" in m:
            kind, event = "event", self.name(m["on"])
            if "by" in m:
                actors = tuple(self.name(a) for a in _items(m["by"]))
            guard = self.expr(m["when"]) if "when" in m else None
        elif "as_soon_as" in m:
            kind, condition = "soon", self.expr(m["as_soon_as"])
        elif "after" in m or "at" in m:
            kind = "after" if "after" in m else "at"
            deadline = self.expr(m[kind])
            start = self.expr(m["from"]) if "from" in m else None
            guard = self.expr(m["when"]) if "when" in m else None
            adjust = self.adjust(m)
        else:
            kind, condition = "auto", self.expr(m["when"])
        return self.clauses(
            m,
            kind,
            m[next(k for k in ("on", "after", "at", "as_soon_as", "when") if k in m)],
            event,
            actors,
            condition,
            deadline,
            start,
            guard,
            adjust,
        )

    def clauses(
        self,
        m: dict[str, yaml.Node],
        kind: str,
        trigger: yaml.Node,
        event: ast.Name | None = None,
        actors: tuple[ast.Name, ...] | None = None,
        condition: ast.ExprRef | None = None,
        deadline: ast.ExprRef | None = None,
        start: ast.ExprRef | None = None,
        guard: ast.ExprRef | None = None,
        adjust: tuple[ast.Adjust, ...] = (),
    ) -> ast.Transition:
        """A transition of ``kind`` from its target and clauses (``trigger``: where it is)."""
        emits = []
        for e in _items(m.get("emit")):
            if isinstance(e, yaml.ScalarNode):
                emits.append(ast.Emit(self.source, self.span(e), self.name(e), ()))
            else:
                ((ekey, evalue),) = e.value
                args = tuple((self.name(k), self.expr(v)) for k, v in _pairs(evalue))
                emits.append(ast.Emit(self.source, self.span(ekey), self.name(ekey), args))
        assigns = tuple(
            ast.Assign(self.source, self.span(k), self.name(k), self.expr(v))
            for k, v in _pairs(m.get("set"))
        )
        clocks = [
            ast.ClockAction(self.source, self.span(n), verb, self.name(n))
            for verb in ("start", "restart", "stop")
            for n in _items(m.get(verb))
        ]
        clocks += [
            ast.ClockAction(self.source, self.span(k), "extend", self.name(k), self.expr(v))
            for k, v in _pairs(m.get("extend"))
        ]
        return ast.Transition(
            self.source,
            self.span(trigger),
            kind,
            event,
            actors,
            condition,
            deadline,
            start,
            guard,
            self.name(m["to"]) if "to" in m else None,
            tuple(emits),
            assigns,
            self.text(m.get("cite")),
            self.text(m.get("assumption")),
            tuple(clocks),
            adjust,
            ast.Located(self.source, self.span(m["reschedule"]))
            if _truthy(m.get("reschedule"))
            else None,
        )

    def clock(self, key: yaml.Node, value: yaml.Node) -> ast.ClockDecl:
        m = _mapping(value)
        if "starts" in m and "starts_on" in m:
            self.error("RK0402", "a clock takes `starts` or `starts_on`, not both", m["starts_on"])
            raise _Invalid
        on_expiry = _mapping(m["on_expiry"])
        expiry = self.clauses(on_expiry, "expiry", m["on_expiry"])
        return ast.ClockDecl(
            self.source,
            self.span(key),
            self.name(key),
            self.expr(m["length"]),
            "open" if "starts" in m else "event" if "starts_on" in m else "transition",
            self.name(m["starts_on"]) if "starts_on" in m else None,
            self.expr(m["counting_from"]) if "counting_from" in m else None,
            tuple(self.name(n) for n in _items(m.get("paused_in"))),
            tuple(self.name(n) for n in _items(on_expiry.get("in"))),
            expiry,
        )

    def adjust(self, m: dict[str, yaml.Node]) -> tuple[ast.Adjust, ...]:
        """``rolled_to_working_day: true`` (or the calendar's name) and ``end_of_day:
        true``: the .rk form's ``, rolled to a working day [in NAME]`` and ``, end of day``."""
        out = []
        rolled = m.get("rolled_to_working_day")
        if rolled is not None and str(rolled.value).lower() not in ("false", "no", "off"):
            named = None if _truthy(rolled) else self.name(rolled)
            out.append(ast.Adjust(self.source, self.span(rolled), "rolled", named))
        if _truthy(m.get("end_of_day")):
            out.append(ast.Adjust(self.source, self.span(m["end_of_day"]), "end_of_day"))
        return tuple(out)


def _truthy(node: yaml.Node | None) -> bool:
    return node is not None and str(node.value).lower() in ("true", "yes", "on")


_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", re.ASCII)


def _kind_of(node: yaml.Node) -> str:
    return "a list" if isinstance(node, yaml.SequenceNode) else "a map"


def _mapping(node: yaml.Node) -> dict[str, yaml.Node]:
    return {str(k.value): v for k, v in node.value} if isinstance(node, yaml.MappingNode) else {}


def _pairs(node: yaml.Node | None) -> list[tuple[yaml.Node, yaml.Node]]:
    return list(node.value) if isinstance(node, yaml.MappingNode) else []


def _items(node: yaml.Node | None) -> list[yaml.Node]:
    if node is None:
        return []
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return []
    return [node]  # one name where a list is allowed (`by: merchant`)


def _type_ref(text: str, source: Source, span: Span) -> ast.TypeRef:
    head, _, rest = text.partition("(")
    if not rest:
        return ast.TypeRef(source, span, head.strip())
    inner = rest.rsplit(")", 1)[0]
    depth, parts, cur = 0, [], ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    parts.append(cur)
    return ast.TypeRef(
        source, span, head.strip(), tuple(_type_ref(p.strip(), source, span) for p in parts)
    )


def _embedded(host: Source, node: yaml.Node) -> Source:
    """The scalar's text as its own source, each character mapped to the host file.

    Walks the scalar's text and the host's characters side by side, skipping
    what YAML removed (quotes, indentation, escapes), so a position inside a
    quoted or block scalar lands on the character the author sees.
    """
    value = str(node.value)
    start, end = node.start_mark.index, node.end_mark.index
    segment = host.text[start:end]
    origin: list[int] = []
    j = 0
    for ch in value:
        k = segment.find(ch, j, j + 64)
        if k >= 0:
            j = k
            origin.append(start + j)
            j += 1
        else:
            origin.append(start + min(j, max(len(segment) - 1, 0)))
    origin.append(start + min(j, len(segment)))
    return Source(value, host.name, host=host, origin=tuple(origin))


_TYPE_WORDS = {
    "string": "a string",
    "array": "a list",
    "object": "a map",
    "boolean": "true or false",
    "null": "empty",
}


def schema_problem(error: jsonschema.ValidationError) -> tuple[str, str | None, list[Any]]:
    """(message, help, path to point at) for a schema violation, in authors' words."""
    sub_schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    value: Any = error.validator_value
    where = sub_schema.get("title")
    where_text = f" in this {where}" if where else ""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(sub_schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        key = extra[0] if extra else "?"
        help_ = f"allowed keys{where_text}: {', '.join(allowed)}" if allowed else None
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            help_ = f"did you mean `{close[0]}`? ({help_})"
        return f"unknown key `{key}`{where_text}", help_, [*path, ("key", key)]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in value if k not in error.instance]
        return f"missing key `{missing[0] if missing else '?'}`{where_text}", None, path
    objects = [
        b
        for b in (value if isinstance(value, list) else [])
        if isinstance(b, dict) and b.get("type") == "object"
    ]
    if error.validator == "anyOf" and isinstance(error.instance, dict) and len(objects) == 1:
        # a map where a string or a map may stand: say what is wrong with it as that map
        import jsonschema

        inner = next(jsonschema.Draft202012Validator(objects[0]).iter_errors(error.instance), None)
        if inner is not None:
            message, help_, inner_path = schema_problem(inner)
            return message, help_, [*path, *inner_path]
    if error.validator == "anyOf" and isinstance(error.instance, dict):
        for branch in value if isinstance(value, list) else []:
            props = branch.get("properties") if isinstance(branch, dict) else None
            if props:
                extra = [k for k in error.instance if k not in props]
                if extra:
                    close = difflib.get_close_matches(extra[0], list(props), n=1, cutoff=0.6)
                    title = str(branch.get("title", "map"))
                    keys = f"allowed keys: {', '.join(sorted(props))}"
                    hint = f"did you mean `{close[0]}`? ({keys})" if close else keys
                    return (
                        f"unknown key `{extra[0]}` in this {title}",
                        hint,
                        [*path, ("key", extra[0])],
                    )
    if error.validator == "anyOf" and where == "transition":
        return "a transition needs a trigger: `on`, `when`, `after` or `at`", None, path
    if error.validator == "oneOf" and where == "transition":
        both = (
            isinstance(error.instance, dict) and "to" in error.instance and "stay" in error.instance
        )
        msg = (
            "give either `to` or `stay`, not both"
            if both
            else "a transition needs `to: STATE` or `stay: true`"
        )
        return msg, None, path
    if error.validator == "type":
        types = [str(t) for t in (value if isinstance(value, list) else [value])]
        wanted = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        return f"expected {wanted} here", None, path
    if error.validator == "const":
        return f"expected `{json.dumps(value)}` here", None, path
    return error.message, None, path


def node_at(root: yaml.Node, path: list[Any]) -> yaml.Node:
    node = root
    for step in path:
        if isinstance(step, tuple):  # ("key", name): the key node itself
            for k, _v in node.value if isinstance(node, yaml.MappingNode) else ():
                if str(k.value) == step[1]:
                    return k  # type: ignore[no-any-return]
            return node
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if str(k.value) == step:
                    node = v
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value)
        ):
            node = node.value[step]
    return node


_INDENT_HELP = (
    "check the indentation of this line: the keys of one map, and the items of one list, "
    "start in the same column, indented with spaces under the key they belong to"
)


def yaml_problem(e: yaml.YAMLError, text: str) -> tuple[str, str | None, int]:
    """PyYAML's error in ``text`` in an author's words: (message, help, offset), no internals."""
    what, help_, mark = _yaml_problem(e)
    offset = mark.index if mark is not None else 0
    if what == _NO_KEY_HERE:
        # `a.x int` then `b: 1` reads as one text over two lines: the line missing its `:` is
        # the one before, where the text started
        start = text.rfind("\n", 0, offset) + 1
        before = text.rfind("\n", 0, max(start - 1, 0)) + 1
        line = text[before : max(start - 1, before)]
        item = line.strip().removeprefix("- ")
        if start and item and ":" not in item and not item.startswith("#"):
            offset = before + len(line) - len(line.lstrip())
            return "expected `key: value` on this line", "is a `:` missing after the key?", offset
    return what, help_, offset


_NO_KEY_HERE = "a `key: value` cannot start here"


def _yaml_problem(e: yaml.YAMLError) -> tuple[str, str | None, yaml.Mark | None]:
    problem = str(getattr(e, "problem", None) or e)
    context = str(getattr(e, "context", None) or "")
    mark: yaml.Mark | None = getattr(e, "problem_mark", None)
    opened: yaml.Mark | None = getattr(e, "context_mark", None) or mark
    if problem.startswith("expected <block end>"):
        return "this line is not indented like the lines of the block it is in", _INDENT_HELP, mark
    if problem.startswith("mapping values are not allowed"):
        return (
            _NO_KEY_HERE,
            "check the indentation of this line (is it indented more than the keys beside it?), "
            "and quote a value that contains `: `",
            mark,
        )
    if "could not find expected ':'" in problem:
        return "expected `key: value` on this line", "is a `:` missing after the key?", opened
    if "cannot start any token" in problem and "\\t" in problem:
        return "a tab character: YAML indents with spaces only", "indent with spaces", mark
    if "quoted scalar" in context:
        return "this quoted text is not closed", "close it with the same quote", opened
    for closer, what in (("]", "list `[`"), ("}", "map `{`")):
        if f"expected ',' or '{closer}'" in problem:
            return (
                f"the {what} opened here is not closed",
                f"close it with `{closer}`, or separate its items with `,`",
                opened,
            )
    return f"not valid YAML: {problem}", None, mark


def parse(source: Source) -> tuple[ast.Policy | None, list[Diagnostic]]:
    """Read a policy in YAML form: the AST (None if unreadable) and the problems found."""
    problems: list[Diagnostic] = []
    try:
        root = yaml.compose(source.text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        what, help_, offset = yaml_problem(e, source.text)
        return None, [diag.make("RK0401", what, source, Span(offset, offset + 1), help=help_)]
    if not isinstance(root, yaml.MappingNode):
        return None, [
            diag.make(
                "RK0402",
                "a policy file is a map with a `policy:` key at the top",
                source,
                Span(0, 1),
            )
        ]
    reader = _Reader(source, problems)
    try:
        data = reader.plain(root)
    except _TooLarge:
        return None, [
            diag.make(
                "RK0402",
                f"YAML aliases repeat more than {MAX_ALIASED:,} values: write the policy out instead",
                source,
                Span(0, 1),
            )
        ]
    import jsonschema  # here, not at the top: 45 ms that checking a .rk file never needs

    validator = jsonschema.Draft202012Validator(schema())
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        message, help_, path = schema_problem(error)
        reader.error("RK0402", message, node_at(root, path), help_)
    if any(d.code in ("RK0402", "RK0403") for d in problems):
        return None, sorted(problems, key=diag.sort_key)
    policy = reader.policy(root)
    return policy, sorted(problems, key=diag.sort_key)


def comment_spans(text: str) -> list[Span]:
    """Where the ``#`` comments of a YAML text are, from ``#`` to the end of the line.

    YAML's own scanner finds every token (scalars, quoted or in blocks, included); what
    lies between two tokens is blanks and comments only, so a ``#`` there starts a
    comment. Where the YAML stops being valid, so does the search.
    """
    spans: list[Span] = []
    pos = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            start = token.start_mark.index
            if start > pos:
                spans.extend(_comments_between(text, pos, start))
            pos = max(pos, token.end_mark.index)
    except yaml.YAMLError:
        pass  # the policy's own reading reports it (RK0401)
    return spans


def _comments_between(text: str, start: int, end: int) -> list[Span]:
    spans = []
    i = text.find("#", start, end)
    while i >= 0:
        stop = text.find("\n", i, end)
        stop = end if stop < 0 else stop
        spans.append(Span(i, stop))
        i = text.find("#", stop, end)
    return spans
