"""The documentation stays in step with the code."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from rulekit.cli import main
from rulekit.core.diagnostics import CODES
from support import ROOT


def test_every_diagnostic_code_is_documented() -> None:
    text = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^## (RK\d{4}): ", text, re.M))
    assert documented == set(CODES), {
        "undocumented": sorted(set(CODES) - documented),
        "documented but unknown": sorted(documented - set(CODES)),
    }


def test_every_code_used_in_the_source_is_registered() -> None:
    used: set[str] = set()
    for path in (ROOT / "src" / "rulekit").rglob("*.py"):
        used.update(re.findall(r'"(RK\d{4})"', path.read_text(encoding="utf-8")))
    assert used <= set(CODES), sorted(used - set(CODES))


@pytest.mark.parametrize(
    ("doc", "policy"),
    [
        ("docs/kuaishou.md", "rules/kuaishou_after_sales.rk"),
        ("examples/support_sla/README.md", "examples/support_sla/support_sla.rk"),
    ],
)
def test_worst_case_times_are_the_analysis_output(
    doc: str, policy: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy's page shows `rulekit check --explain-times` on it, verbatim."""
    command = f"$ rulekit check --explain-times {policy}\n"
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert command in text
    shown = text.split(command, 1)[1].split("```", 1)[0]
    monkeypatch.chdir(ROOT)
    assert main(["check", "--explain-times", policy]) == 0
    assert capsys.readouterr().out == shown, (
        f"{doc} is stale: paste the output of the command above into it"
    )


def test_the_example_readme_quotes_its_rule_file() -> None:
    """Each `rk` block of examples/support_sla/README.md is lines of support_sla.rk, as written."""
    folder = ROOT / "examples" / "support_sla"
    rules = (folder / "support_sla.rk").read_text(encoding="utf-8")
    blocks = re.findall(
        r"```rk\n(.*?)```", (folder / "README.md").read_text(encoding="utf-8"), re.S
    )
    assert blocks
    for block in blocks:
        lines = block.rstrip(" ")  # the indentation of a block's closing fence in a list
        assert lines in rules, lines


