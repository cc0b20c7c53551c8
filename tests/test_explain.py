"""``rulekit explain`` on scenarios: golden outputs, through the command line.

Each tests/golden/explain/NAME.args holds the arguments of one ``rulekit explain`` run
(one line, shell quoting, paths from the repository's root); NAME.out beside it is
what it prints: standard output, then standard error after a ``--- stderr`` line when
there is any, then the exit status. Scenarios of the shipped policy (a fast refund, a
rejection escalated to the platform, deadlines that fired, refusals) and of a small
test policy (tests/golden/explain/loans.yaml: named conditions, a `stay` whose
assignment a later condition reads) are explained; the error paths (error_*) exit 2, a
question about what did not happen (missing_*) exits 1, and none shows a traceback.

To accept new output after a deliberate change:
`UPDATE_GOLDEN=1 ./dev test tests/test_explain.py`, then review the diff.
Stored cases (SQLite, PostgreSQL): tests/stores/test_explain_store.py.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from rulekit.cli import main
from support import ROOT, TESTS

GOLDEN = TESTS / "golden" / "explain"
CASES = sorted(p.stem for p in GOLDEN.glob("*.args"))


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["explain", *args])
    out, err = capsys.readouterr()
    return status, out, err


def shown(status: int, out: str, err: str) -> str:
    """A run as its golden file holds it."""
    text = out
    if err:
        text += "--- stderr\n" + err
    return text + f"--- exit {status}\n"


@pytest.mark.parametrize("name", CASES)
def test_golden(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    args = shlex.split((GOLDEN / f"{name}.args").read_text())
    status, out, err = _run(args, capsys)
    assert "Traceback" not in err
    got = shown(status, out, err)
    golden = GOLDEN / f"{name}.out"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(got)
    assert got == golden.read_text()
    assert status == (2 if name.startswith("error_") else 1 if name.startswith("missing_") else 0)


def test_the_goldens_cover_both_outcomes_of_the_questions() -> None:
    """Every kind of question has a golden, and a missing answer exits 1."""
    args = " ".join((GOLDEN / f"{n}.args").read_text() for n in CASES)
    for question in ("effect:", "refusal", "--all", "--format json"):
        assert question in args
    assert {"missing_effect", "missing_refusal"} <= set(CASES)


def test_json_shape(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON documented in docs/runtime.md ("Explaining a case")."""
    monkeypatch.chdir(ROOT)
    args = shlex.split((GOLDEN / "kuaishou_fast_refund_json.args").read_text())
    status, out, _ = _run(args, capsys)
    assert status == 0
    data = json.loads(out)
    assert set(data) == {
        "question",
        "workflow",
        "state",
        "final",
        "outcome",
        "found",
        "answer",
        "refusal",
        "refused",
        "steps",
        "left_out",
    }
    step = data["steps"][-1]
    assert step["kind"] == "auto" and step["target"] == "refunded"
    assert step["cite"].startswith("5. fast refund")
    clauses = {c["text"]: c for c in step["condition"]["clauses"]}
    assert clauses["order.amount < FAST_REFUND_LIMIT"]["operands"] == [
        ["order.amount", "128.00"],
        ["FAST_REFUND_LIMIT", 300],
    ]
    assert step["effects"] == [{"name": "refund", "args": {"amount": "128.00"}}]


def test_a_refusal_is_explained_with_the_case_as_it_was(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A step refused after a deadline fell due is explained in the state the deadline
    led to (the step fires it first, then is refused and undoes it): the state and the
    conditions are those of that moment, not of the case before the step."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        f"policy: {ROOT / 'tests/policies/library_loans.rk'}\n"
        "scenarios:\n"
        "  - name: late\n"
        "    workflow: loan\n"
        "    at: 2026-03-01T10:00:00+01:00\n"
        "    facts: {loan: {due_at: 2026-03-15T18:00:00+01:00, renewals: 0},"
        " member.blocked: false}\n"
        "    steps:\n"
        "      - advance: 15d\n"
        "      - send: {event: renew, by: member}\n"
        "        expect_error: event_not_allowed\n"
    )
    status, out, err = _run([str(scenario), "--scenario", "late", "--why", "refusal"], capsys)
    assert status == 0, err
    assert "case of loan in `overdue` when the step was refused" in out
    assert "step 2, send renew by member was refused: event_not_allowed" in out
    assert "deadline: `on_loan` -> `overdue`" in out


def test_the_docs_show_the_real_output() -> None:
    """docs/runtime.md's example is the fast-refund golden, verbatim."""
    args = (GOLDEN / "kuaishou_fast_refund.args").read_text().strip()
    shown = (GOLDEN / "kuaishou_fast_refund.out").read_text().removesuffix("--- exit 0\n")
    text = (ROOT / "docs" / "runtime.md").read_text(encoding="utf-8")
    assert f"$ rulekit explain {args}\n{shown}```" in text


def test_a_long_history_is_walked_once() -> None:
    """Each fact a condition reads is looked up in an index, not by walking back through
    the history, and the chain is followed without recursion: 10,000 steps, each reading
    a fact set at the opening and one the step before set, all in the chain of the last,
    are explained in seconds (a walk back from each would take minutes, recursion would
    overflow the stack). A reader of a case over HTTP cannot make the service spin."""
    import time
    from datetime import UTC, datetime, timedelta

    import rulekit
    from rulekit.runtime.explain import explain

    policy = rulekit.loads(
        "policy t.long\n"
        "facts {\n  n: int\n  open: bool\n}\n"
        "actors a\n"
        "event tick by a\n"
        "event close by a\n"
        "workflow w {\n"
        "  initial state s {\n"
        "    on tick when open and n >= 0 stay set n = n + 1\n"
        "    on close when open and n == 10000 -> done\n"
        "  }\n"
        "  final state done\n"
        "}\n"
    )
    engine = rulekit.Engine(policy)
    t = datetime(2026, 3, 1, tzinfo=UTC)
    case = engine.open("w", {"n": 0, "open": True}, at=t)
    for k in range(10_000):
        engine.send(case, "tick", "a", at=t + timedelta(seconds=k))
    engine.send(case, "close", "a", at=t + timedelta(days=1))
    started = time.perf_counter()
    explained = explain(policy, "w", case.history)
    assert time.perf_counter() - started < 20  # about 2 s; quadratic: minutes
    assert explained.state == "done"
    # every tick set the `n` the next one read, up to the one `close` read
    assert len(explained.steps) == 10_002


def test_a_comparison_clause_keeps_its_two_sides() -> None:
    """What "2h <= 6h" is made of: Clause.operands, the sides of a binary clause as
    evaluated (a constant's value too); other clauses have none."""
    from datetime import UTC, datetime

    import rulekit

    e = rulekit.compile_expression(
        "since(t) <= 6h and not shipped", declarations={"t": "time", "shipped": "bool"}
    )
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    first, second = e.explain(
        {"t": datetime(2026, 3, 1, 10, tzinfo=UTC), "shipped": False}, now=now
    ).clauses
    assert [text for text, _ in first.operands] == ["since(t)", "6h"]
    assert [v.total_seconds() for _, v in first.operands] == [7200, 21600]
    assert second.operands == ()
