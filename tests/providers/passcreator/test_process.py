"""GET /api/v3/process/{identifier}: the seed page's process, progress on the clock, 404."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from tests.conftest import AppFactory
from tests.providers.passcreator.conftest import (
    BASE,
    KEY,
    OTHER_KEY,
    SEED_PROCESS,
    TEMPLATE,
    advance,
    bulk_create,
    process,
)


def test_get_process_seed_at_reset_is_the_seed_page_example(passcreator: TestClient) -> None:
    response = passcreator.get(f"/api/v3/process/{SEED_PROCESS}", headers=KEY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "statusCode": 200,
        "success": True,
        "description": "Success",
        "errors": [],
        "count": 1,
        "responseMetaData": None,
        "data": {
            "current": 250,
            "total": 1000,
            # 250 items at 50 a second: started 5 s before the reset.
            "createdOn": "2026-03-09 08:14:03",
            "status": "in progress",
            "errors": None,
        },
    }


def test_get_process_seed_finishes_15_seconds_after_reset(passcreator: TestClient) -> None:
    advance(passcreator, 14.98)
    assert process(passcreator, SEED_PROCESS)["current"] == 999
    assert process(passcreator, SEED_PROCESS)["status"] == "in progress"
    advance(passcreator, 0.02)
    assert process(passcreator, SEED_PROCESS) == {
        "current": 1000,
        "total": 1000,
        "createdOn": "2026-03-09 08:14:03",
        "status": "finished",
        "errors": None,
    }
    advance(passcreator, 3600)
    assert process(passcreator, SEED_PROCESS)["current"] == 1000


def test_get_process_seed_is_visible_to_every_account(passcreator: TestClient) -> None:
    response = passcreator.get(f"/api/v3/process/{SEED_PROCESS}", headers=OTHER_KEY)
    assert response.status_code == 200
    assert response.json()["data"]["current"] == 250


def test_get_process_seed_after_reset_is_back_at_250(passcreator: TestClient) -> None:
    advance(passcreator, 60)
    assert process(passcreator, SEED_PROCESS)["status"] == "finished"
    assert passcreator.post("http://testserver/_sim/reset").status_code == 200
    assert process(passcreator, SEED_PROCESS)["current"] == 250


def test_get_process_seed_page_polling_loop_ends_after_four_polls(
    passcreator: TestClient,
) -> None:
    """The seed page's bash loop, with the manual clock standing in for ``sleep 5``."""
    printed = []
    while True:
        response = passcreator.get(
            f"/api/v3/process/{SEED_PROCESS}",
            headers={**KEY, "Content-Type": "application/json"},
        ).json()
        status, current, total = (response["data"][k] for k in ("status", "current", "total"))
        printed.append(f"Progress: {current}/{total} - Status: {status}")
        if status in ("finished", "finished with errors"):
            printed.append("Process completed!")
            break
        assert len(printed) < 20, printed
        advance(passcreator, 5)
    assert printed == [
        "Progress: 250/1000 - Status: in progress",
        "Progress: 500/1000 - Status: in progress",
        "Progress: 750/1000 - Status: in progress",
        "Progress: 1000/1000 - Status: finished",
        "Process completed!",
    ]


def test_get_process_unknown_identifier_returns_404_object_not_found(
    passcreator: TestClient,
) -> None:
    response = passcreator.get("/api/v3/process/00000000-0000-4000-8000-000000000000", headers=KEY)
    assert response.status_code == 404
    assert response.json() == {
        "statusCode": 404,
        "success": False,
        "description": "Not Found",
        "errors": ["Object not found"],
        "count": 0,
        "responseMetaData": None,
        "data": [],
    }


def test_get_process_of_another_account_returns_404(passcreator: TestClient) -> None:
    identifier = bulk_create(passcreator, [{"templateId": TEMPLATE}])
    response = passcreator.get(f"/api/v3/process/{identifier}", headers=OTHER_KEY)
    assert response.status_code == 404
    assert response.json()["errors"] == ["Object not found"]


