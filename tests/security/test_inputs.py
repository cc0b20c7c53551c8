"""Finding 11 of the trust-boundaries review: inputs that were silently accepted or escaped.

- a duration in a payload (the platform's `request_evidence(within)`) must be positive and
  end within the engine's time range: `-1h` made the deadline overdue at once, and
  `315576000000s` made it unrepresentable, silently dropped (the case waited forever);
- a deadline that falls after the latest time is a refused step, never "no deadline";
- `rulekit diff` never hands a caller's argument to git as an option.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rulekit import Engine, EvaluationError, StepRefused, load, loads
from rulekit.cli import main
from rulekit.runtime.model import Case
from support import ROOT

T = datetime(2026, 3, 1, 12, tzinfo=UTC)
FACTS = {
    "order": {"amount": "500.00", "paid_at": "2026-03-01T09:00:00Z", "shipped": True},
    "shop": {"fast_refund_enabled": False},
}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load(ROOT / "rules" / "kuaishou_after_sales.rk"))


def _in_review(engine: Engine) -> Case:
    case = engine.open("refund_only", FACTS, at=T)
    engine.send(case, "escalate", "consumer", at=T)
    assert case.state.name == "platform_review"
    return case


@pytest.mark.parametrize(
    "within", ["-1h", "0s", "-0.000001s", "315576000000s", "87600000h", "PT87600000H"]
)
def test_a_payload_duration_must_be_positive_and_representable(engine: Engine, within: str) -> None:
    case = _in_review(engine)
    with pytest.raises(StepRefused) as refused:
        engine.send(
            case, "request_evidence", "platform", {"party": "consumer", "within": within}, at=T
        )
    assert refused.value.code == "invalid_payload"
    assert "must be positive and end by 9999-12-31" in str(refused.value)
    assert case.state.name == "platform_review"


@pytest.mark.parametrize(
    ("within", "due"), [("1s", "2026-03-01T12:00:01"), ("3d", "2026-03-04T12:00:00")]
)
def test_a_sensible_payload_duration_sets_the_deadline(
    engine: Engine, within: str, due: str
) -> None:
    case = _in_review(engine)
    engine.send(case, "request_evidence", "platform", {"party": "consumer", "within": within}, at=T)
    assert case.state.name == "awaiting_evidence"
    assert case.next_deadline == datetime.fromisoformat(due).replace(tzinfo=UTC)


LONG_WAIT = """
policy t.long_wait
facts {
  order.wait: duration
}
actors merchant
event start by merchant
workflow w {
  initial state idle {
    on start -> waiting
  }
  state waiting {
    after order.wait -> done
  }
  final state done
}
"""


def test_a_deadline_past_the_latest_time_refuses_the_step() -> None:
    """Set by the integration (no payload check applies), the deadline is never dropped."""
    engine = Engine(loads(LONG_WAIT, format="rk"))
    case = engine.open("w", {"order": {"wait": "3650000d"}}, at=T)
    with pytest.raises(EvaluationError, match=r"`order.wait` \(line 13\) falls after 9999-12-31"):
        engine.send(case, "start", "merchant", at=T)
    assert case.state.name == "idle"  # refused: the case is as it was


def test_diff_never_passes_an_argument_to_git_as_an_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    new = str(ROOT / "rules" / "kuaishou_after_sales.rk")
    for hostile in ("--output=out.txt:x.rk", "-o:x.rk", "--exec=touch pwned:x.rk"):
        assert main(["diff", "--", hostile, new]) == 2
        assert "not a file, nor a git revision" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
