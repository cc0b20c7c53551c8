"""The installed package: the wheel, its contents, its dependencies, its start-up.

Builds the wheel and installs it into fresh virtual environments, running the
API and the CLI from a directory outside the repository: once with the
runtime dependencies taken from the test environment (a path entry, no
network), and once as a user installs it, the core alone from PyPI (or pip's
cache; marked `network`), at the versions requirements/dev.lock pins.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from rulekit.tools import scenarios
from support import ROOT

SCRIPT = """
import rulekit, rulekit.core.grammars, sys
grammar_dir = rulekit.core.grammars.grammar_dir()
assert str(grammar_dir).startswith(sys.prefix), grammar_dir
assert "{root}" not in rulekit.__file__, rulekit.__file__
e = rulekit.compile_expression("order.amount < 300 && !order.shipped",
                               {{"order.amount": "money", "order.shipped": "bool"}})
print(e.evaluate({{"order": {{"amount": 128, "shipped": False}}}}), grammar_dir.name)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
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
    (built,) = (tmp / "dist").glob("rulekit-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    env_dir = tmp_path_factory.mktemp("venv")
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


def test_the_wheel_carries_the_studio_page(wheel: Path) -> None:
    """The studio's page and its assets are package data: `rulekit studio` needs no Node."""
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
    assert "rulekit/studio/static/index.html" in names
    shipped = {
        n.removeprefix("rulekit/")
        for n in names
        if n.startswith("rulekit/studio/static/") and not n.endswith("/")
    }
    on_disk = {
        p.relative_to(ROOT / "src" / "rulekit").as_posix()
        for p in (ROOT / "src" / "rulekit" / "studio" / "static").rglob("*")
        if p.is_file()
    }
    assert shipped == on_disk


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
        [str(installed / "bin" / "rulekit"), "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "kuaishou_after_sales.rk: ok" in result.stdout
    assert "closed, outcome refunded" in result.stdout


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LOCK = (ROOT / "requirements" / "dev.lock").read_text(encoding="utf-8")
#: Imported by the service and the PostgreSQL store only: never by `import rulekit` or the
#: CLI's authoring verbs, and not installed with the core wheel.
NOT_CORE = (
    "fastapi",
    "pydantic",
    "starlette",
    "uvicorn",
    "prometheus_client",
    "psycopg",
    "pygls",
    "lsprotocol",
)


def test_the_wheel_is_typed_and_requires_only_the_core(wheel: Path) -> None:
    """py.typed; the version written once (pyproject.toml); the service's packages in extras."""
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "rulekit/py.typed" in names
    assert f"\nVersion: {PYPROJECT['version']}\n" in metadata
    requires = [Requirement(r) for r in re.findall(r"^Requires-Dist: (.*)$", metadata, re.M)]
    core = {canonicalize_name(r.name) for r in requires if r.marker is None}
    assert core == {canonicalize_name(Requirement(d).name) for d in PYPROJECT["dependencies"]}
    assert core.isdisjoint(canonicalize_name(n) for n in NOT_CORE)


def test_the_lock_pins_every_declared_requirement() -> None:
    """requirements/dev.lock is in step with pyproject.toml (else: `./dev lock`)."""
    pins = dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", LOCK, re.M))
    pinned = {canonicalize_name(name): version for name, version in pins.items()}
    extras = PYPROJECT["optional-dependencies"]
    declared = [
        Requirement(r)
        for r in [
            *PYPROJECT["dependencies"],
            *extras["server"],
            *extras["postgresql"],
            *extras["lsp"],
            *extras["dev"],
        ]
    ]
    assert "rulekit" not in pinned  # installed editable by ./dev, never from the lock
    unmet = {
        str(r): pinned.get(canonicalize_name(r.name))
        for r in declared
        if r.name != "rulekit"
        and not r.specifier.contains(pinned.get(canonicalize_name(r.name), "0.0.0.dev0"))
    }
    assert unmet == {}, "requirements/dev.lock is stale: run ./dev lock"


@pytest.fixture(scope="module")
def core(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with the core wheel alone, installed as a user does (from PyPI or
    pip's cache), at the versions the lock pins."""
    tmp = tmp_path_factory.mktemp("core")
    constraints = tmp / "constraints.txt"
    constraints.write_text("\n".join(re.findall(r"^[A-Za-z0-9._-]+==\S+", LOCK, re.M)) + "\n")
    venv.create(tmp / "venv", with_pip=True)
    result = subprocess.run(
        [
            str(tmp / "venv" / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--constraint",
            str(constraints),
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return tmp / "venv"


CORE_COMMANDS = [
    (["rulekit", "check", "{root}/rules/kuaishou_after_sales.rk"], 0, "0 errors, 0 warnings"),
    (["rulekit", "test", "{root}/tests/scenarios/kuaishou"], 0, " passed, 0 failed"),
    (["rulekit", "--version"], 0, f"rulekit {PYPROJECT['version']}"),
    (["rulekit", "db", "upgrade", "--store", "{tmp}/cases.db"], 0, "up to date"),
    (["rulekit", "demo"], 0, "closed, outcome refunded"),
    (
        ["rulekit", "serve", "{root}/rules/kuaishou_after_sales.rk"],
        2,
        "pip install 'rulekit[server]'",
    ),
    (["rulekit", "lsp"], 2, "pip install 'rulekit[lsp]'"),
    (["rulekit", "studio", "{root}/rules", "--no-open"], 2, "pip install 'rulekit[server]'"),
    (
        # the worker runs on a core install: it gets as far as the store (none there yet)
        ["rulekit", "worker", "--once", "--store", "{tmp}/cases.db"],
        1,
        "create it with `rulekit db upgrade",
    ),
]


@pytest.mark.network
@pytest.mark.parametrize(
    ("args", "status", "shown"),
    CORE_COMMANDS,
    ids=[" ".join(c[0][:2]) for c in CORE_COMMANDS],
)
def test_the_core_install_checks_and_tests_policies(
    core: Path, args: list[str], status: int, shown: str, tmp_path: Path
) -> None:
    program, *rest = args
    argv = [str(core / "bin" / program), *(a.format(root=ROOT, tmp=tmp_path) for a in rest)]
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == status, result.stdout + result.stderr
    assert shown in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


#: Which of the modules named on the command line can be imported (without importing them).
FIND_MODULES = (
    "import importlib.util, sys; print(*(n for n in sys.argv[1:] if importlib.util.find_spec(n)))"
)


@pytest.mark.network
def test_the_core_install_has_no_service_packages(core: Path) -> None:
    found = subprocess.run(
        [str(core / "bin" / "python"), "-c", FIND_MODULES, *NOT_CORE],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.split() == []


#: What a verb loaded: run it in this process, then list the modules named on the command line.
RUN_VERB = """
import contextlib, io, sys
from rulekit.cli import main
args = sys.argv[1:sys.argv.index("--")]
with contextlib.redirect_stdout(io.StringIO()):
    status = main(args)
top = {name.partition(".")[0] for name in sys.modules}
print(status, *(n for n in sys.argv[sys.argv.index("--") + 1:] if n in top))
"""
POLICY = ROOT / "rules" / "kuaishou_after_sales.rk"
POLICY_FILE = str(POLICY)
SIMULATE_FACTS = """{"order": {"amount": 500, "paid_at": "2026-03-01T09:00:00+08:00", "shipped": true},
                     "shop": {"fast_refund_enabled": false}}"""
AUTHORING = [
    ["check", POLICY_FILE],
    ["test", str(ROOT / "tests" / "scenarios" / "kuaishou" / "refund_only.yaml")],
    ["compile", POLICY_FILE, "-o", "-"],
    ["graph", POLICY_FILE, "--format", "mermaid"],
    ["diff", POLICY_FILE, POLICY_FILE],
    ["eval", "1 + 1 == 2"],
    [
        "simulate",
        POLICY_FILE,
        "--workflow",
        "refund_only",
        "--step",
        "advance 48h1s",
        "--at",
        "2026-03-01T12:00:00+08:00",
        "--facts",
        SIMULATE_FACTS,
    ],
]


@pytest.mark.parametrize("args", AUTHORING, ids=[a[0] for a in AUTHORING])
def test_authoring_verbs_never_import_the_service(args: list[str]) -> None:
    """`import rulekit` and the authoring verbs start without the HTTP stack or psycopg."""
    result = subprocess.run(
        [sys.executable, "-c", RUN_VERB, *args, "--", *NOT_CORE],
        capture_output=True,
        text=True,
    )
    assert result.stdout.split() == ["0"], result.stdout + result.stderr


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


def test_without_a_usable_cache_folder_the_parser_is_built_each_time(tmp_path: Path) -> None:
    """A read-only or odd home (here the cache "folder" is a file) only costs the build."""
    (tmp_path / "cache").write_text("not a folder\n")
    env = os.environ | {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "rulekit.cli", "check", str(POLICY)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert "0 errors, 0 warnings" in result.stdout
