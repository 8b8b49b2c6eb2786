"""Passcreator's webhooks through HTTP: subscribe, pass_created on the clock (one per pass),
signatures checked with ``cryptography`` against the served key, retries only when asked,
unsubscribe, pull mode (list, acknowledge, 30 days), and Passcreator's errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.testclient import TestClient

from simulator import ManualClock, MemoryStore, open_store
from tests.providers.passcreator.conftest import BASE, KEY, OTHER_KEY, PASSES, TEMPLATE, advance
from tests.providers.shared_store import clients

SINK = "http://localhost/_sim/sink"
SUBSCRIBE = "/api/hook/subscribe"
PULL = "/api/v3/webhook-payload"


def subscribe(client: TestClient, body: dict[str, object], path: str = SUBSCRIBE) -> Any:
    response = client.post(path, json=body, headers=KEY)
    assert response.status_code == 201, response.text
    return response.json()


def received(client: TestClient, name: str) -> list[dict[str, Any]]:
    response = client.get(f"http://testserver/_sim/sink/{name}")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["received"]
    return entries


def attempts(client: TestClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get("http://testserver/_sim/webhooks").json()["attempts"]
    return [a for a in found if a["provider"] == "passcreator"]


def bulk(client: TestClient, count: int, template: str = TEMPLATE) -> None:
    items = [{"templateId": template, "userProvidedId": f"u{i}"} for i in range(count)]
    response = client.post(PASSES, json={"data": items}, headers=KEY)
    assert response.status_code == 200, response.text


def pulled(client: TestClient) -> list[dict[str, Any]]:
    response = client.get(PULL, headers=KEY)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_subscribe_answers_201_with_the_subscription(passcreator: TestClient) -> None:
    body = subscribe(passcreator, {"target_url": f"{SINK}/pc", "event": "pass_created"})
    assert body == {
        "subscription_url": None,
        "target_url": f"{SINK}/pc",
        "event": "pass_created",
        "retryEnabled": False,
        "signPayload": False,
        "pullMode": False,
    }


def test_a_bulk_create_delivers_one_pass_created_per_pass_as_the_passes_appear(
    passcreator: TestClient,
) -> None:
    subscribe(passcreator, {"target_url": f"{SINK}/pc", "event": "pass_created"})
    bulk(passcreator, 5)  # 50 items a second: one every 20 ms
    assert received(passcreator, "pc") == []
    advance(passcreator, 0.05)
    assert len(received(passcreator, "pc")) == 2  # only the passes that exist by now
    advance(passcreator, 1)
    entries = received(passcreator, "pc")
    payloads = [json.loads(e["body"]) for e in entries]
    assert [p["userProvidedId"] for p in payloads] == [f"u{i}" for i in range(5)]
    first = payloads[0]
    assert first["passId"] == first["identifier"]
    assert first["passTemplate"] == "Membership Card"
    assert first["buyerEmail"] == ""
    assert "signature" not in first
    # The pass the event names is there to read.
    shown = passcreator.get(f"{PASSES}/{first['identifier']}", headers=KEY)
    assert shown.status_code == 200
    assert shown.json()["data"]["createdOn"] == first["createdOn"]
    assert {a["type"] for a in attempts(passcreator)} == {"pass_created"}


def test_a_template_subscription_gets_only_that_templates_passes(passcreator: TestClient) -> None:
    other_template = "36d35326-16f6-4cc2-ae74-28dfc3873be3"
    path = f"{SUBSCRIBE}/{other_template}"
    subscribe(passcreator, {"target_url": f"{SINK}/one", "event": "pass_created"}, path)
    bulk(passcreator, 2)
    bulk(passcreator, 3, other_template)
    advance(passcreator, 10)
    payloads = [json.loads(e["body"]) for e in received(passcreator, "one")]
    assert [p["passTemplate"] for p in payloads] == ["Event Ticket"] * 3


def test_signed_payloads_verify_with_the_served_public_key(passcreator: TestClient) -> None:
    body = {"target_url": f"{SINK}/signed", "event": "pass_created", "signPayload": True}
    subscribe(passcreator, body)
    bulk(passcreator, 20)  # more than are signed inline
    advance(passcreator, 10)
    served = passcreator.get("/api/hook/publickey", headers=KEY)
    assert served.status_code == 200
    key = serialization.load_pem_public_key(served.json()["publicKey"].encode())
    assert isinstance(key, rsa.RSAPublicKey)
    entries = received(passcreator, "signed")
    assert len(entries) == 20
    for entry in entries:
        payload = json.loads(entry["body"])
        signature = bytes.fromhex(payload.pop("signature"))
        signed_data = payload.pop("signedData")
        key.verify(signature, signed_data.encode(), padding.PKCS1v15(), hashes.SHA1())
        assert json.loads(signed_data) == payload
    tampered = json.loads(entries[0]["body"])
    forged = tampered["signedData"].replace(tampered["identifier"], "0" * 8, 1)
    with pytest.raises(InvalidSignature):
        key.verify(
            bytes.fromhex(tampered["signature"]),
            forged.encode(),
            padding.PKCS1v15(),
            hashes.SHA1(),
        )


def test_unsubscribe_stops_the_deliveries_still_to_come(passcreator: TestClient) -> None:
    subscribe(passcreator, {"target_url": f"{SINK}/stop", "event": "pass_created"})
    bulk(passcreator, 10)
    advance(passcreator, 0.05)
    assert len(received(passcreator, "stop")) == 2
    response = passcreator.post(
        "/api/hook/unsubscribe", json={"target_url": f"{SINK}/stop"}, headers=KEY
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"unsubscribed": 1}
    advance(passcreator, 60)
    bulk(passcreator, 3)
    advance(passcreator, 60)
    assert len(received(passcreator, "stop")) == 2
    again = passcreator.post(
        "/api/hook/unsubscribe", json={"target_url": f"{SINK}/stop"}, headers=KEY
    )
    assert again.status_code == 404
    assert again.json()["errors"] == ["Object not found"]


@pytest.mark.parametrize(("retry", "expected"), [(False, [1]), (True, [1, 2, 3, 4])])
def test_a_failing_receiver_is_retried_only_when_retry_is_enabled(
    passcreator: TestClient, retry: bool, expected: list[int]
) -> None:
    target = f"{SINK}/broken?status=500"
    subscribe(passcreator, {"target_url": target, "event": "pass_created", "retryEnabled": retry})
    bulk(passcreator, 1)
    advance(passcreator, 3600)  # the 5 s, 5 min and 30 min retries fall due
    made = attempts(passcreator)
    assert [a["attempt"] for a in made] == expected
    assert {a["outcome"] for a in made} == {"failed"}


def test_pull_mode_lists_acknowledges_and_keeps_unacknowledged_30_days(
    passcreator: TestClient,
) -> None:
    body = subscribe(passcreator, {"event": "pass_created", "pullMode": True, "signPayload": True})
    assert body["pullMode"] is True
    assert body["target_url"] is None
    assert body["signPayload"] is False  # ignored in pull mode
    bulk(passcreator, 4)
    advance(passcreator, 0.05)
    assert len(pulled(passcreator)) == 2  # the passes that exist by now
    advance(passcreator, 1)
    listed = pulled(passcreator)
    assert [p["payload"]["userProvidedId"] for p in listed] == ["u0", "u1", "u2", "u3"]
    assert {p["event"] for p in listed} == {"pass_created"}
    assert "signature" not in listed[0]["payload"]
    assert attempts(passcreator) == []  # nothing pushed
    done = passcreator.post(
        f"{PULL}/acknowledge",
        json={"identifiers": [listed[0]["identifier"], listed[1]["identifier"]]},
        headers=KEY,
    )
    assert done.status_code == 200, done.text
    assert done.json()["data"] == {"acknowledged": 2}
    assert [p["payload"]["userProvidedId"] for p in pulled(passcreator)] == ["u2", "u3"]
    # Another account sees none of them and cannot acknowledge them.
    foreign = passcreator.post(
        f"{PULL}/acknowledge", json={"identifiers": [listed[2]["identifier"]]}, headers=OTHER_KEY
    )
    assert foreign.json()["data"] == {"acknowledged": 0}
    assert passcreator.get(PULL, headers=OTHER_KEY).json()["data"] == []
    advance(passcreator, 29 * 86400)
    assert len(pulled(passcreator)) == 2
    advance(passcreator, 86400)
    assert pulled(passcreator) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"event": "pass_created"}, "target_url is mandatory."),
        ({"target_url": f"{SINK}/x"}, "event is mandatory."),
        ({"target_url": "ftp://x/y", "event": "pass_created"}, "target_url must be an http"),
        ({"target_url": f"{SINK}/x", "event": "nope"}, "event must be one of"),
        ({"target_url": f"{SINK}/x", "event": "pass_created", "retryEnabled": "yes"}, "boolean"),
    ],
)
def test_bad_subscriptions_get_passcreators_400(
    passcreator: TestClient, body: dict[str, object], message: str
) -> None:
    response = passcreator.post(SUBSCRIBE, json=body, headers=KEY)
    assert response.status_code == 400
    answer = response.json()
    assert answer["success"] is False
    assert answer["statusCode"] == 400
    assert answer["errors"][0].startswith(message) or message in answer["errors"][0]


def test_hooks_need_passcreators_auth_and_known_templates(passcreator: TestClient) -> None:
    body = {"target_url": f"{SINK}/x", "event": "pass_created"}
    missing = passcreator.post(SUBSCRIBE, json=body)
    assert missing.status_code == 401
    assert missing.json()["errors"] == [
        "No API key provided. Send your API key in the Authorization header."
    ]
    assert passcreator.get("/api/hook/publickey").status_code == 401
    assert passcreator.get(PULL).status_code == 401
    unknown = passcreator.post(f"{SUBSCRIBE}/not-a-template", json=body, headers=KEY)
    assert unknown.status_code == 404
    not_json = passcreator.post(SUBSCRIBE, content=b"{", headers=KEY)
    assert not_json.status_code == 400
    bad_ack = passcreator.post(f"{PULL}/acknowledge", json={"identifiers": []}, headers=KEY)
    assert bad_ack.status_code == 400
    assert bad_ack.json()["errors"][0].startswith("identifiers must be a list")


def test_on_every_backend_two_apps_on_one_store_share_subscriptions_key_and_payloads(
    clock: ManualClock, store_url: str
) -> None:
    first = open_store(store_url)
    stores = (first, first) if isinstance(first, MemoryStore) else (first, open_store(store_url))
    with clients(BASE, clock, *stores) as (one, two):
        subscribe(one, {"event": "pass_created", "pullMode": True})
        subscribe(one, {"target_url": f"{SINK}/both", "event": "pass_created", "signPayload": True})
        bulk(two, 3)
        advance(two, 10)
        assert [p["payload"]["userProvidedId"] for p in pulled(one)] == ["u0", "u1", "u2"]
        [key_one, key_two] = [
            c.get("/api/hook/publickey", headers=KEY).json()["publicKey"] for c in (one, two)
        ]
        assert key_one == key_two
        key = serialization.load_pem_public_key(key_one.encode())
        assert isinstance(key, rsa.RSAPublicKey)
        entries = received(two, "both") or received(one, "both")
        assert len(entries) == 3
        for entry in entries:
            payload = json.loads(entry["body"])
            key.verify(
                bytes.fromhex(payload["signature"]),
                payload["signedData"].encode(),
                padding.PKCS1v15(),
                hashes.SHA1(),
            )


def test_a_sandbox_has_subscriptions_of_its_own(passcreator: TestClient) -> None:
    made = passcreator.post("http://testserver/_sim/sandboxes", json={"name": "hooks"})
    assert made.status_code == 201, made.text
    sandbox = made.json()["id"]
    inside = f"http://testserver/sandboxes/{sandbox}/passcreator"
    response = passcreator.post(
        f"{inside}{SUBSCRIBE}", json={"event": "pass_created", "pullMode": True}, headers=KEY
    )
    assert response.status_code == 201, response.text
    bulk(passcreator, 2)  # in the default sandbox: no subscription there
    advance(passcreator, 10)
    assert pulled(passcreator) == []
    created = passcreator.post(
        f"{inside}{PASSES}", json={"data": [{"templateId": TEMPLATE}]}, headers=KEY
    )
    assert created.status_code == 200, created.text
    clock_path = f"http://testserver/_sim/sandboxes/{sandbox}/clock/advance"
    assert passcreator.post(clock_path, json={"seconds": 10}).status_code == 200
    listed = passcreator.get(f"{inside}{PULL}", headers=KEY).json()["data"]
    assert len(listed) == 1
