"""The rulekit command: output, exit statuses (0 ok, 1 failed, 2 invalid input)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rulekit.cli import EXIT_BROKEN_PIPE, main
from support import ROOT

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
        # deeper than Python's recursion limit, and deeper than rulekit's limit on data
        (["eval", "a", "--vars", '{"a": %s}' % ("[" * 5000 + "]" * 5000)], "nested more than 100"),
        (["eval", "a", "--vars", '{"a": %s}' % ("[" * 101 + "]" * 101)], "nested more than 100"),
        (["eval", "a", "-d", "a=dyn", "--vars", '{"a": %s}' % ("[" * 101 + "]" * 101)], "--vars"),
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


POLICIES = Path(__file__).parent / "policies"
GOLDEN = Path(__file__).parent / "golden" / "policies"


def test_check_clean_files(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "check",
        str(POLICIES / "refunds.rk"),
        str(POLICIES / "refunds.yaml"),
        "--color",
        "never",
    )
    # refunds.rk declares `reject` but takes it nowhere: a warning, not an error
    assert (code, out.splitlines()[-1]) == (0, "checked 2 files: 0 errors, 2 warnings")
    assert "warning[RK0705]: no transition takes event `reject`" in out


def test_check_folder_skips_scenario_yaml(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "a.rk").write_text((POLICIES / "refunds.rk").read_text())
    # a scenario file names its policy with a top-level `policy` key too
    (tmp_path / "scenarios.yaml").write_text("policy: a.rk\nscenarios: []\n")
    code, out, _ = run(capsys, "check", str(tmp_path))
    assert (code, out.splitlines()[-1]) == (0, "checked 1 file: 0 errors, 1 warning")


def test_check_of_a_scenario_file_says_to_run_rulekit_test(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = str(Path(__file__).parent / "scenarios" / "refunds.yaml")
    code, out, err = run(capsys, "check", path)
    assert (code, out) == (2, "")
    assert err == (
        f"rulekit: error: {path} is a scenario file (it has a top-level `scenarios` key), "
        f"not a policy: run it with `rulekit test {path}`\n"
    )


FAILING_SCENARIO = """\
policy: {policy}
scenarios:
  - name: expects the wrong state
    workflow: refund_only
    at: 2026-03-01T12:00:00+08:00
    facts: {{order: {{amount: 500, paid_at: 2026-03-01T09:00:00+08:00, shipped: true}}}}
    steps:
      - expect: {{state: refunded}}
