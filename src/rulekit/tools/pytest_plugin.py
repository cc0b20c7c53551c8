"""pytest plugin: scenario files are collected and run as test items.

Registered through the package's ``pytest11`` entry point, so a service that
depends on rulekit runs its policy scenarios with plain ``pytest``: every
``*.yaml``/``*.yml`` file with a top-level ``scenarios`` key becomes a file
of items, one per scenario. A failure shows the step, expected vs found, and
the case's timeline with each transition's cause.

pytest loads this module in every project that installs rulekit: it imports
rulekit only when a YAML file is collected, and parses only the files whose
text has a ``scenarios:`` line (:func:`rulekit.tools.scenarios.is_scenario_file`).
``pytest -p no:rulekit`` turns it off (docs/scenarios.md).

``--rulekit-coverage`` counts what the scenario items exercised, as ``rulekit test
--coverage`` does, and prints the table at the end of the run; ``--rulekit-coverage-output
FILE`` writes it as LCOV, Cobertura XML or JSON (by the file's extension).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from rulekit.policy import Policy
    from rulekit.tools import scenarios
    from rulekit.tools.coverage import Coverage

_POLICIES: dict[Path, Policy] = {}
#: per policy file, what the run's scenario items exercised (with --rulekit-coverage)
_COVERAGE = pytest.StashKey[dict[Path, "Coverage"]]()
_FORMATS = {".info": "lcov", ".lcov": "lcov", ".xml": "cobertura", ".json": "json"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rulekit", "rulekit scenario files")
    group.addoption(
        "--rulekit-coverage",
        action="store_true",
        help="count what the scenario files exercised and print the table at the end",
    )
    group.addoption(
        "--rulekit-coverage-output",
        metavar="FILE",
        help="write scenario coverage to FILE: LCOV (.info, .lcov), Cobertura (.xml) or JSON (.json)",
    )


def pytest_configure(config: pytest.Config) -> None:
    output = config.getoption("rulekit_coverage_output", None)
    if output is not None and Path(output).suffix.lower() not in _FORMATS:
        raise pytest.UsageError(
            f"--rulekit-coverage-output {output}: name it .info or .lcov (LCOV), .xml "
            "(Cobertura) or .json"
        )
    if config.getoption("rulekit_coverage", False) or output is not None:
        config.stash[_COVERAGE] = {}


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    counted = config.stash.get(_COVERAGE, None)
    if counted is None:
        return
    from rulekit.tools import coverage as cov

    coverages = list(counted.values())
    if config.getoption("rulekit_coverage"):
        terminalreporter.write_sep("-", "rulekit scenario coverage")
        terminalreporter.write_line(cov.table(coverages))
    output = config.getoption("rulekit_coverage_output")
    if output is not None:
        kind = _FORMATS[Path(output).suffix.lower()]
        text = (
            cov.lcov(coverages)
            if kind == "lcov"
            else cov.cobertura(coverages)
            if kind == "cobertura"
            else cov.to_json(coverages) + "\n"
        )
        Path(output).write_text(text, encoding="utf-8")
        terminalreporter.write_line(f"rulekit scenario coverage written to {output}")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix.lower() not in (".yaml", ".yml"):
        return None
    from rulekit.tools.scenarios import is_scenario_file

    if is_scenario_file(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from rulekit.tools import scenarios

        try:
            sf = scenarios.read(self.path)
        except scenarios.ScenarioFileError as e:
            raise self.CollectError(str(e.diagnostic)) from None
        for scenario in sf.scenarios:
            yield ScenarioItem.from_parent(self, name=scenario.name, file=sf, scenario=scenario)


class ScenarioFailed(Exception):
    pass


class ScenarioItem(pytest.Item):
    def __init__(
        self, *, file: scenarios.ScenarioFile, scenario: scenarios.Scenario, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.file = file
        self.scenario = scenario

    def runtest(self) -> None:
        from rulekit.core.errors import CompileError
        from rulekit.runtime import Engine
        from rulekit.tools import scenarios

        path = self.file.policy_path
        try:
            policy = scenarios.load_policy(self.file, _POLICIES)
        except CompileError as e:
            raise ScenarioFailed(f"the policy {path} does not compile:\n{e.rendered}") from None
        except scenarios.ScenarioFileError as e:
            raise ScenarioFailed(str(e.diagnostic)) from None
        counted = scenarios.coverage_of(policy, path, self.config.stash.get(_COVERAGE, None))
        result = scenarios.run(Engine(policy), self.file, self.scenario, counted)
        if result.failure is not None:
            raise ScenarioFailed(scenarios.report_text([result]).rsplit("\n", 1)[0].rstrip())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.scenario.line - 1, f"scenario: {self.name}"
