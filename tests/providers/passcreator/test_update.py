"""PATCH /api/v3/pass (bulk, by query) and PATCH /api/v3/pass/{identifier} (one pass)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from simulator.providers.passcreator import errors
from tests.providers.passcreator.conftest import (
    DAVID,
    KEY,
    OTHER_KEY,
    PASSES,
    RAY,
    TEMPLATE,
    advance,
    bulk_create,
    bulk_update,
    by_user_id,
    process,
    where,
)

GERMANY = where("country", "equals", ["Germany"])


def get(client: TestClient, identifier: str) -> dict[str, Any]:
    response = client.get(f"{PASSES}/{identifier}", headers=KEY)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_update_passes_changes_each_pass_when_the_process_reaches_it(
    passcreator: TestClient,
) -> None:
    identifier = bulk_update(passcreator, GERMANY, {"country": "Spain", "tier": "gold"})
    assert process(passcreator, identifier) == {
        "current": 0,
        "total": 2,
        "createdOn": "2026-03-09 08:14:08",
        "status": "in progress",
        "errors": None,
    }
    assert get(passcreator, DAVID)["country"] == "Germany"
    advance(passcreator, 0.02)
    david = get(passcreator, DAVID)
    assert (david["country"], david["tier"]) == ("Spain", "gold")
    assert david["modifiedOn"] == "2026-03-09 08:14:08"
    assert david["createdOn"] == "2026-03-08 08:14:08"
    assert get(passcreator, RAY)["country"] == "Germany"
    advance(passcreator, 0.02)
    assert get(passcreator, RAY)["country"] == "Spain"
    assert process(passcreator, identifier)["status"] == "finished"


def test_update_passes_selecting_nothing_finishes_at_once(passcreator: TestClient) -> None:
    identifier = bulk_update(passcreator, where("country", "equals", ["Peru"]), {"x": 1})
    data = process(passcreator, identifier)
    assert (data["current"], data["total"], data["status"]) == (0, 0, "finished")


def test_update_passes_reaches_only_passes_that_exist_at_submit(
    passcreator: TestClient,
) -> None:
    bulk_create(passcreator, [{"templateId": TEMPLATE, "country": "Germany"}])
    identifier = bulk_update(passcreator, GERMANY, {"seen": True})
    assert process(passcreator, identifier)["total"] == 2


def test_update_passes_never_touches_another_account(passcreator: TestClient) -> None:
    response = passcreator.patch(
        PASSES, json={"filter": {"query": GERMANY}, "data": {"x": 1}}, headers=OTHER_KEY
    )
    identifier = response.json()["data"]["identifier"]
    result = passcreator.get(f"/api/v3/process/{identifier}", headers=OTHER_KEY).json()
    assert result["data"]["total"] == 0


def test_update_passes_fail_value_fails_every_selected_pass(passcreator: TestClient) -> None:
    identifier = bulk_update(passcreator, GERMANY, {"barcodeValue": "fail:Barcode taken"})
    advance(passcreator, 1)
    assert process(passcreator, identifier)["errors"] == {
        "member-0001": "Barcode taken",
        "member-0002": "Barcode taken",
    }
    assert get(passcreator, DAVID)["barcodeValue"] == "5b55c8058e3c77.10425272"


def test_update_passes_locked_pass_fails_keyed_by_its_user_id(passcreator: TestClient) -> None:
    bulk_create(
        passcreator,
        [
            {"templateId": TEMPLATE, "userProvidedId": "locked:Pass is archived"},
            {"templateId": TEMPLATE, "userProvidedId": "open"},
        ],
    )
    advance(passcreator, 1)
    identifier = bulk_update(
        passcreator, where("templateId", "equals", [TEMPLATE]), {"note": "hello"}
    )
    advance(passcreator, 1)
    result = process(passcreator, identifier)
    assert result["status"] == "finished with errors"
    assert result["total"] == 4
    assert result["errors"] == {"locked:Pass is archived": "Pass is archived"}
    assert by_user_id(passcreator, "open")[0]["note"] == "hello"
    assert "note" not in by_user_id(passcreator, "locked:Pass is archived")[0]


def test_update_passes_errors_keyed_by_identifier_without_user_id(
    passcreator: TestClient,
) -> None:
    made = passcreator.post(
        PASSES, json={"data": {"templateId": TEMPLATE, "kind": "anon"}}, headers=KEY
    ).json()["data"]["identifier"]
    identifier = bulk_update(passcreator, where("kind", "equals", "anon"), {"x": "fail:"})
    advance(passcreator, 1)
    assert process(passcreator, identifier)["errors"] == {made: errors.UPDATE_FAILED}


def test_update_passes_later_process_reaching_first_applies_first(
    passcreator: TestClient,
) -> None:
    slow = bulk_update(passcreator, GERMANY, {"round": "first"})
    fast = bulk_update(
        passcreator, where("userProvidedId", "equals", "member-0002"), {"round": "second"}
    )
    advance(passcreator, 0.02)
    # The second process reaches Ray first; the first process reaches him after it.
    assert get(passcreator, RAY)["round"] == "second"
    advance(passcreator, 0.02)
    assert get(passcreator, RAY)["round"] == "first"
    assert process(passcreator, slow)["status"] == process(passcreator, fast)["status"]


def test_update_passes_can_change_the_user_id_others_must_respect(
    passcreator: TestClient,
) -> None:
    bulk_update(
        passcreator, where("userProvidedId", "equals", "member-0001"), {"userProvidedId": "vip-1"}
    )
    response = passcreator.post(
        PASSES,
        json={
            "data": {
                "templateId": TEMPLATE,
                "userProvidedId": "vip-1",
                "enforceUniqueUserProvidedId": True,
            }
        },
        headers=KEY,
    )
    # Pending updates count: the id is claimed as soon as the update is accepted.
    assert response.status_code == 400
    freed = passcreator.post(
        PASSES,
        json={
            "data": {
                "templateId": TEMPLATE,
                "userProvidedId": "member-0001",
                "enforceUniqueUserProvidedId": True,
            }
        },
        headers=KEY,
    )
    assert freed.status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"filter": {"query": {}}}, errors.DATA_MISSING),
        ({"filter": {"query": {}}, "data": [{"x": 1}]}, errors.UPDATE_DATA_INVALID),
        ({"filter": {"query": {}}, "data": {"templateId": TEMPLATE}}, errors.TEMPLATE_ID_READ_ONLY),
        ({"filter": {"query": {}}, "data": {"voided": "yes"}}, "voided must be a boolean."),
        ({"data": {"x": 1}}, errors.FILTER_MISSING),
        ({"filter": {}, "data": {"x": 1}}, errors.FILTER_MISSING),
        ({"filter": "all", "data": {"x": 1}}, errors.FILTER_MISSING),
        ({"filter": {"query": []}, "data": {"x": 1}}, "Invalid query: the query must be an object"),
        (
            {"filter": {"query": {"groups": None}}, "data": {"x": 1}},
            "Invalid query: groups must be a list of at most 50 groups",
        ),
        ({"filter": {"query": {}, "fields": [1]}, "data": {"x": 1}}, errors.FILTER_FIELDS_INVALID),
        (
            {
                "filter": {"query": {"groups": [[{"field": "a", "operator": "like", "value": 1}]]}},
                "data": {},
            },
            "Invalid query: operator must be one of equals, notEquals, contains, "
            "doesNotContain, greaterThan, greaterThanOrEquals, lowerThan, lowerThanOrEquals, "
            "beginsWith, endsWith, empty, notEmpty, isTrue, isFalse",
        ),
    ],
)
def test_update_passes_malformed_body_returns_400(
    passcreator: TestClient, body: dict[str, object], message: str
) -> None:
    response = passcreator.patch(PASSES, json=body, headers=KEY)
    assert response.status_code == 400
    assert response.json()["errors"] == [message]


def test_update_pass_applies_at_once(passcreator: TestClient) -> None:
    advance(passcreator, 60)
    response = passcreator.patch(
        f"{PASSES}/{DAVID}",
        params={"async": "false"},
        json={"data": {"voided": True, "firstname": "Dave", "age": None}},
        headers=KEY,
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["voided"], data["firstname"], data["age"]) == (True, "Dave", None)
    assert data["modifiedOn"] == "2026-03-09 08:15:08"
    assert get(passcreator, DAVID) == data


def test_update_pass_unknown_returns_404(passcreator: TestClient) -> None:
    response = passcreator.patch(f"{PASSES}/nope", json={"data": {"x": 1}}, headers=KEY)
    assert response.status_code == 404
    assert response.json()["errors"] == ["Object not found"]


def test_update_pass_of_another_account_returns_404(passcreator: TestClient) -> None:
    response = passcreator.patch(f"{PASSES}/{DAVID}", json={"data": {"x": 1}}, headers=OTHER_KEY)
    assert response.status_code == 404


def test_update_pass_locked_returns_400_with_the_chosen_message(
    passcreator: TestClient,
) -> None:
    made = passcreator.post(
        PASSES,
        json={"data": {"templateId": TEMPLATE, "userProvidedId": "locked:Frozen"}},
        headers=KEY,
    ).json()["data"]["identifier"]
    response = passcreator.patch(f"{PASSES}/{made}", json={"data": {"x": 1}}, headers=KEY)
    assert response.status_code == 400
    assert response.json()["errors"] == ["Frozen"]


def test_update_pass_without_data_returns_400(passcreator: TestClient) -> None:
    response = passcreator.patch(f"{PASSES}/{DAVID}", json={}, headers=KEY)
    assert response.status_code == 400
    assert response.json()["errors"] == [errors.DATA_MISSING]


def test_update_pass_many_updates_keep_the_latest_values(passcreator: TestClient) -> None:
    for n in range(150):
        bulk_update(passcreator, where("userProvidedId", "equals", "member-0001"), {"n": n})
    advance(passcreator, 1)
    assert get(passcreator, DAVID)["n"] == 149
