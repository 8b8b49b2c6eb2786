"""Bulk UPI submission, the status poll's 201 → 200 transition, and the output file."""

from __future__ import annotations

import csv
import io
import re

import pytest
from starlette.testclient import TestClient

from simulator.providers.deepvue.fakes import OUTPUT_COLUMNS
from tests.conftest import AppFactory
from tests.providers.deepvue.conftest import advance, auth

SUBMIT = "/v1/verification/upi-basic/batch"
STATUS = "/v1/verification/batch-processing-status"
SEED_DONE = "06d0d7c340ed460d96103aaa0b26f0de"
SEED_RUNNING = "673f7487fc0e4949b54e443a0bcc767d"


def submit(
    client: TestClient, headers: dict[str, str], content: bytes, name: str = "vpas.csv"
) -> dict[str, object]:
    response = client.post(
        SUBMIT, headers=headers, files={"batch_file": (name, content, "text/csv")}
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def status(client: TestClient, headers: dict[str, str], request_id: str) -> dict[str, object]:
    response = client.get(STATUS, params={"request_id": request_id}, headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


def download(client: TestClient, url: str) -> list[dict[str, str]]:
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_submit_returns_201_with_documented_body(deepvue: TestClient) -> None:
    body = submit(deepvue, auth(deepvue), b"vpa,name\nrahul@okaxis,Rahul\n")
    request_id = body.pop("request_id")
    assert isinstance(request_id, str)
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert body.pop("transaction_id") == request_id
    assert isinstance(body.pop("timestamp"), int)
    assert body == {
        "code": 201,
        "message": "batch processing in progress",
        "sub_code": "SUCCESS",
        "output_batch_file": "",
    }


def test_status_is_201_until_processing_time_passes_then_200(deepvue: TestClient) -> None:
    headers = auth(deepvue)
    rows = b"vpa,name\n" + b"".join(f"user{i}@okaxis,\n".encode() for i in range(100))
    request_id = str(submit(deepvue, headers, rows)["request_id"])
    running = status(deepvue, headers, request_id)
    assert running == {
        "request_id": request_id,
        "status": 201,
        "product_id": "",
        "message": "batch processing in progress",
        "batch_output_file_url": None,
    }
    advance(deepvue, 30 + 100 * 0.01 - 0.5)  # 30 s plus 10 ms a row, less half a second
    assert status(deepvue, headers, request_id)["status"] == 201
    advance(deepvue, 0.5)
    done = status(deepvue, headers, request_id)
    assert done["status"] == 200
    assert done["message"] == "batch processing completed"
    assert done["batch_output_file_url"] == (
        f"http://testserver/deepvue/bulk-data-processing/upi-basic-batch-output-files/{request_id}.csv"
    )


def test_status_envelope_matches_seed_page(deepvue: TestClient, clock: object) -> None:
    response = deepvue.get(STATUS, params={"request_id": SEED_DONE}, headers=auth(deepvue))
    body = response.json()
    assert list(body) == ["transaction_id", "timestamp", "code", "message", "sub_code", "data"]
    assert re.fullmatch(r"[0-9a-f]{32}", body["transaction_id"])
    assert body["timestamp"] == int(clock.now().timestamp() * 1000)  # type: ignore[attr-defined]
    assert (body["code"], body["message"], body["sub_code"]) == (
        200,
        "Batch Upload status fetched successfully",
        "SUCCESS",
    )


def test_output_file_echoes_input_rows_with_results(deepvue: TestClient) -> None:
    headers = auth(deepvue)
    content = (
        b"vpa,name\r\n"
        b"rahul.sharma@okaxis,Rahul Sharma\r\n"
        b"9876543210@paytm,\r\n"
        b"noaccount.x@ybl,Anil\r\n"
        b"invalid.x@ybl,Sunita\r\n"
        b"fail.x@ybl,Kiran\r\n"
        b"not-a-vpa,Meena\r\n"
    )
    request_id = str(submit(deepvue, headers, content)["request_id"])
    advance(deepvue, 60)
    rows = download(deepvue, str(status(deepvue, headers, request_id)["batch_output_file_url"]))
    assert list(rows[0]) == list(OUTPUT_COLUMNS)
    assert [r["vpa"] for r in rows] == [
        "rahul.sharma@okaxis",
        "9876543210@paytm",
        "noaccount.x@ybl",
        "invalid.x@ybl",
        "fail.x@ybl",
        "not-a-vpa",
    ]
    ok, generated, no_account, invalid, failed, malformed = rows
    assert (ok["status"], ok["account_exists"], ok["name_at_bank"]) == (
        "SUCCESS",
        "true",
        "RAHUL SHARMA",
    )
    assert generated["status"] == "SUCCESS"
    assert generated["name_at_bank"].isupper()
    assert generated["name_at_bank"]  # a name is made up when the input has none
    assert (no_account["account_exists"], no_account["name_at_bank"]) == ("false", "")
    assert (invalid["status"], invalid["message"]) == ("FAILED", "Invalid VPA")
    assert (failed["status"], failed["message"]) == ("FAILED", "Source Unavailable")
    assert (malformed["status"], malformed["message"]) == ("FAILED", "Invalid VPA")


def test_output_file_is_deterministic_under_a_seed(app_factory: AppFactory) -> None:
    files = []
    for _ in range(2):
        with TestClient(app_factory(), base_url="http://testserver/deepvue") as client:
            headers = auth(client)
            request_id = str(submit(client, headers, b"vpa\na@okaxis\nb@okaxis\n")["request_id"])
            advance(client, 60)
            url = str(status(client, headers, request_id)["batch_output_file_url"])
            files.append((request_id, client.get(url).text))
    assert files[0] == files[1]


def test_slow_vpa_makes_the_batch_take_ten_minutes_longer(deepvue: TestClient) -> None:
    headers = auth(deepvue)
    request_id = str(submit(deepvue, headers, b"vpa\nslow.one@okaxis\n")["request_id"])
    advance(deepvue, 60)
    assert status(deepvue, headers, request_id)["status"] == 201
    advance(deepvue, 600)
    assert status(deepvue, headers, request_id)["status"] == 200


def test_seed_completed_request_id_has_its_output_file(deepvue: TestClient) -> None:
    data = status(deepvue, auth(deepvue), SEED_DONE)
    assert (data["status"], data["message"]) == (200, "batch processing completed")
    rows = download(deepvue, str(data["batch_output_file_url"]))
    assert rows[0]["vpa"] == "rahul.sharma@okaxis"
    assert len(rows) == 5


def test_seed_in_progress_request_id_completes_after_ten_minutes(deepvue: TestClient) -> None:
    headers = auth(deepvue)
    assert status(deepvue, headers, SEED_RUNNING) == {
        "request_id": SEED_RUNNING,
        "status": 201,
        "product_id": "",
        "message": "batch processing in progress",
        "batch_output_file_url": None,
    }
    advance(deepvue, 600)
    assert status(deepvue, headers, SEED_RUNNING)["status"] == 200


def test_status_unknown_request_id_returns_422_invalid_request_id(deepvue: TestClient) -> None:
    response = deepvue.get(STATUS, params={"request_id": "example_string"}, headers=auth(deepvue))
    assert response.status_code == 422
    body = response.json()
    assert list(body) == ["code", "timestamp", "transaction_id", "sub_code", "message"]
    assert (body["code"], body["sub_code"], body["message"]) == (
        422,
        "INVALID_REQUEST_ID",
        "Invalid Request ID",
    )


def test_status_missing_request_id_returns_fastapi_422(deepvue: TestClient) -> None:
    response = deepvue.get(STATUS, headers=auth(deepvue))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "request_id"]


def test_submit_without_file_returns_422_field_required(deepvue: TestClient) -> None:
    response = deepvue.post(
        SUBMIT, headers=auth(deepvue), files={"other": ("a.csv", b"vpa\nx@y\n")}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "batch_file"]


@pytest.mark.parametrize(
    ("name", "content", "sub_code"),
    [
        ("empty.csv", b"", "EMPTY_FILE"),
        ("header.csv", b"vpa,name\n\n\n", "EMPTY_FILE"),
        ("columns.csv", b"upi,name\nx@okaxis,X\n", "INVALID_FILE_FORMAT"),
        ("sheet.xlsx", b"PK\x03\x04binary", "INVALID_FILE"),
        ("latin1.csv", b"vpa,name\nx@okaxis,Jos\xe9\n", "INVALID_FILE"),
        ("nul.csv", b"vpa\nx@ok\x00axis\n", "INVALID_FILE"),
    ],
    ids=["empty", "header-only", "wrong-column", "not-csv", "not-utf8", "nul-byte"],
)
def test_submit_unusable_file_returns_422_with_sub_code(
    deepvue: TestClient, name: str, content: bytes, sub_code: str
) -> None:
    response = deepvue.post(SUBMIT, headers=auth(deepvue), files={"batch_file": (name, content)})
    assert response.status_code == 422
    body = response.json()
    assert (body["code"], body["sub_code"]) == (422, sub_code)


def test_submit_too_many_rows_returns_422_batch_size_exceeded(app_factory: AppFactory) -> None:
    app = app_factory(options=(("deepvue.max_rows", "3"),))
    with TestClient(app, base_url="http://testserver/deepvue") as client:
        content = b"vpa\n" + b"".join(f"u{i}@okaxis\n".encode() for i in range(4))
        response = client.post(
            SUBMIT, headers=auth(client), files={"batch_file": ("a.csv", content)}
        )
    assert response.status_code == 422
    assert response.json()["sub_code"] == "BATCH_SIZE_EXCEEDED"
    assert response.json()["message"] == "Batch file exceeds the maximum of 3 records"


def test_submit_oversized_file_returns_413(app_factory: AppFactory) -> None:
    app = app_factory(options=(("deepvue.max_upload_bytes", "1000"),))
    with TestClient(app, base_url="http://testserver/deepvue") as client:
        content = b"vpa\n" + b"x@okaxis\n" * 200
        response = client.post(
            SUBMIT, headers=auth(client), files={"batch_file": ("a.csv", content)}
        )
    assert response.status_code == 413
    assert response.json()["sub_code"] == "FILE_TOO_LARGE"


def test_submit_keeps_webhook_url_and_needs_auth(deepvue: TestClient) -> None:
    response = deepvue.post(
        SUBMIT,
        params={"webhook_url": "https://example.com/hook"},
        files={"batch_file": ("a.csv", b"vpa\nx@y\n")},
    )
    assert response.status_code == 401
    body = submit(deepvue, auth(deepvue), b"vpa\nx@okaxis\n")
    assert body["code"] == 201


def test_download_before_completion_or_unknown_returns_s3_no_such_key(deepvue: TestClient) -> None:
    headers = auth(deepvue)
    request_id = str(submit(deepvue, headers, b"vpa\nx@okaxis\n")["request_id"])
    for key in (f"upi-basic-batch-output-files/{request_id}.csv", "other/x.csv"):
        response = deepvue.get(f"/bulk-data-processing/{key}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/xml")
        assert "<Code>NoSuchKey</Code>" in response.text
        assert f"<Key>{key}</Key>" in response.text


def test_unknown_path_and_method_get_fastapi_json(deepvue: TestClient) -> None:
    missing = deepvue.get("/v1/nothing")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    wrong = deepvue.delete(STATUS)
    assert (wrong.status_code, wrong.json()) == (405, {"detail": "Method Not Allowed"})
    assert wrong.headers["allow"] == "GET, HEAD"
    slash = deepvue.get(STATUS + "/")
    assert (slash.status_code, slash.json()) == (404, {"detail": "Not Found"})


def test_internal_server_error_only_as_a_fault(deepvue: TestClient) -> None:
    headers = auth(deepvue)
    fault = {
        "provider": "deepvue",
        "operation": "get_batch_processing_status",
        "kind": "error",
        "error": "InternalServerError",
    }
    assert deepvue.post("http://testserver/_sim/faults", json=fault).status_code == 201
    response = deepvue.get(STATUS, params={"request_id": SEED_DONE}, headers=headers)
    assert (response.status_code, response.json()) == (500, {"detail": "Internal Server Error"})
    assert deepvue.get(STATUS, params={"request_id": SEED_DONE}, headers=headers).status_code == 200


def test_reset_forgets_submitted_batches_and_restores_seeds(deepvue: TestClient) -> None:
    headers = auth(deepvue)
    request_id = str(submit(deepvue, headers, b"vpa\nx@okaxis\n")["request_id"])
    advance(deepvue, 600)
    assert deepvue.post("http://testserver/_sim/reset?provider=deepvue").json() == {
        "reset": ["deepvue"]
    }
    headers = auth(deepvue)
    response = deepvue.get(STATUS, params={"request_id": request_id}, headers=headers)
    assert response.status_code == 422
    assert status(deepvue, headers, SEED_RUNNING)["status"] == 201


def test_completed_batches_are_forgotten_after_retention(deepvue: TestClient) -> None:
    headers = auth(deepvue)
    old = str(submit(deepvue, headers, b"vpa\nx@okaxis\n")["request_id"])
    advance(deepvue, 8 * 86400)
    headers = auth(deepvue)
    submit(deepvue, headers, b"vpa\ny@okaxis\n")  # eviction runs as new work arrives
    response = deepvue.get(STATUS, params={"request_id": old}, headers=headers)
    assert response.status_code == 422
    assert status(deepvue, headers, SEED_RUNNING)["status"] == 200
