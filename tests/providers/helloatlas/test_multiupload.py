"""POST /v1/bulk/multiupload: the batch it creates and every way a body can be wrong."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from simulator import ManualClock
from tests.conftest import AppFactory
from tests.providers.helloatlas.conftest import (
    BASE,
    BATCH_ID,
    auth,
    documents,
    extracts,
    files,
    fixture,
    upload,
)

MULTIUPLOAD = "/v1/bulk/multiupload"


def bad_request(client: TestClient, body: bytes | object, **headers: str) -> str:
    """Post a body that must be refused with a 400; its error_message."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(
        MULTIUPLOAD,
        content=content,
        headers={**auth(client), "Content-Type": "application/json", **headers},
    )
    assert response.status_code == 400, response.text
    payload = response.json()
    assert set(payload) == {"error_code", "error_message"}
    assert payload["error_code"] == "400"
    message: str = payload["error_message"]
    assert message.startswith("Bad Request: ")
    return message.removeprefix("Bad Request: ")


def test_multiupload_returns_201_array_one_entry_per_file_sharing_a_batch_id(
    helloatlas: TestClient,
) -> None:
    body = fixture("payloads/multiupload_request.json")
    response = helloatlas.post(MULTIUPLOAD, json=body, headers=auth(helloatlas))
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    entries = response.json()
    assert [set(e) for e in entries] == [{"batch_id", "document_id", "file_uuid"}] * 2
    assert [e["document_id"] for e in entries] == ["1", "2"]
    assert len({e["batch_id"] for e in entries}) == 1
    assert re.fullmatch(BATCH_ID, entries[0]["batch_id"])
    uuids = [uuid.UUID(e["file_uuid"]) for e in entries]
    assert all(u.version == 4 for u in uuids)
    assert len(set(uuids)) == 2


def test_multiupload_batch_id_ends_with_the_clock_time_of_upload(
    helloatlas: TestClient, clock: ManualClock
) -> None:
    headers = auth(helloatlas)
    first = upload(helloatlas, headers, files("a.jpg"))
    assert first.endswith("-20260309081408")
    helloatlas.post("http://testserver/_sim/clock/advance", json={"seconds": 1723})
    second = upload(helloatlas, headers, files("a.jpg"))
    assert second.endswith("-20260309084251")
    assert first != second


def test_multiupload_same_seed_gives_same_batch_ids_and_file_uuids(
    app_factory: AppFactory,
) -> None:
    def run() -> list[object]:
        with TestClient(app_factory(), base_url=BASE) as client:
            answers = []
            for _ in range(2):
                response = client.post(
                    MULTIUPLOAD,
                    json={"product_type": "P", "file_urls": files("a.jpg", "b.jpg")},
                    headers=auth(client),
                )
                answers.append(response.json())
            return answers

    assert run() == run()


def test_multiupload_different_seed_gives_other_ids(app_factory: AppFactory) -> None:
    answers = []
    for seed in (7, 8):
        with TestClient(app_factory(seed=seed), base_url=BASE) as client:
            answers.append(upload(client, auth(client), files("a.jpg")))
    assert answers[0] != answers[1]


