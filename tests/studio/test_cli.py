"""``rulekit studio`` as a user runs it: a process serving the page on a loopback port."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from support import ROOT

STUDIO = [sys.executable, "-m", "rulekit.cli", "studio"]


def test_the_studio_starts_and_serves_its_page(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*STUDIO, str(ROOT / "rules"), "--port", "0", "--no-open"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.fullmatch(r"rulekit studio: (http://127\.0\.0\.1:(\d+)/)\n", line)
        assert found, line + (process.stderr.read() if process.poll() is not None else "")
        with urllib.request.urlopen(found[1], timeout=10) as page:
            text = page.read().decode()
        token = re.search(r'<meta name="rulekit-studio-token" content="([^"]+)">', text)
        assert token and len(token[1]) >= 32
        request = urllib.request.Request(
            found[1] + "api/files", headers={"X-Rulekit-Studio-Token": token[1]}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert b'"kuaishou_after_sales.rk"' in answer.read()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


def test_a_missing_root_is_a_usage_error() -> None:
    done = subprocess.run([*STUDIO, "no/such/folder", "--no-open"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == "rulekit: error: no/such/folder: no such file or folder\n"


def test_a_non_loopback_host_is_warned_about() -> None:
    done = subprocess.run(
        [*STUDIO, "no/such/folder", "--host", "0.0.0.0", "--no-open"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "rulekit: warning: listening on 0.0.0.0: anyone who can reach it can read and write "
        "the files under the given paths (with the page's token)"
    )
