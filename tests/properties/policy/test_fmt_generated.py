"""`rulekit fmt` over generated policies (generator.py: random layout, blank lines and
comments): the layout is idempotent, compiles to the same content hash, keeps every
comment in order, and leaves no run of blank lines; and over real policies with comments and line breaks
put anywhere."""

from __future__ import annotations

import re

from hypothesis import given, note, settings
from hypothesis import strategies as st

from rulekit.policy import artifact, compile_source
from rulekit.tools.formatter import FormatError, format_checked, format_text
from support import ROOT, rk_comments

from .generator import Generated, generated_policies
from .helpers import PROPS


def _hash(text: str) -> str:
    result = compile_source(text, "rk", "generated.rk")
    assert result.policy is not None, result.render()
    return str(artifact.to_json(result.policy)["hash"])


@PROPS
@given(g=generated_policies())
def test_formatting_generated_policies_keeps_them(g: Generated) -> None:
    out = format_checked(g.rk, "generated.rk")
    assert format_text(out) == out
    assert _hash(out) == _hash(g.rk)
    # the generator's comments hold no string and no `//` in a string
    assert re.findall(r"//[^\n]*", out) == re.findall(r"//[^\n]*", g.rk)
    assert "\n\n\n" not in out and not out.startswith("\n")


_SHIPPED = [
    ROOT / "rules" / "kuaishou_after_sales.rk",
    ROOT / "examples" / "support_sla" / "support_sla.rk",
    ROOT / "tests" / "policies" / "clocks.rk",
]


@settings(PROPS, max_examples=60)
@given(data=st.data())
def test_comments_and_line_breaks_anywhere_are_kept(data: st.DataObject) -> None:
    """A comment (trailing, or on lines of its own) or a line break put between any two
    tokens of a real policy: formatting keeps the comment, in order, and the hash."""
    path = data.draw(st.sampled_from(_SHIPPED))
    text = path.read_text()
    ends = sorted({m.end() for m in re.finditer(r"\S+", text)})
    for n in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.sampled_from(ends))
        extra = data.draw(
            st.sampled_from(
                [f" // added {n}\n", f"\n// added {n}\n", f"\n\n  // added {n}\n\n", "\n"]
            )
        )
        text = text[:at] + extra + text[at:]
        ends = sorted({m.end() for m in re.finditer(r"\S+", text)})
    note(text)
    try:
        out = format_checked(text, str(path))
    except FormatError as e:  # the insertion broke the syntax (inside a string, say)
        assert e.diagnostics
        return
    assert format_text(out) == out
    assert rk_comments(out) == rk_comments(text)
