"""Policies from Python: rulekit.load / loads in every form, and the compiled artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rulekit
from rulekit import CompileError
from rulekit.policy import artifact
from support import ROOT, TESTS

POLICIES = TESTS / "policies"
#: the example policies, a folder each (examples/support_sla/, ...)
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if any(p.glob("*.rk")))


def twins() -> list[Path]:
    """Every .rk policy that has a YAML twin beside it, in rules/, tests/policies/ and the
    examples' folders."""
    return sorted(
        p
        for folder in (ROOT / "rules", POLICIES, *EXAMPLES)
        for p in folder.glob("*.rk")
        if p.with_suffix(".yaml").exists()
    )


@pytest.mark.parametrize("rk", twins(), ids=lambda p: p.stem)
def test_both_forms_compile_to_the_same_artifact(rk: Path) -> None:
    a = artifact.to_json(rulekit.load(rk))
    b = artifact.to_json(rulekit.load(rk.with_suffix(".yaml")))
    assert a["hash"] == b["hash"]
    assert artifact._without_positions(a) == artifact._without_positions(b)


def test_the_shipped_policy_and_the_examples_check_without_warnings() -> None:
    from rulekit.analysis import check_source
    from rulekit.policy import FORMATS

    assert EXAMPLES
    for rk in sorted(p for folder in (ROOT / "rules", *EXAMPLES) for p in folder.glob("*.rk")):
        for path in (rk, rk.with_suffix(".yaml")):
            result = check_source(path.read_text(encoding="utf-8"), FORMATS[path.suffix], str(path))
            assert result.ok and result.diagnostics == [], result.render()


def test_there_are_twins_to_compare() -> None:
    assert twins()


def test_load_reads_every_form(tmp_path: Path) -> None:
    rk = rulekit.load(POLICIES / "refunds.rk")
    out = tmp_path / "refunds.json"
    out.write_text(json.dumps(artifact.to_json(rk)))
    loaded = rulekit.load(out)
    assert loaded.hash == rk.hash
    assert list(loaded.workflows) == ["refund_only"]
    state = loaded.workflows["refund_only"].states["awaiting_merchant"]
    assert [t.event for t in state.by_event["approve"]] == ["approve"]
    assert state.automatic[0].guard is not None
    assert state.automatic[0].guard.text == "order.amount < 300 and since(order.paid_at) <= 6h"


def test_compiled_policy_structure() -> None:
    p = rulekit.load(POLICIES / "refunds.rk")
    wf = p.workflows["refund_only"]
    assert wf.initial == "awaiting_merchant"
    assert list(wf.states) == ["awaiting_merchant", "refunded", "platform_review"]
    waiting = wf.states["awaiting_merchant"]
    # the fragment's `every state except platform_review` block lands here, after the state's own
    assert [(t.kind, t.origin) for t in waiting.transitions][-1] == ("event", "fragment dispute")
    assert waiting.by_event["offer"][0].target is None  # `stay`: an internal transition
    assert wf.states["refunded"].final and wf.states["refunded"].outcome == "refunded"
    assert p.constants["GRACE"].note == ("assumption", "not in the source")
    assert p.enums == {"Service": ("exchange", "repair")}


def test_the_artifact_keeps_what_issue_15_adds(tmp_path: Path) -> None:
    """`waits unbounded` and assumptions on rules survive compiling and loading; policies
    without them hash as before."""
    source = rulekit.load(POLICIES / "library_loans.rk")
    data = artifact.to_json(source)
    states = {s["name"]: s for s in data["workflows"][0]["states"]}
    assert states["appeal_board"]["unbounded"] is True
    assert "unbounded" not in states["overdue"]
    assert states["appeal_board"]["assumption"] == "only the member appeals, never the librarian"
    assert [t.get("assumption") for t in states["overdue"]["transitions"]] == [
        None,
        None,
        "the 30 days count from the day it fell overdue",
    ]
    plain = artifact.to_json(rulekit.load(POLICIES / "refunds.rk"))
    assert "assumption" not in json.dumps(plain["workflows"])
    out = tmp_path / "loans.json"
    out.write_text(json.dumps(data))
    loaded = rulekit.load(out)
    assert loaded.hash == source.hash
    board = loaded.workflows["loan"].states["appeal_board"]
    assert (
        board.unbounded
        and board.assumption == source.workflows["loan"].states["appeal_board"].assumption
    )
    deadline = loaded.workflows["loan"].states["on_loan"].deadlines[0]
    assert deadline.assumption == "the desk sets due_at to the closing time of the last day"
    jsonschema_validate(data)


def jsonschema_validate(data: object) -> None:
    import jsonschema

    jsonschema.Draft202012Validator(artifact.schema()).validate(data)


def test_loads_reports_every_problem() -> None:
    text = (TESTS / "golden" / "policies" / "many_problems_sorted.rk").read_text()
    with pytest.raises(CompileError) as info:
        rulekit.loads(text, "rk", "x.rk")
    assert [d.code for d in info.value.diagnostics] == ["RK0303", "RK0305", "RK0302", "RK0308"]
    assert "x.rk:16:8: error[RK0303]" in str(info.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing.rk", "no such file"), ("policy.txt", "unknown kind of policy file")],
)
def test_unreadable_files(tmp_path: Path, name: str, message: str) -> None:
    if name.endswith(".txt"):
        (tmp_path / name).write_text("policy x")
    with pytest.raises(CompileError) as info:
        rulekit.load(tmp_path / name)
    assert info.value.diagnostics[0].code == "RK0001"
    assert message in str(info.value)


def test_loads_rejects_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="format must be"):
        rulekit.loads("policy x", "toml")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(hash="sha256:" + "0" * 64), "content hash does not match"),
        (lambda d: d.pop("workflows"), "'workflows' is a required property"),
        (
            lambda d: d["workflows"][0].update(initial="nowhere"),
            "initial state 'nowhere' does not exist",
        ),
        (lambda d: d["facts"][0].update(type="currency"), "unknown type `currency`"),
        (
            lambda d: d["workflows"][0]["states"][0]["transitions"][0]["guard"]["ast"].update(
                node="Nope"
            ),
            "guard/ast/node: 'Nope' is not one of",
        ),
        (
            lambda d: d["workflows"][0]["states"][0].update(unbounded=False),
            "unbounded: True was expected",
        ),
        (
            lambda d: d["workflows"][0]["states"][1].update(unbounded=True),
            "state refunded: unbounded without `waits`",
        ),
    ],
)
def test_hand_edited_artifacts_are_compile_errors(edit: object, message: str) -> None:
    data = artifact.to_json(rulekit.load(POLICIES / "refunds.rk"))
    edit(data)  # type: ignore[operator]
    with pytest.raises(CompileError) as info:
        rulekit.loads(json.dumps(data), "json", "edited.json")
    assert message in str(info.value)
    assert {d.code for d in info.value.diagnostics} == {"RK0501"}


@pytest.mark.parametrize("name", ["refunds.yaml", "cel_optional.yaml"])
def test_artifact_validates_against_its_published_schema(name: str) -> None:
    import jsonschema

    data = artifact.to_json(rulekit.load(POLICIES / name))
    jsonschema.Draft202012Validator(artifact.schema()).validate(data)


@pytest.mark.parametrize("name", ["artifact.schema.json", "policy-yaml.schema.json"])
def test_docs_publish_the_schemas_the_package_ships(name: str) -> None:
    shipped = (ROOT / "src" / "rulekit" / "schemas" / name).read_text()
    assert (ROOT / "docs" / "schemas" / name).read_text() == shipped, (
        "copy src/rulekit/schemas/ to docs/schemas/"
    )
