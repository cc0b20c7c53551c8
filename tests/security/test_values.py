"""Finding 11 of issue #11 (its value items) and item 1 of issue #12: values that
must fail loudly, everywhere rulekit reads or computes them.

- A timestamp with a fraction of 5,000 digits was a raw ValueError traceback
  (Python's int digit limit); fractions now have at most 9 digits.
- A UTC offset outside -23:59..+23:59 (``+25:00``, ``+24:00``, ``+23:60``) was a
  ValueError traceback in `rulekit eval --now`, `simulate --at`, scenario files
  and `const` in a policy, and Python's message over HTTP; every reader now uses
  stdlib.parse_timestamp, which says the offset is out of range.
- `money` silently rounded past 28 digits (``amount + 0.01 == amount`` for 1e30),
  and the compiled code computed in the host's decimal context; a result that is
  not exact is now an evaluation error, on both paths.
- `string(timestamp('0001-01-01T00:00:00Z'))` was ``1-01-01T00:00:00Z``.

Each test failed on the old code (a traceback, Python's message, a rounded
amount, or a one-digit year).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Context, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rulekit import CompileError, EvaluationError, compile_expression
from rulekit.analysis import check_source
from rulekit.cli import main
from rulekit.expr.convert import ConversionError, convert
from rulekit.expr.types import TIMESTAMP
from rulekit.tools import scenarios
from support import ROOT

OFFSET = "out of range (-23:59 to +23:59)"
FRACTION = "at most 9 digits"

# (timestamp text, what the error says)
BAD_TIMESTAMPS = [
    ("2026-03-01T12:00:00+25:00", OFFSET),
    ("2026-03-01T12:00:00+24:00", OFFSET),
    ("2026-03-01T12:00:00-24:00", OFFSET),
    ("2026-03-01T12:00:00+99:00", OFFSET),
    ("2026-03-01T12:00:00+23:60", OFFSET),
    ("2026-01-01T00:00:00." + "0" * 5000 + "Z", FRACTION),
    ("2026-01-01T00:00:00." + "1" * 5000 + "Z", FRACTION),
    ("2026-01-01T00:00:00.0000000000Z", FRACTION),
]
TEXT_IDS = [f"{t[:19]}..{t[-6:]}({len(t)})" for t, _ in BAD_TIMESTAMPS]

POLICY = ROOT / "tests" / "policies" / "refunds.rk"


def _literal(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(CompileError) as info:
        compile_expression(f'timestamp("{text}")')
    assert [d.code for d in info.value.diagnostics] == ["RK0207"]
    return info.value.rendered


def _run_time(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    expr = compile_expression("timestamp(s)", {"s": "string"})
    messages = []
    for evaluate in (expr.evaluate, expr._interp.evaluate):
        with pytest.raises(EvaluationError) as info:
            evaluate({"s": text}, None)
        messages.append(str(info.value))
    return " ".join(messages)


def _fact(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(ConversionError) as info:
        convert(text, TIMESTAMP, "order.paid_at")
    return str(info.value)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _eval_now(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    return _cli(["eval", "now", "--now", text], capsys)


def _simulate_at(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    return _cli(["simulate", str(POLICY), "--workflow", "refund_only", "--at", text], capsys)


def _scenario(key: str) -> Callable[[str, Path, pytest.CaptureFixture[str]], str]:
    def read(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
        item: dict[str, Any] = {"name": "s", "workflow": "refund_only"}
        if key == "at":
            item |= {"at": text, "steps": []}
        else:
            item |= {"at": "2026-03-01T12:00:00Z", "steps": [{key: text}]}
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump({"policy": str(POLICY), "scenarios": [item]}))
        with pytest.raises(scenarios.ScenarioFileError) as info:
            scenarios.read(path)
        return info.value.diagnostic.message

    return read


def _policy_const(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    source = POLICY.read_text(encoding="utf-8").replace(
        "const REVIEW = 48h", f'const REVIEW = 48h\nconst T = timestamp("{text}")'
    )
    result = check_source(source, "rk", "refunds.rk")
    assert "RK0207" in [d.code for d in result.diagnostics]
    return result.render()


def _http_open(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    from fastapi.testclient import TestClient

    from rulekit import policy as policies
    from rulekit.service.app import Service, create_app
    from rulekit.service.auth import Tokens
    from rulekit.stores import open_store

    kuaishou = policies.load(ROOT / "rules" / "kuaishou_after_sales.rk")
    token = "admin-token-0123456789"
    tokens = Tokens.parse({"tokens": [{"token": token, "admin": True}]}, "t", set(kuaishou.actors))
    store = open_store(tmp_path / "cases.db", migrate=True)
    try:
        client = TestClient(create_app(Service(store, [kuaishou], tokens, worker_interval=None)))
        facts = {
            "order": {"amount": 500, "paid_at": text, "shipped": True},
            "shop.fast_refund_enabled": True,
        }
        r = client.post(
            "/cases",
            json={
                "workflow": "refund_only",
                "facts": facts,
                "parties": {"merchant": "shop-1", "consumer": "user-1"},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    finally:
        store.close()
    assert r.status_code == 422, r.text
    message: str = r.json()["detail"]
    return message


READERS = {
    "literal": _literal,
    "run_time": _run_time,
    "fact": _fact,
    "eval_now": _eval_now,
    "simulate_at": _simulate_at,
    "scenario_at": _scenario("at"),
    "scenario_until": _scenario("until"),
    "policy_const": _policy_const,
    "http_open": _http_open,
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(("text", "says"), BAD_TIMESTAMPS, ids=TEXT_IDS)
def test_an_impossible_timestamp_is_a_clear_error_for_every_reader(
    reader: str, text: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = READERS[reader](text, tmp_path, capsys)
    assert says in message, message
    assert len(message) < 8 * len(text) + 2000  # a message, not a dump


# Money is exact or fails: (expression, amount, expected value or None for the error).
EXACT = "money result is not exact"
BIG = Decimal("1000000000000000000000000000000")  # 1e30, 31 digits
BIG_CENTS = Decimal("1000000000000000000000000000000.01")  # 33 digits
MONEY = [
    ("a + 0.01", BIG, None),
    ("a - 0.01", BIG, None),
    ("0.01 + a", BIG, None),
    ("a + 1", Decimal("0.0000000000000000000000000001"), None),
    ("a * 0.15", Decimal("1234567890123456789012345.671"), None),
    ("a * 3", Decimal("3333333333333333333333333333.3"), None),
    ("a + money('0.01') == a", BIG, None),
    (
        "a + 0.01",
        Decimal("99999999999999999999999999.98"),
        Decimal("99999999999999999999999999.99"),
    ),
    ("a * 3", Decimal("19.99"), Decimal("59.97")),
    ("-a", BIG_CENTS, BIG_CENTS.copy_negate()),  # negation is exact too
    ("a - a", BIG_CENTS, Decimal("0.00")),
    # division rounds to 28 digits, half to even, as documented
    ("a / 3", Decimal("10.00"), Decimal("3.333333333333333333333333333")),
]


@pytest.mark.parametrize(("text", "amount", "expected"), MONEY)
def test_money_is_exact_or_an_error_on_both_paths(
    text: str, amount: Decimal, expected: Decimal | None
) -> None:
    expr = compile_expression(text, {"a": "money"})
    for evaluate in (expr.evaluate, expr._interp.evaluate):
        if expected is None:
            with pytest.raises(EvaluationError, match=EXACT):
                evaluate({"a": amount}, None)
        else:
            got = evaluate({"a": amount}, None)
            assert got.as_tuple() == expected.as_tuple(), (text, got)


@pytest.mark.parametrize(("text", "amount", "expected"), [m for m in MONEY if m[2] is not None])
def test_money_ignores_the_host_decimal_context(
    text: str, amount: Decimal, expected: Decimal
) -> None:
    expr = compile_expression(text, {"a": "money"})
    with localcontext(Context(prec=5)):  # a host program's own setting
        for evaluate in (expr.evaluate, expr._interp.evaluate):
            assert evaluate({"a": amount}, None).as_tuple() == expected.as_tuple(), text


AMOUNTS = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: len(d.as_tuple().digits) <= 40 and -30 <= d.as_tuple().exponent <= 30
)
WIDE = Context(prec=200)  # exact for these operands
# expression -> its exact value (the division: rounded to 28 digits, as documented)
EXACT_VALUES: dict[str, Callable[[Decimal, Decimal], Decimal]] = {
    "a + b": WIDE.add,
    "a - b": WIDE.subtract,
    "a * 3": lambda a, b: WIDE.multiply(a, 3),
    "b + 5": lambda a, b: WIDE.add(b, 5),
    "-a": lambda a, b: a.copy_negate(),
    "a - 0.01": lambda a, b: WIDE.subtract(a, Decimal("0.01")),
    "a / 7": lambda a, b: Context(prec=28).divide(a, 7),
}


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from(sorted(EXACT_VALUES)), a=AMOUNTS, b=AMOUNTS)
def test_money_compiled_code_and_interpreter_agree_and_are_exact(
    op: str, a: Decimal, b: Decimal
) -> None:
    expr = compile_expression(op, {"a": "money", "b": "money"})

    def outcome(evaluate: Callable[..., Any]) -> tuple[str, Any]:
        try:
            return ("ok", evaluate({"a": a, "b": b}, None).as_tuple())
        except EvaluationError as e:
            return ("error", str(e))

    fast, slow = outcome(expr.evaluate), outcome(expr._interp.evaluate)
    assert fast == slow
    exact = EXACT_VALUES[op](a, b)
    # Negation never rounds; the others are exact when the result fits in 28 digits.
    if op == "-a" or Context(prec=28).plus(exact) == exact:
        assert fast[0] == "ok" and Decimal(fast[1]) == exact, (op, a, b, fast)
    else:
        assert fast[0] == "error" and EXACT in fast[1], (op, a, b, fast)


# Timestamps as text: four-digit years (RFC 3339), on every path that writes one.
YEARS = [
    ("string(timestamp('0001-01-01T00:00:00Z'))", '"0001-01-01T00:00:00Z"'),
    ("string(timestamp('0999-12-31T23:59:59.5Z'))", '"0999-12-31T23:59:59.5Z"'),
    ("string(timestamp('0010-06-01T08:00:00+08:00'))", '"0010-06-01T00:00:00Z"'),
    ("string(timestamp(-62135596800))", '"0001-01-01T00:00:00Z"'),
]


@pytest.mark.parametrize(("text", "expected"), YEARS)
def test_timestamps_are_written_with_four_digit_years(text: str, expected: str) -> None:
    expr = compile_expression(text)
    want = compile_expression(expected).evaluate({})
    assert expr.evaluate({}) == want
    assert expr._interp.evaluate({}, None) == want
