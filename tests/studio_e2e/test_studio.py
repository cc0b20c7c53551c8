"""rulekit studio in a real browser, issue #17's walk-through: load the shipped policy,
fix a deliberate error, open a fast-refund case, reject and escalate, let the 48h deadline
fire, export the simulation and run it with `rulekit test`, compare two versions. Each
main view is photographed (docs/images/studio-*.png are chosen from these)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import POLICY, TYPO

CITE_5 = "5. fast refund"
RULEKIT = str(Path(sys.executable).with_name("rulekit"))
TIMEOUT = 15_000
#: the first check of the loaded policy has answered
CHECKED = "document.querySelector('[data-testid=check-status]').dataset.ok !== undefined"


@pytest.fixture
def page(browser: Any, studio: str) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1440, "height": 960})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(TIMEOUT)
    page.goto(studio)
    page.wait_for_function(CHECKED)
    yield page
    page.close()
    assert errors == [], f"the page threw: {errors}"


def fill_facts(page: Any, facts: dict[str, str]) -> None:
    form = page.get_by_test_id("facts-form")
    for name, value in facts.items():
        field = form.locator(f'[data-field="{name}"]')
        if field.evaluate("el => el.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)


def open_case(page: Any, facts: dict[str, str], at: str = "2026-03-01T12:00:00") -> None:
    page.get_by_test_id("tab-run").click()
    fill_facts(page, facts)
    page.get_by_test_id("open-at").fill(at)
    page.get_by_test_id("fact-zone").select_option("Asia/Shanghai")
    page.get_by_test_id("open-case").click()
    page.wait_for_selector('[data-testid="sim-state"]')


def wait_state(page: Any, name: str) -> None:
    page.wait_for_function(f"document.querySelector('[data-state]').dataset.state === '{name}'")


def state(page: Any) -> str:
    text: str = page.get_by_test_id("sim-state").locator("strong").inner_text()
    return text


FAST = {
    "order.amount": "128.00",
    "order.paid_at": "2026-03-01T10:00:00",
    "order.shipped": "false",
    "shop.fast_refund_enabled": "true",
}
SLOW = {
    "order.amount": "500",
    "order.paid_at": "2026-03-01T09:00:00",
    "order.shipped": "true",
    "shop.fast_refund_enabled": "true",
}


def test_the_deliberate_error_is_shown_inline_and_goes_once_fixed(
    broken: Path, page: Any, shots: Path
) -> None:
    status = page.get_by_test_id("check-status")
    assert status.inner_text() == "1 error"
    status.click()  # goes to the problem
    mark = page.locator(".cm-lintRange-error").first
    mark.wait_for()
    assert mark.inner_text() == TYPO
    # the diagnostic, with its code, on hovering the mark
    mark.hover()
    tooltip = page.locator(".cm-tooltip-lint")
    tooltip.wait_for()
    assert "RK" in tooltip.inner_text()
    page.screenshot(path=str(shots / "studio-diagnostic.png"))
    # fix it: select the misspelt name and type the right one
    mark.dblclick()
    page.keyboard.type("FAST_REFUND_LIMIT")
    page.wait_for_function(
        "document.querySelector('[data-testid=check-status]').textContent === 'ok'"
    )
    assert page.locator(".cm-lintRange-error").count() == 0
    page.wait_for_selector("#diagram svg")
    # saving: the file changed on disk meanwhile, so the studio asks before overwriting
    on_disk = broken
    on_disk.write_text(on_disk.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.get_by_test_id("save").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=message]').textContent.startsWith('saved')"
    )
    assert asked and "changed on disk" in asked[0]
    assert on_disk.read_text(encoding="utf-8") == POLICY.read_text(encoding="utf-8")
    page.screenshot(path=str(shots / "studio-edit.png"))


def test_clicking_a_state_jumps_to_its_line(page: Any) -> None:
    page.wait_for_selector("#diagram svg")
    node = page.locator("#diagram .node.clickable", has_text="merchant_rejected").first
    node.click()
    line = page.locator(".cm-activeLine").inner_text()
    assert "state merchant_rejected" in line


def test_a_fast_refund_is_refunded_citing_clause_5(page: Any, shots: Path) -> None:
    open_case(page, FAST)
    assert state(page) == "refunded"
    timeline = page.get_by_test_id("timeline")
    assert CITE_5 in timeline.inner_text()
    assert "✓ shop.fast_refund_enabled" in timeline.inner_text()
    assert "refund(amount=" in page.get_by_test_id("effects").inner_text()
    assert page.locator("#diagram .current").count() == 1
    assert "refunded" in page.locator("#diagram .current").text_content()
    page.screenshot(path=str(shots / "studio-run.png"))


def test_reject_escalate_and_export_the_simulation(page: Any, folder: Path) -> None:
    open_case(page, SLOW)
    assert state(page) == "awaiting_merchant"
    merchant = page.locator('[data-actor="merchant"]')
    merchant.locator('[data-event="reject"] [data-field="reason"]').fill("used")
    page.get_by_test_id("send-merchant-reject").click()
    page.wait_for_function(
        "document.querySelector('[data-state]').dataset.state === 'merchant_rejected'"
    )
    page.get_by_test_id("send-consumer-escalate").click()
    page.wait_for_function(
        "document.querySelector('[data-state]').dataset.state === 'platform_review'"
    )
    text = page.get_by_test_id("timeline").inner_text()
    assert "reject by merchant" in text and "4. either party may escalate" in text
    # the platform's ruling needs a decision: an enum, so a select with its values
    decision = page.locator(
        '[data-actor="platform"] [data-event="rule"] select[data-field="decision"]'
    )
    assert decision.locator("option").all_inner_texts() == ["refund", "reject", "return", "arrange"]
    # download the simulation as a scenario, and `rulekit test` passes it
    page.get_by_test_id("tab-test").click()
    with page.expect_download() as info:
        page.get_by_test_id("export-download").click()
    # saved beside the policy (the scenario names it by a relative path), as a user would
    scenario = folder / f"downloaded_{info.value.suggested_filename}"
    info.value.save_as(scenario)
    assert scenario.suffix == ".yaml"
    run = subprocess.run([RULEKIT, "test", str(scenario)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_deadline_fires_at_its_due_time_and_the_export_passes(
    page: Any, folder: Path, shots: Path
) -> None:
    open_case(page, SLOW)
    assert (
        "REVIEW_WINDOW due 2026-03-03T12:00:00+08:00"
        in page.get_by_test_id("deadlines").inner_text()
    )
    page.get_by_test_id("advance-by").fill("48h")
    page.get_by_test_id("advance-by-go").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=sim-now]').textContent.startsWith('2026-03-03T12')"
    )
    assert state(page) == "awaiting_merchant"  # "within 48h" includes the 48th hour
    page.get_by_test_id("advance-by").fill("1h")
    page.get_by_test_id("advance-by-go").click()
    page.wait_for_function("document.querySelector('[data-state]').dataset.state === 'refunded'")
    fired = page.locator('[data-testid="timeline"] > li[data-kind="deadline"]')
    assert fired.locator(".at").inner_text() == "2026-03-03T12:00:00+08:00"
    assert "48h passed without the merchant" in fired.inner_text()
    fired.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "studio-timeline.png"))
    # save the scenario next to the policy, then run the folder from the Test panel
    page.get_by_test_id("tab-test").click()
    page.get_by_test_id("export-save").click()
    saved = page.get_by_test_id("export-result")
    page.wait_for_function(
        "document.querySelector('[data-testid=export-result]').textContent.startsWith('saved')"
    )
    name = saved.inner_text().removeprefix("saved ").strip()
    exported = folder / name
    assert exported.exists()
    run = subprocess.run([RULEKIT, "test", str(exported)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    page.get_by_test_id("scenario-paths").fill(name)
    page.get_by_test_id("run-scenarios").click()
    page.get_by_test_id("scenario-summary").wait_for()
    assert page.get_by_test_id("scenario-summary").inner_text().endswith("0 failed")
    page.get_by_test_id("scenario-summary").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "studio-test.png"))


def test_a_failing_scenario_opens_its_timeline(page: Any, folder: Path) -> None:
    (folder / "wrong.yaml").write_text(
        f"policy: {POLICY.name}\n"
        "scenarios:\n"
        "  - name: wrong on purpose\n"
        "    workflow: refund_only\n"
        "    at: 2026-03-01T12:00:00+08:00\n"
        "    facts: {order: {amount: 128.00, paid_at: 2026-03-01T10:00:00+08:00, shipped: false},\n"
        "            shop.fast_refund_enabled: true}\n"
        "    steps:\n"
        "      - expect: {state: rejected}\n",
        encoding="utf-8",
    )
    page.get_by_test_id("tab-test").click()
    page.get_by_test_id("scenario-paths").fill("wrong.yaml")
    page.get_by_test_id("run-scenarios").click()
    page.get_by_test_id("scenario-summary").wait_for()
    assert page.get_by_test_id("scenario-summary").inner_text() == "0 passed, 1 failed"
    assert "refunded" in page.get_by_test_id("scenario-timeline").inner_text()


def test_comparing_two_versions_marks_the_diagram(page: Any, shots: Path) -> None:
    page.get_by_test_id("tab-compare").click()
    page.get_by_test_id("old-kind").select_option("git")
    page.get_by_test_id("old-rev").fill("HEAD")
    page.get_by_test_id("old-path").fill(POLICY.name)
    page.get_by_test_id("new-kind").select_option("file")
    page.get_by_test_id("new-path").fill(f"v2/{POLICY.name}")
    page.get_by_test_id("compare").click()
    page.get_by_test_id("diff-summary").wait_for()
    assert "breaking" in page.get_by_test_id("diff-summary").inner_text()
    assert page.locator('[data-breaking="true"]').count() >= 1
    assert "withdraw" in page.get_by_test_id("removed-edges").inner_text()
    page.wait_for_selector("#diagram .changed")
    page.get_by_test_id("diff-summary").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "studio-compare.png"))


def test_the_next_deadline_and_a_time_move_the_clock(page: Any) -> None:
    open_case(page, SLOW)
    page.get_by_test_id("advance-to").fill("2026-03-02T12:00:00")
    page.get_by_test_id("advance-zone").select_option("Asia/Shanghai")
    page.get_by_test_id("advance-to-go").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=sim-now]').textContent"
        " === '2026-03-02T12:00:00+08:00'"
    )
    # an hour later, written in another zone (the server keeps the offset it was given)
    page.get_by_test_id("advance-to").fill("2026-03-02T05:00:00")  # 13:00 in Shanghai
    page.get_by_test_id("advance-zone").select_option("UTC")
    page.get_by_test_id("advance-to-go").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=sim-now]').textContent"
        " === '2026-03-02T05:00:00+00:00'"
    )
    page.get_by_test_id("advance-next").click()
    page.wait_for_function("document.querySelector('[data-state]').dataset.state === 'refunded'")
    fired = page.locator('[data-testid="timeline"] > li[data-kind="deadline"]')
    assert fired.locator(".at").inner_text() == "2026-03-03T12:00:00+08:00"
    # no deadline left: the server's problem is shown, the case unchanged
    page.get_by_test_id("advance-next").click()
    page.wait_for_function("document.querySelector('[data-testid=message]').textContent !== ''")
    assert state(page) == "refunded"


def test_a_refused_event_shows_its_code(page: Any) -> None:
    open_case(page, SLOW)
    page.get_by_test_id("send-consumer-escalate").click()
    wait_state(page, "platform_review")
    # refund-only has no rule for a ruling of "return": the engine refuses it
    rule = page.locator('[data-actor="platform"] [data-event="rule"]')
    rule.locator('[data-field="decision"]').select_option("return")
    page.get_by_test_id("send-platform-rule").click()
    refused = page.get_by_test_id("refused")
    refused.wait_for()
    assert re.fullmatch(r"refused [a-z_]+: .+", refused.inner_text()), refused.inner_text()
    assert state(page) == "platform_review"


def test_clicking_an_edge_jumps_to_its_rule(page: Any) -> None:
    page.wait_for_selector("#diagram svg")
    edge = page.locator("#diagram .edge.clickable", has_text="approve by merchant").first
    edge.scroll_into_view_if_needed()
    edge.locator("text").first.click()
    assert "on approve -> refunded" in page.locator(".cm-activeLine").inner_text()


def test_a_yaml_policy_is_checked_and_drawn(page: Any, folder: Path) -> None:
    (folder / "yaml").mkdir(exist_ok=True)
    shutil.copy(POLICY.with_suffix(".yaml"), folder / "yaml" / POLICY.with_suffix(".yaml").name)
    page.reload()
    page.wait_for_function(CHECKED)
    page.get_by_test_id("policy-select").select_option(f"yaml/{POLICY.stem}.yaml")
    # the YAML mode is on once the file is in the editor; then it is checked and drawn
    page.wait_for_selector('.cm-content[data-language="yaml"]')
    page.wait_for_function(
        "document.querySelector('[data-testid=check-status]').textContent === 'ok'"
    )
    node = page.locator("#diagram .node.clickable", has_text="merchant_rejected").first
    node.wait_for(state="attached")
    node.click()  # the state's line in the YAML file
    yaml_lines = POLICY.with_suffix(".yaml").read_text(encoding="utf-8").splitlines()
    key = yaml_lines.index("      merchant_rejected:") + 1
    assert page.locator(".cm-lineNumbers .cm-activeLineGutter").inner_text() == str(key)
