"""The language server's features as pure functions of a document's text (no client).

The protocol tests (test_protocol.py) drive the same functions over stdio; these
cover what is cheaper to hold here: every kind of file, the YAML form's positions,
hostile documents, and positions out of range.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from rulekit.core.source import Source, Span
from rulekit.expr.checker import signatures
from rulekit.tools.convert import format_yaml_checked
from rulekit.tools.lsp import features
from rulekit.tools.lsp.document import analyze, kind_of

ROOT = Path(__file__).resolve().parents[2]
RK = ROOT / "rules" / "kuaishou_after_sales.rk"
SLA_YAML = ROOT / "examples" / "support_sla" / "support_sla.yaml"
SLA_RK = ROOT / "examples" / "support_sla" / "support_sla.rk"


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("a.rk", "", "rk"),
        ("a.RK", "anything", "rk"),
        ("p.yaml", "policy: x\nfacts: {}\n", "yaml"),
        ("p.yml", "'policy': x\n", "yaml"),
        ("s.yaml", "policy: p.rk\nscenarios:\n  - name: x\n", "scenarios"),
        ("ci.yaml", "jobs:\n  policy: x\n", None),  # `policy` not at the top: not ours
        ("notes.txt", "policy: x\n", None),
    ],
)
def test_kind_of(name: str, text: str, kind: str | None) -> None:
    assert kind_of(name, text) == kind


def test_source_offset() -> None:
    s = Source("ab\ncd\n", "x")
    assert [s.offset(1, 1), s.offset(1, 3), s.offset(2, 2), s.offset(3, 1)] == [0, 2, 4, 6]
    assert [s.offset(1, 4), s.offset(4, 1), s.offset(0, 1), s.offset(1, 0)] == [None] * 4


def _at(text: str, needle: str, delta: int = 0) -> int:
    return text.index(needle) + delta


def test_the_yaml_form_points_into_the_yaml_file() -> None:
    text = SLA_YAML.read_text(encoding="utf-8")
    an = analyze(str(SLA_YAML), text)
    assert an.kind == "yaml" and an.fresh and an.diagnostics == []
    # every name the index found is written where it says, expressions' names included
    assert an.index is not None
    for o in an.index.occurrences:
        written = text[o.span.start : o.span.end]
        assert written == (o.name.split(".")[-1] if o.kind == "member" else o.name), o
    offset = _at(text, "now > received_at", 7)
    assert [text[s.start : s.end] for s in features.definition(an, offset)] == ["received_at"]
    hover = features.hover(an, _at(text, "critical: ticket.priority", 12))
    assert hover is not None and hover.markdown.startswith("```rulekit\nticket.priority: Priority")
    edits = features.rename(an, _at(text, "FIRST_RESPONSE: 1", 2), "FIRST_REPLY")
    assert len(edits) == len(features.references(an, _at(text, "FIRST_RESPONSE: 1", 2))) >= 2


@pytest.mark.parametrize(
    ("before", "offered", "not_offered"),
    [
        ("          - {on: re", {"respond", "reply", "reopen"}, {"triage"}),
        ("          - {on: respond, to: in", {"in_progress", "triage", "solved"}, {"respond"}),
        ("            to: ", {"escalated"}, {"reply"}),
        ('    critical: ticket.priority == "', {"normal", "high", "critical"}, {"incident"}),
        ("    critical: ticket.", {"priority", "submitted_at", "kind"}, {"cause"}),
    ],
)
def test_completion_in_the_yaml_form(before: str, offered: set[str], not_offered: set[str]) -> None:
    text = SLA_YAML.read_text(encoding="utf-8")
    good = analyze(str(SLA_YAML), text)
    typing = text + before  # half typed at the end: the last good parse answers
    an = analyze(str(SLA_YAML), typing, good)
    labels = {c.label for c in features.completion(an, len(typing))}
    assert offered <= labels and not (not_offered & labels), labels


def test_enum_members_rename_in_strings() -> None:
    text = RK.read_text(encoding="utf-8")
    an = analyze(str(RK), text)
    offset = _at(text, "enum Service { exchange", 15)
    edits = features.rename(an, offset, "swap")
    assert {text[s.start : s.end] for s, _ in edits} == {"exchange"}
    with pytest.raises(features.RenameError, match="Service already has a member `repair`"):
        features.rename(an, offset, "repair")
    with pytest.raises(features.RenameError, match="a workflow's name is not renamed here"):
        features.prepare_rename(an, _at(text, "workflow refund_only", 10))


def test_rename_refuses_on_text_that_does_not_parse() -> None:
    text = RK.read_text(encoding="utf-8")
    good = analyze(str(RK), text)
    broken = analyze(str(RK), text + "workflow {", good)
    assert not broken.fresh and broken.index is good.index
    with pytest.raises(features.RenameError, match="syntax errors"):
        features.rename(broken, _at(text, "after REVIEW_WINDOW", 8), "X")
    assert features.symbols(broken) == []


def test_out_of_range_gives_nothing() -> None:
    text = RK.read_text(encoding="utf-8")
    an = analyze(str(RK), text)
    for offset in (-1, len(text) + 1, 10**9):
        assert features.hover(an, offset) is None
        assert features.definition(an, offset) == []
        assert features.references(an, offset) == []
        assert features.completion(an, offset) == []
        assert features.prepare_rename(an, offset) is None
    # not a rulekit file: nothing at all
    other = analyze("notes.yaml", "a: 1\n")
    assert other.diagnostics == [] and features.hover(other, 1) is None
    assert features.formatting(other) is None


def test_hostile_documents_are_answered_quickly() -> None:
    text = RK.read_text(encoding="utf-8")
    cases = {
        "many facts": text.replace(
            "facts {\n", "facts {\n" + "".join(f"  f.x{i}: int\n" for i in range(300)), 1
        ),
        "a long line": text.replace("// Kuaishou", "// " + "x" * 1_000_000, 1),
        "a long dotted name": text.replace(
            "const REJECTION_GRACE = 7d", "const REJECTION_GRACE = order" + ".f" * 20_000, 1
        ),
        "deep nesting": text.replace(
            "const REJECTION_GRACE = 7d",
            "const REJECTION_GRACE = " + "(" * 5000 + "7d" + ")" * 5000,
            1,
        ),
        "unclosed everything": "policy p\nfacts {\n" + '{ ( [ " ' * 20_000,
    }
    for name, hostile in cases.items():
        start = time.monotonic()
        an = analyze(str(RK), hostile)
        end = len(hostile)
        features.hover(an, end // 2)
        features.completion(an, end - 1)
        features.references(an, end // 3)
        features.symbols(an)
        assert time.monotonic() - start < 20, name


def test_signatures_for_completion() -> None:
    sigs = signatures()
    assert sigs["contains"] == ["string.contains(string) -> bool"]
    assert "size(list) -> int" in sigs["size"] and "list.size() -> int" in sigs["size"]


def test_without_pygls_it_says_what_to_install() -> None:
    code = "import sys; sys.modules['pygls'] = None\nfrom rulekit.cli import main\nsys.exit(main(['lsp']))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "pip install 'rulekit[lsp]'" in run.stderr
    assert "Traceback" not in run.stderr


def test_hover_on_a_policy_with_errors_reads_the_syntax_tree() -> None:
    """A type error elsewhere: no checked policy, but the names and deadlines as written."""
    text = RK.read_text(encoding="utf-8").replace(
        "order.amount < FAST_REFUND_LIMIT", 'order.amount < "300"', 1
    )
    an = analyze(str(RK), text)
    assert an.fresh and an.index is not None and an.index.policy is None
    assert [d.code for d in an.diagnostics] == ["RK0203"]
    hover = features.hover(an, _at(text, "state awaiting_return cite", 8))
    assert hover is not None
    assert hover.markdown == (
        "```rulekit\nstate awaiting_return\n```\n\nIn return_refund.\n\n"
        "Cites: “2. 10 days to ship the goods back and submit the waybill”\n\n"
        "Deadlines:\n- after RETURN_WINDOW -> return_expired"
    )
    # no types without a checked policy: a sub-expression gives nothing...
    assert features.hover(an, _at(text, "since(order.paid_at)", 1)) is None
    # ...unless an earlier version checked: its types answer for the expressions unchanged
    good = RK.read_text(encoding="utf-8")
    an = analyze(str(RK), text, analyze(str(RK), good))
    written = "order.after_sales_until < now"
    hover = features.hover(an, _at(text, written, len("order.after_sales_until ")))
    assert hover is not None and hover.markdown == f"```rulekit\n{written}: bool\n```"
    assert hover.span == Span(_at(text, written), _at(text, written) + len(written))
    # the expression that changed has no types to borrow
    assert features.hover(an, _at(text, "since(order.paid_at)", 1)) is None


def test_yaml_policies_are_formatted_as_rulekit_fmt_lays_them_out() -> None:
    path = Path(__file__).parents[1] / "policies" / "refunds.yaml"
    text = path.read_text(encoding="utf-8")
    assert features.formatting(analyze(str(path), text)) == text  # fmt --check holds for it
    messy = text.replace("\n", "\n\n", 3)  # blank lines the canonical layout drops
    assert messy != text
    assert features.formatting(analyze(str(path), messy)) == format_yaml_checked(messy, str(path))
    assert features.formatting(analyze(str(path), text + "workflows: [")) is None
