"""Golden diagnostics: broken inputs beside the exact output authors see.

- tests/golden/expressions/*.cel: conditions on their own. A `.cel` file may
  declare names in comment lines (`// declare order.amount: money`); with
  none, names are untyped.
- tests/golden/policies/*.rk|.yaml|.json: policies in every form. A policy
  may ask for what `rulekit check --max-open D` adds (RK0710) with a comment
  line `// max-open: D`. What inline directives (`// rulekit: ignore RK0707 -- why`)
  silence is listed after the diagnostics, each with the directive's line and reason.
  A policy with a `migrate from` block may name the earlier version to check it against,
  as `rulekit check --migrating-from OLD` does, with `// migrating-from: FILE` (FILE
  relative to the policy, kept in a subfolder so it is not an input itself).
- tests/golden/relay/*.yaml: relay configurations (``rulekit relay --config``), read with
  PAYMENTS_SECRET set in their environment and nothing else.

Each input's output is in the `.out` file beside it. To accept new output
after a deliberate wording change:
`UPDATE_GOLDEN=1 ./dev test tests/test_golden_diagnostics.py`, then review
the diff like any other change.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

from rulekit import CompileError, load
from rulekit.analysis import check_source, times
from rulekit.core.diagnostics import CODES, render, sort_key
from rulekit.core.source import Source
from rulekit.expr.expression import parse_and_check
from rulekit.expr.stdlib import parse_duration
from rulekit.policy import FORMATS
from rulekit.policy.checker import check_migration
from rulekit.relay.config import ConfigError, loads_config
from rulekit.tools import scenarios
from support import TESTS

GOLDEN = TESTS / "golden"
EXPRESSIONS = sorted((GOLDEN / "expressions").glob("*.cel"))
POLICIES = sorted(p for p in (GOLDEN / "policies").iterdir() if p.suffix in FORMATS)
SCENARIOS = sorted((GOLDEN / "scenarios").glob("*.yaml"))
RELAY_CONFIGS = sorted((GOLDEN / "relay").glob("*.yaml"))
DECLARE = re.compile(r"^//\s*declare\s+([\w.]+)\s*:\s*(.+?)\s*$", re.M)
MAX_OPEN = re.compile(r"^//\s*max-open:\s*(\S+)\s*$", re.M)
MIGRATING_FROM = re.compile(r"^//\s*migrating-from:\s*(\S+)\s*$", re.M)


def _render_expression(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    decls = dict(DECLARE.findall(text)) or None
    try:
        parse_and_check(Source(text, path.name), decls)
    except CompileError as e:
        codes = " ".join(d.code for d in e.diagnostics)
        return f"codes: {codes}\n\n{e.rendered}\n"
    return "compiled without errors\n"


def _render_policy(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    with contextlib.chdir(path.parent):  # calendar files are found beside the policy
        result = check_source(text, FORMATS[path.suffix], path.name)
    limit = MAX_OPEN.search(text)
    if limit is not None and result.policy is not None and result.ok:
        too_long = times.max_open(result.policy, parse_duration(limit.group(1)))
        result = replace(result, diagnostics=sorted([*result.diagnostics, *too_long], key=sort_key))
    old = MIGRATING_FROM.search(text)
    if old is not None and result.policy is not None and result.ok:
        moved = check_migration(result.policy, load(path.parent / old.group(1)), result.source)
        result = replace(result, diagnostics=sorted([*result.diagnostics, *moved], key=sort_key))
    if not result.diagnostics:
        out = "checked without problems\n"
    else:
        codes = " ".join(d.code for d in result.diagnostics)
        out = f"codes: {codes}\n\n{result.render()}\n"
    if result.suppressed:
        silenced = [
            render(s.diagnostic, result.source.line_text(s.diagnostic.line))
            + f"\n  suppressed by line {s.line}: {s.reason or '(no reason given)'}"
            for s in result.suppressed
        ]
        codes = " ".join(s.diagnostic.code for s in result.suppressed)
        out += f"\nsuppressed: {codes}\n\n" + "\n\n".join(silenced) + "\n"
    return out


def _render_scenario_file(path: Path) -> str:
    """What `rulekit test` says before running anything: the file, then its names."""
    try:
        sf = scenarios.read(path)
        scenarios.check_names(sf, load(sf.policy_path))
    except scenarios.ScenarioFileError as e:
        d = e.diagnostic
        line = path.read_text(encoding="utf-8").splitlines()[d.line - 1]
        shown = render(d, line).replace(str(path.parent) + "/", "")  # the same on every machine
        return f"codes: {d.code}\n\n{shown}\n"
    return "read without problems\n"


def _render_relay_config(path: Path) -> str:
    try:
        loads_config(path.read_bytes(), path.name, {"PAYMENTS_SECRET": "s3cret"})
    except ConfigError as e:
        codes = " ".join(d.code for d in e.diagnostics)
        return f"codes: {codes}\n\n{e}\n"
    return "read without problems\n"


def _compare(path: Path, actual: str) -> None:
    expected_path = (
        path.with_name(path.name + ".out") if path.suffix != ".cel" else path.with_suffix(".out")
    )
    if os.environ.get("UPDATE_GOLDEN"):
        expected_path.write_text(actual, encoding="utf-8")
    assert expected_path.exists(), (
        f"no golden output yet: run with UPDATE_GOLDEN=1 and review {expected_path}"
    )
    assert actual == expected_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", EXPRESSIONS, ids=[p.stem for p in EXPRESSIONS])
def test_expression(path: Path) -> None:
    _compare(path, _render_expression(path))


@pytest.mark.parametrize("path", POLICIES, ids=[p.name for p in POLICIES])
def test_policy(path: Path) -> None:
    _compare(path, _render_policy(path))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_scenario_file(path: Path) -> None:
    _compare(path, _render_scenario_file(path))


@pytest.mark.parametrize("path", RELAY_CONFIGS, ids=[p.name for p in RELAY_CONFIGS])
def test_relay_config(path: Path) -> None:
    _compare(path, _render_relay_config(path))


def test_every_code_has_a_golden_case() -> None:
    seen = set()
    for out in GOLDEN.rglob("*.out"):
        first = out.read_text(encoding="utf-8").splitlines()[0]
        seen.update(first.removeprefix("codes: ").split())
    # RK0001 (unreadable file) is about the file system, tested in test_policy_api.py.
    assert set(CODES) - seen - {"RK0001"} == set(), "codes without a golden case"