def test_multiupload_accepts_a_body_streamed_in_small_chunks(helloatlas: TestClient) -> None:
    body = json.dumps(
        {"file_urls": files(*(f"scan_{n}.jpg" for n in range(1, 301))), "product_type": "X"},
        indent=2,
    ).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    response = helloatlas.post(
        MULTIUPLOAD,
        content=chunks(),
        headers={**auth(helloatlas), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert [e["document_id"] for e in response.json()] == [str(n) for n in range(1, 301)]


def test_multiupload_keeps_escaped_and_unicode_document_ids(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    entries: list[dict[str, Any]] = [
        {"file_url": "https://docs.example.com/a.jpg", "document_id": 'quote"d\\id'},
        {"file_url": "https://docs.example.com/\u0928.jpg", "document_id": "\u0926\u0938"},
        {"document_id": "tab\tid", "file_url": "https://docs.example.com/c.jpg", "extra": [1]},
    ]
    response = helloatlas.post(
        MULTIUPLOAD, json={"product_type": "P", "file_urls": entries}, headers=headers
    )
    assert response.status_code == 201, response.text
    assert [e["document_id"] for e in response.json()] == [e["document_id"] for e in entries]
    page = extracts(helloatlas, headers, response.json()[0]["batch_id"])
    assert [d["document_id"] for d in documents(page)] == [e["document_id"] for e in entries]


def test_multiupload_answer_larger_than_one_chunk_is_one_json_array(
    helloatlas: TestClient,
) -> None:
    entries = [
        {"file_url": f"https://docs.example.com/{n}.jpg", "document_id": f"doc-{n}"}
        for n in range(5000)
    ]
    response = helloatlas.post(
        MULTIUPLOAD, json={"product_type": "P", "file_urls": entries}, headers=auth(helloatlas)
    )
    assert response.status_code == 201
    answer = response.json()
    assert [e["document_id"] for e in answer] == [e["document_id"] for e in entries]
    assert len({e["file_uuid"] for e in answer}) == 5000


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'"text"', b"{", b'{"product_type": "P",}', b"\xff\xfe{}"],
    ids=["empty", "not-json", "array", "string", "truncated", "trailing-comma", "not-utf8"],
)
def test_multiupload_malformed_body_returns_400(helloatlas: TestClient, body: bytes) -> None:
    assert bad_request(helloatlas, body) == "Request body must be a JSON object"


def test_multiupload_trailing_garbage_returns_400(helloatlas: TestClient) -> None:
    body = json.dumps({"product_type": "P", "file_urls": files("a.jpg")}).encode() + b" x"
    assert bad_request(helloatlas, body) == "Request body must be a JSON object"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"file_urls": files("a.jpg")}, "Missing required parameter: product_type"),
        ({"product_type": "P"}, "Missing required parameter: file_urls"),
        (
            {"product_type": "P", "file_urls": [{"document_id": "1"}]},
            "Missing required parameter: file_urls[0].file_url",
        ),
        (
            {"product_type": "P", "file_urls": [*files("a.jpg"), {"file_url": "https://x.in/b"}]},
            "Missing required parameter: file_urls[1].document_id",
        ),
    ],
    ids=["product_type", "file_urls", "file_url", "document_id"],
)
def test_multiupload_missing_field_returns_400(
    helloatlas: TestClient, body: object, message: str
) -> None:
    assert bad_request(helloatlas, body) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"product_type": "", "file_urls": files("a.jpg")},
            "product_type must be a non-empty string of at most 100 characters",
        ),
        (
            {"product_type": 5, "file_urls": files("a.jpg")},
            "product_type must be a non-empty string of at most 100 characters",
        ),
        ({"product_type": "P", "file_urls": []}, "file_urls must be a non-empty array"),
        ({"product_type": "P", "file_urls": {"a": 1}}, "file_urls must be a non-empty array"),
        ({"product_type": "P", "file_urls": ["https://x.in/a"]}, "file_urls[0] must be an object"),
        (
            {"product_type": "P", "file_urls": [{"file_url": "https://x.in/a", "document_id": 1}]},
            "file_urls[0].document_id must be a non-empty string",
        ),
        (
            {"product_type": "P", "file_urls": [{"file_url": "https://x.in/a", "document_id": ""}]},
            "file_urls[0].document_id must be a non-empty string of at most 256 characters",
        ),
        (
            {"product_type": "P", "file_urls": [{"file_url": "ftp://x.in/a", "document_id": "1"}]},
            "file_urls[0].file_url must be an http or https URL of at most 2048 characters",
        ),
        (
            {"product_type": "P", "file_urls": [{"file_url": "https://", "document_id": "1"}]},
            "file_urls[0].file_url must be an http or https URL of at most 2048 characters",
        ),
        (
            {"product_type": "P", "file_urls": [{"file_url": None, "document_id": "1"}]},
            "file_urls[0].file_url must be an http or https URL",
        ),
    ],
    ids=[
        "blank-product",
        "numeric-product",
        "empty-list",
        "object-list",
        "string-entry",
        "numeric-id",
        "empty-id",
        "ftp-url",
        "hostless-url",
        "null-url",
    ],
)
def test_multiupload_malformed_field_returns_400(
    helloatlas: TestClient, body: object, message: str
) -> None:
    assert bad_request(helloatlas, body) == message


