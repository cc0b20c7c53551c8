"""Rough edges a new user hit (issue 12) that have no other home among the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from rulekit import load
from rulekit.cli import main
from support import ROOT, TESTS


def test_dev_help_prints_the_commands_and_nothing_else() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "dev"), "help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("The project's one entry point")
    assert [line.split()[1] for line in lines[2:]] == [
        "demo",
        "test",
        "lint",
        "bench",
        "lock",
        "editors",
        "studio",
    ]


BOM = "\ufeff"


@pytest.mark.parametrize(
    "name",
    [
        "golden/policies/bad_timezone.rk",  # an error on the first line: the column is unchanged
        "golden/policies/unknown_state.rk",
        "golden/policies/yaml_unknown_key.yaml",
        "policies/refunds.rk",
    ],
)
def test_a_byte_order_mark_changes_nothing_in_check(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Some editors start UTF-8 files with U+FEFF: rulekit reads them as if it were not there."""
    text = (TESTS / name).read_text(encoding="utf-8")
    plain, marked = tmp_path / "plain" / Path(name).name, tmp_path / "bom" / Path(name).name
    for path, content in ((plain, text), (marked, BOM + text)):
        path.parent.mkdir()
        path.write_text(content, encoding="utf-8")
    outputs = []
    for path in (plain, marked):
        status = main(["check", str(path)])
        outputs.append((status, capsys.readouterr().out.replace(str(path.parent), "DIR")))
    assert outputs[0] == outputs[1]
    assert "\\ufeff" not in outputs[1][1]


@pytest.mark.parametrize("name", ["refunds.yaml", "kuaishou/fast_refund.yaml"])
def test_a_byte_order_mark_changes_nothing_in_a_scenario_file(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = TESTS / "scenarios" / name
    text = source.read_text(encoding="utf-8")
    policy = (source.parent / yaml.safe_load(text)["policy"]).resolve()
    marked = tmp_path / "marked.yaml"
    marked.write_text(BOM + text.replace("policy: ", f"policy: {policy} # ", 1), encoding="utf-8")
    assert main(["test", str(marked)]) == 0, capsys.readouterr()
    assert main(["test", str(tmp_path)]) == 0, "found as a scenario file in a folder"


def test_a_type_nested_500_deep_is_an_rk0316_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (TESTS / "golden" / "policies" / "unknown_type.rk").read_text(encoding="utf-8")
    deep = "list(" * 500 + "int" + ")" * 500
    path = tmp_path / "deep.rk"
    path.write_text(text.replace("Stauts", "Status").replace("money", deep, 1))
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "error[RK0316]: type nested too deeply (more than 32 levels)" in out
    assert out.splitlines()[-1] == "checked 1 file: 1 error, 0 warnings"


def test_record_keeps_both_forms_alike() -> None:
    """`record "why"` (.rk) and `record:` (YAML) silence RK0704 alike and change no artifact."""
    golden = TESTS / "golden" / "policies"
    rk, yml = load(golden / "fact_unused_leaf.rk"), load(golden / "fact_unused_leaf.yaml")
    assert rk.hash == yml.hash


def test_a_comment_inside_an_as_soon_as_condition_is_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The instant solved from `as soon as` was its operands joined on one line, where a
    `//` comment inside one ran over the rest (an AssertionError in `rulekit check`)."""
    path = tmp_path / "p.rk"
    path.write_text(
        "policy p\nfacts { request.received_at: time }\nworkflow w {\n  initial state a {\n"
        "    as soon as now >= request.received_at + // why\n      90d -> b\n  }\n"
        "  final state b\n}\n"
    )
    assert main(["check", str(path)]) == 0
    assert "0 errors" in capsys.readouterr().out
