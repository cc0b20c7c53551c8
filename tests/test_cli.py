"""The rulekit command: output, exit statuses (0 ok, 1 failed, 2 invalid input)."""

from __future__ import annotations

import json

import pytest

from rulekit.cli import main

DECLARE = ["-d", "order.amount=money", "-d", "order.shipped=bool"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_prints_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "eval",
        "order.amount < 300 and not order.shipped",
        *DECLARE,
        "--vars",
        '{"order": {"amount": "128.00", "shipped": false}}',
    )
    assert (code, out) == (0, "true\n")


def test_eval_json_keeps_money_exact(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "eval",
        "order.amount * 3",
        *DECLARE,
        "--vars",
        '{"order": {"amount": 0.10}}',
        "--format",
        "json",
    )
    assert code == 0 and json.loads(out) == {"value": "0.30", "type": "money"}


def test_eval_explain(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "eval",
        "since(t) <= 6h and n < 3",
        "-d",
        "t=time",
        "-d",
        "n=int",
        "--var",
        't=timestamp("2026-03-01T10:00:00+08:00")',
        "--var",
        "n=5",
        "--now",
        "2026-03-01T16:00:00+08:00",
        "--explain",
    )
    assert code == 0
    assert out.splitlines() == [
        "result: false",
        '  since(t) <= 6h -> true   (t = timestamp("2026-03-01T10:00:00+08:00"))',
        "  n < 3 -> false   (n = 5)",
    ]


def test_compile_error_is_exit_2_with_a_caret(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "eval", 'order.amount < "300"', *DECLARE)
    assert code == 2 and out == ""
    assert (
        "error[RK0203]" in err
        and "^" in err
        and "help: write the number without quotes: 300" in err
    )


def test_evaluation_error_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "eval", "1 / x", "--var", "x=0")
    assert code == 1 and "division by zero in `1 / x`" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "x", "--vars", "{nope"], "--vars is not valid JSON"),
        (["eval", "x", "--vars", "[1]"], "--vars must be a JSON object"),
        (["eval", "x", "-d", "x=money", "--vars", '{"x": "abc"}'], "--vars: x: expected money"),
        (["eval", "x", "--var", "x=1 +"], "--var x"),
        (["eval", "x", "--var", "novalue"], "--var takes NAME=EXPR"),
        (["eval", "x", "-d", "x"], "--declare takes NAME=TYPE"),
        (["eval", "now", "--now", "yesterday"], "--now: timestamp"),
        (["eval", "x", "--vars", "@/no/such/file.json"], "cannot read /no/such/file.json"),
    ],
)
def test_bad_input_is_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_usage_error_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["nonsense"])
    assert info.value.code == 2
