"""Scenario coverage (`rulekit test --coverage`, docs/scenarios.md "Coverage").

The goldens in tests/golden/coverage/ hold the exact coverage a small policy's scenarios
reach, in every format; after a deliberate change, regenerate them with
`UPDATE_GOLDEN=1 ./dev test tests/test_coverage.py` and review the diff. The shipped
policies' scenarios are held at 100% of their transitions and deadlines.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from rulekit.cli import main
from support import ROOT

GOLDEN = ROOT / "tests" / "golden" / "coverage"
SCENARIOS = "tests/golden/coverage/scenarios.yaml"


@pytest.fixture(autouse=True)
def _at_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths in reports are relative to the working directory: the goldens' are to the root."""
    monkeypatch.chdir(ROOT)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["test", *args])
    out, err = capsys.readouterr()
    return code, out, err


def compare(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden output yet: run with UPDATE_GOLDEN=1 and review {path}"
    assert actual == path.read_text(encoding="utf-8")


def after_results(out: str) -> str:
    """What `rulekit test` printed after its `N passed, N failed` line and the blank one."""
    rest = out.partition(" passed, 0 failed\n\n")[2]
    assert rest, out
    return rest


def test_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, SCENARIOS, "--coverage")
    assert code == 0
    compare("coverage.txt", after_results(out))


