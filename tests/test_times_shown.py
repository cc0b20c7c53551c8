"""Times in messages are shown in the policy's zone, as its timelines are (issue 12, item 17).

The scenario and the simulation below give their times in +01:00; the policy's zone is
Asia/Shanghai (+08:00): every time a person reads is +08:00, whatever the input's offset.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rulekit.cli import main
from rulekit.tools import scenarios
from support import TESTS

POLICY = TESTS / "policies" / "refunds.rk"
SCENARIO = f"""
policy: {POLICY}
scenarios:
  - name: a wrong deadline, written in another zone
    workflow: refund_only
    at: 2026-03-01T05:00:00+01:00
    facts: {{order: {{amount: 500, paid_at: 2026-03-01T02:00:00+01:00, shipped: true}}}}
    steps:
      - expect: {{deadline: {{at: 2026-03-03T05:00:01+01:00}}}}
"""


def test_a_scenario_failure_shows_times_in_the_policys_zone(tmp_path: Path) -> None:
    path = tmp_path / "zones.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    [result] = scenarios.run_file(scenarios.read(path))
    assert result.failure is not None
    assert result.failure.message == (
        "deadline: expected due 2026-03-03 12:00:01+08:00, found due 2026-03-03 12:00:00+08:00"
    )
    report = scenarios.report_text([result])
    assert "(clock 2026-03-01 12:00:00+08:00)" in report
    assert "+01:00" not in report.replace(str(path), "")


def test_simulate_shows_every_time_in_the_policys_zone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    facts = '{"order": {"amount": 500, "paid_at": "2026-03-01T02:00:00+01:00", "shipped": true}}'
    status = main(
        [
            "simulate", str(POLICY), "-w", "refund_only", "--at", "2026-03-01T05:00:00+01:00",
            "--facts", facts, "--step", "advance 1h",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    assert "opened a case of refund_only at 2026-03-01 12:00:00+08:00" in out
    assert "nothing happened; now 2026-03-01 13:00:00+08:00 in `awaiting_merchant`" in out
    assert "+01:00" not in out
