"""Hostile inputs shared by the security tests: Python that must never run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rulekit
from rulekit.policy import artifact


def payload(sentinel: Path) -> str:
    """Python that creates ``sentinel`` if anything ever executes it."""
    return f"__import__('os').system('touch {sentinel}')"


def hostile_strings(sentinel: Path) -> list[str]:
    """Strings that break out of a generated name, call, string literal or line."""
    code = payload(sentinel)
    return [
        f"x={code}",
        f"x: {code}",
        f"{code}",
        f"x) or {code} or (x",
        f"x] or {code} or [x",
        f"'] or {code} or ['",
        f'"] or {code} or ["',
        f"x\n{code}\n",
        f"x; {code}",
        "x y",
        "",
        "while",
        "1x",
        "é",
    ]


def comprehension_with_var(var: str) -> dict[str, Any]:
    """The serialized tree of ``[1].all(x, true)`` with its variable renamed to ``var``."""
    tree: dict[str, Any] = rulekit.compile_expression("[1].all(x, true)").to_dict()["ast"]
    tree["var"] = var
    return tree


def evil_policy_artifact(policy: Path, sentinel: Path) -> dict[str, Any]:
    """The compiled artifact of ``policy`` (tests/policies/refunds.rk) with the guard of its
    first automatic transition replaced by a comprehension whose variable is Python, the
    content hash recomputed (it is not a secret): issue #11, finding 1, as reported."""
    data = artifact.to_json(rulekit.load(policy))
    for workflow in data["workflows"]:
        for state in workflow["states"]:
            for transition in state["transitions"]:
                if transition["kind"] == "auto":
                    transition["guard"]["ast"] = comprehension_with_var(f"x={payload(sentinel)}")
                    data["hash"] = artifact.content_hash(data)
                    return data
    raise AssertionError(f"{policy} has no automatic transition")
