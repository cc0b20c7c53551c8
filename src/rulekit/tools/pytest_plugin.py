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
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from rulekit.policy import Policy
    from rulekit.tools import scenarios

_POLICIES: dict[Path, Policy] = {}


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
        from rulekit.policy import load
        from rulekit.runtime import Engine
        from rulekit.tools import scenarios

        path = self.file.policy_path
        if path not in _POLICIES:
            try:
                _POLICIES[path] = load(path)
            except CompileError as e:
                raise ScenarioFailed(f"the policy {path} does not compile:\n{e.rendered}") from None
        try:
            scenarios.check_names(self.file, _POLICIES[path])
        except scenarios.ScenarioFileError as e:
            raise ScenarioFailed(str(e.diagnostic)) from None
        result = scenarios.run(Engine(_POLICIES[path]), self.file, self.scenario)
        if result.failure is not None:
            raise ScenarioFailed(scenarios.report_text([result]).rsplit("\n", 1)[0].rstrip())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.scenario.line - 1, f"scenario: {self.name}"
