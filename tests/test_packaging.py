"""The installed package works with no checkout around it (grammars included).

Builds the wheel, installs it into a fresh virtual environment, and runs the
API and the CLI from a directory outside the repository. The runtime
dependencies are taken from the test environment (a path entry), so the
test needs no network.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from conftest import ROOT
from rulekit import scenarios

SCRIPT = """
import rulekit, rulekit.grammars, sys
grammar_dir = rulekit.grammars.grammar_dir()
assert str(grammar_dir).startswith(sys.prefix), grammar_dir
assert "{root}" not in rulekit.__file__, rulekit.__file__
e = rulekit.compile_expression("order.amount < 300 && !order.shipped",
                               {{"order.amount": "money", "order.shipped": "bool"}})
print(e.evaluate({{"order": {{"amount": 128, "shipped": False}}}}), grammar_dir.name)
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(tmp / "dist"),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = (tmp / "dist").glob("rulekit-*.whl")
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
    )
    # Dependencies come from this test environment's site-packages.
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir


def test_wheel_carries_the_grammars(installed: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(installed / "bin" / "python"), "-c", SCRIPT.format(root=ROOT / "src")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "grammar"]


def test_installed_cli_runs(installed: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(installed / "bin" / "rulekit"), "eval", "size([1, 2, 3]) == 3 and 6h < 1d"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout) == (0, "true\n"), result.stderr


def test_installed_demo_runs_the_shipped_policy(installed: Path, tmp_path: Path) -> None:
    """The example policy is package data: the demo needs no checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(installed / "bin" / "python"), "-m", "rulekit.demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "kuaishou_after_sales.rk: ok" in result.stdout
    assert "closed, outcome refunded" in result.stdout


POLICY = ROOT / "rules" / "kuaishou_after_sales.rk"


@pytest.mark.parametrize(
    "cache_before",
    [None, b"not a parser\n", b""],
    ids=["first-start", "damaged-file", "empty-file"],
)
def test_the_parser_is_built_once_and_then_loaded(
    cache_before: bytes | None, tmp_path: Path
) -> None:
    """The policy grammar's tables are kept in the user's cache folder: a damaged file is rebuilt."""
    env = os.environ | {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    check = [sys.executable, "-m", "rulekit.cli", "check", str(POLICY)]
    if cache_before is not None:
        subprocess.run(check, env=env, capture_output=True, check=True)
        (cached,) = (tmp_path / "cache" / "rulekit").glob("rules-*.lark")
        cached.write_bytes(cache_before)
    first = subprocess.run(check, env=env, capture_output=True, text=True)
    (cached,) = (tmp_path / "cache" / "rulekit").glob("rules-*.lark")
    built = cached.stat().st_mtime_ns
    assert cached.read_bytes() != cache_before
    second = subprocess.run(check, env=env, capture_output=True, text=True)
    assert (first.returncode, first.stdout, first.stderr) == (0, second.stdout, "")
    assert (second.returncode, second.stderr) == (0, "")
    assert cached.stat().st_mtime_ns == built  # loaded, not built and written again


# The pytest plugin runs in every project that installs rulekit: it parses a YAML
# file only when a line of it starts with the `scenarios` key.
SCENARIO_FILE_CASES = [
    ("policy: p.rk\nscenarios:\n  - name: x\n", True),
    ("# for p.rk\nscenarios: []\npolicy: p.rk\n", True),
    ("---\n'scenarios' : []\n", True),
    ('"scenarios": []\n', True),
    ("jobs:\n  scenarios: 1\n", False),  # not at the top level
    ("# scenarios: none here\npolicy: p.rk\n", False),
    ("- scenarios\n- more\n", False),
    ("scenarios_old: []\n", False),
    ("scenarios: [\n", False),  # not YAML
    ("text: |\n  scenarios:\n", False),  # inside a string
    ("{scenarios: []}\n", False),  # flow style at the top: not a scenario file (documented)
]


@pytest.mark.parametrize(("text", "expected"), SCENARIO_FILE_CASES)
def test_which_yaml_files_are_scenario_files(text: str, expected: bool, tmp_path: Path) -> None:
    path = tmp_path / "file.yaml"
    path.write_text(text)
    assert scenarios.is_scenario_file(path) is expected


def test_yaml_files_without_a_scenarios_line_are_never_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(scenarios.yaml, "compose", parse)
    ci = tmp_path / "ci.yaml"
    ci.write_text("jobs:\n  test:\n    steps:\n      - run: ./dev test\n" * 1000)
    assert not scenarios.is_scenario_file(ci)
    scenario = tmp_path / "refunds.yaml"
    scenario.write_text("scenarios: []\n")
    with pytest.raises(AssertionError, match="parsed"):  # the patch is the one in use
        scenarios.is_scenario_file(scenario)


@pytest.mark.parametrize(
    ("plugin", "collected"),
    [([], "4 tests collected"), (["-p", "no:rulekit"], "no tests collected")],
    ids=["on", "turned-off"],
)
def test_the_pytest_plugin_collects_scenario_files(
    plugin: list[str], collected: str, tmp_path: Path
) -> None:
    """A project with scenarios and other YAML files; `-p no:rulekit` turns the plugin off."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "refunds.rk").write_text(
        (ROOT / "tests" / "policies" / "refunds.rk").read_text()
    )
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "refunds.yaml").write_text(
        (ROOT / "tests" / "scenarios" / "refunds.yaml").read_text()
    )
    (tmp_path / "scenarios" / "ci.yml").write_text("jobs: {test: {steps: [{run: pytest}]}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", *plugin],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert collected in result.stdout, result.stdout + result.stderr
