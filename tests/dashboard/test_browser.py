"""The dashboard in a real browser: Playwright driving the system's Chromium.

Playwright's own browser download cannot be relied on, so these tests drive Debian's
``chromium`` (``scripts/system-packages.sh``, run by ``make test``, installs it as root when
missing) and skip, saying so, when it is not there. Screenshots go to ``test-artifacts/``;
``BULKSIM_DOCS_SCREENSHOT=1`` also refreshes ``docs/dashboard.png``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from simulator import ManualClock, Settings, create_app
from simulator.server import running_in_thread
from tests.conftest import START
from tests.dashboard import flows

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="no Chromium at /usr/bin/chromium: scripts/system-packages.sh installs it as root",
)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(
    playwright: Playwright, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrowserContext]:
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data dir
    context = launch(playwright, profile, javascript=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        yield context
    finally:
        context.close()


def launch(playwright: Playwright, profile: Path, *, javascript: bool) -> BrowserContext:
    return playwright.chromium.launch_persistent_context(
        profile,
        executable_path=CHROMIUM,
        headless=True,
        args=ARGS,
        viewport={"width": 1280, "height": 900},
        java_script_enabled=javascript,
    )


@pytest.fixture
def origin() -> Iterator[str]:
    app = create_app(Settings(seed=7), clock=ManualClock(START))
    with running_in_thread(app) as served:
        yield served


@pytest.fixture
def page(browser: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    tab = browser.new_page()
    tab.set_default_timeout(15_000)
    try:
        yield tab
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
        tab.close()


def api(origin: str) -> httpx.Client:
    return httpx.Client(base_url=origin, timeout=30)


def test_a_batch_created_through_the_api_appears(origin: str, page: Page) -> None:
    from playwright.sync_api import expect

    page.goto(f"{origin}/_sim/ui")
    expect(page.locator("#live")).to_be_visible()
    expect(page.get_by_text("JavaScript is off")).to_be_hidden()
    with api(origin) as client:
        batch_id = flows.check_batch(client)
    expect(page.locator('#journal-rows .entry[data-operation="create_batch"]')).to_have_count(1)
    row = page.locator(f'tr.resource[data-id="{batch_id}"]')
    expect(row.locator(".status")).to_have_text("processing")
    expect(row.locator("progress")).to_have_attribute("value", "0")
    expect(row.locator(".count")).to_have_text("0/3")


def test_the_clock_button_moves_the_clock_and_the_progress_bar_fills(
    origin: str, page: Page
) -> None:
    from playwright.sync_api import expect

    with api(origin) as client:
        batch_id = flows.check_batch(client)
    page.goto(f"{origin}/_sim/ui")
    row = page.locator(f'tr.resource[data-id="{batch_id}"]')
    expect(row.locator("progress")).to_have_attribute("value", "0")
    expect(page.locator("#clock-now")).to_have_text("2026-03-09T08:14:08Z")
    page.get_by_role("button", name="+1 min").click()
    expect(page.locator("#clock-now")).to_have_text("2026-03-09T08:15:08Z")
    page.get_by_role("button", name="+1 h").click()
    expect(page.locator("#clock-now")).to_have_text("2026-03-09T09:15:08Z")
    # No poll in between: the bar shows what the provider would answer now.
    expect(row.locator("progress")).to_have_attribute("value", "3")
    expect(row.locator(".status")).to_have_text("completed")


def test_the_next_due_button_finishes_the_soonest_batch(origin: str, page: Page) -> None:
    from playwright.sync_api import expect

    with api(origin) as client:
        process = flows.passcreator_process(client, passes=2)  # done 40 ms after it starts
        request_id = flows.deepvue_batch(client, flows.deepvue_headers(client))
    page.goto(f"{origin}/_sim/ui")
    soonest = page.locator(f'tr.resource[data-id="{process}"]')
    expect(soonest.locator(".count")).to_have_text("0/2")
    expect(page.locator("#next-due code")).to_have_text(process)
    page.get_by_role("button", name="to the next due event").click()
    expect(soonest.locator(".count")).to_have_text("2/2")
    expect(soonest.locator(".status")).to_have_text("finished")
    expect(page.locator("#clock-message")).to_have_text("now 2026-03-09T08:14:08Z")
    later = page.locator(f'tr.resource[data-id="{request_id}"]')
    expect(later.locator(".count")).to_have_text("0/2")


def test_a_fault_armed_with_the_form_fails_the_next_request(origin: str, page: Page) -> None:
    from playwright.sync_api import expect

    with api(origin) as client:
        batch_id = flows.check_batch(client)
        page.goto(f"{origin}/_sim/ui")
        form = page.locator("#fault-form")
        form.locator('select[name="provider"]').select_option("check")
        form.locator('select[name="operation"]').select_option("get_batch")
        form.locator('select[name="kind"]').select_option("error")
        form.locator('select[name="error"]').select_option("BatchNotFound")
        form.get_by_role("button", name="Arm").click()
        expect(page.locator("#fault-message")).to_have_text("armed fault #1")
        expect(page.locator('tr.fault[data-id="1"]')).to_contain_text("BatchNotFound")
        assert flows.check_poll(client, batch_id).status_code == 404
    struck = page.locator('#journal-rows .entry[data-operation="get_batch"]')
    expect(struck.locator(".status")).to_have_text("404")
    expect(struck.locator(".badge.fault")).to_have_text("fault error:BatchNotFound")
    expect(page.locator("#faults")).to_contain_text("No fault armed.")


def test_a_secret_is_shown_masked_and_only_copied_on_request(origin: str, page: Page) -> None:
    from playwright.sync_api import expect

    page.goto(f"{origin}/_sim/ui")
    with api(origin) as client:
        headers = flows.deepvue_headers(client)
        flows.deepvue_batch(client, headers)
    entry = page.locator('#journal-rows .entry[data-operation="authorize"]')
    entry.locator("summary").click()
    expect(entry.locator("pre.body").first).to_have_text(
        "client_id=deepvue_test_client&client_secret=***4c1a"
    )
    submit = page.locator('#journal-rows .entry[data-operation="submit_upi_basic_batch"]')
    submit.locator("summary").click()
    expect(submit.locator("pre.headers").first).to_contain_text("x-api-key: ***4c1a")
    token = headers["Authorization"].removeprefix("Bearer ")
    for secret in (flows.DEEPVUE_SECRET, token):
        assert secret not in page.content()
    card = page.locator('.provider[data-provider="deepvue"]')
    expect(card.locator('tr[data-path="client_secret"] code.secret')).to_have_text("***4c1a")
    card.locator('button.copy[data-path="client_secret"]').click()
    expect(page.locator("#copy-status")).to_have_text("copied deepvue client_secret")
    assert page.evaluate("navigator.clipboard.readText()") == flows.DEEPVUE_SECRET
    assert flows.DEEPVUE_SECRET not in page.content()


def test_the_page_asks_for_the_control_token_and_keeps_it_in_the_tab(
    browser: BrowserContext, page: Page
) -> None:
    from playwright.sync_api import expect

    app = create_app(Settings(seed=7, control_token="tab-only-token"), clock=ManualClock(START))
    with running_in_thread(app) as served:
        page.goto(f"{served}/_sim/ui")
        expect(page.locator("#token-form")).to_be_visible()
        expect(page.locator('[data-section="providers"]')).to_be_empty()
        page.locator("#token-input").fill("wrong")
        page.get_by_role("button", name="Use").click()
        expect(page.locator("#token-message")).to_have_text("That token was refused.")
        page.locator("#token-input").fill("tab-only-token")
        page.get_by_role("button", name="Use").click()
        expect(page.locator('.provider[data-provider="check"]')).to_be_visible()
        page.get_by_role("button", name="+1 min").click()
        expect(page.locator("#clock-now")).to_have_text("2026-03-09T08:15:08Z")
        assert page.evaluate("sessionStorage.getItem('bulksim-control-token')") == "tab-only-token"
        assert page.evaluate("localStorage.length") == 0
        assert browser.cookies() == []
        other = browser.new_page()
        try:
            other.goto(f"{served}/_sim/ui")
            expect(other.locator("#token-form")).to_be_visible()
            assert other.evaluate("sessionStorage.length") == 0
        finally:
            other.close()


def test_a_sandbox_s_hour_button_and_a_webhook_s_resend(origin: str, page: Page) -> None:
    from playwright.sync_api import expect

    with api(origin) as client:
        created = client.post(
            "/_sim/sandboxes", json={"clock": "manual", "start": "2027-01-01T00:00:00Z"}
        )
        assert created.status_code == 201, created.text
        sandbox_id = created.json()["id"]
        batch = client.post(
            "/check/v1/batch",
            headers={"Authorization": f"Bearer {flows.CHECK_KEY}"},
            json={"items": [{"content": "A"}], "webhookUrl": "http://localhost/_sim/sink/ui"},
        )
        assert batch.status_code == 202, batch.text
        advanced = client.post("/_sim/clock/advance", json={"seconds": 3600})
        assert advanced.status_code == 200, advanced.text
    page.goto(f"{origin}/_sim/ui")
    row = page.locator(f'tr.sandbox[data-id="{sandbox_id}"]')
    expect(row.locator(".sandbox-now")).to_have_text("2027-01-01T00:00:00Z")
    row.get_by_role("button", name=f"advance {sandbox_id} by one hour").click()
    expect(row.locator(".sandbox-now")).to_have_text("2027-01-01T01:00:00Z")
    expect(page.locator("#sandbox-message")).to_have_text(f"{sandbox_id} now 2027-01-01T01:00:00Z")
    # Only that sandbox's clock moved.
    expect(page.locator("#clock-now")).to_have_text("2026-03-09T09:14:08Z")

    attempts = page.locator("#webhooks tr.attempt")
    expect(attempts).to_have_count(1)
    expect(attempts.first.locator(".outcome")).to_have_text("delivered")
    attempts.first.locator("button.resend").click()
    expect(attempts).to_have_count(2)
    expect(page.locator("#webhook-message")).to_contain_text("resent evt_")
    with api(origin) as client:
        assert len(client.get("/_sim/sink/ui").json()["received"]) == 2


def test_overview_screenshot(origin: str, page: Page) -> None:
    """A page with every section in use: the screenshot the documentation shows."""
    from playwright.sync_api import expect

    with api(origin) as client:
        check_batch = flows.check_batch(client)
        deepvue = flows.deepvue_headers(client)
        flows.deepvue_batch(client, deepvue)
        process = flows.passcreator_process(client, passes=4)
        flows.passcreator_poll(client, process)
        client.post("/_sim/clock/advance", json={"seconds": 5})
        flows.check_poll(client, check_batch)
        flows.passcreator_poll(client, process)
        client.post(
            "/_sim/faults",
            json={"provider": "deepvue", "kind": "rate_limit", "count": 2},
        )
    page.goto(f"{origin}/_sim/ui#clock")  # from the clock down: the providers are long
    # with the seeded examples: Check's 2 batches and fileId, Deepvue's 2, Passcreator's 1
    # and HelloAtlas's 2
    expect(page.locator("tr.resource")).to_have_count(12)
    shot = ARTIFACTS / "overview.png"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=shot, full_page=False)
    assert re.match(rb"\x89PNG", shot.read_bytes())
    if os.environ.get("BULKSIM_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")


def test_with_javascript_off_the_page_reads_and_offers_no_dead_buttons(
    origin: str, playwright: Playwright, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with api(origin) as client:
        batch_id = flows.check_batch(client)
    context = launch(playwright, tmp_path / "profile", javascript=False)
    try:
        tab = context.new_page()
        tab.goto(f"{origin}/_sim/ui")
        expect(tab.get_by_text("JavaScript is off")).to_be_visible()
        expect(tab.locator(f'tr.resource[data-id="{batch_id}"] .count')).to_have_text("0/3")
        expect(tab.locator("#journal-rows .entry")).to_have_count(2)
        expect(tab.locator("#clock-now")).to_have_text("2026-03-09T08:14:08Z")
        for hidden in ("+1 min", "to the next due event", "Arm", "copy"):
            expect(tab.get_by_role("button", name=hidden)).to_have_count(0)
        tab.locator('#journal-filter select[name="provider"]').select_option("check")
        tab.locator('#journal-filter select[name="operation"]').select_option("create_batch")
        tab.get_by_role("button", name="Filter").click()
        expect(tab.locator("#journal-rows .entry")).to_have_count(1)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=ARTIFACTS / "javascript-off.png", full_page=True)
    finally:
        context.close()


def bad_create(client: httpx.Client) -> None:
    """A Check batch create without the body the spec requires."""
    auth = {"Authorization": f"Bearer {flows.CHECK_KEY}"}
    assert client.post("/check/v1/batch", headers=auth, content=b"{}").status_code == 422


def test_the_script_checks_the_rows_the_page_came_without(origin: str, page: Page) -> None:
    from playwright.sync_api import expect

    with api(origin) as client:
        flows.check_batch(client)
        bad_create(client)
    page.goto(f"{origin}/_sim/ui")
    violating = page.locator('#journal-rows .entry[data-seq="3"]')
    expect(violating.locator(".badge.violation")).to_contain_text("spec violation")
    expect(violating).to_have_class(re.compile(r"\bviolation\b"))
    expect(page.locator("#journal-rows .entry.unchecked")).to_have_count(0)
    expect(page.locator("#journal-rows .entry.violation")).to_have_count(1)


def test_with_javascript_off_a_link_checks_the_rows(
    origin: str, playwright: Playwright, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with api(origin) as client:
        bad_create(client)
    context = launch(playwright, tmp_path / "profile", javascript=False)
    try:
        tab = context.new_page()
        tab.goto(f"{origin}/_sim/ui")
        row = tab.locator('#journal-rows .entry[data-seq="1"]')
        expect(row.locator(".badge.violation")).to_have_count(0)
        row.get_by_role("link", name="checking against the spec…").click()
        expect(row.locator(".badge.violation")).to_contain_text("spec violation")
        expect(tab.locator("#journal-rows .entry.unchecked")).to_have_count(0)
        tab.goto(f"{origin}/_sim/ui")  # what was found is kept
        expect(row.locator(".badge.violation")).to_contain_text("spec violation")
    finally:
        context.close()