"""


@pytest.mark.parametrize(
    "args",
    [
        ["rulekit.cli", "check", "--explain-times", "rules/kuaishou_after_sales.rk"],
        ["rulekit.cli", "test", "failing.yaml"],
        ["rulekit.cli", "demo"],
    ],
    ids=["check", "failing-test", "demo"],
)
def test_a_closed_pipe_ends_quietly(args: list[str], tmp_path: Path) -> None:
    """`rulekit ... | head -1`: the reader is gone before rulekit writes; no traceback."""
    failing = tmp_path / "failing.yaml"
    failing.write_text(FAILING_SCENARIO.format(policy=POLICIES / "refunds.rk"))
    args = [str(failing) if a == "failing.yaml" else a for a in args]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", *args],
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (EXIT_BROKEN_PIPE, "")


def test_check_reports_problems_with_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", str(GOLDEN / "many_problems_sorted.rk"), "--color", "never")
    assert code == 1
    assert "error[RK0303]: unknown event `aprove`" in out and "^^^^^^" in out
    assert out.endswith("checked 1 file: 4 errors, 0 warnings\n")


def test_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", str(GOLDEN / "unknown_state.rk"), "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["errors"] == 1
    (d,) = report["files"][0]["diagnostics"]
    assert (d["code"], d["line"], d["column"], d["help"]) == (
        "RK0302",
        16,
        19,
        "did you mean `refunded`?",
    )


def test_check_colour_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "check", str(GOLDEN / "unknown_state.rk"), "--color", "always")
    assert "\033[1;31merror\033[0m" in out
    _, out, _ = run(
        capsys, "check", str(GOLDEN / "unknown_state.rk")
    )  # captured output is not a terminal
    assert "\033[" not in out


def test_check_explain_times(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--explain-times", str(GOLDEN / "max_open_within.rk"))
    assert code == 0
    assert (
        "refund: opened and left alone, closes within 12d: "
        "requested --after 48h--> in_review --after 10d--> refunded"
    ) in out.splitlines()
    assert "  in_review: closes within 10d: in_review --after 10d--> refunded" in out.splitlines()


def test_check_explain_times_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "check", "--explain-times", "--format", "json", str(POLICIES / "refunds.rk")
    )
    (times,) = json.loads(out)["files"][0]["times"]
    assert code == 0 and times["workflow"] == "refund_only"
    assert (times["opened"]["bound"], times["opened"]["bound_seconds"]) == ("2d", 172800.0)
    assert times["opened"]["path"][0]["trigger"] == "after 48h (REVIEW)"
    assert times["worst"]["bound"] is None and "platform_review" in times["worst"]["reason"]
    # Without the flag, the JSON output is as before.
    _, out, _ = run(capsys, "check", "--format", "json", str(POLICIES / "refunds.rk"))
    assert "times" not in json.loads(out)["files"][0]


@pytest.mark.parametrize(
    ("limit", "status", "summary"),
    [
        ("12d", 0, "checked 1 file: 0 errors, 0 warnings"),
        ("288h", 0, "checked 1 file: 0 errors, 0 warnings"),
        ("11d23h", 1, "checked 1 file: 1 error, 0 warnings"),
    ],
)
def test_check_max_open(
    capsys: pytest.CaptureFixture[str], limit: str, status: int, summary: str
) -> None:
    code, out, _ = run(capsys, "check", "--max-open", limit, str(GOLDEN / "max_open_within.rk"))
    assert (code, out.splitlines()[-1]) == (status, summary)
    if status:
        assert "max_open_within.rk:11:10: error[RK0710]: a case of workflow refund" in out
        assert "help: shorten the deadlines on this path, or raise --max-open" in out


def test_check_max_open_unbounded_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--max-open", "365d", str(POLICIES / "refunds.rk"))
    assert (
        code == 1 and "error[RK0710]" in out and "(unbounded, from state `platform_review`)" in out
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-open", "30 days"], '--max-open: duration "30 days" is not valid'),
        (["--max-open=-1d"], "--max-open: '-1d' is negative"),
        (["--explain-times", "--format", "sarif"], "--explain-times prints text or JSON"),
    ],
)
def test_check_bad_times_options_are_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "check", *args, str(POLICIES / "refunds.rk"))
    assert (code, out) == (2, "") and message in err and "Traceback" not in err


def test_check_missing_path_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "no/such/place.rk")
    assert code == 2 and "no such file or folder: no/such/place.rk" in err


def test_compile_writes_a_valid_artifact(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "refunds.json"
    code, _, err = run(capsys, "compile", str(POLICIES / "refunds.rk"), "-o", str(out))
    assert code == 0 and "wrote" in err and "sha256:" in err
    code, stdout, _ = run(capsys, "check", str(out))
    assert (code, stdout) == (0, "checked 1 file: 0 errors, 0 warnings\n")


def test_compile_of_a_broken_policy_is_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(
        capsys, "compile", str(GOLDEN / "unknown_event.rk"), "-o", str(tmp_path / "x.json")
    )
    assert code == 1 and "RK0303" in err and not (tmp_path / "x.json").exists()


FACTS = '{"order": {"amount": 500, "paid_at": "2026-03-01T09:00:00+08:00", "shipped": true}}'


def test_simulate_prints_each_step_with_its_cause(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "simulate",
        str(POLICIES / "refunds.rk"),
        "-w",
        "refund_only",
        "--facts",
        FACTS,
        "--at",
        "2026-03-01T12:00:00+08:00",
        "--step",
        "send approve by consumer",
        "--step",
        "advance 48h1s",
        "--step",
        "send approve by merchant",
    )
    assert code == 0
    assert "refused: actor_not_allowed" in out
    assert "2026-03-03 12:00:00+08:00  deadline: `awaiting_merchant` -> `refunded`" in out
    assert "emit refund(amount: 500)" in out and "refused: case_closed" in out
    assert out.rstrip().endswith("now: `refunded` (final, outcome refunded); effects: refund")


def test_simulate_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "simulate",
        str(POLICIES / "refunds.rk"),
        "-w",
        "refund_only",
        "--facts",
        FACTS,
        "--at",
        "2026-03-01T12:00:00+08:00",
        "--step",
        "send offer by merchant service=repair",
        "--json",
    )
    report = json.loads(out)
    assert code == 0 and report["state"] == "awaiting_merchant"
    assert report["facts"]["offer"] == {"service": "repair"}
    assert [r["kind"] for r in report["timeline"]] == ["open", "event"]
    assert report["next_deadline"] == "2026-03-03T12:00:00+08:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--facts", '{"order": {"amount": 1}}'], "invalid_fact"),
        (["--facts", '{"order": %s}' % ("[" * 5000 + "]" * 5000)], "--facts: nested more than 100"),
        (["--facts", "{"], "--facts is not valid JSON"),
        (["--at", "noon"], "--at:"),
        (["-w", "nope"], "no workflow 'nope'"),
    ],
)
def test_simulate_bad_input_is_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base = [
        "simulate",
        str(POLICIES / "refunds.rk"),
        "-w",
        "refund_only",
        "--facts",
        FACTS,
        "--at",
        "2026-03-01T12:00:00+08:00",
        "--json",
    ]
    for flag in args[::2]:
        i = base.index(flag)
        del base[i : i + 2]
    code, _, err = run(capsys, *base, *args)
    assert code == 2 and message in err


def test_rulekit_test_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "test", str(Path(__file__).parent / "scenarios"))
    assert code == 0 and out.splitlines()[-1].endswith(" passed, 0 failed")
    code, out, _ = run(capsys, "test", str(Path(__file__).parent / "scenarios"), "--json")
    report = json.loads(out)
    assert report["failed"] == 0 and report["passed"] == len(report["results"]) > 0


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            "nope.rk",
            [
                "s.yaml:1:9: error[RK0601]: policy file not found: nope.rk",
                "   1 | policy: nope.rk",
                "     |         ^",
                "  help: the path is relative to the folder of this scenario file",
            ],
        ),
        (
            "broken.rk",
            [
                "s.yaml:1:9: error[RK0601]: its policy does not compile (1 error, shown below)",
                "   1 | policy: broken.rk",
                "     |         ^",
                "  help: run `rulekit check` on the policy",
                "",
                "broken.rk:2:10: error[RK0306]: workflow `w` has no initial state",
                "   2 | workflow w { state a }",
                "     |          ^",
                "  help: mark exactly one state `initial state ...`",
            ],
        ),
    ],
)
def test_rulekit_test_says_once_what_is_wrong_with_the_policy(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    policy: str,
    expected: list[str],
) -> None:
    (tmp_path / "broken.rk").write_text('policy x version "1"\nworkflow w { state a }\n')
    (tmp_path / "s.yaml").write_text(
        f"policy: {policy}\nscenarios:\n  - name: x\n    workflow: w\n"
        "    at: 2026-03-01T12:00:00+08:00\n    steps: []\n"
    )
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "test", "s.yaml")
    assert (code, out, err.splitlines()) == (2, "", expected)


#: Run verbs (a JSON list of argument lists) in one fresh process, then print their exit
#: statuses and which of the modules named after them it loaded.
LOADED_BY = """
import contextlib, io, json, sys
from rulekit.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    statuses = [main(args) for args in json.loads(sys.argv[1])]
print(*statuses, "|", *(m for m in sys.argv[2:] if m in sys.modules))
"""


@pytest.mark.parametrize(
    ("verbs", "never"),
    [
        (
            [["check", str(ROOT / "rules" / "kuaishou_after_sales.rk")]],
            ["rulekit.stores", "rulekit.runtime", "rulekit.service", "yaml", "sqlite3"],
        ),
        (
            [
                ["db", "upgrade", "--store", "{tmp}/cases.db"],
                ["worker", "--once", "--store", "{tmp}/cases.db"],
                ["db", "status", "--store", "{tmp}/cases.db"],
            ],
            ["rulekit.service", "fastapi", "uvicorn"],
        ),
    ],
    ids=["check", "db-and-worker"],
)
def test_a_verb_loads_only_what_it_runs_on(
    verbs: list[list[str]], never: list[str], tmp_path: Path
) -> None:
    """`rulekit check` starts without the stores, the runtime, the service or PyYAML (a .rk
    file needs none), and `worker` and `db` work on a store without the service."""
    argv = [[a.format(tmp=tmp_path) for a in args] for args in verbs]
    done = subprocess.run(
        [sys.executable, "-c", LOADED_BY, json.dumps(argv), *never], capture_output=True, text=True
    )
    assert (done.stdout.split(), done.stderr) == (["0"] * len(verbs) + ["|"], "")


def test_check_migrating_from_reports_what_the_old_version_needs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    new, old = GOLDEN / "migrate_unmapped.rk", GOLDEN / "old" / "migrate_v1.rk"
    code, out, _ = run(capsys, "check", str(new), "--migrating-from", str(old), "--color", "never")
    assert code == 1
    assert "error[RK0341]" in out and "error[RK0343]" in out
    # Without the old version at hand, only what the new one says alone is checked.
    code, out, _ = run(capsys, "check", str(new), "--color", "never")
    assert code == 0 and "RK034" not in out


def test_check_migrating_from_a_broken_old_version_is_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    new, broken = GOLDEN / "migrate_unmapped.rk", GOLDEN / "many_problems_sorted.rk"
    code, _, err = run(capsys, "check", str(new), "--migrating-from", str(broken))
    assert code == 2 and "the old version does not check" in err


def test_migrate_moves_open_cases_then_has_nothing_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from decimal import Decimal

    from rulekit import load
    from rulekit.stores import open_store

    url = str(tmp_path / "cases.db")
    v1, v2 = (load(Path(__file__).parent / "migrate" / f"{n}.rk") for n in ("v1", "v2"))
    with open_store(url, migrate=True) as store:
        store.register(v1)
        store.register(v2)
        for i in range(3):
            facts = {"order": {"amount": Decimal(10)}}
            store.open("refund", facts, policy=v1.hash, id=f"C-{i}")
        store.send("C-2", "ask", "buyer")
    code, out, _ = run(capsys, "migrate", "--store", url, "--to", "2", "--dry-run")
    assert code == 0 and out.endswith(
        "would move 3 cases to version 2, 0 already on it, 0 refused\n"
    )
    assert "C-2: review -> reviewing" in out
    code, out, _ = run(capsys, "migrate", "--store", url, "--to", "2", "--where", "review")
    assert code == 0 and out.startswith("C-2: review -> reviewing\nmoved 1 case to version 2")
    code, _, err = run(capsys, "migrate", "--store", url, "--to", "2", "--where", "order.amount +")
    assert code == 2 and "--where 'order.amount +'" in err
    code, _, err = run(capsys, "migrate", "--store", url, "--to", "2", "--where", "order.amount")
    assert code == 2 and "not a condition" in err
    code, out, _ = run(
        capsys, "migrate", "--store", url, "--to", "2", "--where", "order.amount > 10.00"
    )
    assert code == 0 and out.startswith("moved 0 cases")
    code, out, _ = run(capsys, "migrate", "--store", url, "--to", "2", "--batch", "2")
    assert (
        code == 0
        and out.splitlines()[-1] == "moved 2 cases to version 2, 1 already on it, 0 refused"
    )
    code, out, _ = run(capsys, "migrate", "--store", url, "--to", "2", "--format", "json")
    assert code == 0 and json.loads(out)["skipped"] == 3
    # Back to version 1: it has no block for version 2, so every case is refused (exit 1).
    code, out, _ = run(capsys, "migrate", "--store", url, "--to", "1")
    assert code == 1 and out.count("refused: ") == 3
    code, _, err = run(capsys, "migrate", "--store", url, "--to", "9")
    assert code == 2 and "no policy version '9'" in err