def test_get_process_current_grows_at_50_items_a_second(passcreator: TestClient) -> None:
    identifier = bulk_create(passcreator, [{"templateId": TEMPLATE} for _ in range(100)])
    assert process(passcreator, identifier) == {
        "current": 0,
        "total": 100,
        "createdOn": "2026-03-09 08:14:08",
        "status": "in progress",
        "errors": None,
    }
    observed = []
    for step in (0.019999, 0.000001, 0.5, 0.48, 0.999999, 0.000001):
        advance(passcreator, step)
        observed.append(process(passcreator, identifier)["current"])
    # floor(elapsed * 50) at 0.019999 s, 0.02 s, 0.52 s, 1.0 s, 1.999999 s and 2 s.
    assert observed == [0, 1, 26, 50, 99, 100]
    assert process(passcreator, identifier)["status"] == "finished"


def test_get_process_rate_follows_the_option(app_factory: AppFactory) -> None:
    app = app_factory(options=(("passcreator.items_per_second", "3"),))
    with TestClient(app, base_url=BASE) as client:
        # The seed process starts far enough back to be 250 in at any rate.
        assert process(client, SEED_PROCESS)["current"] == 250
        identifier = bulk_create(client, [{"templateId": TEMPLATE} for _ in range(7)])
        observed = []
        for _ in range(8):
            observed.append(process(client, identifier)["current"])
            advance(client, 0.333334)  # a third of a second, rounded up to the microsecond
        assert observed == [0, 1, 2, 3, 4, 5, 6, 7]


def test_get_process_time_scale_slows_progress(app_factory: AppFactory) -> None:
    app = app_factory(time_scale=2.0)
    with TestClient(app, base_url=BASE) as client:
        assert process(client, SEED_PROCESS)["current"] == 250
        identifier = bulk_create(client, [{"templateId": TEMPLATE} for _ in range(50)])
        advance(client, 1)
        assert process(client, identifier)["current"] == 25
        assert process(client, SEED_PROCESS)["current"] == 275


def test_get_process_time_scale_zero_finishes_at_once(app_factory: AppFactory) -> None:
    app = app_factory(time_scale=0.0)
    with TestClient(app, base_url=BASE) as client:
        identifier = bulk_create(client, [{"templateId": TEMPLATE}, {"templateId": "nope"}])
        data = process(client, identifier)
        assert (data["current"], data["total"], data["status"]) == (2, 2, "finished with errors")
        assert process(client, SEED_PROCESS)["status"] == "finished"


def test_get_process_rate_changed_at_runtime_applies_to_new_processes(
    passcreator: TestClient,
) -> None:
    before = bulk_create(passcreator, [{"templateId": TEMPLATE} for _ in range(100)])
    changed = passcreator.post(
        "http://testserver/_sim/options",
        json={"provider": "passcreator", "options": {"items_per_second": 100}},
    )
    assert changed.status_code == 200, changed.text
    after = bulk_create(passcreator, [{"templateId": TEMPLATE} for _ in range(100)])
    advance(passcreator, 0.5)
    assert process(passcreator, before)["current"] == 25
    assert process(passcreator, after)["current"] == 50


@pytest.mark.parametrize("rate", [0, -1, "nan", 2_000_000])
def test_options_items_per_second_out_of_range_is_refused(
    passcreator: TestClient, rate: object
) -> None:
    response = passcreator.post(
        "http://testserver/_sim/options",
        json={"provider": "passcreator", "options": {"items_per_second": rate}},
    )
    assert response.status_code == 400
    assert "passcreator.items_per_second" in response.json()["error"]


def test_get_process_created_on_uses_y_m_d_h_i_s(passcreator: TestClient) -> None:
    advance(passcreator, 3661.75)
    identifier = bulk_create(passcreator, [{"templateId": TEMPLATE}])
    created_on = process(passcreator, identifier)["createdOn"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", created_on)
    assert created_on == "2026-03-09 09:15:09"
