"""Generated valid policies (1-8 states, events with typed payloads, the four kinds of
transition, guards over declared facts, `every` blocks, an optional fragment), written as
.rk and as YAML by the emitters below with random layout and spellings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from random import Random
from typing import Any

from hypothesis import strategies as st

from .helpers import dump_yaml

STATE_NAMES = [
    "draft",
    "open",
    "review",
    "waiting",
    "approved",
    "rejected",
    "closed",
    "done",
    "escalated",
    "paid",
    "shipped_out",
    "archived",
]
ACTOR_NAMES = ["consumer", "merchant", "platform", "agent"]
EVENT_NAMES = ["approve", "reject", "offer", "escalate", "cancel", "submit"]
EFFECT_NAMES = ["refund", "notify", "log_it", "pay"]
FIELD_NAMES = ["amount", "reason", "service", "count", "flag", "level", "tags", "hash", "file"]
ENUM_NAMES = ["Service", "Level", "Kind", "file", "hash"]
MEMBERS = ["exchange", "repair", "low", "high", "gold", "basic"]
FACT_ROOTS = ["order", "case", "user"]
FACT_LEAVES = [
    "amount",
    "paid_at",
    "shipped",
    "status",
    "tags",
    "score",
    "wait",
    "title",
    "limits",
    "level",
]
CONST_NAMES = ["REVIEW", "LIMIT", "GRACE", "RATE", "LABEL", "FLAG", "NUMS", "START"]
BASE_TYPES = [
    "bool",
    "int",
    "double",
    "money",
    "string",
    "duration",
    "time",
    "list(int)",
    "list(string)",
    "map(string, int)",
]
TEXTS = ["1", "4.2", "the platform rules", 'say "hi"', "审核中", "a\\b", "x: y", "# not a comment"]
TIMEZONES = ["UTC", "Asia/Shanghai", "+08:00", "America/New_York", "-05:30"]

LITERALS: dict[str, list[str]] = {
    "bool": ["true", "false"],
    "int": ["0", "7", "42"],
    "double": ["2.5", "0.1"],
    "money": ["10", 'money("9.99")'],
    "string": ['"x"', '"hello world"', "'q'"],
    "duration": ["6h", "1h30m", "48h", 'duration("90m")'],
    "time": ['timestamp("2026-03-01T12:00:00+08:00")', "now"],
    "list(int)": ["[1, 2, 3]", "[]"],
    "list(string)": ['["a", "b"]'],
    "map(string, int)": ['{"a": 1}'],
}
CONSTANT_POOL: list[tuple[str, str]] = [
    ("duration", "48h"),
    ("duration", "7d"),
    ("int", "10"),
    ("int", "3 * 4"),
    ("int", "0x1F"),
    ("money", 'money("9.99")'),
    ("string", '"abc"'),
    ("bool", "1 < 2"),
    ("double", "2.5"),
    ("list(int)", "[1, 2]"),
    ("map(string, int)", '{"a": 1}'),
    ("time", 'timestamp("2026-03-01T12:00:00Z")'),
]


def atoms(t: str, x: str, enums: dict[str, list[str]]) -> list[str]:
    """Boolean expressions over the operand ``x`` of type ``t``."""
    if t in enums:
        return [f'{x} == "{m}"' for m in enums[t]] + [f'{x} != "{enums[t][0]}"']
    return {
        "bool": [x, f"!{x}", f"not {x}", f"{x} == true"],
        "int": [f"{x} > 3", f"{x} % 2 == 0", f"{x} + 1 <= 100"],
        "double": [f"{x} >= 2.5"],
        "money": [f"{x} < 300", f'{x} >= money("9.99")'],
        "string": [f'{x} == "x"', f'{x}.startsWith("a")', f"size({x}) > 2"],
        "duration": [f"{x} <= 6h", f"{x} > 1h30m"],
        "time": [
            f"since({x}) <= 6h",
            f'{x} < timestamp("2026-01-01T00:00:00Z")',
            f"{x} + 1h < now",
        ],
        "list(int)": [f"size({x}) > 0", f"3 in {x}", f"{x}.all(v, v > 0)"],
        "list(string)": [f'"a" in {x}', f'{x}.exists(s, s == "b")'],
        "map(string, int)": [f'"k" in {x}', f"size({x}) == 0"],
    }[t]


@dataclass
class Tr:
    kind: str  # event, auto, after, at
    event: str | None = None
    by: list[str] | None = None
    condition: str | None = None
    deadline: str | None = None
    start: str | None = None
    guard: str | None = None
    target: str | None = None  # None: stay
    emits: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    sets: list[tuple[str, str]] = field(default_factory=list)
    cite: str | None = None


@dataclass
class StateSpec:
    name: str
    initial: bool = False
    final: bool = False
    outcome: str | None = None
    waits: str | None = None
    cite: str | None = None
    transitions: list[Tr] = field(default_factory=list)


@dataclass
class EverySpec:
    mode: str  # all, except, in
    names: list[str]
    transitions: list[Tr]


@dataclass
class BodySpec:
    name: str
    states: list[StateSpec]
    every: list[EverySpec]
    uses: list[str]


@dataclass
class PolicySpec:
    name: str
    version: str | None
    source: str | None
    timezone: str | None
    facts: list[tuple[str, str, bool]]
    enums: list[tuple[str, list[str]]]
    constants: list[tuple[str, str, str, tuple[str, str] | None]]
    actors: list[str]
    events: list[tuple[str, list[str], list[tuple[str, str]]]]
    effects: list[tuple[str, list[tuple[str, str]]]]
    fragment: BodySpec | None
    workflow: BodySpec


@dataclass
class Generated:
    spec: PolicySpec
    rk: str
    yaml: str


def _sublist(draw: st.DrawFn, items: list[str], min_size: int = 0) -> list[str]:
    return draw(
        st.lists(st.sampled_from(items), min_size=min_size, max_size=len(items), unique=True)
    )


@st.composite
def policy_specs(draw: st.DrawFn) -> PolicySpec:
    enums = [
        (n, _sublist(draw, MEMBERS, 1)[:4])
        for n in draw(st.lists(st.sampled_from(ENUM_NAMES), max_size=2, unique=True))
    ]
    enum_members = {n: m for n, m in enums}
    types = BASE_TYPES + [n for n, _ in enums]
    facts = [("case.count", "int", False)] + [
        (f"{root}.{leaf}", draw(st.sampled_from(types)), draw(st.booleans()))
        for root, leaf in draw(
            st.lists(
                st.tuples(st.sampled_from(FACT_ROOTS), st.sampled_from(FACT_LEAVES)).filter(
                    lambda rl: rl != ("case", "count")
                ),
                max_size=5,
                unique=True,
            )
        )
    ]
    constants: list[tuple[str, str, str, tuple[str, str] | None]] = []
    for name in draw(st.lists(st.sampled_from(CONST_NAMES), max_size=3, unique=True)):
        if constants and draw(st.integers(0, 3)) == 0:
            _, t, _, _ = draw(st.sampled_from(constants))
            text = draw(st.sampled_from([c[0] for c in constants if c[1] == t]))
        else:
            t, text = draw(st.sampled_from(CONSTANT_POOL))
        why = draw(
            st.one_of(
                st.none(),
                st.tuples(st.sampled_from(["note", "assumption"]), st.sampled_from(TEXTS)),
            )
        )
        constants.append((name, t, text, why))
    actors = _sublist(draw, ACTOR_NAMES, 1)[:3]
    events = [
        (
            e,
            _sublist(draw, actors, 1),
            [(f, draw(st.sampled_from(types))) for f in _sublist(draw, FIELD_NAMES)[:3]],
        )
        for e in _sublist(draw, EVENT_NAMES)[:4]
    ]
    effects = [
        (e, [(f, draw(st.sampled_from(types))) for f in _sublist(draw, FIELD_NAMES)[:2]])
        for e in _sublist(draw, EFFECT_NAMES)[:3]
    ]

    n = draw(st.integers(1, 8))
    names = draw(st.permutations(STATE_NAMES))[:n]
    with_fragment = draw(st.booleans())
    n_frag = draw(st.integers(0, n - 1)) if with_fragment else 0
    own, frag_names = names[: n - n_frag], names[n - n_frag :]
    initial = draw(st.sampled_from(own))
    finals = {s for s in names if s != initial and draw(st.integers(0, 2)) == 0}
    non_final = [s for s in names if s not in finals]
    order = {s: i for i, s in enumerate(names)}

    def operands(t: str, payload: list[tuple[str, str]] | None) -> list[str]:
        out = [p for p, ft, _ in facts if ft == t]
        out += [c for c, ct, _, _ in constants if ct == t]
        if payload is not None:
            out += [f"event.{f}" for f, ft in payload if ft == t]
        return out

    def value(t: str, payload: list[tuple[str, str]] | None) -> str:
        lits = [f'"{m}"' for m in enum_members[t]] if t in enum_members else LITERALS[t]
        return draw(st.sampled_from(lits + operands(t, payload)))

    def condition(payload: list[tuple[str, str]] | None, actors_too: bool) -> str:
        parts = []
        for _ in range(draw(st.integers(1, 3))):
            choices = [(t, x) for t in types for x in operands(t, payload)]
            if actors_too:
                choices.append(("actor", "actor"))
            t, x = draw(st.sampled_from(choices))
            pool = (
                [f'actor == "{a}"' for a in actors] if t == "actor" else atoms(t, x, enum_members)
            )
            atom = draw(st.sampled_from(pool))
            if draw(st.integers(0, 4)) == 0:
                atom = f"({atom})"
            parts.append(atom)
        text = parts[0]
        for p in parts[1:]:
            text += draw(st.sampled_from([" and ", " or ", " && ", " || "])) + p
        return text

    def transition(source: str | None) -> Tr:
        kinds = ["auto", "after", "at"] + (["event", "event"] if events else [])
        tr = Tr(kind=draw(st.sampled_from(kinds)))
        payload = None
        if tr.kind == "event":
            ev, by, payload = draw(st.sampled_from(events))
            tr.event = ev
            if draw(st.booleans()):
                tr.by = _sublist(draw, by, 1)
        if tr.kind == "auto":
            tr.condition = condition(None, False)
        elif draw(st.booleans()):
            tr.guard = condition(payload, tr.kind == "event")
        if tr.kind == "after":
            tr.deadline = draw(st.sampled_from(LITERALS["duration"] + operands("duration", None)))
            if draw(st.booleans()):
                tr.start = draw(
                    st.sampled_from(['timestamp("2026-03-01T12:00:00Z")', *operands("time", None)])
                )
        elif tr.kind == "at":
            times = operands("time", None)
            tr.deadline = draw(
                st.sampled_from(
                    ['timestamp("2026-03-01T12:00:00Z")', "now + 1h"]
                    + times
                    + [f"{x} + 7d" for x in times]
                )
            )
        for _ in range(draw(st.integers(0, 2)) if effects else 0):
            eff, params = draw(st.sampled_from(effects))
            tr.emits.append((eff, [(p, value(t, payload)) for p, t in params]))
        for path, t, _ in draw(st.lists(st.sampled_from(facts), max_size=2, unique=True)):
            tr.sets.append((path, value(t, payload)))
        if tr.kind == "auto" and not tr.sets and source is None:
            # In a block an automatic transition lands in many states: it sets a fact
            # on the way, so it cannot loop (RK0312).
            tr.sets.append(("case.count", "case.count + 1"))
        targets: list[str | None] = [None, *names]
        if tr.kind == "auto" and not tr.sets and source is not None:
            targets = [None, *(s for s in names if order[s] > order[source])]
        tr.target = draw(st.sampled_from(targets))
        tr.cite = draw(st.one_of(st.none(), st.sampled_from(TEXTS)))
        return tr

    def state(name: str) -> StateSpec:
        s = StateSpec(name, initial=name == initial, final=name in finals)
        if s.final and draw(st.booleans()):
            s.outcome = draw(st.sampled_from(["refunded", "closed", "ok"]))
        if not s.final:  # a final state waits for nothing (RK0318)
            s.waits = draw(st.one_of(st.none(), st.sampled_from(TEXTS)))
        s.cite = draw(st.one_of(st.none(), st.sampled_from(TEXTS)))
        if not s.final:
            s.transitions = [transition(name) for _ in range(draw(st.integers(0, 3)))]
        return s

    def every(max_blocks: int) -> list[EverySpec]:
        blocks = []
        for _ in range(draw(st.integers(0, max_blocks))):
            mode = draw(st.sampled_from(["all", "except", "in"]))
            listed = []
            if mode == "except":
                listed = _sublist(draw, names, 1)
            elif mode == "in":
                if not non_final:
                    continue
                listed = _sublist(draw, non_final, 1)
            trs = [transition(None) for _ in range(draw(st.integers(1, 2)))]
            blocks.append(EverySpec(mode, listed, trs))
        return blocks

    fragment = None
    if with_fragment:
        fragment = BodySpec(
            draw(st.sampled_from(["dispute", "common", "audit"])),
            [state(s) for s in frag_names],
            every(1),
            [],
        )
    workflow = BodySpec(
        draw(st.sampled_from(["main", "refund_only", "claims"])),
        [state(s) for s in own],
        every(2),
        [fragment.name] if fragment else [],
    )
    return PolicySpec(
        name=draw(st.sampled_from(["demo.refunds", "gen", "a.b.c"])),
        version=draw(st.one_of(st.none(), st.sampled_from(["1", "2.0", "2026-03"]))),
        source=draw(st.one_of(st.none(), st.sampled_from(TEXTS))),
        timezone=draw(st.one_of(st.none(), st.sampled_from(TIMEZONES))),
        facts=facts,
        enums=enums,
        constants=constants,
        actors=actors,
        events=events,
        effects=effects,
        fragment=fragment,
        workflow=workflow,
    )


# -- the .rk emitter ------------------------------------------------------------------


def _q(text: str) -> str:
    """A .rk string literal."""
    return json.dumps(text, ensure_ascii=False)


def _interleave(rnd: Random, groups: list[list[str]]) -> list[str]:
    """Merge the groups in a random order, keeping the order within each group."""
    queues = [list(g) for g in groups if g]
    out = []
    while queues:
        q = rnd.choice(queues)
        out.append(q.pop(0))
        if not q:
            queues.remove(q)
    return out


def _rk_transition(t: Tr, rnd: Random) -> str:
    if t.kind == "event":
        text = f"on {t.event}" + (f" by {', '.join(t.by)}" if t.by else "")
    elif t.kind == "auto":
        text = f"when {t.condition}"
    elif t.kind == "after":
        text = f"after {t.deadline}" + (f" from {t.start}" if t.start else "")
    else:
        text = f"at {t.deadline}"
    if t.guard:
        text += f" when {t.guard}"
    text += f" -> {t.target}" if t.target else " stay"
    emits = []
    for eff, args in t.emits:
        if args:
            emits.append(f"emit {eff}({', '.join(f'{p}: {v}' for p, v in args)})")
        else:
            emits.append(rnd.choice([f"emit {eff}", f"emit {eff}()"]))
    sets: list[str] = []
    if t.sets and rnd.random() < 0.5:
        sets.append("set " + ", ".join(f"{f} = {v}" for f, v in t.sets))
    else:
        sets.extend(f"set {f} = {v}" for f, v in t.sets)
    for clause in _interleave(rnd, [emits, sets]):
        text += rnd.choice([" ", "\n      "]) + clause
    if t.cite is not None:
        text += f" cite {_q(t.cite)}"
    return text


def _rk_body(b: BodySpec, keyword: str, rnd: Random) -> str:
    states = []
    for s in b.states:
        head = ("initial " if s.initial else "final " if s.final else "") + f"state {s.name}"
        if s.outcome:
            head += f" outcome {s.outcome}"
        if s.waits is not None:
            head += f" waits {_q(s.waits)}"
        if s.cite is not None:
            head += f" cite {_q(s.cite)}"
        if s.transitions:
            inner = "".join(f"\n    {_rk_transition(t, rnd)}" for t in s.transitions)
            head += " {" + inner + "\n  }"
        elif rnd.random() < 0.3:
            head += " { }"
        states.append(head)
    blocks = []
    for blk in b.every:
        head = "every state"
        if blk.mode != "all":
            head += f" {blk.mode} {', '.join(blk.names)}"
        inner = "".join(f"\n    {_rk_transition(t, rnd)}" for t in blk.transitions)
        blocks.append(head + " {" + inner + "\n  }")
    uses = [f"use {u}" for u in b.uses]
    parts = _interleave(rnd, [states, blocks, uses])
    return f"{keyword} {b.name} {{" + "".join(f"\n  {p}" for p in parts) + "\n}"


def emit_rk(p: PolicySpec, rnd: Random) -> str:
    header = [f"policy {p.name}"]
    attrs = []
    if p.version is not None:
        attrs.append(f"version {_q(p.version)}")
    if p.source is not None:
        attrs.append(f"source {_q(p.source)}")
    if p.timezone is not None:
        attrs.append(f"timezone {_q(p.timezone)}")
    rnd.shuffle(attrs)
    header += attrs

    def fact_block(facts: list[tuple[str, str, bool]]) -> str:
        sep = rnd.choice(["\n  ", " "])
        return "facts {" + "".join(f"{sep}{f}: {t}{'?' if o else ''}" for f, t, o in facts) + " }"

    facts = list(p.facts)
    cut = rnd.randint(1, len(facts))
    fact_blocks = [fact_block(facts[:cut])] + ([fact_block(facts[cut:])] if facts[cut:] else [])
    enums = [f"enum {n} {{ {', '.join(m)}{rnd.choice(['', ','])} }}" for n, m in p.enums]
    consts = []
    for n, _t, text, why in p.constants:
        consts.append(f"const {n} = {text}" + (f" {why[0]} {_q(why[1])}" if why else ""))
    cut = rnd.randint(1, len(p.actors))
    actors = [f"actors {', '.join(p.actors[:cut])}"] + (
        [f"actors {', '.join(p.actors[cut:])}"] if p.actors[cut:] else []
    )
    events = []
    for e, by, payload in p.events:
        fields = ", ".join(f"{f}: {t}" for f, t in payload)
        paren = f"({fields})" if payload else rnd.choice(["", "()"])
        events.append(f"event {e}{paren} by {', '.join(by)}")
    effects = []
    for e, params in p.effects:
        fields = ", ".join(f"{f}: {t}" for f, t in params)
        effects.append(f"effect {e}" + (f"({fields})" if params else rnd.choice(["", "()"])))
    bodies = [_rk_body(p.fragment, "fragment", rnd)] if p.fragment else []
    items = _interleave(
        rnd,
        [
            fact_blocks,
            enums,
            consts,
            actors,
            events,
            effects,
            bodies,
            [_rk_body(p.workflow, "workflow", rnd)],
        ],
    )
    out = " ".join(header)
    for item in items:
        out += rnd.choice(["\n", "\n\n", "\n// a comment\n"]) + item
    return out + "\n"


# -- the YAML emitter -----------------------------------------------------------------


def _shuffled(rnd: Random, d: dict[str, Any]) -> dict[str, Any]:
    keys = list(d)
    rnd.shuffle(keys)
    return {k: d[k] for k in keys}


def _one_or_list(rnd: Random, items: list[str]) -> Any:
    return items[0] if len(items) == 1 and rnd.random() < 0.5 else list(items)


def _yaml_transition(t: Tr, rnd: Random) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if t.kind == "event":
        d["on"] = t.event
        if t.by:
            d["by"] = _one_or_list(rnd, t.by)
    elif t.kind == "auto":
        d["when"] = t.condition
    else:
        d[t.kind] = t.deadline
        if t.start:
            d["from"] = t.start
    if t.guard:
        d["when"] = t.guard
    if t.target:
        d["to"] = t.target
    else:
        d["stay"] = True
    if t.emits:
        emits: list[Any] = []
        for eff, args in t.emits:
            if args:
                emits.append({eff: dict(args)})
            else:
                emits.append(rnd.choice([eff, {eff: None}, {eff: {}}]))
        d["emit"] = (
            emits[0]
            if len(emits) == 1 and isinstance(emits[0], str) and rnd.random() < 0.5
            else emits
        )
    if t.sets:
        d["set"] = dict(t.sets)
    if t.cite is not None:
        d["cite"] = t.cite
    return _shuffled(rnd, d)


def _yaml_body(b: BodySpec, rnd: Random) -> dict[str, Any]:
    states: dict[str, Any] = {}
    for s in b.states:
        d: dict[str, Any] = {}
        if s.initial:
            d["initial"] = True
        if s.final:
            d["final"] = True
        if s.outcome:
            d["outcome"] = s.outcome
        if s.waits is not None:
            d["waits"] = s.waits
        if s.cite is not None:
            d["cite"] = s.cite
        if s.transitions or rnd.random() < 0.2:
            d["transitions"] = [_yaml_transition(t, rnd) for t in s.transitions]
        states[s.name] = _shuffled(rnd, d) if d else rnd.choice([None, {}])
    body: dict[str, Any] = {}
    if states or rnd.random() < 0.5:
        body["states"] = states
    if b.every:
        blocks = []
        for blk in b.every:
            bd: dict[str, Any] = {
                "transitions": [_yaml_transition(t, rnd) for t in blk.transitions]
            }
            if blk.mode != "all":
                bd[blk.mode] = list(blk.names)
            blocks.append(_shuffled(rnd, bd))
        body["every"] = blocks
    if b.uses:
        body["use"] = _one_or_list(rnd, b.uses)
    return _shuffled(rnd, body)


def emit_yaml(p: PolicySpec, rnd: Random) -> str:
    d: dict[str, Any] = {"policy": p.name}
    if p.version is not None:
        d["version"] = p.version
    if p.source is not None:
        d["source"] = p.source
    if p.timezone is not None:
        d["timezone"] = p.timezone
    d["facts"] = {f: t + ("?" if o else "") for f, t, o in p.facts}
    if p.enums:
        d["enums"] = {n: list(m) for n, m in p.enums}
    if p.constants:
        d["constants"] = {
            n: ({"value": text, why[0]: why[1]} if why else text)
            for n, _t, text, why in p.constants
        }
    d["actors"] = list(p.actors)
    if p.events:
        events: dict[str, Any] = {}
        for e, by, payload in p.events:
            ed: dict[str, Any] = {"by": _one_or_list(rnd, by)}
            if payload:
                ed["payload"] = dict(payload)
            elif rnd.random() < 0.3:
                ed["payload"] = rnd.choice([None, {}])
            events[e] = _shuffled(rnd, ed)
        d["events"] = events
    if p.effects:
        d["effects"] = {
            e: (dict(params) if params else rnd.choice([None, {}])) for e, params in p.effects
        }
    if p.fragment:
        d["fragments"] = {p.fragment.name: _yaml_body(p.fragment, rnd)}
    d["workflows"] = {p.workflow.name: _yaml_body(p.workflow, rnd)}
    return dump_yaml(
        _shuffled(rnd, d), flow=rnd.choice([False, None]), width=rnd.choice([80, 10**6])
    )


@st.composite
def generated_policies(draw: st.DrawFn) -> Generated:
    spec = draw(policy_specs())
    rnd = draw(st.randoms(use_true_random=False))
    return Generated(spec, emit_rk(spec, rnd), emit_yaml(spec, rnd))
