"""Strategies of broken input: character/line/token/name mutations of text, random text
over the languages' alphabets and keywords, and data mutations of the compiled artifact
(dropped keys, changed types, renamed names/targets/events, corrupted expression trees).
"""

from __future__ import annotations

import copy
import json
import re
import string
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

from rulekit.policy import artifact, yaml_form

from .helpers import REFUNDS_ARTIFACT, REFUNDS_RK, Pairs

# =====================================================================================
# Text mutations: characters, lines, tokens, names
# =====================================================================================

_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|->|==|!=|<=|>=|&&|\|\||//[^\n]*'
    r"|[A-Za-z_][A-Za-z0-9_]*|\d[\w.]*|\S"
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

MUTATION_CHARS = string.ascii_letters + string.digits + " \n\t{}()[]<>=!&|?:;.,-+*/%\"'#@$\\`~^_é审"


def _tokens(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]


@st.composite
def mutation(draw: st.DrawFn, text: str, extra_tokens: tuple[str, ...] = ()) -> str:
    """One mutation of ``text``: a character, a line, a token or a name."""
    kind = draw(
        st.sampled_from(
            [
                "char-del",
                "char-ins",
                "char-dup",
                "char-swap",
                "line-del",
                "line-dup",
                "line-ins",
                "line-swap",
                "tok-del",
                "tok-ins",
                "tok-dup",
                "tok-swap",
                "name",
            ]
        )
    )
    if kind.startswith("char"):
        if not text:
            return draw(st.text(MUTATION_CHARS, min_size=1, max_size=3))
        i = draw(st.integers(0, len(text) - 1))
        if kind == "char-del":
            return text[:i] + text[i + 1 :]
        if kind == "char-ins":
            return text[:i] + draw(st.sampled_from(MUTATION_CHARS)) + text[i:]
        if kind == "char-dup":
            return text[:i] + text[i] + text[i:]
        j = draw(st.integers(0, len(text) - 1))
        chars = list(text)
        chars[i], chars[j] = chars[j], chars[i]
        return "".join(chars)
    if kind.startswith("line"):
        lines = text.split("\n")
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "line-del":
            del lines[i]
        elif kind == "line-dup":
            lines.insert(i, lines[i])
        elif kind == "line-ins":
            lines.insert(i, draw(st.sampled_from(lines)))
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    toks = _tokens(text)
    if not toks:
        return text + draw(st.sampled_from(MUTATION_CHARS))
    if kind == "name":
        names = [(a, b) for a, b in toks if _NAME.fullmatch(text[a:b])]
        if not names:
            return text
        a, b = draw(st.sampled_from(names))
        other = draw(st.sampled_from(sorted({text[x:y] for x, y in names})))
        return text[:a] + other + text[b:]
    a, b = draw(st.sampled_from(toks))
    if kind == "tok-del":
        return text[:a] + text[b:]
    if kind == "tok-dup":
        return text[:a] + text[a:b] + " " + text[a:b] + text[b:]
    if kind == "tok-ins":
        pool = sorted({text[x:y] for x, y in toks} | set(extra_tokens))
        sep = draw(st.sampled_from(["", " "]))
        return text[:a] + draw(st.sampled_from(pool)) + sep + text[a:]
    c, d = draw(st.sampled_from(toks))
    if (c, d) < (a, b):
        (a, b), (c, d) = (c, d), (a, b)
    if b > c:
        return text
    return text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]


@st.composite
def mutated(draw: st.DrawFn, seeds: st.SearchStrategy[str], extra: tuple[str, ...] = ()) -> str:
    text = draw(seeds)
    for _ in range(draw(st.integers(1, 4))):
        text = draw(mutation(text, extra))
    return text


# =====================================================================================
# Random text over the languages' alphabets
# =====================================================================================

