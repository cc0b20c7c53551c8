"""Seeds, YAML data as written, known bugs, and the checks every property makes of a
result: ``check_source`` returns normally and every diagnostic is well-formed (an RK####
code, a severity, a non-empty message and a 1-based position inside the text); what
checks without errors also ``rulekit.loads``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st

import rulekit
from rulekit import CompileError
from rulekit.analysis import check_source
from rulekit.core.diagnostics import CODES
from rulekit.policy import CheckResult, artifact
from support import TESTS

POLICIES = TESTS / "policies"
GOLDEN = TESTS / "golden" / "policies"

PROPS = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

REFUNDS_RK = (POLICIES / "refunds.rk").read_text(encoding="utf-8")
REFUNDS_YAML = (POLICIES / "refunds.yaml").read_text(encoding="utf-8")
GOLDEN_RK = [p.read_text(encoding="utf-8") for p in sorted(GOLDEN.glob("*.rk"))]
GOLDEN_YAML = [p.read_text(encoding="utf-8") for p in sorted(GOLDEN.glob("*.yaml"))]
GOLDEN_JSON = [p.read_text(encoding="utf-8") for p in sorted(GOLDEN.glob("*.json"))]

#: The compiled artifact of refunds.rk: the seed of the JSON mutations.
REFUNDS_ARTIFACT: dict[str, Any] = artifact.to_json(rulekit.loads(REFUNDS_RK, "rk", "refunds.rk"))
REFUNDS_JSON = json.dumps(REFUNDS_ARTIFACT, indent=2, ensure_ascii=False)


# =====================================================================================
# YAML data as written: no YAML 1.1 booleans (`on:` stays the key "on"), and maps that
# may repeat a key (for "a state written twice").
# =====================================================================================


class _Loader(yaml.SafeLoader):
    pass


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class Pairs(list):  # type: ignore[type-arg]
    """A YAML map written from (key, value) pairs, so a key can appear twice."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Pairs, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", list(v)))


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def dump_yaml(data: Any, *, flow: bool | None = False, width: int = 80) -> str:
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=flow,
        width=width,
    )


REFUNDS_DATA: dict[str, Any] = load_yaml(REFUNDS_YAML)


# =====================================================================================
# Known bugs: raw exceptions that escape check_source (none at present; see
# test_regressions.py). The broad properties would skip their signatures.
# =====================================================================================


def _frames(exc: BaseException) -> list[tuple[str, str]]:
    out = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        out.append((Path(code.co_filename).name, code.co_name))
        tb = tb.tb_next
    return out


def known_bug(exc: BaseException) -> str | None:
    """The name of a known, not yet fixed bug that raised ``exc`` (none at present), or None."""
    del exc
    return None


# =====================================================================================
# Checking and judging the result
# =====================================================================================


def assert_well_formed(result: CheckResult, text: str) -> None:
    """Every diagnostic has a code, a severity, a message and a place inside the text."""
    lines = text.split("\n")  # rulekit's Source counts lines by "\n" only
    for d in result.diagnostics:
        assert re.fullmatch(r"RK\d{4}", d.code), d
        assert d.code in CODES, d
        assert d.severity in ("error", "warning", "info"), d
        assert isinstance(d.message, str) and d.message.strip(), d
        for line, col in ((d.line, d.column), (d.end_line, d.end_column)):
            assert line >= 1 and col >= 1, d
            assert line <= len(lines), (d, len(lines))
            assert col <= len(lines[line - 1]) + 1, (d, lines[line - 1])
        assert (d.line, d.column) <= (d.end_line, d.end_column), d
    # A policy exactly when there is no error.
    assert (result.policy is not None) == result.ok, result.diagnostics
    assert isinstance(result.render(), str)


def checked(text: str, fmt: str, filename: str = "fuzz") -> CheckResult | None:
    """check_source, which must return normally (None: a known bug, already noted)."""
    try:
        result = check_source(text, fmt, filename)
    except Exception as e:
        bug = known_bug(e)
        if bug is None:
            raise AssertionError(
                f"check_source(..., {fmt!r}) raised {type(e).__name__}: {e}"
            ) from e
        event(f"known bug: {bug}")
        return None
    assert_well_formed(result, text)
    event(f"{fmt}: {'ok' if result.ok else 'errors'}")
    if result.ok:
        # What checks also loads (loads adds the content hash: it writes the artifact).
        try:
            policy = rulekit.loads(text, fmt, filename)
        except Exception as e:
            bug = known_bug(e)
            if bug is None:
                raise AssertionError(f"loads(..., {fmt!r}) raised {type(e).__name__}: {e}") from e
            event(f"known bug: {bug}")
            return result
        assert policy.hash.startswith("sha256:"), policy.hash
    return result


def loads_only_compile_error(text: str, fmt: str) -> None:
    """rulekit.loads raises CompileError (with diagnostics) or nothing."""
    try:
        rulekit.loads(text, fmt, "fuzz")
    except CompileError as e:
        assert e.diagnostics and str(e)
    except Exception as e:
        if known_bug(e) is None:
            raise AssertionError(f"loads(..., {fmt!r}) raised {type(e).__name__}: {e}") from e


# The unknown-key check (test_yaml_structure.py, and a regression test).


def _key_line(text: str, path: tuple[Any, ...], key: str) -> int:
    """1-based line of ``key`` in the map at ``path`` of the YAML ``text``."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    assert node is not None
    for step in path:
        if isinstance(node, yaml.MappingNode):
            node = next(v for k, v in node.value if k.value == step)
        else:
            node = node.value[step]
    k = next(k for k, _v in node.value if k.value == key)
    return int(k.start_mark.line) + 1


unknown_keys = st.from_regex(r"[a-z][a-z0-9_]{0,9}", fullmatch=True)


def assert_unknown_key_reported(data: dict[str, Any], path: tuple[Any, ...], key: str) -> None:
    text = dump_yaml(data)
    note(text)
    result = checked(text, "yaml", "unknown.yaml")
    assert result is not None
    wanted = f"unknown key `{key}`"
    hits = [d for d in result.diagnostics if d.code == "RK0402" and wanted in d.message]
    assert hits, (wanted, [str(d) for d in result.diagnostics])
    line = _key_line(text, path, key)
    assert any(d.line == line for d in hits), (line, [str(d) for d in hits])
