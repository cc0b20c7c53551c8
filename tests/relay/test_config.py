"""relay.yaml's errors, golden style: each bad file gives exactly these diagnostics (the line
and column of the problem, the caret under it, a help where there is one), from
:func:`load_config` and from ``rulekit relay``, which exits 2 with them and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rulekit.cli import main
from rulekit.relay.config import MAX_CONFIG_BYTES, ConfigError, load_config

from .support import environ

ENV = {"HOOK_SECRET": "s3cret"}
ROUTE = """\
  - name: payments
    effects: [refund]
    webhook:
      url: http://127.0.0.1:8080/hooks
      secret_env: HOOK_SECRET
"""

#: (name, relay.yaml, what loading it says); FILE stands for the file's path
CASES: list[tuple[str, str | bytes, str]] = [
    (
        "unknown-key",
        "concurency: 4\nroutes:\n" + ROUTE,
        """\
FILE:1:1: error[RK0901]: unknown key `concurency` in this relay configuration
   1 | concurency: 4
     | ^^^^^^^^^^
  help: did you mean `concurrency`? (allowed keys in this relay configuration: batch, concurrency, lease, max_attempts, poll, retry, routes, store)""",
    ),
    (
        "unknown-webhook-key",
        "routes:\n" + ROUTE.replace("      secret_env", "      secret_evn: X\n      secret_env"),
        """\
FILE:6:7: error[RK0901]: unknown key `secret_evn` in this webhook
   6 |       secret_evn: X
     |       ^^^^^^^^^^
  help: did you mean `secret_env`? (allowed keys in this webhook: dead_after_4xx, headers, secret_env, timeout, url)""",
    ),
    (
        "secret-not-set",
        "routes:\n" + ROUTE.replace("HOOK_SECRET", "NOT_SET_SECRET"),
        """\
FILE:6:19: error[RK0902]: route `payments`: the environment variable NOT_SET_SECRET is not set
   6 |       secret_env: NOT_SET_SECRET
     |                   ^^^^^^^^^^^^^^
  help: export NOT_SET_SECRET before starting the relay (its value is the shared secret)""",
    ),
    (
        "secret-empty",
        "routes:\n" + ROUTE.replace("HOOK_SECRET", "EMPTY_SECRET"),
        """\
FILE:6:19: error[RK0902]: route `payments`: the environment variable EMPTY_SECRET is empty
   6 |       secret_env: EMPTY_SECRET
     |                   ^^^^^^^^^^^^
  help: export EMPTY_SECRET before starting the relay (its value is the shared secret)""",
    ),
    (
        "bad-duration",
        "lease: 10 seconds\nroutes:\n" + ROUTE,
        """\
FILE:1:8: error[RK0901]: `10 seconds` is not a duration
   1 | lease: 10 seconds
     |        ^^^^^^^^^^
  help: a number and a unit, as in rule files: 500ms, 10s, 2m, 1h""",
    ),
    (
        "bad-timeout",
        "routes:\n" + ROUTE + "      timeout: 5x\n",
        """\
FILE:7:16: error[RK0901]: `5x` is not a duration
   7 |       timeout: 5x
     |                ^^
  help: a number and a unit, as in rule files: 500ms, 10s, 2m, 1h""",
    ),
    (
        "zero-lease",
        "lease: 0s\nroutes:\n" + ROUTE,
        """\
FILE:1:8: error[RK0901]: `lease` must be longer than 0
   1 | lease: 0s
     |        ^^""",
    ),
    (
        "retry-initial-above-max",
        "retry: {initial: 1h, max: 1m}\nroutes:\n" + ROUTE,
        """\
FILE:1:18: error[RK0901]: `retry.initial` is longer than `retry.max`
   1 | retry: {initial: 1h, max: 1m}
     |                  ^^""",
    ),
    (
        "bad-url",
        "routes:\n" + ROUTE.replace("http://127.0.0.1:8080/hooks", "127.0.0.1:8080/hooks"),
        """\
