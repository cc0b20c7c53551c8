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