def test_the_readme_service_example_opens_a_case(tmp_path: Path) -> None:
    """README's curl example, as the service receives it: its headers and its body."""
    from fastapi.testclient import TestClient

    from rulekit import load
    from rulekit.service.app import Service, create_app
    from rulekit.service.auth import DevTokens
    from rulekit.stores import open_store

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"^curl -s -X POST localhost:8080(\S+) (.*?)'\n```", readme, re.M | re.S)
    assert example is not None, "README's service example moved: update this test"
    path, rest = example[1], example[2]
    headers = dict(h.split(": ", 1) for h in re.findall(r"-H '([^']+)'", rest))
    body = rest.split("-d '", 1)[1]
    policy = load(ROOT / "rules" / "kuaishou_after_sales.rk")
    with open_store(tmp_path / "readme.db", migrate=True) as store:
        app = create_app(
            Service(store, [policy], DevTokens(set(policy.actors)), worker_interval=None)
        )
        response = TestClient(app).post(path, content=body.encode(), headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["case"]["parties"] == {"consumer": "user-7", "merchant": "shop-1"}


def _checked_examples() -> list[tuple[str, str, str]]:
    """Every code block the docs mark with `<!-- check: NAME -->`: (doc, file name, text)."""
    found = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text(encoding="utf-8")
        for m in re.finditer(r"<!-- check: (\S+) -->\n```\w*\n(.*?)```", text, re.S):
            found.append((doc.name, m[1], m[2]))
    return found


@pytest.mark.parametrize(
    ("doc", "name", "text"), _checked_examples(), ids=lambda x: x if "\n" not in x else ""
)
def test_docs_examples_marked_check_have_no_errors(
    doc: str, name: str, text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    status = main(["check", str(path)])
    assert status == 0, f"{doc}: the example {name} does not check:\n{capsys.readouterr().out}"


@dataclass(frozen=True)
class ConsoleExample:
    """One `$ rulekit ...` line of a ```console block, with the output shown under it."""

    doc: str
    line: int
    argv: list[str]
    shown: str
    #: files a `$ cat FILE` earlier in the block shows: written before the command runs
    files: dict[str, str]


def _console_examples(commands: tuple[str, ...]) -> list[ConsoleExample]:
    """Every console example in docs/*.md of `rulekit COMMAND` (COMMAND in ``commands``).

    A command whose quotes span lines goes on in the following lines, which the
    docs show after the shell's `> ` prompt.
    """
    found = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text(encoding="utf-8")
        for block in re.finditer(r"```console\n(.*?)```", text, re.S):
            first = text.count("\n", 0, block.start(1)) + 1
            lines = block[1].splitlines()
            files: dict[str, str] = {}
            i = 0
            while i < len(lines):
                start, command = i, lines[i].removeprefix("$ ")
                i += 1
                while True:
                    try:
                        argv = shlex.split(command)
                        break
                    except ValueError:  # an open quote: the command goes on
                        assert i < len(lines), f"{doc.name}:{first + start}: unclosed quote"
                        command += "\n" + lines[i].removeprefix("> ")
                        i += 1
                out = []
                while i < len(lines) and not lines[i].startswith("$ "):
                    out.append(lines[i])
                    i += 1
                shown = "".join(f"{line}\n" for line in out)
                if argv[:1] == ["cat"]:
                    files[argv[1]] = shown
                elif argv[:1] == ["rulekit"] and argv[1] in commands:
                    found.append(
                        ConsoleExample(doc.name, first + start, argv[1:], shown, dict(files))
                    )
    return found


@pytest.mark.parametrize(
    "example", _console_examples(("eval", "fmt", "convert")), ids=lambda e: f"{e.doc}:{e.line}"
)
def test_console_examples_show_the_real_output(
    example: ConsoleExample,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What the docs show after `$ rulekit eval ...` (or `fmt`) is what the command prints."""
    monkeypatch.chdir(tmp_path)
    for name, content in example.files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    main(example.argv)
    out, err = capsys.readouterr()
    assert out + err == example.shown, f"docs/{example.doc}:{example.line} shows other output"


def _check_examples_with_their_files() -> list[ConsoleExample]:
    """The `$ rulekit check FILE...` examples whose files the same block shows with `cat`."""
    return [
        e
        for e in _console_examples(("check",))
        if e.files and all(a in e.files for a in e.argv[1:] if not a.startswith("-"))
    ]


@pytest.mark.parametrize(
    "example", _check_examples_with_their_files(), ids=lambda e: f"{e.doc}:{e.line}"
)
def test_check_examples_show_the_real_output(
    example: ConsoleExample,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What the docs show after `$ rulekit check FILE` is what it prints on the file shown."""
    monkeypatch.chdir(tmp_path)
    for name, content in example.files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    main([*example.argv, "--color", "never"])
    out, err = capsys.readouterr()
    assert out + err == example.shown, f"docs/{example.doc}:{example.line} shows other output"


def test_every_code_has_the_section_its_help_link_names() -> None:
    """SARIF's helpUri for a code is the anchor of `## CODE: title` with CODES' title."""
    from rulekit.tools.reports import DOCS_URL, help_uri

    text = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    headings = dict(re.findall(r"^## (RK\d{4}): (.*)$", text, re.M))
    assert {c: t for c, t in headings.items() if CODES.get(c) != t} == {}
    # the anchor as GitHub writes it, spelled out for a title with punctuation
    assert help_uri("RK0730") == DOCS_URL + "#rk0730-state-left-out-of---max-open"
    assert help_uri("RK0104") == DOCS_URL + "#rk0104--used-where--was-meant"


def test_the_api_page_lists_exactly_the_public_names() -> None:
    """docs/api.md documents every name `import rulekit` exports, and no other."""
    import rulekit

    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(\w+)` \|", text, re.M))
    assert documented == set(rulekit.__all__), {
        "undocumented": sorted(set(rulekit.__all__) - documented),
        "documented but not exported": sorted(documented - set(rulekit.__all__)),
    }
