"""POST /api/v3/pass: a single create, a bulk create, item validation and the passes made."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from simulator.providers.passcreator import errors
from tests.conftest import AppFactory
from tests.providers.passcreator.conftest import (
    BASE,
    KEY,
    OTHER,
    OTHER_KEY,
    PASSES,
    SEED_PROCESS,
    TEMPLATE,
    advance,
    bulk_create,
    by_user_id,
    process,
)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
GENERATED_BARCODE = re.compile(r"[0-9a-f]{14}\.[0-9]{8}")


def create_one(client: TestClient, item: dict[str, object], **params: str) -> dict[str, Any]:
    response = client.post(PASSES, params=params, json={"data": item}, headers=KEY)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert (body["statusCode"], body["success"], body["count"]) == (200, True, 1)
    data: dict[str, Any] = body["data"]
    return data


def test_create_pass_single_returns_the_pass(passcreator: TestClient) -> None:
    data = create_one(
        passcreator, {"templateId": TEMPLATE, "userProvidedId": "m-1", "firstname": "Timo"}
    )
    identifier = data.pop("identifier")
    assert UUID.fullmatch(identifier)
    page = f"https://app.passcreator.com/passinstance/{identifier}"
    assert data == {
        "templateId": TEMPLATE,
        "userProvidedId": "m-1",
        # async by default: a generated barcode value is not known when the answer is made.
        "barcodeValue": None,
        "groupingIdentifier": None,
        "voided": False,
        "createdOn": "2026-03-09 08:14:08",
        "modifiedOn": "2026-03-09 08:14:08",
        "downloadPage": page,
        "iPhoneUri": f"{page}/apple",
        "androidUri": f"{page}/google",
        "firstname": "Timo",
    }
    fetched = passcreator.get(f"{PASSES}/{identifier}", headers=KEY)
    assert fetched.status_code == 200
    assert GENERATED_BARCODE.fullmatch(fetched.json()["data"]["barcodeValue"])


def test_create_pass_single_async_false_returns_generated_barcode(
    passcreator: TestClient,
) -> None:
    data = create_one(passcreator, {"templateId": TEMPLATE}, **{"async": "false"})
    assert GENERATED_BARCODE.fullmatch(data["barcodeValue"])
    fetched = passcreator.get(f"{PASSES}/{data['identifier']}", headers=KEY).json()["data"]
    assert fetched["barcodeValue"] == data["barcodeValue"]


def test_create_pass_single_with_barcode_returns_it_even_async(passcreator: TestClient) -> None:
    assert create_one(passcreator, {"templateId": TEMPLATE, "barcodeValue": "X-1"})[
        "barcodeValue"
    ] == ("X-1")


def test_create_pass_single_same_seed_gives_same_identifiers(app_factory: AppFactory) -> None:
    made = []
    for _ in range(2):
        with TestClient(app_factory(seed=11), base_url=BASE) as client:
            made.append(create_one(client, {"templateId": TEMPLATE}, **{"async": "false"}))
    assert made[0] == made[1]


@pytest.mark.parametrize(
    ("item", "messages"),
    [
        ({}, [errors.ITEM_TEMPLATE_ID_MISSING]),
        ({"templateId": ""}, [errors.ITEM_TEMPLATE_ID_MISSING]),
        ({"templateId": 7}, ["templateId must be a string."]),
        ({"templateId": "nope"}, ["Template nope not found."]),
        ({"templateId": "t" * 500}, [f"Template {'t' * 100}... not found."]),
        (
            {"templateId": TEMPLATE, "userProvidedId": 5, "voided": "no"},
            ["userProvidedId must be a string.", "voided must be a boolean."],
        ),
        (
            {"templateId": TEMPLATE, "enforceUniqueUserProvidedId": "yes"},
            ["enforceUniqueUserProvidedId must be a boolean."],
        ),
        (
            {"templateId": TEMPLATE, "address": {"city": "Munich"}},
            ["address must be a string, number, boolean or null."],
        ),
        (
            {"templateId": TEMPLATE, "barcodeValue": "x" * 2001},
            ["barcodeValue must not be longer than 2000 characters."],
        ),
        (
            {"templateId": TEMPLATE, **{f"p{i}": i for i in range(101)}},
            ["A pass can have at most 100 additional properties."],
        ),
        ({"templateId": TEMPLATE, "barcodeValue": "fail:Barcode blocked"}, ["Barcode blocked"]),
        ({"templateId": TEMPLATE, "email": "fail:"}, [errors.ITEM_FAILED]),
        (
            {
                "templateId": TEMPLATE,
                "userProvidedId": "member-0001",
                "enforceUniqueUserProvidedId": True,
            },
            ["userProvidedId member-0001 is already in use."],
        ),
    ],
)
def test_create_pass_single_invalid_item_returns_400_with_its_messages(
    passcreator: TestClient, item: dict[str, object], messages: list[str]
) -> None:
    response = passcreator.post(PASSES, json={"data": item}, headers=KEY)
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "success": False,
        "description": "Bad Request",
        "errors": messages,
        "count": 0,
        "responseMetaData": None,
        "data": [],
    }


def test_create_pass_single_template_of_another_account_is_not_found(
    passcreator: TestClient,
) -> None:
    response = passcreator.post(
        PASSES, json={"data": {"templateId": OTHER.templates[0].identifier}}, headers=KEY
    )
    assert response.status_code == 400
    own = passcreator.post(
        PASSES, json={"data": {"templateId": OTHER.templates[0].identifier}}, headers=OTHER_KEY
    )
    assert own.status_code == 200


def test_create_pass_any_template_accepted_when_option_off(app_factory: AppFactory) -> None:
    app = app_factory(options=(("passcreator.known_templates_only", "false"),))
    with TestClient(app, base_url=BASE) as client:
        assert create_one(client, {"templateId": "my-own"})["templateId"] == "my-own"


def test_create_pass_duplicate_user_id_without_enforce_is_allowed(
    passcreator: TestClient,
) -> None:
    create_one(passcreator, {"templateId": TEMPLATE, "userProvidedId": "member-0001"})
    assert len(by_user_id(passcreator, "member-0001")) == 2


def test_create_pass_computed_fields_sent_are_ignored(passcreator: TestClient) -> None:
    data = create_one(
        passcreator,
        {"templateId": TEMPLATE, "identifier": "mine", "createdOn": "2000-01-01 00:00:00"},
    )
    assert data["identifier"] != "mine"
    assert data["createdOn"] == "2026-03-09 08:14:08"


def test_create_pass_bulk_returns_a_process_identifier(passcreator: TestClient) -> None:
    response = passcreator.post(
        PASSES, json={"data": [{"templateId": TEMPLATE}, {"templateId": TEMPLATE}]}, headers=KEY
    )
    assert response.status_code == 200
    body = response.json()
    identifier = body["data"].pop("identifier")
    assert UUID.fullmatch(identifier)
    assert body == {
        "statusCode": 200,
        "success": True,
        "description": "Success",
        "errors": [],
        "count": 1,
        "responseMetaData": None,
        "data": {},
    }
    assert process(passcreator, identifier)["total"] == 2


def test_create_pass_bulk_failures_keyed_by_user_id_or_index(passcreator: TestClient) -> None:
    items: list[object] = [
        {"templateId": TEMPLATE, "userProvidedId": "ok-1"},
        {"firstname": "no template"},
        {"templateId": "nope", "userProvidedId": "bad-template"},
        "not an object",
        {"templateId": TEMPLATE, "barcodeValue": "fail:Invalid email address"},
        {"templateId": TEMPLATE, "userProvidedId": "chosen", "email": "fail:Mailbox full"},
        {"templateId": TEMPLATE, "userProvidedId": "ok-2"},
    ]
    identifier = bulk_create(passcreator, items)
    advance(passcreator, 7 / 50)
    assert process(passcreator, identifier) == {
        "current": 7,
        "total": 7,
        "createdOn": "2026-03-09 08:14:08",
        "status": "finished with errors",
        "errors": {
            "1": "templateId is mandatory.",
            "bad-template": "Template nope not found.",
            "3": "The item must be a JSON object.",
            "4": "Invalid email address",
            "chosen": "Mailbox full",
        },
    }
    assert len(by_user_id(passcreator, "ok-1")) == len(by_user_id(passcreator, "ok-2")) == 1
    assert by_user_id(passcreator, "chosen") == []
    assert by_user_id(passcreator, "bad-template") == []


def test_create_pass_bulk_errors_appear_only_once_reached(passcreator: TestClient) -> None:
    items: list[object] = [{"templateId": TEMPLATE} for _ in range(10)]
    items[2] = {"templateId": TEMPLATE, "userProvidedId": "early", "barcodeValue": "fail:A"}
    items[8] = {"templateId": TEMPLATE, "userProvidedId": "late", "barcodeValue": "fail:B"}
    identifier = bulk_create(passcreator, items)
    seen = []
    for _ in range(11):
        data = process(passcreator, identifier)
        seen.append((data["current"], data["status"], data["errors"]))
        advance(passcreator, 0.02)
    assert seen[:2] == [(0, "in progress", None), (1, "in progress", None)]
    assert seen[2] == (2, "in progress", None)
    assert seen[3] == (3, "in progress", {"early": "A"})
    assert seen[8] == (8, "in progress", {"early": "A"})
    assert seen[9] == (9, "in progress", {"early": "A", "late": "B"})
    assert seen[10] == (10, "finished with errors", {"early": "A", "late": "B"})


def test_create_pass_bulk_passes_appear_as_the_process_reaches_them(
    passcreator: TestClient,
) -> None:
    items: list[object] = [
        {"templateId": TEMPLATE, "userProvidedId": f"bulk-{i}", "n": i} for i in range(5)
    ]
    bulk_create(passcreator, items)
    assert by_user_id(passcreator, "bulk-0") == []
    advance(passcreator, 0.02)
    first = by_user_id(passcreator, "bulk-0")
    assert [p["n"] for p in first] == [0]
    assert by_user_id(passcreator, "bulk-1") == []
    assert first[0]["createdOn"] == "2026-03-09 08:14:08"
    fetched = passcreator.get(f"{PASSES}/{first[0]['identifier']}", headers=KEY)
    assert fetched.status_code == 200
    assert fetched.json()["data"] == first[0]
    assert GENERATED_BARCODE.fullmatch(first[0]["barcodeValue"])
    advance(passcreator, 0.08)
    assert [p["n"] for p in by_user_id(passcreator, "bulk-4")] == [4]


def test_create_pass_bulk_enforced_unique_ids_fail_against_store_and_batch(
    passcreator: TestClient,
) -> None:
    items: list[object] = [
        {
            "templateId": TEMPLATE,
            "userProvidedId": "member-0001",
            "enforceUniqueUserProvidedId": True,
        },
        {"templateId": TEMPLATE, "userProvidedId": "fresh", "enforceUniqueUserProvidedId": True},
        {"templateId": TEMPLATE, "userProvidedId": "fresh", "enforceUniqueUserProvidedId": True},
        {"templateId": TEMPLATE, "userProvidedId": "fresh"},
    ]
    identifier = bulk_create(passcreator, items)
    advance(passcreator, 1)
    assert process(passcreator, identifier)["errors"] == {
        "member-0001": "userProvidedId member-0001 is already in use.",
        "fresh": "userProvidedId fresh is already in use.",
    }
    assert len(by_user_id(passcreator, "fresh")) == 2


def test_create_pass_bulk_enforced_id_unique_per_account(passcreator: TestClient) -> None:
    item = {"templateId": OTHER.templates[0].identifier, "userProvidedId": "member-0001"}
    response = passcreator.post(
        PASSES,
        json={"data": [{**item, "enforceUniqueUserProvidedId": True}]},
        headers=OTHER_KEY,
    )
    identifier = response.json()["data"]["identifier"]
    advance(passcreator, 1)
    result = passcreator.get(f"/api/v3/process/{identifier}", headers=OTHER_KEY).json()["data"]
    assert result["status"] == "finished"


def test_create_pass_bulk_same_key_twice_reports_the_first_failure(
    passcreator: TestClient,
) -> None:
    identifier = bulk_create(
        passcreator,
        [
            {"userProvidedId": "twice"},
            {"templateId": TEMPLATE, "userProvidedId": "twice", "barcodeValue": "fail:second"},
        ],
    )
    advance(passcreator, 1)
    assert process(passcreator, identifier)["errors"] == {"twice": "templateId is mandatory."}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": []}, errors.BULK_EMPTY),
        ({}, errors.DATA_MISSING),
        ({"data": None}, errors.DATA_MISSING),
        ({"data": "pass"}, errors.DATA_INVALID),
        ({"data": 3}, errors.DATA_INVALID),
        ([{"templateId": TEMPLATE}], errors.BODY_NOT_OBJECT),
    ],
)
def test_create_pass_malformed_body_returns_400(
    passcreator: TestClient, body: object, message: str
) -> None:
    response = passcreator.post(PASSES, json=body, headers=KEY)
    assert response.status_code == 400
    assert response.json()["errors"] == [message]
    assert response.json()["description"] == "Bad Request"


def test_create_pass_bulk_over_the_cap_returns_400(app_factory: AppFactory) -> None:
    app = app_factory(options=(("passcreator.max_bulk_items", "3"),))
    with TestClient(app, base_url=BASE) as client:
        response = client.post(PASSES, json={"data": [{"templateId": TEMPLATE}] * 4}, headers=KEY)
        assert response.status_code == 400
        assert response.json()["errors"] == ["A bulk request can contain at most 3 items."]
        assert (
            client.post(
                PASSES, json={"data": [{"templateId": TEMPLATE}] * 3}, headers=KEY
            ).status_code
            == 200
        )


@pytest.mark.parametrize("value", ["yes", "", "TRUE!"])
def test_create_pass_bad_async_parameter_returns_400(passcreator: TestClient, value: str) -> None:
    response = passcreator.post(
        PASSES, params={"async": value}, json={"data": {"templateId": TEMPLATE}}, headers=KEY
    )
    assert response.status_code == 400
    assert response.json()["errors"] == ["Invalid value for parameter async."]


def test_create_pass_passes_beyond_the_cap_evict_the_oldest(app_factory: AppFactory) -> None:
    app = app_factory(
        options=(("passcreator.max_passes", "5"), ("passcreator.max_bulk_items", "5"))
    )
    with TestClient(app, base_url=BASE) as client:
        first = create_one(client, {"templateId": TEMPLATE, "userProvidedId": "first"})
        bulk_create(client, [{"templateId": TEMPLATE} for _ in range(3)])
        advance(client, 1)
        assert client.get(f"{PASSES}/{first['identifier']}", headers=KEY).status_code == 404
        # The two seeded passes are never evicted.
        assert len(by_user_id(client, "member-0001")) == 1
        listing = client.get(PASSES, headers=KEY).json()["data"]
        assert len(listing) == 5


def test_create_pass_bulk_processes_beyond_the_cap_are_refused_not_evicted(
    app_factory: AppFactory,
) -> None:
    app = app_factory(options=(("passcreator.max_processes", "3"),))
    with TestClient(app, base_url=BASE) as client:
        made = [bulk_create(client, [{"templateId": TEMPLATE}]) for _ in range(2)]
        third = client.post(PASSES, headers=KEY, json={"data": [{"templateId": TEMPLATE}]})
        assert third.status_code == 429
        assert third.json()["errors"] == ["Too many requests"]
        assert [client.get(f"/api/v3/process/{p}", headers=KEY).status_code for p in made] == [
            200,
            200,
        ]
        # The seed page's process counts towards the cap, and stays.
        assert process(client, SEED_PROCESS)["total"] == 1000


def test_create_pass_bulk_finished_processes_expire_after_retention(
    passcreator: TestClient,
) -> None:
    old = bulk_create(passcreator, [{"templateId": TEMPLATE}])
    advance(passcreator, 7 * 86400)
    bulk_create(passcreator, [{"templateId": TEMPLATE}])
    assert passcreator.get(f"/api/v3/process/{old}", headers=KEY).status_code == 200
    advance(passcreator, 1)
    bulk_create(passcreator, [{"templateId": TEMPLATE}])
    assert passcreator.get(f"/api/v3/process/{old}", headers=KEY).status_code == 404
