"""`rulekit fmt` over generated policies (generator.py: random layout, blank lines and
comments): the layout is idempotent, compiles to the same content hash, keeps every
comment in order, and leaves no run of blank lines."""

from __future__ import annotations

import re

from hypothesis import given

from rulekit.policy import artifact, compile_source
from rulekit.tools.formatter import format_checked, format_text

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
