"""Check's webhook endpoints (the dashboard setting, on the control plane): batch events at
both the batch's ``webhookUrl`` and the endpoints, one verification event per item at the
endpoints that take them, signed per the documented algorithm; deleted endpoints get
nothing; bad input is a clear 400; each sandbox has its own endpoints."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.testclient import TestClient

from simulator.providers.check.models import KEYS_BY_PLAN
from tests.conftest import AppFactory

SINK = "http://localhost/_sim/sink"
ENDPOINTS = "/_sim/providers/check/webhook-endpoints"
Body = dict[str, Any]
ITEMS = [{"content": "The Eiffel Tower is in Paris."}, {"content": "Water boils at 100 C."}]
ITEMS += [{"content": "The moon is made of cheese."}]


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS_BY_PLAN['pro']}"}


def register(client: TestClient, control: str = "/_sim", **body: Any) -> Body:
    response = client.post(f"{control}/providers/check/webhook-endpoints", json=body)
    assert response.status_code == 201, response.text
    made: Body = response.json()
    return made


def create_batch(client: TestClient, base: str = "", webhook_url: str | None = None) -> Body:
    body: Body = {"items": ITEMS}
    if webhook_url is not None:
        body["webhookUrl"] = webhook_url
    response = client.post(f"{base}/check/v1/batch", headers=auth(), json=body)
    assert response.status_code == 202, response.text
    created: Body = response.json()
    return created


def advance(client: TestClient, seconds: float, control: str = "/_sim") -> None:
    response = client.post(f"{control}/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text


def received(client: TestClient, name: str, control: str = "/_sim") -> list[Body]:
    response = client.get(f"{control}/sink/{name}")
    assert response.status_code == 200, response.text
    entries: list[Body] = response.json()["received"]
    return entries


def secret(client: TestClient, control: str = "/_sim") -> str:
    listing = client.get(f"{control}/providers").json()["providers"]
    check = next(p for p in listing if p["name"] == "check")
    found: str = check["credentials"]["webhook_secrets"]["org_pro_test"]
    return found


def verified(entry: Body, key: str) -> Body:
    """The payload, once its X-Check-Signature is checked with hmac: t=<unix>,v1=<hex
    HMAC-SHA256 of "<t>.<raw body>">."""
    parts = dict(part.split("=", 1) for part in entry["headers"]["x-check-signature"].split(","))
    signed = f"{parts['t']}.{entry['body']}".encode()
    expected = hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    payload: Body = json.loads(entry["body"])
    return payload


def test_an_endpoint_gets_the_batch_event_and_one_verification_event_per_item(
    client: TestClient,
) -> None:
    endpoint = register(client, organisation="org_pro_test", url=f"{SINK}/endpoint")
    assert endpoint["id"].startswith("we_")
    assert endpoint["events"] == [
        "batch.completed",
        "batch.failed",
        "verification.completed",
        "verification.failed",
    ]
    assert client.get(ENDPOINTS).json() == {"endpoints": [endpoint]}
    batch = create_batch(client, webhook_url=f"{SINK}/batch")
    advance(client, 1)
    assert received(client, "endpoint") == []
    advance(client, 3600)
    key = secret(client)

    [at_batch] = [verified(e, key) for e in received(client, "batch")]
    assert at_batch["type"] == "batch.completed"
    assert at_batch["data"]["id"] == batch["id"]
    at_endpoint = [verified(e, key) for e in received(client, "endpoint")]
    batch_events = [p for p in at_endpoint if p["type"].startswith("batch.")]
    assert [p["data"] for p in batch_events] == [at_batch["data"]]
    assert batch_events[0]["id"] != at_batch["id"]  # each target has its own event

    verifications = [p for p in at_endpoint if p["type"].startswith("verification.")]
    assert len(verifications) == len(ITEMS)
    assert sorted(p["data"]["itemIndex"] for p in verifications) == [0, 1, 2]
    assert all(p["data"]["batchId"] == batch["id"] for p in verifications)
    assert all(p["id"].startswith("evt_") for p in at_endpoint)
    completed = [p for p in verifications if p["type"] == "verification.completed"]
    assert len(completed) == at_batch["data"]["successCount"]
    # Each one as the results page shows the item, sent when it ended, and before the batch's.
    results = client.get(f"/check/v1/batch/{batch['id']}/results", headers=auth()).json()
    by_index = {item["itemIndex"]: item for item in results["items"]}
    for payload in verifications:
        data = payload["data"]
        assert {k: v for k, v in data.items() if k != "batchId"} == by_index[data["itemIndex"]]
        assert payload["createdAt"] == data["completedAt"]
    assert at_endpoint[-1]["type"] == "batch.completed"


def test_an_endpoint_gets_only_the_events_it_subscribed_to_and_webhook_url_only_batch_events(
    client: TestClient,
) -> None:
    register(
        client,
        key=KEYS_BY_PLAN["pro"],
        url=f"{SINK}/verifications",
        events=["verification.completed", "verification.failed"],
    )
    register(client, organisation="org_pro_test", url=f"{SINK}/batches", events=["batch.completed"])
    register(client, organisation="org_free_test", url=f"{SINK}/other-org")
    create_batch(client, webhook_url=f"{SINK}/batch")
    advance(client, 3600)
    key = secret(client)
    assert {verified(e, key)["type"] for e in received(client, "batch")} == {"batch.completed"}
    assert len(received(client, "batch")) == 1
    types = [verified(e, key)["type"] for e in received(client, "verifications")]
    assert len(types) == len(ITEMS)
    assert all(t.startswith("verification.") for t in types)
    assert [verified(e, key)["type"] for e in received(client, "batches")] == ["batch.completed"]
    assert received(client, "other-org") == []


def test_deleting_an_endpoint_stops_its_deliveries_even_those_already_scheduled(
    client: TestClient,
) -> None:
    endpoint = register(client, organisation="org_pro_test", url=f"{SINK}/gone")
    create_batch(client)
    deleted = client.delete(f"{ENDPOINTS}/{endpoint['id']}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"deleted": endpoint["id"]}
    create_batch(client)
    advance(client, 3600)
    assert received(client, "gone") == []
    assert client.get(ENDPOINTS).json() == {"endpoints": []}
    again = client.delete(f"{ENDPOINTS}/{endpoint['id']}")
    assert again.status_code == 404
    assert endpoint["id"] in again.json()["error"]


def statuses(client: TestClient, batch_id: str) -> list[str]:
    results = client.get(f"/check/v1/batch/{batch_id}/results", headers=auth()).json()
    return [item["status"] for item in results["items"]]


def test_cancelling_a_batch_drops_its_batch_event_and_its_skipped_items_events(
    client: TestClient,
) -> None:
    one_lane = {"provider": "check", "options": {"concurrency": "1"}}
    assert client.post("/_sim/options", json=one_lane).status_code == 200
    register(client, organisation="org_pro_test", url=f"{SINK}/cancel")
    batch = create_batch(client)
    while statuses(client, batch["id"])[0] != "completed":
        advance(client, 0.25)
    cancelled = client.post(f"/check/v1/batch/{batch['id']}/cancel", headers=auth())
    assert cancelled.status_code == 200, cancelled.text
    advance(client, 3600)
    final = statuses(client, batch["id"])
    assert "skipped" in final
    ended = [s for s in final if s in ("completed", "failed")]
    types = [json.loads(e["body"])["type"] for e in received(client, "cancel")]
    assert 1 <= len(types) == len(ended) < len(ITEMS)
    assert all(t.startswith("verification.") for t in types)


def test_bad_endpoint_bodies_are_refused_with_a_clear_400(client: TestClient) -> None:
    cases: list[tuple[Any, str]] = [
        ({"url": f"{SINK}/x"}, '"organisation"'),
        ({"organisation": "org_pro_test", "key": KEYS_BY_PLAN["pro"], "url": f"{SINK}/x"}, "one"),
        ({"organisation": "org_nobody", "url": f"{SINK}/x"}, "organisation must be one of"),
        ({"key": "vfy_nope", "url": f"{SINK}/x"}, "test keys"),
        ({"organisation": "org_pro_test"}, "url is required"),
        ({"organisation": "org_pro_test", "url": "ftp://localhost/x"}, "http"),
        ({"organisation": "org_pro_test", "url": "http://[::1"}, "http"),
        ({"organisation": "org_pro_test", "url": f"{SINK}/x", "events": []}, "non-empty"),
        ({"organisation": "org_pro_test", "url": f"{SINK}/x", "events": "batch.completed"}, "list"),
        (
            {"organisation": "org_pro_test", "url": f"{SINK}/x", "events": ["batch.done"]},
            "batch.done",
        ),
        ({"organisation": "org_pro_test", "url": f"{SINK}/x", "events": [1]}, "unknown event"),
        ({"organisation": "org_pro_test", "url": f"{SINK}/x", "secret": "s"}, "'secret'"),
        ([1, 2], "JSON object"),
    ]
    for body, message in cases:
        response = client.post(ENDPOINTS, json=body)
        assert response.status_code == 400, (body, response.text)
        assert message in response.json()["error"], (body, response.text)
    broken = client.post(ENDPOINTS, content=b"{", headers={"content-type": "application/json"})
    assert broken.status_code == 400
    assert "JSON object" in broken.json()["error"]
    assert client.get(ENDPOINTS).json() == {"endpoints": []}


def test_each_sandbox_has_its_own_endpoints(client: TestClient) -> None:
    made = client.post("/_sim/sandboxes", json={"clock": "manual"})
    assert made.status_code == 201, made.text
    sandbox = made.json()
    control = f"/_sim/sandboxes/{sandbox['id']}"
    base = f"/sandboxes/{sandbox['id']}"
    sink = f"http://localhost{control}/sink"
    endpoint = register(client, control, organisation="org_pro_test", url=f"{sink}/sandboxed")
    assert client.get(f"{control}/providers/check/webhook-endpoints").json() == {
        "endpoints": [endpoint]
    }
    assert client.get(ENDPOINTS).json() == {"endpoints": []}
    assert client.delete(f"{ENDPOINTS}/{endpoint['id']}").status_code == 404

    create_batch(client)  # the default sandbox: no endpoint there
    create_batch(client, base)
    advance(client, 3600)
    advance(client, 3600, control)
    assert received(client, "sandboxed") == []
    entries = received(client, "sandboxed", control)
    key = secret(client, control)
    assert len(entries) == len(ITEMS) + 1
    assert all(verified(e, key)["id"].startswith("evt_") for e in entries)


def test_endpoints_are_kept_in_a_sqlite_store(app_factory: AppFactory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    with TestClient(app_factory(store=url), base_url="http://testserver") as client:
        endpoint = register(
            client, organisation="org_pro_test", url=f"{SINK}/kept", events=["batch.completed"]
        )
    with TestClient(app_factory(store=url), base_url="http://testserver") as client:
        assert client.get(ENDPOINTS).json() == {"endpoints": [endpoint]}
        batch = create_batch(client)
        advance(client, 3600)
        [payload] = [verified(e, secret(client)) for e in received(client, "kept")]
        assert payload["type"] == "batch.completed"
        assert payload["data"]["id"] == batch["id"]


def test_the_events_sent_match_the_specs_webhooks_section(client: TestClient) -> None:
    spec = client.get("/check/openapi.json").json()
    # The spec as one resource: its "#/components/..." references resolve within it.
    registry = Registry().with_resource("urn:check", Resource.from_contents(spec, DRAFT202012))
    resolver = registry.resolver()
    register(client, organisation="org_pro_test", url=f"{SINK}/spec")
    create_batch(client, webhook_url=f"{SINK}/spec")
    advance(client, 3600)
    payloads = [json.loads(e["body"]) for e in received(client, "spec")]
    assert {p["type"] for p in payloads} >= {"batch.completed", "verification.completed"}
    for payload in payloads:
        ref = spec["webhooks"][payload["type"]]["$ref"]
        operation = resolver.lookup(f"urn:check{ref}").contents
        schema = operation["post"]["requestBody"]["content"]["application/json"]["schema"]
        validator = Draft202012Validator({"$ref": f"urn:check{schema['$ref']}"}, registry=registry)
        validator.validate(payload)
