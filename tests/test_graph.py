"""rulekit graph: Mermaid, DOT and SVG diagrams of compiled workflows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import rulekit
from rulekit.analysis import graph
from rulekit.cli import main

POLICY = Path(__file__).parent / "policies" / "refunds.rk"


def test_mermaid_has_every_transition_with_its_trigger_guard_and_citation() -> None:
    text = graph.mermaid(rulekit.load(POLICY).workflows["refund_only"])
    lines = text.splitlines()
    assert lines[:3] == [
        "stateDiagram-v2",
        "    %% workflow refund_only",
        "    [*] --> awaiting_merchant",
    ]
    assert (
        "    awaiting_merchant --> refunded : when order.amount < 300 and since(order.paid_at) <= 6h — 5"
        in lines
    )
    assert "    awaiting_merchant --> refunded : after REVIEW" in lines
    assert "    awaiting_merchant --> awaiting_merchant : offer by merchant (stays)" in lines
    assert "    awaiting_merchant --> platform_review : escalate by consumer/merchant — 4" in lines
    assert "    refunded --> [*]" in lines
    assert (
        "        waits#58; the platform rules" not in text
    )  # colons are escaped, notes keep their text
    assert "        waits: the platform rules" in lines


def test_dot_marks_final_states_and_deadlines() -> None:
    text = graph.dot(list(rulekit.load(POLICY).workflows.values()))
    assert text.startswith("digraph rulekit {")
    assert '"refund_only:refunded" [label="refunded", peripheries=2];' in text
    assert '[label="after REVIEW", style=dashed]' in text


def test_svg_says_how_to_install_graphviz_when_it_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["graph", str(POLICY), "--format", "svg"]) == 2
    assert "install Graphviz" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed here")
def test_svg_renders_through_graphviz() -> None:
    assert "<svg" in graph.svg(list(rulekit.load(POLICY).workflows.values()))


def test_graph_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["graph", str(POLICY), "-w", "refund_only"]) == 0
    assert capsys.readouterr().out.startswith("stateDiagram-v2")
    out = tmp_path / "g.dot"
    assert main(["graph", str(POLICY), "--format", "dot", "-o", str(out)]) == 0
    assert out.read_text().startswith("digraph")
    assert main(["graph", str(POLICY), "-w", "nope"]) == 2
    assert "no workflow 'nope'" in capsys.readouterr().err


def test_names_and_assumptions_are_on_the_picture() -> None:
    """A guard that names a condition shows the name; assumptions of transitions are on
    their edges and those of states in their notes, beside a wait with no deadline by design."""
    policy = rulekit.load(Path(__file__).parent / "policies" / "library_loans.rk")
    text = graph.mermaid(policy.workflows["loan"])
    assert "on_loan --> on_loan : renew by member [may_renew] (stays)" in text
    assert (
        "overdue --> lost : after 30d (assumption#58; the 30 days count from the day it fell"
        " overdue)" in text
    )
    assert "        waits unbounded: the board meets when it meets#58; no rule" in text
    assert "        assumption: only the member appeals, never the librarian" in text