RK_KEYWORDS = [
    "policy",
    "version",
    "source",
    "timezone",
    "facts",
    "enum",
    "const",
    "actors",
    "event",
    "effect",
    "by",
    "fragment",
    "workflow",
    "use",
    "initial",
    "final",
    "state",
    "outcome",
    "waits",
    "record",
    "every",
    "except",
    "in",
    "on",
    "when",
    "after",
    "from",
    "at",
    "stay",
    "emit",
    "set",
    "cite",
    "assumption",
    "note",
    "true",
    "false",
    "null",
    "and",
    "or",
    "not",
]
RK_PUNCT = [
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    ".",
    "?",
    "=",
    "->",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "!",
    "&&",
    "||",
    "'",
    '"',
    "//",
    ";",
    "@",
]
RK_WORDS = sorted(set(_NAME.findall(REFUNDS_RK)))
RK_LITERALS = [
    "0",
    "1",
    "300",
    "48h",
    "1h30m",
    "7d",
    "1.5",
    "0x1F",
    "1u",
    "1e3",
    '"x"',
    '"1"',
    '"Asia/Shanghai"',
    '"+08:00"',
    '"UTC"',
    "'q'",
    'b"\\xff"',
    '"\\q"',
    '"""a"""',
    "r'\\d'",
    "money",
    "int",
    "bool",
    "string",
    "time",
    "duration",
    "list(int)",
    "map(string, int)",
]
rk_token = st.one_of(
    st.sampled_from(RK_KEYWORDS),
    st.sampled_from(RK_PUNCT),
    st.sampled_from(RK_WORDS),
    st.sampled_from(RK_LITERALS),
    st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True),
)
separators = st.sampled_from([" ", " ", " ", "", "\n", "\n  ", "\t"])


@st.composite
def token_soup(draw: st.DrawFn, token: st.SearchStrategy[str], prefix: str = "") -> str:
    parts = draw(st.lists(st.tuples(token, separators), max_size=60))
    body = "".join(t + s for t, s in parts)
    return (prefix if draw(st.booleans()) else "") + body


RK_CHARS = string.ascii_letters[:12] + string.digits[:4] + " \n{}()[],:.?=<>!&|+-*/%\"'_"
random_rk = st.one_of(
    token_soup(rk_token, "policy p "),
    st.text(RK_CHARS, max_size=80),
    st.text(max_size=40),
)

YAML_KEYS = sorted(
    set(yaml_form.schema()["properties"])
    | {k for d in yaml_form.schema()["$defs"].values() for k in d.get("properties", {})}
)
yaml_token = st.one_of(
    st.sampled_from([k + ":" for k in YAML_KEYS]),
    st.sampled_from(
        [
            "- ",
            ": ",
            "{",
            "}",
            "[",
            "]",
            ", ",
            "'",
            '"',
            "&a ",
            "*a",
            "!!str ",
            "|",
            ">",
            "#",
            "---",
            "...",
            "~",
            "? ",
            "<<: *a",
            "%YAML 1.1\n",
        ]
    ),
    st.sampled_from([*RK_WORDS, "true", "yes", "on", "null", "1", "48h", "x < 1", "-1.5"]),
    st.sampled_from(["\n", "\n  ", "\n    ", "\n      "]),
)
random_yaml = st.one_of(token_soup(yaml_token, "policy: p\n"), st.text(max_size=60))

json_token = st.one_of(
    st.sampled_from(
        [
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "null",
            "true",
            "false",
            "0",
            "-1",
            "1e999",
            "NaN",
            "Infinity",
            '"',
            "\\u0000",
        ]
    ),
    st.sampled_from([json.dumps(k) for k in REFUNDS_ARTIFACT]),
    st.sampled_from(['"rulekit.policy/1"', '"node"', '"Literal"', '"span"', '"x"']),
)
random_json = st.one_of(
    token_soup(json_token, '{"format": "rulekit.policy/1", '), st.text(max_size=60)
)


# =====================================================================================
# JSON data mutations of the compiled artifact
# =====================================================================================


