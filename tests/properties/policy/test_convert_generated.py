"""`rulekit convert` and the canonical YAML form over generated policies (generator.py:
random layout, blank lines and comments) and real ones with comments put anywhere:
rk -> yaml -> rk and yaml -> rk -> yaml keep the content hash and every comment, the
results are in their form's canonical layout (`rulekit fmt`'s), and `fmt` on YAML is
idempotent and keeps the hash."""

from __future__ import annotations

import re
from collections import Counter

from hypothesis import given, note, settings
from hypothesis import strategies as st

from rulekit.policy import artifact, compile_source
from rulekit.tools.convert import convert, format_yaml_checked
from rulekit.tools.formatter import FormatError, format_checked
from support import ROOT, rk_comments

from .generator import Generated, generated_policies
from .helpers import PROPS


def _hash(text: str, form: str) -> str:
    result = compile_source(text, form, f"generated.{form}")
    assert result.policy is not None, result.render()
    return str(artifact.to_json(result.policy)["hash"])


def _yaml_comments(text: str) -> Counter[str]:
    return Counter(m.group(1).rstrip() for m in re.finditer(r"(?:^|(?<=\s))#([^\n]*)", text))


@PROPS
@given(g=generated_policies())
def test_rk_to_yaml_to_rk(g: Generated) -> None:
    there = convert(g.rk, "rk", "yaml", "generated.rk")
    back = convert(there.text, "yaml", "rk", "generated.yaml")
    note(there.text)
    assert there.dropped == back.dropped == []
    assert _hash(there.text, "yaml") == _hash(back.text, "rk") == _hash(g.rk, "rk")
    assert Counter(rk_comments(back.text)) == Counter(rk_comments(g.rk))
    # the result is in fmt's layout, and from the canonical layout the round trip is exact
    assert format_checked(back.text, "generated.rk") == back.text
    assert format_yaml_checked(there.text, "generated.yaml") == there.text
    assert convert(back.text, "rk", "yaml", "generated.rk").text == there.text


@PROPS
@given(g=generated_policies())
def test_yaml_to_rk_to_yaml_and_fmt(g: Generated) -> None:
    formatted = format_yaml_checked(g.yaml, "generated.yaml")
    note(formatted)
    assert format_yaml_checked(formatted, "generated.yaml") == formatted
    assert _hash(formatted, "yaml") == _hash(g.yaml, "yaml")
    there = convert(g.yaml, "yaml", "rk", "generated.yaml")
    back = convert(there.text, "rk", "yaml", "generated.rk")
    assert _hash(there.text, "rk") == _hash(back.text, "yaml") == _hash(g.yaml, "yaml")
    assert format_checked(there.text, "generated.rk") == there.text
    assert back.text == formatted


_SHIPPED = [
    ROOT / "rules" / "kuaishou_after_sales.yaml",
    ROOT / "tests" / "policies" / "clocks.yaml",
    ROOT / "tests" / "policies" / "named_values.yaml",
]


@settings(PROPS, max_examples=60)
@given(data=st.data())
def test_yaml_comments_anywhere_are_kept(data: st.DataObject) -> None:
    """A comment put at the end of any line of a real YAML policy, or on a line of its own
    before any line: fmt keeps it (and the hash), converting to .rk and back keeps it."""
    path = data.draw(st.sampled_from(_SHIPPED))
    lines = path.read_text().split("\n")
    for n in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(lines) - 2))
        if data.draw(st.booleans()):
            lines[at] += f"  # added {n}"
        else:
            indent = len(lines[at]) - len(lines[at].lstrip())
            lines.insert(at, " " * indent + f"# added {n}")
    text = "\n".join(lines)
    note(text)
    try:
        formatted = format_yaml_checked(text, str(path))
    except FormatError as e:  # the comment went inside a string, say
        assert e.diagnostics
        return
    assert format_yaml_checked(formatted, str(path)) == formatted
    assert _yaml_comments(formatted) == _yaml_comments(text)
    back = convert(convert(text, "yaml", "rk", str(path)).text, "rk", "yaml", str(path))
    assert back.text == formatted


@settings(PROPS, max_examples=40)
@given(data=st.data())
def test_rk_comments_anywhere_are_carried(data: st.DataObject) -> None:
    """A comment (trailing, or on lines of its own) put between any two tokens of the
    shipped policy: converting to YAML and back keeps it, and the hash; from there the
    round trip is exact."""
    path = ROOT / "rules" / "kuaishou_after_sales.rk"
    text = path.read_text()
    for n in range(data.draw(st.integers(1, 3))):
        ends = sorted({m.end() for m in re.finditer(r"\S+", text)})
        at = data.draw(st.sampled_from(ends))
        extra = data.draw(st.sampled_from([f" // added {n}\n", f"\n// added {n}\n", "\n"]))
        text = text[:at] + extra + text[at:]
    note(text)
    if compile_source(text, "rk", str(path)).policy is None:
        return  # the insertion broke the syntax (inside a string, say)
    there = convert(text, "rk", "yaml", str(path))
    back = convert(there.text, "yaml", "rk", str(path))
    assert Counter(rk_comments(back.text)) == Counter(rk_comments(text))
    assert convert(back.text, "rk", "yaml", str(path)).text == there.text
