"""Syntax error recovery (issue 16): one run reports every syntax error of a policy or a
condition, each mistake once, at its own place, and checks nothing else in a file that
does not parse. The golden files show whole outputs (tests/golden/policies/syntax_*.rk,
yaml_broken_conditions.yaml); this table pins codes and positions; the attacks are in
tests/security/test_syntax_recovery.py, the properties in
tests/properties/policy/test_recovery_properties.py.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rulekit.analysis import check_source
from rulekit.cli import main
from rulekit.core.source import Source
from rulekit.expr import parser as expr_parser
from rulekit.expr.recovery import MAX_ERRORS
from support import ROOT

#: Lines 1-9 of every policy below; the broken part starts on line 10.
HEAD = """policy t.recovery version "1"
facts {
  order.amount: money
  order.note: string
}
actors consumer, merchant
event approve by merchant
event reject by merchant
effect refund(amount: money)
"""
END = """
  final state b
}"""

# name, the policy after HEAD, the errors: (code, line, column)
POLICIES = [
    (
        "a missing `:` and a missing `->` (inserted, the rest read)",
        "facts {\n  order.paid_at time\n}\nworkflow w {\n  initial state a {\n"
        "    on approve b\n  }" + END,
        [("RK0101", 11, 17), ("RK0101", 15, 16)],
    ),
    (
        "a `}` too few: one error, at the state after it",
        "workflow w {\n  initial state a {\n    on approve -> b" + END,
        [("RK0101", 13, 3)],
    ),
    (
        "a `}` too few at the end of the file",
        "workflow w {\n  initial state a {\n    on approve -> b\n  }\n  final state b\n",
        [("RK0103", 14, 16)],
    ),
    (
        "tokens that make no sense, then a `)` too few on the next transition",
        "workflow w {\n  initial state a {\n    on approve -> b b b b\n"
        "    on reject -> b emit refund(amount: order.amount\n  }" + END,
        [("RK0101", 12, 21), ("RK0101", 14, 3)],
    ),
    (
        "a second mistake in the same transition is not reported; the next one's is",
        "workflow w {\n  initial state a {\n"
        "    on approve -> b emit refund(amount: order.amount + + 1) cite 3 cite 4\n"
        "    when order.amount > -> b\n  }" + END,
        [("RK0101", 12, 56), ("RK0101", 13, 26)],
    ),
    (
        "constants: each declaration on its own",
        "const A = 1 + * 2\nconst B = (3\nconst C = 4\nworkflow w {\n  initial state a {\n"
        "    on approve -> b\n  }" + END,
        [("RK0101", 10, 15), ("RK0101", 12, 1)],
    ),
    (
        "facts: each on its own line",
        "facts {\n  order.x int\n  order.y: int = 1 + * 2\n  order.z: : int\n}\n"
        "workflow w {\n  initial state a {\n    on approve -> b\n  }" + END,
        [("RK0101", 11, 11), ("RK0101", 12, 22), ("RK0101", 13, 12)],
    ),
    (
        "characters outside the language, on two transitions",
        'workflow w {\n  initial state a {\n    on approve -> b cite "x" # a comment?\n'
        '    on reject -> b @ cite "y"\n  }' + END,
        [("RK0102", 12, 30), ("RK0102", 13, 20)],
    ),
    (
        "a bad escape and a syntax error",
        'const A = "a\\q"\nconst B = ]\nworkflow w {\n  initial state a {\n'
        "    on approve -> b\n  }" + END,
        [("RK0105", 10, 13), ("RK0101", 11, 11)],
    ),
    (
        "a stray block is skipped whole, its own `}` with it",
        "workflow w {\n  initial state a {\n    on approve { x } -> b\n    on reject -> b }" + END,
        [("RK0101", 12, 16)],
    ),
    (
        "an unterminated string: the rest of its line is skipped",
        'workflow w {\n  initial state a {\n    on approve -> b cite "x\n'
        "    on reject -> b cite 3\n  }" + END,
        [("RK0103", 12, 26), ("RK0101", 13, 25)],
    ),
    (
        "the checker does not run: the unknown state is not reported",
        "workflow w {\n  initial state a {\n    on approve -> nowhere\n"
        "    on reject => b\n  }" + END,
        [("RK0101", 13, 15)],
    ),
    (
        "`=` for `==` is still reported (and read as `==`) beside syntax errors",
        "const A = 1 = 2\nconst B = )\nworkflow w {\n  initial state a {\n"
        "    on approve -> b\n  }" + END,
        [("RK0104", 10, 13), ("RK0101", 11, 11)],
    ),
]


@pytest.mark.parametrize(("name", "body", "expected"), POLICIES, ids=[p[0] for p in POLICIES])
def test_every_syntax_error_of_a_policy_once(
    name: str, body: str, expected: list[tuple[str, int, int]]
) -> None:
    result = check_source(HEAD + body, "rk", "t.rk")
    assert [(d.code, d.line, d.column) for d in result.diagnostics] == expected
    assert result.policy is None and result.tree is None


# a condition on its own, the errors: (code, column)
CONDITIONS = [
    ("a < < b and c + * d", [("RK0101", 5), ("RK0101", 17)]),
    ('a + * b || "\\q" == c', [("RK0101", 5), ("RK0105", 13)]),
    ("a.b(1, 2 3) and (x ==)", [("RK0101", 10), ("RK0101", 22)]),
    ("a + + b + + c", [("RK0101", 5)]),  # one clause, one error
    ("a + * and b + * c", [("RK0101", 5), ("RK0101", 15)]),  # `and` read as a name, then not
    ("a = 1 && b <", [("RK0103", 13), ("RK0104", 3)]),
    ("(a < 3", [("RK0103", 7)]),
    ('a == "x and b', [("RK0103", 6)]),
    ("a or # b or c &", [("RK0102", 6), ("RK0102", 15)]),
]


@pytest.mark.parametrize(("text", "expected"), CONDITIONS)
def test_every_syntax_error_of_a_condition_once(text: str, expected: list[tuple[str, int]]) -> None:
    result = expr_parser.parse(Source(text))
    assert result.ast is None
    assert sorted((d.code, d.column) for d in result.diagnostics) == sorted(expected)


def test_a_policy_with_many_errors_shows_the_first_hundred(tmp_path: Path) -> None:
    broken = "".join(f"const C{i} = {i} + * {i}\n" for i in range(MAX_ERRORS + 50))
    result = check_source('policy t.many version "1"\n' + broken, "rk", "many.rk")
    assert len(result.diagnostics) == MAX_ERRORS
    assert [d.line for d in result.diagnostics] == list(range(2, MAX_ERRORS + 2))
    assert result.diagnostics[-1].notes == ("50 more syntax errors not shown",)
    assert all(not d.notes for d in result.diagnostics[:-1])


def test_check_prints_every_syntax_error_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.rk"
    path.write_text(HEAD + POLICIES[0][1])
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:11:17: error[RK0101]: unexpected name `time`; expected `:`" in out
    assert "  11 |   order.paid_at time\n     |                 ^^^^\n" in out
    assert f"{path}:15:16: error[RK0101]: unexpected name `b`; expected `->`" in out
    assert out.endswith("checked 1 file: 2 errors, 0 warnings\n")


def test_check_json_lists_every_syntax_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.rk"
    path.write_text(HEAD + POLICIES[5][1])
    assert main(["check", "--format", "json", str(path)]) == 1
    report = json.loads(capsys.readouterr().out)
    found = [(d["code"], d["line"], d["column"]) for d in report["files"][0]["diagnostics"]]
    assert found == POLICIES[5][2] and report["errors"] == 2


def test_fmt_still_refuses_a_broken_file_and_shows_every_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.rk"
    text = HEAD + POLICIES[0][1]
    path.write_text(text)
    assert main(["fmt", str(path)]) == 1
    err = capsys.readouterr().err
    assert ":11:17: error[RK0101]" in err and ":15:16: error[RK0101]" in err
    assert "not formatted: it has syntax errors" in err
    assert path.read_text() == text


def test_a_yaml_policy_reports_each_broken_condition() -> None:
    text = (ROOT / "tests/golden/policies/yaml_broken_conditions.yaml").read_text()
    result = check_source(text, "yaml", "p.yaml")
    assert [(d.code, d.line) for d in result.diagnostics] == [
        ("RK0101", 11),
        ("RK0101", 18),
        ("RK0103", 21),
    ]


def _shown(i: int) -> str:
    body = POLICIES[i % len(POLICIES)][1]
    result = check_source(HEAD + body, "rk", f"p{i}.rk")
    return result.render()


def test_broken_policies_recover_in_threads_as_one_at_a_time() -> None:
    """Each recovering parse owns its state (STYLE.md: many documents parsed at once)."""
    alone = [_shown(i) for i in range(len(POLICIES) * 2)]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(_shown, list(range(len(POLICIES) * 2)) * 3))
    assert together == alone * 3
