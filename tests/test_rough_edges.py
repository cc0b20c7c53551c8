"""Rough edges a new user hit (issue 12) that have no other home among the tests."""

from __future__ import annotations

import subprocess

from conftest import ROOT


def test_dev_help_prints_the_commands_and_nothing_else() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "dev"), "help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("The project's one entry point")
    assert [line.split()[1] for line in lines[2:]] == ["demo", "test", "lint", "bench"]
