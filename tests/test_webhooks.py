"""Webhooks through HTTP: due on the clock, delivered before the advance returns, signed,
retried on the schedule, refused off loopback, listed and resent on the control plane."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from starlette.applications import Starlette
from starlette.testclient import TestClient

from simulator import ManualClock, MemoryStore, open_store
from simulator.providers.check.models import KEYS_BY_PLAN
from tests.providers.shared_store import clients

SINK = "http://localhost/_sim/sink"
Body = dict[str, Any]


def check_auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS_BY_PLAN['pro']}"}


def create_check_batch(client: TestClient, webhook_url: str) -> Body:
    response = client.post(
        "/check/v1/batch",
        headers=check_auth(),
        json={"items": [{"content": "A"}, {"content": "B"}], "webhookUrl": webhook_url},
    )
    assert response.status_code == 202, response.text
    body: Body = response.json()
    return body


def advance(client: TestClient, seconds: float) -> None:
    response = client.post("/_sim/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text


def received(client: TestClient, name: str) -> list[Body]:
    response = client.get(f"/_sim/sink/{name}")
    assert response.status_code == 200, response.text
    entries: list[Body] = response.json()["received"]
    return entries


def attempts(client: TestClient) -> list[Body]:
    response = client.get("/_sim/webhooks")
    assert response.status_code == 200, response.text
    found: list[Body] = response.json()["attempts"]
    return found


def org_secret(client: TestClient) -> str:
    listing = client.get("/_sim/providers").json()["providers"]
    check = next(p for p in listing if p["name"] == "check")
    secret: str = check["credentials"]["webhook_secrets"]["org_pro_test"]
    return secret


def test_check_batch_completion_is_delivered_once_signed_before_the_advance_returns(
    client: TestClient,
) -> None:
    batch = create_check_batch(client, f"{SINK}/check")
    advance(client, 1)
    assert received(client, "check") == []  # not due yet
    advance(client, 3600)
    [entry] = received(client, "check")
    body = entry["body"]
    payload = json.loads(body)
    assert payload["id"].startswith("evt_")
    assert payload["type"] == "batch.completed"
    assert payload["data"]["id"] == batch["id"]
    assert payload["data"]["status"] == "completed"
    assert payload["data"]["processedItems"] == 2
    assert payload["createdAt"] == payload["data"]["completedAt"]
    # The documented algorithm, checked with hmac: t=<unix>,v1=<hex of "<t>.<raw body>">.
    header = entry["headers"]["x-check-signature"]
    parts = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(
        org_secret(client).encode(), f"{parts['t']}.{body}".encode(), hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    # Once: a further advance sends nothing more.
    advance(client, 86400)
    assert len(received(client, "check")) == 1
    [attempt] = attempts(client)
    assert attempt["event"] == payload["id"]
    assert attempt["outcome"] == "delivered"
    assert attempt["status"] == 200
    assert attempt["attempt"] == 1
    assert attempt["signature"] == header


def test_a_failing_receiver_is_retried_on_the_schedule_as_the_clock_moves(
    client: TestClient,
) -> None:
    create_check_batch(client, f"{SINK}/broken?status=500")
    advance(client, 3600)  # completes, fails, and the 5 s, 5 min and 30 min retries fall due
    made = attempts(client)
    assert [a["attempt"] for a in made] == [1, 2, 3, 4]
    assert {a["outcome"] for a in made} == {"failed"}
    assert {a["status"] for a in made} == {500}
    first = made[0]["due"]
    gaps = [_seconds(made[i + 1]["due"]) - _seconds(made[i]["due"]) for i in range(len(made) - 1)]
    assert gaps == [5, 300, 1800]
    assert made[-1]["next_attempt"] is not None
    advance(client, 7200)  # the last retry (2 h), then the schedule has run out
    made = attempts(client)
    assert [a["attempt"] for a in made] == [1, 2, 3, 4, 5]
    assert made[-1]["next_attempt"] is None
    advance(client, 86400)
    assert len(attempts(client)) == 5
    assert len(received(client, "broken")) == 5
    assert made[0]["due"] == first


def _seconds(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def test_a_non_loopback_target_is_refused_and_recorded_never_retried(client: TestClient) -> None:
    create_check_batch(client, "http://example.com/hook")
    advance(client, 86400)
    [attempt] = attempts(client)
    assert attempt["outcome"] == "refused"
    assert attempt["status"] is None
    assert "example.com" in attempt["error"]
    assert attempt["next_attempt"] is None


def test_an_allow_listed_host_is_not_refused(app_factory: Any) -> None:
    app: Starlette = app_factory(webhook_allow_hosts=("receiver.invalid",))
    with TestClient(app, base_url="http://testserver") as client:
        create_check_batch(client, "http://receiver.invalid/hook")
        advance(client, 60)
        first = attempts(client)[0]
    assert first["outcome"] == "failed"  # tried (the name does not resolve), not refused
    assert first["next_attempt"] is not None


def test_a_cancelled_batch_sends_no_webhook(client: TestClient) -> None:
    batch = create_check_batch(client, f"{SINK}/cancelled")
    response = client.post(f"/check/v1/batch/{batch['id']}/cancel", headers=check_auth())
    assert response.status_code == 200, response.text
    advance(client, 86400)
    assert received(client, "cancelled") == []
    assert attempts(client) == []


def test_resend_delivers_the_event_again_now(client: TestClient) -> None:
    create_check_batch(client, f"{SINK}/again")
    advance(client, 3600)
    [first] = received(client, "again")
    event = json.loads(first["body"])["id"]
    response = client.post(f"/_sim/webhooks/{event}/resend")
    assert response.status_code == 200, response.text
    bodies = [entry["body"] for entry in received(client, "again")]
    assert bodies == [first["body"], first["body"]]
    assert [a["attempt"] for a in attempts(client)] == [1, 1]
    missing = client.post("/_sim/webhooks/evt_nothing/resend")
    assert missing.status_code == 404
    assert "evt_nothing" in missing.json()["error"]


def test_a_sink_name_is_checked(client: TestClient) -> None:
    response = client.post("/_sim/sink/" + "x" * 65, content=b"{}")
    assert response.status_code == 400
    assert "name" in response.json()["error"]


def deepvue_token(client: TestClient) -> dict[str, str]:
    listing = client.get("/_sim/providers").json()["providers"]
    creds = next(p for p in listing if p["name"] == "deepvue")["credentials"]
    response = client.post(
        "/deepvue/v1/authorize",
        data={"client_id": creds["client_id"], "client_secret": creds["client_secret"]},
    )
    assert response.status_code == 200, response.text
    return {
        "Authorization": f"Bearer {response.json()['access_token']}",
        "x-api-key": creds["client_secret"],
    }


def test_deepvue_webhook_url_gets_the_completed_status_body(client: TestClient) -> None:
    headers = deepvue_token(client)
    response = client.post(
        "/deepvue/v1/verification/upi-basic/batch",
        params={"webhook_url": f"{SINK}/deepvue"},
        headers=headers,
        files={"batch_file": ("upi.csv", b"vpa,name\nalice@upi,Alice\nbob@upi,Bob\n")},
    )
    assert response.status_code == 201, response.text
    request_id = response.json()["request_id"]
    advance(client, 1)
    assert received(client, "deepvue") == []
    advance(client, 86400)
    [entry] = received(client, "deepvue")
    payload = json.loads(entry["body"])
    assert payload["data"]["request_id"] == request_id
    assert payload["data"]["status"] == 200
    assert payload["data"]["message"] == "batch processing completed"
    status = client.get(
        "/deepvue/v1/verification/batch-processing-status",
        params={"request_id": request_id},
        headers=deepvue_token(client),  # the first token has expired a day later
    ).json()
    assert payload["data"] == status["data"]
    assert payload["code"] == status["code"] == 200


def test_on_every_backend_a_due_delivery_is_made_once_by_two_apps_on_one_store(
    clock: ManualClock, store_url: str
) -> None:
    first = open_store(store_url)
    stores = (first, first) if isinstance(first, MemoryStore) else (first, open_store(store_url))
    with clients("http://testserver", clock, *stores) as (one, two):
        create_check_batch(one, f"{SINK}/once")
        # The event falls due for both apps (they share the clock); each advance delivers what
        # is due, and whichever takes the event first is the only one to send it.
        advance(two, 3600)
        advance(one, 1)
        advance(two, 86400)
        assert len(received(one, "once")) == 1
        assert len(received(two, "once")) == 1
        assert [a["outcome"] for a in attempts(one)] == ["delivered"]