def test_the_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, SCENARIOS, "--coverage-format", "json")
    assert code == 0
    data = json.loads(after_results(out))
    assert (data["format"], data["version"]) == ("rulekit-coverage", 1)
    compare("coverage.json", json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def test_json_results_carry_the_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    """With --json the output stays one JSON object: coverage is under its own key."""
    code, out, _ = run(capsys, SCENARIOS, "--json", "--coverage")
    report = json.loads(out)
    assert code == 0 and report["passed"] == 3
    assert report["coverage"] == json.loads((GOLDEN / "coverage.json").read_text())


def test_what_is_counted(capsys: pytest.CaptureFixture[str]) -> None:
    """The figures the goldens hold, said in words (scenarios.yaml's comments tell why)."""
    run(capsys, SCENARIOS, "--coverage-format", "json")
    data = json.loads((GOLDEN / "coverage.json").read_text())
    wf = data["policies"][0]["workflows"][0]
    by_label = {t["label"]: t for t in wf["transitions"]}
    # the merchant's approval at 48h exactly is before the 2-day deadline; silence fired it
    silence = by_label["after 2d when not order.vip -> awaiting_goods (in awaiting_merchant)"]
    assert silence["boundary"] == {"before": 1, "after": 1} and silence["taken"] == 1
    # the VIP's approval: the first guard held; the regular customer's: both failed
    vip = by_label["on approve when order.vip -> awaiting_goods (in awaiting_merchant)"]
    assert (vip["taken"], vip["guard"]["true"], vip["guard"]["false"]) == (1, 1, 1)
    # the clock never ran out, but events were accepted while it ran
    clock = by_label["clock overall runs out -> lapsed"]
    assert clock["taken"] == 0 and clock["boundary"] == {"before": 3, "after": 0}
    assert wf["refusals"]["guard_failed"] == 1 and wf["refusals"]["case_closed"] == 1
    assert data["total"] == {"covered": 7, "total": 10, "percent": 70.0}


def test_lcov(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run(capsys, SCENARIOS, "--coverage-output", str(tmp_path / "cov.info"))
    assert code == 0
    compare("coverage.info", (tmp_path / "cov.info").read_text())


def test_cobertura(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run(capsys, SCENARIOS, "--coverage-output", str(tmp_path / "cov.xml"))
    assert code == 0
    text = (tmp_path / "cov.xml").read_text()
    root = ET.fromstring(text)
    _valid_cobertura(root)
    # the lines are the policy's: each <line> is a state, transition or deadline of it
    policy_lines = (GOLDEN / "returns.rk").read_text().splitlines()
    for line in root.iter("line"):
        written = policy_lines[int(line.get("number", "0")) - 1].strip()
        assert written.startswith(
            ("initial state", "state", "final state", "on", "when", "after", "on expiry")
        ), written
    # the time and rulekit's version are not the golden's business
    shown = re.sub(r'timestamp="\d+"', 'timestamp="0"', text)
    compare("coverage.xml", re.sub(r'version="rulekit [^"]*"', 'version="rulekit"', shown))


def _valid_cobertura(root: ET.Element) -> None:
    """What coverage-04.dtd requires of each element (the attributes readers rely on)."""
    assert root.tag == "coverage"
    required = {
        "coverage": {"line-rate", "branch-rate", "lines-covered", "lines-valid",
                     "branches-covered", "branches-valid", "complexity", "version", "timestamp"},
        "package": {"name", "line-rate", "branch-rate", "complexity"},
        "class": {"name", "filename", "line-rate", "branch-rate", "complexity"},
        "line": {"number", "hits"},
    }  # fmt: skip
    children = {
        "coverage": ["sources", "packages"],
        "packages": ["package"],
        "package": ["classes"],
        "classes": ["class"],
        "class": ["methods", "lines"],
        "lines": ["line"],
    }
    for e in root.iter():
        assert required.get(e.tag, set()) <= set(e.attrib), (e.tag, e.attrib)
        if e.tag in children:
            assert all(c.tag in children[e.tag] for c in e), e.tag
        if e.tag == "line" and e.get("branch") == "true":
            assert re.fullmatch(r"\d+% \(\d+/\d+\)", e.get("condition-coverage", ""))
        for rate in ("line-rate", "branch-rate"):
            if rate in e.attrib:
                assert 0 <= float(e.attrib[rate]) <= 1


@pytest.mark.parametrize(
    ("option", "expected"), [("--coverage-output-format", "lcov"), ("", "json")]
)
def test_the_output_format_by_option_or_extension(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, option: str, expected: str
) -> None:
    out = tmp_path / ("cov.txt" if option else "cov.json")
    args = [SCENARIOS, "--coverage-output", str(out)] + ([option, expected] if option else [])
    assert run(capsys, *args)[0] == 0
    text = out.read_text()
    assert text.startswith("TN:") if expected == "lcov" else json.loads(text)["version"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--coverage-output", "cov.txt"], "cannot tell the coverage format of cov.txt"),
        (["--coverage-output-format", "lcov"], "goes with --coverage-output FILE"),
        (["--fail-under", "101"], "a percentage from 0 to 100, not 101"),
        (["--coverage-output", "no/such/folder/cov.info"], "cannot write no/such/folder/cov.info"),
    ],
)
def test_usage_errors_are_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run(capsys, SCENARIOS, *args)
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize(("under", "code"), [("70", 0), ("0", 0), ("70.1", 1), ("100", 1)])
def test_fail_under(capsys: pytest.CaptureFixture[str], under: str, code: int) -> None:
    got, out, err = run(capsys, SCENARIOS, "--fail-under", under)
    assert got == code and out.endswith("3 passed, 0 failed\n")
    if code:
        assert err == (
            "rulekit: coverage failed: 70.0% of transitions and deadlines taken (7/10), "
            f"under --fail-under {under}\n"
        )
    else:
        assert err == ""


def test_a_failing_scenario_fails_whatever_the_coverage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = (GOLDEN / "scenarios.yaml").read_text().replace("{state: lapsed}", "{state: refunded}")
    (tmp_path / "s.yaml").write_text(
        text.replace("policy: returns.rk", f"policy: {GOLDEN}/returns.rk")
    )
    code, out, _ = run(capsys, str(tmp_path / "s.yaml"), "--fail-under", "50", "--coverage")
    assert code == 1 and "2 passed, 1 failed" in out
    assert "transitions and deadlines covered: 7/10 (70.0%)" in out


def test_the_pytest_plugin_reports_the_same_coverage(tmp_path: Path) -> None:
    """--rulekit-coverage prints the table; --rulekit-coverage-output writes the same JSON."""
    (tmp_path / "returns.rk").write_text((GOLDEN / "returns.rk").read_text())
    (tmp_path / "scenarios.yaml").write_text((GOLDEN / "scenarios.yaml").read_text())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rulekit-coverage",
         "--rulekit-coverage-output", "cov.json"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "transitions and deadlines covered: 7/10 (70.0%)" in result.stdout
    data = json.loads((tmp_path / "cov.json").read_text())
    expected = json.loads((GOLDEN / "coverage.json").read_text())
    assert _without_files(data) == _without_files(expected)


def test_the_pytest_plugin_refuses_an_output_it_cannot_name(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--rulekit-coverage-output", "cov.txt"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 4, result.stdout + result.stderr  # pytest's usage error
    assert "--rulekit-coverage-output cov.txt: name it .info or .lcov" in result.stderr


def test_the_engine_tells_guard_seen_of_steps_not_queries() -> None:
    """What coverage counts guards from: each condition a step evaluates, refused steps
    included, and none that a query (`allowed`) evaluates."""
    from datetime import UTC, datetime, timedelta

    from rulekit import Engine, StepRefused, load

    engine = Engine(load(GOLDEN / "returns.rk"))
    seen: list[tuple[str, str | None, bool]] = []
    engine.guard_seen = lambda t, held: seen.append((t.kind, t.event, held))
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    case = engine.open("returns", {"order": {"amount": 800, "vip": False}}, at=at)
    assert seen == [("auto", None, False), ("auto", None, True)]  # < 10, then >= 10
    seen.clear()
    engine.allowed(case, at + timedelta(days=3))  # fires the 2 days on a scratch copy
    assert seen == []
    with pytest.raises(StepRefused):
        engine.send(case, "approve", "merchant", at=at)
    assert seen == [("event", "approve", False), ("event", "approve", False)]
    seen.clear()
    engine.advance(case, at + timedelta(days=2, seconds=1))
    assert seen == [("after", None, True)] and case.state.name == "awaiting_goods"


def _without_files(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_files(v) for k, v in data.items() if k != "file"}
    if isinstance(data, list):
        return [_without_files(v) for v in data]
    return data


# -- the shipped policies ------------------------------------------------------------------

#: transitions no scenario can take, each with why (the lead is told: see the module doc)
UNREACHABLE = {
    (
        "exchange_repair",
        "on escalate -> platform_review (in checking_eligibility)",
    ): "checking_eligibility is left by one of its two exhaustive `when`s as the case "
    "opens, so no event is ever delivered there; the dispute fragment's `every state except "
    "platform_review, awaiting_evidence` gives it an escalation anyway",
    (
        "ticket",
        "on hold_review when review_week stay (in triage)",
    ): "a ticket leaves triage by a Business Day after its receipt at the latest (2 hours "
    "after its submission when critical), and the review week starts three weeks after the "
    "submission: `every state` gives triage a review that can never be held there",
}


@pytest.mark.parametrize(
    "scenarios", ["tests/scenarios/kuaishou", "examples/support_sla/scenarios.yaml"]
)
def test_the_shipped_policies_scenarios_take_every_transition_and_deadline(
    capsys: pytest.CaptureFixture[str], scenarios: str
) -> None:
    code, out, _ = run(capsys, scenarios, "--json", "--coverage")
    report = json.loads(out)
    assert code == 0 and report["failed"] == 0
    missed = []
    for policy in report["coverage"]["policies"]:
        for wf in policy["workflows"]:
            for t in wf["transitions"]:
                if (wf["name"], t["label"]) in UNREACHABLE:
                    assert t["taken"] == 0, (
                        f"{t['label']} is reachable after all: update UNREACHABLE"
                    )
                    continue
                if t["taken"] == 0:
                    missed.append(f"{wf['name']}: {t['label']} never taken")
                if t["boundary"] is not None and not (
                    t["boundary"]["before"] and t["boundary"]["after"]
                ):
                    missed.append(f"{wf['name']}: {t['label']} boundary {t['boundary']}")
            missed += [f"{wf['name']}: state {s['name']}" for s in wf["states"] if not s["entered"]]
    assert missed == []
