"""``rulekit fmt``: golden layouts, and over every .rk file of the repository (docs examples
included): the layout is idempotent, keeps the content hash and keeps every comment, in
order. Generated policies: tests/properties/policy/test_fmt_generated.py."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from rulekit.cli import main
from rulekit.policy import artifact, compile_source
from rulekit.tools import formatter
from rulekit.tools.formatter import FormatError, format_checked, format_text
from support import ROOT, TESTS, rk_comments

GOLDEN = TESTS / "golden" / "fmt"
SYNTAX_ERROR = TESTS / "golden" / "policies" / "syntax_error.rk"


def _repository_policies() -> list[Path]:
    return sorted(
        p
        for folder in ("rules", "examples", "tests")
        for p in (ROOT / folder).rglob("*.rk")
        if ".venv" not in p.parts
    )


def _docs_policies() -> list[tuple[str, str]]:
    """The ```rk examples of docs/*.md that are whole policies (others are excerpts)."""
    out = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for n, m in enumerate(re.finditer(r"```rk\n(.*?)```", doc.read_text(), re.DOTALL)):
            if re.search(r"^policy ", m.group(1), re.MULTILINE):
                out.append((f"{doc.name}#{n}", m.group(1)))
    return out


def _hash(text: str, name: str) -> str | None:
    result = compile_source(text, "rk", name)
    return None if result.policy is None else artifact.to_json(result.policy)["hash"]


@pytest.mark.parametrize(
    "name", sorted(p.name.removesuffix(".input.rk") for p in GOLDEN.glob("*.input.rk"))
)
def test_golden_layout(name: str) -> None:
    source = GOLDEN / f"{name}.input.rk"
    expected = (GOLDEN / f"{name}.expected.rk").read_text()
    assert format_checked(source.read_text(), str(source)) == expected
    assert format_checked(expected, str(source)) == expected
    assert _hash(expected, str(source)) == _hash(source.read_text(), str(source)) is not None


@pytest.mark.parametrize("path", _repository_policies(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_policy_of_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8-sig")
    try:
        out = format_checked(text, str(path))
    except FormatError as e:  # the golden files of syntax errors, and only those
        assert e.diagnostics and all(d.code.startswith("RK01") for d in e.diagnostics)
        assert path.parent.name == "policies" and path.parent.parent.name == "golden"
        return
    assert format_text(out) == out
    assert rk_comments(out) == [c.rstrip() for c in rk_comments(text)]
    assert _hash(out, str(path)) == _hash(text, str(path))


@pytest.mark.parametrize("name, text", _docs_policies(), ids=lambda x: x if "#" in x else "")
def test_docs_examples(name: str, text: str) -> None:
    out = format_checked(text, name)
    assert format_text(out) == out
    assert rk_comments(out) == rk_comments(text)


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "rules" / "kuaishou_after_sales.rk",
        ROOT / "examples" / "support_sla" / "support_sla.rk",
        ROOT / "tests" / "policies",  # the test corpus too: one layout everywhere
    ],
)
def test_the_shipped_policies_are_formatted(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt", "--check", str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_check_and_diff_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.rk"
    text = (GOLDEN / "layout.input.rk").read_text()
    path.write_text(text)
    (tmp_path / "calendars").mkdir()
    (tmp_path / "calendars" / "paris.yaml").write_text(
        (GOLDEN / "calendars" / "paris.yaml").read_text()
    )
    assert main(["fmt", "--check", str(tmp_path)]) == 1
    assert capsys.readouterr().out == f"{path}: would be reformatted\n"
    assert main(["fmt", "--diff", str(path)]) == 0
    diff = capsys.readouterr().out
    assert diff.startswith(f"--- {path} (original)\n+++ {path} (formatted)\n")
    assert "-facts {   order.amount: money   // yuan\n" in diff and "\n+facts {\n" in diff
    assert path.read_text() == text
    assert main(["fmt", str(path)]) == 0
    assert capsys.readouterr().out == f"formatted {path}\n"
    assert path.read_text() == (GOLDEN / "layout.expected.rk").read_text()
    assert main(["fmt", "--check", str(path)]) == 0
    assert main(["fmt", str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_stdin_to_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO((GOLDEN / "comments.input.rk").read_text()))
    assert main(["fmt", "-"]) == 0
    assert capsys.readouterr().out == (GOLDEN / "comments.expected.rk").read_text()


def test_a_syntax_error_is_shown_and_the_file_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.rk"
    path.write_text(SYNTAX_ERROR.read_text())
    assert main(["fmt", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}:16:16: error[RK0101]: unexpected `=`" in err
    assert (
        "16 |     on approve => b" in err and f"{path}: not formatted: it has syntax errors" in err
    )
    assert path.read_text() == SYNTAX_ERROR.read_text()


def test_stdin_with_a_syntax_error_gives_the_text_back(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(SYNTAX_ERROR.read_text()))
    assert main(["fmt", "-"]) == 1
    out, err = capsys.readouterr()
    assert out == SYNTAX_ERROR.read_text()
    assert "<stdin>:16:16: error[RK0101]" in err


def test_a_change_of_meaning_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A formatter bug that changed the policy (here: a deadline) is caught, not written."""
    path = tmp_path / "p.rk"
    text = (ROOT / "tests" / "policies" / "set_then_emit.rk").read_text()
    path.write_text(text)
    real = formatter.format_text
    monkeypatch.setattr(formatter, "format_text", lambda t: real(t).replace("+ 1", "+ 2"))
    assert main(["fmt", str(path)]) == 1
    err = capsys.readouterr().err
    assert "would compile to a different content hash" in err
    assert path.read_text() == text


@pytest.mark.parametrize(
    "args, message",
    [
        (["-", "x.rk"], "- (standard input) is formatted alone"),
        (["no/such.rk"], "no such file or folder: no/such.rk"),
    ],
)
def test_usage_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt", *args]) == 2
    assert message in capsys.readouterr().err


# -- the canonical YAML form ---------------------------------------------------------


@pytest.mark.parametrize(
    "name", sorted(p.name.removesuffix(".input.yaml") for p in GOLDEN.glob("*.input.yaml"))
)
def test_golden_yaml_layout(name: str) -> None:
    from rulekit.tools.convert import format_yaml_checked

    source = GOLDEN / f"{name}.input.yaml"
    expected = (GOLDEN / f"{name}.expected.yaml").read_text()
    assert format_yaml_checked(source.read_text(), str(source)) == expected
    assert format_yaml_checked(expected, str(source)) == expected
    before = compile_source(source.read_text(), "yaml", str(source))
    after = compile_source(expected, "yaml", str(source))
    assert before.policy is not None and after.policy is not None
    assert artifact.to_json(after.policy)["hash"] == artifact.to_json(before.policy)["hash"]


def test_yaml_policies_in_folders_are_formatted_and_scenario_files_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text((GOLDEN / "hand_written.input.yaml").read_text())
    scenarios = tmp_path / "p.scenarios.yaml"
    scenarios.write_text("policy: p.yaml\nscenarios: []\n")
    other = tmp_path / "ci.yml"
    other.write_text("on: push\n")
    assert main(["fmt", "--check", str(tmp_path)]) == 1
    assert capsys.readouterr().out == f"{policy}: would be reformatted\n"
    assert main(["fmt", str(tmp_path)]) == 0
    assert policy.read_text() == (GOLDEN / "hand_written.expected.yaml").read_text()
    assert scenarios.read_text() == "policy: p.yaml\nscenarios: []\n"
    assert main(["fmt", "--check", str(tmp_path)]) == 0


def test_yaml_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO((GOLDEN / "hand_written.input.yaml").read_text()))
    assert main(["fmt", "-", "--stdin-format", "yaml"]) == 0
    assert capsys.readouterr().out == (GOLDEN / "hand_written.expected.yaml").read_text()


@pytest.mark.parametrize(
    "text, code",
    [
        ("policy: x\nfacts: [\n", "RK0401"),
        ("policy: x\nverison: 1\n", "RK0402"),
        (  # an expression that does not parse: the YAML front end leaves its transition out
            "policy: p\nworkflows:\n  w:\n    states:\n      s:\n        initial: true\n"
            '        transitions:\n          - when: "a >"\n            to: s\n',
            "RK0103",
        ),
    ],
)
def test_a_yaml_syntax_error_is_shown_and_the_file_left_alone(
    text: str, code: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    assert main(["fmt", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"error[{code}]" in err and "not formatted: it has syntax errors" in err
    assert path.read_text() == text


def test_yaml_files_named_that_are_not_policies_are_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As pre-commit names every changed .yaml file: scenario files and other YAML pass."""
    scenarios = tmp_path / "p.scenarios.yaml"
    scenarios.write_text("policy: p.yaml\nscenarios: []\n")
    other = tmp_path / "ci.yml"
    other.write_text("on: push\n")
    assert main(["fmt", "--check", str(scenarios), str(other)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{scenarios}: skipped: not a policy\n{other}: skipped: not a policy\n"


def test_the_pre_commit_hooks_file_defines_each_hook_once() -> None:
    import yaml

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["rulekit-check", "rulekit-fmt", "rulekit-test"]
    fmt = next(h for h in hooks if h["id"] == "rulekit-fmt")
    assert fmt["entry"] == "rulekit fmt --check" and fmt["files"] == r"\.(rk|ya?ml)$"