def walk_paths(node: Any, pre: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield pre
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk_paths(v, (*pre, k))
    elif isinstance(node, list) and not isinstance(node, Pairs):  # Pairs: a finished map
        for i, v in enumerate(node):
            yield from walk_paths(v, (*pre, i))


def get_at(data: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        data = data[step]
    return data


def _ast_paths(data: Any) -> list[tuple[Any, ...]]:
    """Paths of every expression-tree node (dicts with a "node" key) in the artifact."""
    return [
        p
        for p in walk_paths(data)
        if isinstance(get_at(data, p), dict) and "node" in get_at(data, p)
    ]


NAME_KEYS = {"name", "target", "event", "effect", "fact", "initial", "path", "kind", "origin"}
AST_CLASSES = [
    "Literal",
    "Ident",
    "Select",
    "Has",
    "Index",
    "Call",
    "Unary",
    "Binary",
    "Logical",
    "Conditional",
    "ListLit",
    "MapLit",
    "Comprehension",
    "Nope",
]
json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([2**63, -(2**63), 2**70, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "",
            "x",
            "int",
            "bool",
            "timestamp",
            "list(",
            "**",
            "&&",
            "-",
            "in",
            "string",
            "duration",
            "Service",
            "exchange",
            "sha256:0",
            "refunded",
            "approve",
            "order.amount",
            "merchant",
        ]
    ),
    st.lists(st.sampled_from([0, 1, "a", None]), max_size=4),
    st.sampled_from([{}, {"node": "Ident"}, {"node": "Literal", "span": [0, 1]}, {"a": 1}]),
)


@st.composite
def artifact_mutation(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """One data mutation: drop a key, change a type, rename, or corrupt an expression."""
    data = copy.deepcopy(base)
    paths = [p for p in walk_paths(data) if p]
    keyed = [p for p in paths if isinstance(p[-1], str)]
    named = [p for p in paths if p[-1] in NAME_KEYS or (len(p) > 1 and p[-2] == "actors")]
    nodes = _ast_paths(data)
    lists = [p for p in paths if isinstance(get_at(data, p), list) and get_at(data, p)]
    kinds = [
        k
        for k, there in (
            ("drop", keyed),
            ("retype", paths),
            ("rename", named),
            ("ast", nodes),
            ("ast", nodes),
            ("list", lists),
        )
        if there
    ]
    if not kinds:
        return data
    kind = draw(st.sampled_from(kinds))
    if kind == "drop":
        p = draw(st.sampled_from(keyed))
        del get_at(data, p[:-1])[p[-1]]
    elif kind == "retype":
        p = draw(st.sampled_from(paths))
        get_at(data, p[:-1])[p[-1]] = draw(json_values)
    elif kind == "rename":
        names = sorted({str(get_at(data, p)) for p in named})
        p = draw(st.sampled_from(named))
        get_at(data, p[:-1])[p[-1]] = draw(
            st.one_of(st.sampled_from(names), st.sampled_from(["", "nowhere", "event", "auto"]))
        )
    elif kind == "ast":
        p = draw(st.sampled_from(nodes))
        node = get_at(data, p)
        how = draw(st.sampled_from(["class", "field", "drop-field", "swap", "graft"]))
        fields = [k for k in node if k != "node"]
        if how == "class":
            node["node"] = draw(st.sampled_from(AST_CLASSES))
        elif how == "field" and fields:
            node[draw(st.sampled_from(fields))] = draw(json_values)
        elif how == "drop-field" and fields:
            del node[draw(st.sampled_from(fields))]
        elif how in ("swap", "graft"):
            q = draw(st.sampled_from(nodes))
            other = copy.deepcopy(get_at(data, q))
            if p:
                parent = get_at(data, p[:-1])
                parent[p[-1]] = other
    else:  # duplicate or delete a list element (a state, a transition, a fact, ...)
        p = draw(st.sampled_from(lists))
        items = get_at(data, p)
        i = draw(st.integers(0, len(items) - 1))
        if draw(st.booleans()):
            items.insert(i, copy.deepcopy(items[i]))
        else:
            del items[i]
    if draw(st.booleans()):  # re-sign it, so the mutation is judged on its content, not the hash
        data["hash"] = artifact.content_hash(data)
    return data
