"""The dashboard's sandboxes and webhooks sections as plain HTTP sees them (JavaScript off),
and the control-plane calls their buttons make."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.conftest import AppFactory, advance
from tests.dashboard import flows
from tests.dashboard.test_page import UI, page, resource_row

SINK = "http://localhost/_sim/sink"
START = "2027-01-01T00:00:00Z"
DEFAULT_NOW = "2026-03-09T08:14:08Z"


def create_sandbox(client: TestClient, name: str = "qa") -> str:
    response = client.post(
        "/_sim/sandboxes", json={"name": name, "clock": "manual", "start": START, "seed": 3}
    )
    assert response.status_code == 201, response.text
    sandbox_id: str = response.json()["id"]
    return sandbox_id


def sandbox_row(html: str, sandbox_id: str) -> str:
    match = re.search(rf'<tr class="sandbox[^"]*" data-id="{sandbox_id}".*?</tr>', html, re.S)
    assert match, f"sandbox {sandbox_id} not on the page"
    return match.group(0)


def row_now(row: str) -> str:
    match = re.search(r'<time class="sandbox-now" datetime="([^"]+)">', row)
    assert match, row
    return match.group(1)


def attempt_rows(html: str) -> list[str]:
    return re.findall(r'<tr class="attempt .*?</tr>', html, re.S)


def cell(row: str, name: str) -> str:
    match = re.search(rf'<td class="{name}">(.*?)</td>', row, re.S)
    assert match, (name, row)
    return match.group(1).strip()


@pytest.fixture
def sandboxed(app: Starlette) -> Iterator[tuple[TestClient, TestClient, str]]:
    """A client at the app's root, one at a new sandbox's prefix, and the sandbox's id."""
    with TestClient(app) as client:
        sandbox_id = create_sandbox(client)
        inside = TestClient(app, base_url=f"http://testserver/sandboxes/{sandbox_id}")
        yield client, inside, sandbox_id


def test_a_created_sandbox_appears_with_its_clock(client: TestClient) -> None:
    html = page(client)
    assert sandbox_row(html, "default")  # the app's own, always listed
    sandbox_id = create_sandbox(client)
    html = page(client)
    default = sandbox_row(html, "default")
    row = sandbox_row(html, sandbox_id)
    assert row_now(default) == DEFAULT_NOW
    assert row_now(row) == START
    assert '<span class="badge sandbox-kind">manual</span>' in row
    assert " qa</td>" in row
    assert f'data-control="/_sim/sandboxes/{sandbox_id}"' in row
    assert f'href="/_sim/ui?sandbox={sandbox_id}">view</a>' in row
    assert 'data-control="/_sim"' in default
    assert 'class="sandbox shown"' in default  # the page shows the default
    for label in ("by one minute", "by one hour", "to its next due event"):
        assert f'aria-label="advance {sandbox_id} {label}"' in row

    assert client.delete(f"/_sim/sandboxes/{sandbox_id}").status_code == 200
    assert f'data-id="{sandbox_id}"' not in page(client)


def test_advancing_a_sandbox_from_its_row_moves_only_its_clock(client: TestClient) -> None:
    sandbox_id = create_sandbox(client)
    other = create_sandbox(client, "other")
    row = sandbox_row(page(client), sandbox_id)
    control = re.search(r'data-control="([^"]+)"', row)
    hour = re.search(r'data-row-advance="(\d+)"[^>]*>\+1 h<', row)
    assert control
    assert hour
    # What the row's +1 h button calls.
    moved = client.post(f"{control.group(1)}/clock/advance", json={"seconds": int(hour.group(1))})
    assert moved.status_code == 200, moved.text
    html = page(client)
    assert row_now(sandbox_row(html, sandbox_id)) == "2027-01-01T01:00:00Z"
    assert row_now(sandbox_row(html, other)) == START
    assert row_now(sandbox_row(html, "default")) == DEFAULT_NOW
    assert f'<time id="clock-now" datetime="{DEFAULT_NOW}">' in html
    shown = page(client, f"?sandbox={sandbox_id}")
    assert '<time id="clock-now" datetime="2027-01-01T01:00:00Z">' in shown
    assert 'class="sandbox shown"' in sandbox_row(shown, sandbox_id)


def test_a_sandbox_row_offers_its_own_next_due_event(
    sandboxed: tuple[TestClient, TestClient, str],
) -> None:
    client, inside, sandbox_id = sandboxed
    before = sandbox_row(page(client), sandbox_id)
    batch_id = flows.check_batch(inside)
    row = sandbox_row(page(client), sandbox_id)
    due = re.search(r'data-due="([^"]*)"', row)
    assert due
    assert due.group(1)
    assert re.search(r'data-due="([^"]*)"', before) != due  # the new batch is what is due
    # What the row's "next due" button calls: that batch is done, the default's are not.
    moved = client.post(f"/_sim/sandboxes/{sandbox_id}/clock/set", json={"now": due.group(1)})
    assert moved.status_code == 200, moved.text
    shown = page(client, f"?sandbox={sandbox_id}")
    assert '<td class="status">completed</td>' in resource_row(shown, batch_id)
    assert row_now(sandbox_row(shown, "default")) == DEFAULT_NOW


