"""GET /v1/bulk/extracts: the seeded batches, pagination edges, processing on the clock."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app
from tests.conftest import START, AppFactory
from tests.providers.helloatlas.conftest import (
    BASE,
    EXAMPLE_BATCH,
    OTHER,
    SEED_BATCH,
    advance,
    auth,
    documents,
    extracts,
    files,
    fixture,
    upload,
)

EXTRACTS = "/v1/bulk/extracts"
ALL_DONE = 30  # max_processing_seconds


def numbered(count: int) -> list[dict[str, str]]:
    return files(*(f"scan_{n}.jpg" for n in range(1, count + 1)))


def page_error(client: TestClient, headers: dict[str, str], **params: str | int) -> str:
    response = client.get(EXTRACTS, params=params, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "400"
    message: str = response.json()["error_message"]
    return message


def test_extracts_seed_batch_returns_the_documented_page_verbatim(helloatlas: TestClient) -> None:
    response = helloatlas.get(
        f"{EXTRACTS}?batch_id={SEED_BATCH}&page=1&per_page=50", headers=auth(helloatlas)
    )
    assert response.status_code == 200
    assert response.json() == fixture("payloads/extracts_seed_batch.json")


def test_extracts_seed_batch_is_visible_to_every_client(helloatlas: TestClient) -> None:
    page = extracts(helloatlas, auth(helloatlas, OTHER), SEED_BATCH)
    assert page == fixture("payloads/extracts_seed_batch.json")


def test_extracts_multiupload_example_batch_is_complete(helloatlas: TestClient) -> None:
    page = extracts(helloatlas, auth(helloatlas), EXAMPLE_BATCH)
    assert [d["document_id"] for d in documents(page)] == ["1", "2"]
    assert all(isinstance(d["file_data"], dict) for d in documents(page))


def test_extracts_without_batch_id_returns_400(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    for params in ({}, {"batch_id": ""}):
        response = helloatlas.get(EXTRACTS, params=params, headers=headers)
        assert response.status_code == 400
        assert response.json() == fixture("errors/missing_batch_id.json")


@pytest.mark.parametrize(
    "batch_id",
    ["BATCH-00000-AAAAA-20260309081408", "nonsense", SEED_BATCH.lower()],
    ids=["unknown", "malformed", "wrong-case"],
)
def test_extracts_unknown_batch_id_returns_400(helloatlas: TestClient, batch_id: str) -> None:
    response = helloatlas.get(EXTRACTS, params={"batch_id": batch_id}, headers=auth(helloatlas))
    assert response.status_code == 400
    assert response.json() == fixture("errors/invalid_batch_id.json")


def test_extracts_another_clients_batch_returns_400(helloatlas: TestClient) -> None:
    batch_id = upload(helloatlas, auth(helloatlas), files("a.jpg"))
    response = helloatlas.get(
        EXTRACTS, params={"batch_id": batch_id}, headers=auth(helloatlas, OTHER)
    )
    assert response.status_code == 400
    assert response.json() == fixture("errors/invalid_batch_id.json")


def test_extracts_defaults_to_page_1_of_50(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    batch_id = upload(helloatlas, headers, numbered(120))
    page = extracts(helloatlas, headers, batch_id)
    assert {k: v for k, v in page.items() if k != "data"} == {
        "page": 1,
        "per_page": 50,
        "total_pages": 3,
        "total_items": 120,
        "has_next": True,
        "has_prev": False,
    }
    assert [d["document_id"] for d in documents(page)] == [str(n) for n in range(1, 51)]


def test_extracts_pages_cover_every_document_once_in_order(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    batch_id = upload(helloatlas, headers, numbered(23))
    advance(helloatlas, ALL_DONE)
    seen: list[object] = []
    number, has_next = 1, True
    while has_next:
        page = extracts(helloatlas, headers, batch_id, page=number, per_page=5)
        assert page["has_prev"] is (number > 1)
        assert page["total_pages"] == 5
        seen += [d["document_id"] for d in documents(page)]
        has_next = bool(page["has_next"])
        number += 1
    assert seen == [str(n) for n in range(1, 24)]
    assert number == 6


def test_extracts_last_page_is_short(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    batch_id = upload(helloatlas, headers, numbered(7))
    page = extracts(helloatlas, headers, batch_id, page=2, per_page=5)
    assert [d["document_id"] for d in documents(page)] == ["6", "7"]
    assert (page["has_next"], page["has_prev"], page["per_page"]) == (False, True, 5)


def test_extracts_page_past_the_end_is_empty_with_has_prev(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    batch_id = upload(helloatlas, headers, numbered(3))
    page = extracts(helloatlas, headers, batch_id, page=9)
    assert page == {
        "data": [],
        "page": 9,
        "per_page": 50,
        "total_pages": 1,
        "total_items": 3,
        "has_next": False,
        "has_prev": True,
    }
    huge = extracts(helloatlas, headers, batch_id, page=999999999999999999)
    assert huge["data"] == []


def test_extracts_per_page_above_50_is_served_as_50(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    batch_id = upload(helloatlas, headers, numbered(60))
    page = extracts(helloatlas, headers, batch_id, per_page=500)
    assert page["per_page"] == 50
    assert len(documents(page)) == 50
    assert page["total_pages"] == 2


def test_extracts_per_page_above_50_with_reject_option_returns_400(
    app_factory: AppFactory,
) -> None:
    app = app_factory(options=(("helloatlas.per_page_above_max", "reject"),))
    with TestClient(app, base_url=BASE) as client:
        headers = auth(client)
        assert extracts(client, headers, SEED_BATCH, per_page=50)["per_page"] == 50
        message = page_error(client, headers, batch_id=SEED_BATCH, per_page=51)
    assert message == "Bad Request: per_page must be between 1 and 50"


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("page", "0"),
        ("page", "-1"),
        ("page", "abc"),
        ("page", ""),
        ("page", "1.5"),
        ("page", "9" * 19),
        ("per_page", "0"),
        ("per_page", "-5"),
        ("per_page", "ten"),
    ],
)
def test_extracts_unusable_page_parameter_returns_400(
    helloatlas: TestClient, param: str, value: str
) -> None:
    message = page_error(helloatlas, auth(helloatlas), batch_id=SEED_BATCH, **{param: value})
    assert message == f"Bad Request: {param} must be a positive integer"


def test_extracts_documents_in_processing_show_null_file_data(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    batch_id = upload(helloatlas, headers, numbered(40))
    fresh = documents(extracts(helloatlas, headers, batch_id))
    assert fresh == [{"document_id": str(n), "file_data": None} for n in range(1, 41)]
    advance(helloatlas, 17)
    midway = documents(extracts(helloatlas, headers, batch_id))
    done = [d for d in midway if d["file_data"] is not None]
    assert 0 < len(done) < 40
    advance(helloatlas, ALL_DONE - 17)
    finished = documents(extracts(helloatlas, headers, batch_id))
    assert all(isinstance(d["file_data"], dict) for d in finished)
    # A document's data does not change once extracted.
    assert all(d in finished for d in done)


def test_extracts_pending_documents_omitted_with_option_give_short_page(
    app_factory: AppFactory,
) -> None:
    app = app_factory(options=(("helloatlas.pending_documents", "omit"),))
    with TestClient(app, base_url=BASE) as client:
        headers = auth(client)
        batch_id = upload(client, headers, numbered(40))
        assert documents(extracts(client, headers, batch_id)) == []
        advance(client, 17)
        page = extracts(client, headers, batch_id)
        assert 0 < len(documents(page)) < 40
        assert page["total_items"] == 40
        assert all(isinstance(d["file_data"], dict) for d in documents(page))


def test_extracts_time_scale_zero_makes_documents_ready_at_once(
    app_factory: AppFactory,
) -> None:
    with TestClient(app_factory(time_scale=0), base_url=BASE) as client:
        headers = auth(client)
        batch_id = upload(client, headers, numbered(10))
        page = extracts(client, headers, batch_id)
        assert all(isinstance(d["file_data"], dict) for d in documents(page))


def test_extracts_are_the_same_whatever_order_pages_are_read(app_factory: AppFactory) -> None:
    def read(order: list[int]) -> dict[int, object]:
        with TestClient(app_factory(time_scale=0), base_url=BASE) as client:
            headers = auth(client)
            batch_id = upload(client, headers, numbered(30))
            return {n: extracts(client, headers, batch_id, page=n, per_page=10) for n in order}

    assert read([1, 2, 3]) == read([3, 1, 2, 2])


def test_extracts_batches_beyond_max_batches_are_refused_not_evicted(
    app_factory: AppFactory,
) -> None:
    app = app_factory(options=(("helloatlas.max_batches", "4"),))
    with TestClient(app, base_url=BASE) as client:
        headers = auth(client)
        batches = [upload(client, headers, files("a.jpg")) for _ in range(2)]
        body = {"product_type": "POC_CDL", "file_urls": files("a.jpg")}
        third = client.post("/v1/bulk/multiupload", headers=headers, json=body)
        # Two seeded batches count towards the cap: room for two uploads; the third is
        # refused, and the two stay.
        assert third.status_code == 429
        assert third.json() == {
            "error_code": "429",
            "error_message": "Too Many Requests: Rate limit exceeded",
        }
        statuses = [
            client.get(EXTRACTS, params={"batch_id": b}, headers=headers).status_code
            for b in batches
        ]
        assert statuses == [200, 200]
        assert extracts(client, headers, SEED_BATCH)["total_items"] == 1


def test_extracts_batches_expire_after_retention(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    old = upload(helloatlas, headers, files("a.jpg"))
    advance(helloatlas, 8 * 86400)
    headers = auth(helloatlas)
    upload(helloatlas, headers, files("b.jpg"))
    response = helloatlas.get(EXTRACTS, params={"batch_id": old}, headers=headers)
    assert response.status_code == 400


def test_extracts_a_finished_page_read_again_is_byte_identical_to_a_fresh_render() -> None:
    bodies = []
    for _ in range(2):  # two simulators with the same seed and start: the second renders afresh
        app = create_app(Settings(seed=7), clock=ManualClock(START))
        with TestClient(app, base_url=BASE) as client:
            headers = auth(client)
            batch_id = upload(client, headers, numbered(60))
            advance(client, ALL_DONE)
            params: dict[str, str | int] = {"batch_id": batch_id, "page": 2}
            bodies += [
                client.get(EXTRACTS, params=params, headers=headers).content for _ in range(2)
            ]
    assert bodies[0] == bodies[1] == bodies[2] == bodies[3]


def test_extracts_a_page_with_unfinished_documents_changes_as_they_finish(
    helloatlas: TestClient,
) -> None:
    headers = auth(helloatlas)
    batch_id = upload(helloatlas, headers, numbered(10))
    params = {"batch_id": batch_id}
    before = helloatlas.get(EXTRACTS, params=params, headers=headers).json()
    advance(helloatlas, ALL_DONE)
    after = helloatlas.get(EXTRACTS, params=params, headers=headers).json()
    assert all(d["file_data"] is None for d in before["data"])
    assert all(d["file_data"] is not None for d in after["data"])


def test_extracts_a_finished_page_is_rendered_afresh_when_the_clock_is_set_back(
    helloatlas: TestClient,
) -> None:
    headers = auth(helloatlas)
    batch_id = upload(helloatlas, headers, numbered(5))
    advance(helloatlas, ALL_DONE)
    assert all(
        isinstance(d["file_data"], dict) for d in documents(extracts(helloatlas, headers, batch_id))
    )
    response = helloatlas.post("http://testserver/_sim/clock/set", json={"now": START.isoformat()})
    assert response.status_code == 200
    headers = auth(helloatlas)
    assert all(d["file_data"] is None for d in documents(extracts(helloatlas, headers, batch_id)))