def test_multiupload_lone_surrogate_in_document_id_returns_400(helloatlas: TestClient) -> None:
    body = (
        b'{"product_type": "P", "file_urls": '
        b'[{"file_url": "https://x.in/a", "document_id": "\\ud800"}]}'
    )
    assert bad_request(helloatlas, body) == "file_urls[0].document_id must be valid Unicode"


def test_multiupload_file_urls_twice_returns_400(helloatlas: TestClient) -> None:
    entry = '{"file_url": "https://x.in/a", "document_id": "1"}'
    body = f'{{"product_type": "P", "file_urls": [{entry}], "file_urls": [{entry}]}}'.encode()
    assert bad_request(helloatlas, body) == "file_urls must be given only once"


@pytest.mark.parametrize(
    "ids",
    [["1", "2", "1"], ["a", "b", "a"], ["1", "2", "x", "2"]],
    ids=["counting", "packed", "counting-then-packed"],
)
def test_multiupload_duplicate_document_id_returns_400(
    helloatlas: TestClient, ids: list[str]
) -> None:
    entries = [{"file_url": f"https://x.in/{n}.jpg", "document_id": i} for n, i in enumerate(ids)]
    message = bad_request(helloatlas, {"product_type": "P", "file_urls": entries})
    assert message == f"Duplicate document_id: {ids[-1]}"


def test_multiupload_rejected_body_creates_no_batch(app_factory: AppFactory) -> None:
    def first_batch_id(reject_first: bool) -> str:
        with TestClient(app_factory(), base_url=BASE) as client:
            headers = auth(client)
            if reject_first:
                response = client.post(
                    MULTIUPLOAD,
                    json={"product_type": "P", "file_urls": [*files("a.jpg"), {}]},
                    headers=headers,
                )
                assert response.status_code == 400
            return upload(client, headers, files("a.jpg"))

    assert first_batch_id(reject_first=True) == first_batch_id(reject_first=False)


def test_multiupload_more_files_than_max_files_returns_400(app_factory: AppFactory) -> None:
    app = app_factory(options=(("helloatlas.max_files", "3"),))
    with TestClient(app, base_url=BASE) as client:
        upload(client, auth(client), files("a", "b", "c"))
        body = {"product_type": "P", "file_urls": files("a", "b", "c", "d")}
        assert bad_request(client, body) == "file_urls may hold at most 3 files"


def test_multiupload_body_over_the_cap_returns_413(app_factory: AppFactory) -> None:
    app = app_factory(options=(("helloatlas.max_upload_bytes", "200"),))
    with TestClient(app, base_url=BASE) as client:
        headers = {**auth(client), "Content-Type": "application/json"}
        small = json.dumps({"product_type": "P", "file_urls": files("a.jpg")}).encode()
        assert client.post(MULTIUPLOAD, content=small, headers=headers).status_code == 201
        large = json.dumps({"product_type": "P", "file_urls": files(*"abcdef")}).encode()
        declared = client.post(MULTIUPLOAD, content=large, headers=headers)

        def streamed() -> Iterator[bytes]:
            yield large[:150]
            yield large[150:]

        undeclared = client.post(MULTIUPLOAD, content=streamed(), headers=headers)
    for response in (declared, undeclared):
        assert response.status_code == 413
        assert response.json() == {
            "error_code": "413",
            "error_message": "Payload Too Large: Request body exceeds 200 bytes",
        }
