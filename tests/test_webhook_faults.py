"""Delivery faults, scheduled through ``/_sim/faults`` and seen at the receiver (the sink):
duplicate, out of order, late, dropped, wrong signature, stale timestamp, slow receiver.
Signatures are checked with ``hmac`` per the documented algorithm."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from starlette.testclient import TestClient

from tests.test_webhooks import (
    SINK,
    advance,
    attempts,
    check_auth,
    create_check_batch,
    org_secret,
    received,
)

Body = dict[str, Any]


def arm(client: TestClient, kind: str, **fields: object) -> Body:
    response = client.post("/_sim/faults", json={"provider": "check", "kind": kind, **fields})
    assert response.status_code == 201, response.text
    body: Body = response.json()
    return body


def poll_until_done(client: TestClient, batch_id: str) -> Body:
    """A polling client: one second at a time until the batch is no longer processing."""
    for _ in range(600):
        advance(client, 1)
        response = client.get(f"/check/v1/batch/{batch_id}", headers=check_auth())
        assert response.status_code == 200, response.text
        batch: Body = response.json()
        if batch["status"] != "processing":
            return batch
    raise AssertionError("the batch never finished")


def signed_parts(entry: Body) -> dict[str, str]:
    header = entry["headers"]["x-check-signature"]
    return dict(part.split("=", 1) for part in header.split(","))


def genuine(client: TestClient, entry: Body) -> bool:
    """Whether the entry's X-Check-Signature is the HMAC of "<t>.<raw body>" by the secret."""
    parts = signed_parts(entry)
    expected = hmac.new(
        org_secret(client).encode(), f"{parts['t']}.{entry['body']}".encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(parts["v1"], expected)


def event_ids(entries: list[Body]) -> list[str]:
    return [json.loads(entry["body"])["id"] for entry in entries]


def test_duplicate_sends_the_same_signed_event_twice(client: TestClient) -> None:
    arm(client, "webhook_duplicate")
    batch = create_check_batch(client, f"{SINK}/dup")
    poll_until_done(client, batch["id"])
    first, second = received(client, "dup")
    assert first["body"] == second["body"]
    assert first["headers"]["x-check-signature"] == second["headers"]["x-check-signature"]
    assert genuine(client, first)
    made = attempts(client)
    assert [(a["attempt"], a["outcome"], a["fault"]) for a in made] == [
        (1, "delivered", "webhook_duplicate"),
        (1, "delivered", "webhook_duplicate"),
    ]
    advance(client, 86400)  # spent: nothing more arrives
    assert len(received(client, "dup")) == 2


def test_out_of_order_holds_an_event_back_until_the_next_one_is_sent(client: TestClient) -> None:
    arm(client, "webhook_out_of_order")
    earlier = create_check_batch(client, f"{SINK}/order")
    advance(client, 1)
    later = create_check_batch(client, f"{SINK}/order")
    advance(client, 3600)
    arrived = [json.loads(entry["body"])["data"]["id"] for entry in received(client, "order")]
    assert arrived == [later["id"], earlier["id"]]
    assert all(genuine(client, entry) for entry in received(client, "order"))
    outcomes = [(a["outcome"], a["fault"]) for a in attempts(client)]
    assert ("held", "webhook_out_of_order:3600000ms") in outcomes


def test_out_of_order_with_no_event_after_it_is_sent_when_the_hold_ends(client: TestClient) -> None:
    arm(client, "webhook_out_of_order", latency_ms=600_000)
    batch = create_check_batch(client, f"{SINK}/alone")
    poll_until_done(client, batch["id"])
    advance(client, 599)
    assert received(client, "alone") == []
    advance(client, 1)
    [entry] = received(client, "alone")
    assert json.loads(entry["body"])["data"]["id"] == batch["id"]


def test_late_arrives_after_a_polling_client_has_seen_the_result(client: TestClient) -> None:
    arm(client, "webhook_late", latency_ms=120_000)
    batch = create_check_batch(client, f"{SINK}/late")
    done = poll_until_done(client, batch["id"])
    assert done["status"] == "completed"
    assert received(client, "late") == []  # the poll knows; the webhook has not come
    advance(client, 119)
    assert received(client, "late") == []
    advance(client, 1)
    [entry] = received(client, "late")
    data = json.loads(entry["body"])["data"]
    assert (data["id"], data["status"], data["completedAt"]) == (
        done["id"],
        "completed",
        done["completedAt"],
    )
    assert genuine(client, entry)
    assert [(a["outcome"], a["fault"]) for a in attempts(client)] == [
        ("late", "webhook_late:120000ms"),
        ("delivered", None),
    ]


def test_dropped_never_arrives_and_is_not_retried(client: TestClient) -> None:
    arm(client, "webhook_drop")
    batch = create_check_batch(client, f"{SINK}/gone")
    assert poll_until_done(client, batch["id"])["status"] == "completed"
    advance(client, 7 * 86400)
    assert received(client, "gone") == []
    [attempt] = attempts(client)
    assert attempt["outcome"] == "dropped"
    assert attempt["fault"] == "webhook_drop"
    assert attempt["next_attempt"] is None


def test_wrong_signature_does_not_verify_and_the_next_event_does(client: TestClient) -> None:
    arm(client, "webhook_bad_signature")
    create_check_batch(client, f"{SINK}/sig")
    advance(client, 1)
    create_check_batch(client, f"{SINK}/sig")
    advance(client, 3600)
    spoiled, fine = received(client, "sig")
    assert not genuine(client, spoiled)
    assert genuine(client, fine)
    # Only the MAC is wrong: the timestamp is as current as the genuine one's.
    assert abs(int(signed_parts(spoiled)["t"]) - int(signed_parts(fine)["t"])) <= 1


def test_stale_timestamp_is_signed_genuinely_but_old(client: TestClient) -> None:
    arm(client, "webhook_stale_timestamp", latency_ms=900_000)
    create_check_batch(client, f"{SINK}/stale")
    advance(client, 1)
    create_check_batch(client, f"{SINK}/stale")
    advance(client, 3600)
    stale, fresh = received(client, "stale")
    assert genuine(client, stale)
    assert genuine(client, fresh)
    # Both were signed in one advance: the stale one's t is 15 minutes behind.
    behind = int(signed_parts(fresh)["t"]) - int(signed_parts(stale)["t"])
    assert 900 <= behind <= 901


def test_slow_receiver_counts_as_failed_and_is_retried(client: TestClient) -> None:
    arm(client, "webhook_slow")
    batch = create_check_batch(client, f"{SINK}/slow")
    poll_until_done(client, batch["id"])
    assert len(received(client, "slow")) == 1  # it got there, but the answer came too late
    made = attempts(client)
    assert [(a["outcome"], a["status"], a["fault"]) for a in made] == [
        ("failed", 200, "webhook_slow")
    ]
    assert "timeout" in made[0]["error"]
    advance(client, 5)  # the first retry of the schedule
    first, again = received(client, "slow")
    assert first["body"] == again["body"]
    assert [a["outcome"] for a in attempts(client)] == ["failed", "delivered"]


def test_a_webhook_fault_never_strikes_a_request(client: TestClient) -> None:
    arm(client, "webhook_drop", count=1)
    response = client.get("/check/v1/batch", headers=check_auth())
    assert response.status_code == 200, response.text
    [fault] = client.get("/_sim/faults").json()["faults"]
    assert fault["remaining"] == 1
    assert fault["hits"] == 0


def test_a_request_fault_never_strikes_a_delivery(client: TestClient) -> None:
    create_check_batch(client, f"{SINK}/plain")
    arm(client, "status", status=500, count=1)
    advance(client, 3600)
    [entry] = received(client, "plain")
    assert genuine(client, entry)
    [fault] = client.get("/_sim/faults").json()["faults"]
    assert fault["remaining"] == 1


def test_bad_webhook_fault_requests_get_a_clear_error(client: TestClient) -> None:
    response = client.post(
        "/_sim/faults",
        json={"provider": "check", "kind": "webhook_drop", "operation": "get_batch"},
    )
    assert response.status_code == 400
    assert "operation is *" in response.json()["error"]
    response = client.post(
        "/_sim/faults", json={"provider": "check", "kind": "webhook_late", "latency_ms": -1}
    )
    assert response.status_code == 400
    assert "latency_ms" in response.json()["error"]
