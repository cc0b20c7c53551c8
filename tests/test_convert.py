"""``rulekit convert`` and the canonical YAML form: golden conversions with comments in
both directions, the command's exit statuses and files, and every policy of the
repository (docs examples included) converted both ways with the same content hash.
Generated policies: tests/properties/policy/test_convert_generated.py."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from rulekit.cli import main
from rulekit.policy import artifact, compile_source
from rulekit.tools.convert import ConvertError, convert, format_yaml_checked
from rulekit.tools.formatter import format_checked
from support import ROOT, TESTS, rk_comments

GOLDEN = TESTS / "golden" / "convert"
SHIPPED = ROOT / "rules" / "kuaishou_after_sales.rk"


def _hash(text: str, form: str, name: str = "p") -> str | None:
    """The content hash (``name``: the file's, which calendar files are read relative to)."""
    result = compile_source(text, form, name)
    return None if result.policy is None else str(artifact.to_json(result.policy)["hash"])


def _yaml_comments(text: str) -> list[str]:
    return [m.group(1).rstrip() for m in re.finditer(r"(?:^|(?<=\s))#([^\n]*)", text)]


def _repository_policies() -> list[Path]:
    return sorted(
        p
        for folder in ("rules", "examples", "tests/policies")
        for p in (ROOT / folder).rglob("*")
        if p.suffix in (".rk", ".yaml")
        and compile_source(p.read_text(), _form(p), str(p)).ok
        and "scenarios" not in p.name
        and "calendars" not in p.parts
    )


def _form(path: Path) -> str:
    return "rk" if path.suffix == ".rk" else "yaml"


def _docs_policies() -> list[tuple[str, str, str]]:
    """The ```rk and ```yaml examples of docs/*.md that are whole policies that compile."""
    out = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for n, m in enumerate(re.finditer(r"```(rk|yaml)\n(.*?)```", doc.read_text(), re.DOTALL)):
            form, text = m.group(1), m.group(2)
            if _hash(text, form) is not None:
                out.append((f"{doc.name}#{n}", form, text))
    return out


@pytest.mark.parametrize(
    "source, target",
    [("comments.rk", "comments.expected.yaml"), ("comments.yaml", "comments.expected.rk")],
)
def test_golden_conversion(source: str, target: str) -> None:
    text, expected = (GOLDEN / source).read_text(), (GOLDEN / target).read_text()
    form, other = _form(GOLDEN / source), _form(GOLDEN / target)
    result = convert(text, form, other, source)
    assert result.text == expected
    assert result.dropped == []
    assert _hash(expected, other) == _hash(text, form) is not None
    # and back: the same hash, every comment still there
    back = convert(expected, other, form, target)
    assert _hash(back.text, form) == _hash(text, form)
    if form == "rk":
        assert Counter(rk_comments(back.text)) == Counter(rk_comments(text))
        outside = [c.removeprefix("//") for c in rk_comments(text) if "inside an" not in c]
        assert Counter(_yaml_comments(expected)) == Counter(outside)


def test_the_yaml_golden_round_trips_to_its_canonical_layout() -> None:
    text = (GOLDEN / "comments.yaml").read_text()
    rk = convert(text, "yaml", "rk", "comments.yaml").text
    assert convert(rk, "rk", "yaml", "comments.rk").text == format_yaml_checked(text, "c.yaml")


@pytest.mark.parametrize("path", _repository_policies(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_policy_of_the_repository_converts_and_round_trips(path: Path) -> None:
    _round_trip(path.read_text(encoding="utf-8-sig"), _form(path), str(path))


@pytest.mark.parametrize("name, form, text", _docs_policies(), ids=lambda x: x if "#" in x else "")
def test_docs_examples_convert_and_round_trip(name: str, form: str, text: str) -> None:
    _round_trip(text, form, name)


def _round_trip(text: str, form: str, name: str) -> None:
    other = "yaml" if form == "rk" else "rk"
    there = convert(text, form, other, name)
    back = convert(there.text, other, form, name)
    hashes = {_hash(there.text, other, name), _hash(back.text, form, name), _hash(text, form, name)}
    assert len(hashes) == 1 and None not in hashes
    # the converted text is in its form's canonical layout, and converting again is stable
    if other == "rk":
        assert format_checked(there.text, name) == there.text
        formatted = format_yaml_checked(text, name)  # fmt on YAML: idempotent, same hash
        assert format_yaml_checked(formatted, name) == formatted
        assert _hash(formatted, "yaml", name) == _hash(text, "yaml", name)
        assert back.text == formatted
    else:
        assert format_yaml_checked(there.text, name) == there.text
        assert format_checked(back.text, name) == back.text
        assert Counter(rk_comments(back.text)) == Counter(rk_comments(text))
    assert convert(back.text, form, other, name).text == there.text


def test_the_shipped_policy_converts_and_round_trips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "k.yaml"
    assert main(["convert", str(SHIPPED), "--to", "yaml", "-o", str(out)]) == 0
    assert capsys.readouterr().err == f"wrote {out}\n"
    assert main(["check", str(out)]) == 0
    back = tmp_path / "k.rk"
    assert main(["convert", str(out), "--to", "rk", "-o", str(back)]) == 0
    assert _hash(back.read_text(), "rk") == _hash(SHIPPED.read_text(), "rk")
    assert Counter(rk_comments(back.read_text())) == Counter(rk_comments(SHIPPED.read_text()))
    capsys.readouterr()
    assert main(["convert", str(SHIPPED), "--to", "yaml"]) == 0  # to standard output
    assert capsys.readouterr().out == out.read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["x.rk"], "the following arguments are required: --to"),
        (["x.rk", "--to", "json"], "invalid choice: 'json'"),
        (["missing.rk", "--to", "yaml"], "no such file"),
        (["notes.txt", "--to", "yaml"], "unknown kind of policy file"),
        (["{shipped}", "--to", "rk"], "is already in the rk form"),
        (["{shipped}", "--to", "yaml", "-o", "out.rk"], "--to yaml writes a .yaml file"),
        (["{artifact}", "--to", "rk"], "is a compiled artifact"),
    ],
)
def test_usage_errors(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("policy x\n")
    (tmp_path / "a.json").write_text("{}")
    args = [
        a.format(shipped=SHIPPED, artifact=tmp_path / "a.json")
        if "{" in a
        else str(tmp_path / a)
        if a.endswith((".txt", "missing.rk"))
        else a
        for a in args
    ]
    with pytest.raises(SystemExit) if "--to" not in args or "json" in args else _no_raise():
        assert main(["convert", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.rk").exists()


class _no_raise:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize(
    "name, text, code",
    [
        ("broken.rk", "policy x\nworkflow w { state a ->\n", "RK0101"),
        ("unchecked.rk", "policy x\nworkflow w { state a }\n", "RK0306"),
        ("broken.yaml", "policy: x\nfacts: [\n", "RK0401"),
        ("unknown_key.yaml", "policy: x\nverison: 1\n", "RK0402"),
    ],
)
def test_a_broken_policy_gets_checks_diagnostics_and_nothing_is_written(
    name: str, text: str, code: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text(text)
    target = "yaml" if name.endswith(".rk") else "rk"
    out = tmp_path / f"out.{target}"
    assert main(["check", str(path)]) == 1
    check_err = capsys.readouterr().out
    assert main(["convert", str(path), "--to", target, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"error[{code}]" in err and f"error[{code}]" in check_err
    assert "not converted: it has errors" in err
    assert not out.exists()


def test_a_comment_that_cannot_be_carried_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "policy: p\nfacts: {a: int}\nactors: [x]\nevents: {go: {by: x}}\n"
        "workflows:\n  w:\n    states:\n      s:\n        initial: true\n"
        "        transitions:\n          - when: |\n              a > 1 // too big\n"
        "            to: t\n      t: {final: true}\n"
    )
    assert main(["convert", str(path), "--to", "rk"]) == 0
    out, err = capsys.readouterr()
    assert err == (
        f"{path}:12:21: comment not carried: // too big (the rk form has no place for a "
        "comment inside an expression's string outside the expression)\n"
    )
    assert "when a > 1 -> t" in out


def test_a_change_of_hash_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A printer that changed the policy (simulated) is caught before anything is written."""
    from rulekit.tools import convert as module

    monkeypatch.setattr(module, "to_yaml", lambda *a, **k: "policy: other\n")
    out = tmp_path / "p.yaml"
    assert main(["convert", str(SHIPPED), "--to", "yaml", "-o", str(out)]) == 1
    assert "would compile to a different content hash" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(ConvertError):
        convert(SHIPPED.read_text(), "rk", "yaml", "k.rk")


SUPPRESSED = """\
policy p version "1"

// heading comment
facts {
  // rulekit: ignore RK0704 -- kept for the next version
  order.unused: int
  order.amount: money
}

actors a

event e by a

workflow w {
  initial state s waits "forever" {
    on e when order.amount > 1 -> d
    // rulekit: ignore RK0708 -- the second is kept for the audit
    on e when order.amount > 2 -> d
  }
  final state d
}
"""


def test_suppression_directives_still_apply_after_converting_both_ways() -> None:
    """A directive on a section's first entry stays on it (not above the section, where it
    would name another line), and a YAML transition's warning, reported on its `when:`
    line, is covered by the directive before its `- on:` item."""
    from rulekit.analysis import check_source

    def silenced(text: str, form: str) -> tuple[list[str], list[str]]:
        result = check_source(text, form, f"p.{form}")
        return [d.code for d in result.diagnostics], [s.diagnostic.code for s in result.suppressed]

    assert silenced(SUPPRESSED, "rk") == ([], ["RK0704", "RK0708"])
    as_yaml = convert(SUPPRESSED, "rk", "yaml", "p.rk").text
    assert "facts:\n  # rulekit: ignore RK0704" in as_yaml
    assert silenced(as_yaml, "yaml") == ([], ["RK0704", "RK0708"])
    back = convert(as_yaml, "yaml", "rk", "p.yaml").text
    assert back == SUPPRESSED