def test_the_sandbox_page_shows_its_own_providers_resources_faults_and_journal(
    sandboxed: tuple[TestClient, TestClient, str],
) -> None:
    client, inside, sandbox_id = sandboxed
    batch_id = flows.check_batch(inside)
    fault = {"provider": "check", "operation": "get_batch", "kind": "status", "status": 503}
    assert client.post(f"/_sim/sandboxes/{sandbox_id}/faults", json=fault).status_code == 201

    html = page(client, f"?sandbox={sandbox_id}")
    base = f"/sandboxes/{sandbox_id}"
    assert f'data-control="/_sim/sandboxes/{sandbox_id}"' in html
    assert f"http://testserver{base}/check</code>" in html
    assert f'href="{base}/check/v1/batch/{batch_id}"' in resource_row(html, batch_id)
    assert 'data-operation="create_batch"' in html
    assert '<tr class="fault"' in html
    assert f'<input type="hidden" name="sandbox" value="{sandbox_id}">' in html
    assert f"?sandbox={sandbox_id}&amp;check=all#journal" in html

    default = page(client)
    assert f'data-id="{batch_id}"' not in default
    assert 'data-operation="create_batch"' not in default
    assert "No fault armed." in default

    live = client.get(f"{UI}/live?sandbox={sandbox_id}").json()
    assert 'data-operation="create_batch"' in live["rows"]
    assert f"{base}/check</code>" in live["sections"]["providers"]


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("?sandbox=0123456789abcdef", 404, "no sandbox '0123456789abcdef'"),
        ("?sandbox=../x", 400, "sandbox must be a sandbox id"),
    ],
)
def test_an_unknown_or_malformed_sandbox_gets_a_clear_answer(
    client: TestClient, query: str, status: int, message: str
) -> None:
    response = client.get(f"{UI}{query}")
    assert response.status_code == status
    assert message in response.text
    live = client.get(f"{UI}/live{query}")
    assert live.status_code == status
    assert message in live.json()["error"]


def create_check_batch(client: TestClient, webhook_url: str) -> str:
    response = client.post(
        "/check/v1/batch",
        headers={"Authorization": f"Bearer {flows.CHECK_KEY}"},
        json={"items": [{"content": "A"}, {"content": "B"}], "webhookUrl": webhook_url},
    )
    assert response.status_code == 202, response.text
    batch_id: str = response.json()["id"]
    return batch_id


def test_a_webhook_delivery_shows_and_resend_adds_an_attempt(client: TestClient) -> None:
    assert "No webhook sent yet." in page(client)
    create_check_batch(client, f"{SINK}/dash")
    advance(client, 3600)  # the batch completes: its event falls due and is delivered
    [row] = attempt_rows(page(client))
    event = re.search(r'data-event="(evt_[^"]+)"', row)
    assert event
    assert "<td>batch.completed</td>" in row
    assert cell(row, "target") == f"<code>{SINK}/dash</code>"
    assert cell(row, "attempt-number") == "1"
    assert cell(row, "outcome") == "delivered"
    assert cell(row, "status") == "200"
    assert cell(row, "latency").endswith(" ms")
    assert cell(row, "error") == ""
    assert "signature" not in row
    assert "v1=" not in row
    assert f'class="js-only resend" hidden data-event="{event.group(1)}"' in row

    # What the row's Resend button calls.
    resent = client.post(f"/_sim/webhooks/{event.group(1)}/resend")
    assert resent.status_code == 200, resent.text
    rows = attempt_rows(page(client))
    assert len(rows) == 2
    assert all(f'data-event="{event.group(1)}"' in r for r in rows)
    assert len(client.get("/_sim/sink/dash").json()["received"]) == 2


def test_failed_attempts_show_their_status_error_and_retry(client: TestClient) -> None:
    create_check_batch(client, f"{SINK}/down?status=500")
    advance(client, 3600)
    rows = attempt_rows(page(client))
    newest = rows[0]
    assert cell(newest, "outcome") == "failed"
    assert cell(newest, "status") == "500"
    assert "answered 500" in cell(newest, "error")
    assert "next attempt at" in cell(newest, "error")
    numbers = [int(cell(r, "attempt-number")) for r in rows]
    assert numbers == sorted(numbers, reverse=True)  # newest first


def test_with_a_control_token_sandboxes_and_webhooks_need_it(app_factory: AppFactory) -> None:
    token = "s3cret-token-for-ui"
    app = app_factory(control_token=token)
    with TestClient(app, headers={"X-Bulksim-Token": token}) as client:
        sandbox_id = create_sandbox(client)
        create_check_batch(client, f"{SINK}/dash")
        advance(client, 3600)
        del client.headers["X-Bulksim-Token"]
        locked = page(client, f"?sandbox={sandbox_id}")
        assert f'data-id="{sandbox_id}"' not in locked
        assert '<tr class="attempt' not in locked
        assert f'data-control="/_sim/sandboxes/{sandbox_id}"' in locked  # for the script
        assert page(client, "?sandbox=0123456789abcdef")  # existence is not told without it
        assert client.get(f"{UI}/live").status_code == 401

        live = client.get(f"{UI}/live", headers={"X-Bulksim-Token": token}).json()
        assert f'data-id="{sandbox_id}"' in live["sections"]["sandboxes"]
        assert '<tr class="attempt delivered"' in live["sections"]["webhooks"]
        assert token not in str(live)
