"""A policy with very many facts is checked in time linear in their number: each fact is
checked against those before it as it is added (expr.types.Declarations), where the
checker once rebuilt the whole environment for every fact (2,000 facts: 13 s; 20,000:
about twenty minutes)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rulekit.analysis import check_source
from rulekit.expr import types

KUAISHOU = Path(__file__).parents[2] / "rules" / "kuaishou_after_sales.rk"
#: Generous, for a loaded machine: the check takes well under a second.
BOUND_SECONDS = 30.0


def _with_facts(n: int, conflicting: int = 0) -> str:
    extra = [f"  order.x{i}: int" for i in range(n)]
    extra += [f"  order.x{i}.y: int" for i in range(conflicting)]
    return KUAISHOU.read_text(encoding="utf-8").replace(
        "facts {", "facts {\n" + "\n".join(extra), 1
    )


def test_twenty_thousand_facts_are_checked_quickly() -> None:
    start = time.perf_counter()
    result = check_source(_with_facts(20_000, conflicting=1_000), "rk", "many.rk")
    assert time.perf_counter() - start < BOUND_SECONDS
    # each conflicting fact reported, and nothing else (the analyses run on a policy
    # without errors)
    assert [d.code for d in result.diagnostics] == ["RK0301"] * 1_000
    start = time.perf_counter()
    result = check_source(_with_facts(20_000), "rk", "many.rk")
    assert time.perf_counter() - start < BOUND_SECONDS
    assert [d.code for d in result.diagnostics] == ["RK0704"] * 20_000  # declared, never read


def test_the_environment_is_built_once_however_many_facts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = 0
    build = types.Declarations.build

    def counting(self: types.Declarations) -> dict[str, types.Type]:
        nonlocal built
        built += 1
        return build(self)

    monkeypatch.setattr(types.Declarations, "build", counting)
    check_source(_with_facts(500), "rk", "many.rk")
    assert built == 1


@pytest.mark.parametrize(
    ("first", "then", "qualified", "clash"),
    [
        ("a.b", "a.b.c", False, True),
        ("a.b.c", "a.b", False, True),
        ("a.b", "a.b", False, True),
        ("a.b", "a.c", False, False),
        ("a.b", "a.b.c", True, False),
        ("a.b.c", "a.b", True, False),
        ("a.b", "a.b", True, True),
    ],
)
def test_a_refused_declaration_leaves_the_others_as_they_were(
    first: str, then: str, qualified: bool, clash: bool
) -> None:
    env = types.Declarations(qualified=qualified)
    env.add(first, "int")
    before = env.build()
    if clash:
        with pytest.raises(types.DeclarationError):
            env.add(then, "string")
        assert env.build() == before
    else:
        env.add(then, "string")
        assert env.build() == types.build_environment(
            {first: "int", then: "string"}, qualified=qualified
        )