FILE:5:12: error[RK0901]: `127.0.0.1:8080/hooks` is not an http:// or https:// URL
   5 |       url: 127.0.0.1:8080/hooks
     |            ^^^^^^^^^^^^^^^^^^^^
  help: the receiver's whole URL, as in https://example.com/hooks/rulekit""",
    ),
    (
        "route-after-star",
        'routes:\n  - name: all\n    effects: "*"\n'
        "    webhook: {url: http://a.example/h, secret_env: HOOK_SECRET}\n" + ROUTE,
        """\
FILE:5:5: error[RK0901]: route `payments` comes after a route that takes every effect (`*`)
   5 |   - name: payments
     |     ^^^^^^^^^^^^^^
  help: move the `*` route last""",
    ),
    (
        "route-names-taken",
        "routes:\n" + ROUTE + ROUTE.replace("payments", "again"),
        """\
FILE:8:14: error[RK0901]: every effect route `again` names an earlier route takes
   8 |     effects: [refund]
     |              ^^^^^^^^""",
    ),
    (
        "duplicate-route-names",
        "routes:\n" + ROUTE + ROUTE.replace("[refund]", "[notify]"),
        """\
FILE:7:11: error[RK0901]: two routes are named `payments`
   7 |   - name: payments
     |           ^^^^^^^^""",
    ),
    (
        "unknown-placeholder",
        'routes:\n  - name: events\n    effects: "*"\n    jetstream:\n'
        "      subject: rulekit.{case}.{name}\n",
        """\
FILE:5:16: error[RK0901]: unknown placeholder `{case}` in the subject
   5 |       subject: rulekit.{case}.{name}
     |                ^^^^^^^^^^^^^^^^^^^^^
  help: the subject may hold `{name}`, the effect's name""",
    ),
    (
        "reserved-header",
        "routes:\n" + ROUTE + "      headers: {Idempotency-Key: x}\n",
        """\
FILE:7:16: error[RK0901]: header idempotency-key is set by the relay
   7 |       headers: {Idempotency-Key: x}
     |                ^^^^^^^^^^^^^^^^^^^^
  help: leave it out: every delivery carries it""",
    ),
    (
        "every-problem-at-once",
        "routes:\n"
        + ROUTE.replace("HOOK_SECRET", "NOT_SET_SECRET")
        + ROUTE.replace("[refund]", "[notify]"),
        """\
FILE:6:19: error[RK0902]: route `payments`: the environment variable NOT_SET_SECRET is not set
   6 |       secret_env: NOT_SET_SECRET
     |                   ^^^^^^^^^^^^^^
  help: export NOT_SET_SECRET before starting the relay (its value is the shared secret)

FILE:7:11: error[RK0901]: two routes are named `payments`
   7 |   - name: payments
     |           ^^^^^^^^""",
    ),
    (
        "yaml-syntax",
        "routes:\n  - name: payments\n    effects: [refund\n",
        """\
FILE:3:14: error[RK0901]: the list `[` opened here is not closed
   3 |     effects: [refund
     |              ^
  help: close it with `]`, or separate its items with `,`""",
    ),
    (
        "tab",
        "routes:\n\t- name: x\n",
        """\
FILE:2:1: error[RK0901]: a tab character: YAML indents with spaces only
   2 |  - name: x
     | ^
  help: indent with spaces""",
    ),
    (
        "alias",
        "base: &b {url: http://a.example/h, secret_env: HOOK_SECRET}\n"
        "routes:\n  - name: x\n    effects: [refund]\n    webhook: *b\n",
        """\
FILE:5:14: error[RK0901]: YAML aliases (`*name`) are not allowed here
   5 |     webhook: *b
     |              ^^
  help: write the values out""",
    ),
    (
        "no-routes",
        "concurrency: 4\n",
        """\
FILE:1:1: error[RK0901]: missing key `routes` in this relay configuration
   1 | concurrency: 4
     | ^^^^^^^^^^^^^^""",
    ),
    (
        "not-a-map",
        "- routes\n",
        """\
FILE:1:1: error[RK0901]: relay.yaml is a map with a `routes:` list
   1 | - routes
     | ^^^^^^^^""",
    ),
    ("empty", "", "FILE:1:1: error[RK0901]: relay.yaml is a map with a `routes:` list"),
    (
        "not-utf-8",
        b"routes: [\xff]\n",
        "FILE:1:1: error[RK0901]: not UTF-8 text (byte 9)",
    ),
    (
        "too-large",
        b"#" * MAX_CONFIG_BYTES + b"\nroutes: []\n",
        "FILE:1:1: error[RK0901]: larger than 1,048,576 bytes",
    ),
]


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "relay.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_relay_yaml_says_where_and_why(
    tmp_path: Path, text: str | bytes, expected: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(path, environ={**ENV, "EMPTY_SECRET": ""})
    assert str(e.value) == expected.replace("FILE", str(path))


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as e:
        load_config(path, environ=ENV)
    assert (
        str(e.value)
        == f"{path}:1:1: error[RK0901]: cannot read the file: No such file or directory"
    )


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rulekit_relay_exits_2_with_the_diagnostics(
    tmp_path: Path,
    text: str | bytes,
    expected: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k, v in {**ENV, "EMPTY_SECRET": ""}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("NOT_SET_SECRET", raising=False)
    path = _write(tmp_path, text)
    code = main(["relay", "--config", str(path), "--store", str(tmp_path / "s.db"), "--once"])
    out, err = capsys.readouterr()
    assert (code, out, err) == (2, "", expected.replace("FILE", str(path)) + "\n")


def test_in_a_process_of_its_own_no_traceback(tmp_path: Path) -> None:
    """The CLI's whole path, as a user runs it: a syntax error and a missing file."""
    path = _write(tmp_path, CASES[[c[0] for c in CASES].index("yaml-syntax")][1])
    for config in (path, tmp_path / "missing.yaml"):
        done = subprocess.run(
            [sys.executable, "-m", "rulekit.cli", "relay", "--config", str(config), "--once"],
            env=environ(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        assert done.stderr.startswith(f"{config}:")
        assert "error[RK0901]" in done.stderr
        assert "Traceback" not in done.stderr
