"""Browser fixtures: a real `rulekit studio` subprocess on a free port serving a git
repository that holds the shipped policy, and Debian's Chromium (headless) driven by
Playwright through its system executable (nothing downloaded).

Without Chromium these tests skip, except under CI=true, where they fail: .ci/run
installs chromium, so a missing browser there is a broken CI, not a reason to skip."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import ROOT

POLICY = ROOT / "rules" / "kuaishou_after_sales.rk"
CHROMIUM = Path(os.environ.get("RULEKIT_TEST_CHROMIUM", "/usr/bin/chromium"))
#: the deliberate error the editing test fixes: a misspelt constant
TYPO = "FAST_REFUND_LIMT"


def _need_chromium() -> None:
    missing = None
    if not CHROMIUM.exists():
        missing = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (it is in the dev extra)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; CI must run the browser tests (.ci/run installs it)")
        pytest.skip(missing)


def changed_version() -> str:
    """The shipped policy with refund-only's review window cut to 24h and the consumer's
    withdrawal from the merchant's review removed (a breaking change)."""
    text = POLICY.read_text(encoding="utf-8")
    review = "after REVIEW_WINDOW -> refunded emit refund(amount: order.amount)"
    withdraw = '    on withdraw -> withdrawn cite "1. the consumer withdraws"\n'
    assert text.count(review) == 1 and text.count(withdraw) == 1
    return text.replace(review, "after 24h -> refunded emit refund(amount: order.amount)").replace(
        withdraw, ""
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository whose HEAD holds the shipped policy, and v2/ a changed version,
    for the comparison."""
    root = tmp_path_factory.mktemp("studio") / "policies"
    root.mkdir()
    shutil.copy(POLICY, root / POLICY.name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "shipped"], cwd=root, check=True)
    (root / "v2").mkdir()
    (root / "v2" / POLICY.name).write_text(changed_version(), encoding="utf-8")
    return root


@pytest.fixture
def broken(folder: Path) -> Iterator[Path]:
    """The folder's policy with a deliberate error (a misspelt constant), put back as
    shipped afterwards whatever happened, so no other test depends on this one."""
    path = folder / POLICY.name
    text = POLICY.read_text(encoding="utf-8")
    assert text.count("order.amount < FAST_REFUND_LIMIT") == 1
    path.write_text(
        text.replace("order.amount < FAST_REFUND_LIMIT", f"order.amount < {TYPO}"),
        encoding="utf-8",
    )
    yield path
    path.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def studio(folder: Path) -> Iterator[str]:
    """The URL of `rulekit studio FOLDER` running in a subprocess (port 0: a free one)."""
    _need_chromium()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("rulekit")),
            "studio",
            str(folder),
            "--no-open",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=folder,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"http://\S+", line)
        assert found, f"rulekit studio did not say where it listens: {line!r}"
        yield found.group(0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(studio: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: RULEKIT_STUDIO_SCREENSHOTS, or a temporary folder."""
    named = os.environ.get("RULEKIT_STUDIO_SCREENSHOTS")
    path = Path(named) if named else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
