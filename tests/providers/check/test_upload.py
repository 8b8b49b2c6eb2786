"""POST /v1/batch/upload: every response of the upload page, and the File Formats rules."""

from __future__ import annotations

import json
import re

import pytest
from starlette.testclient import TestClient

from tests.conftest import AppFactory
from tests.providers.check.conftest import (
    BASE,
    Body,
    advance,
    auth,
    created,
    error,
    file_id,
    fixture,
    get_json,
    set_options,
    upload,
)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def items_of(client: TestClient, fid: str) -> list[Body]:
    """The items a fileId holds, as a batch created from it shows them."""
    batch = created(client, {"fileId": fid, "methods": {"reasoning": 1}})
    page = get_json(client, f"/v1/batch/{batch['id']}/results", limit=100)
    items: list[Body] = page["items"]
    return items


def test_upload_batch_file_claims_csv_returns_documented_success(check: TestClient) -> None:
    response = upload(check, fixture("claims.csv"))
    assert response.status_code == 200
    body = response.json()
    assert UUID.fullmatch(body.pop("fileId"))
    assert body == {
        "originalFileName": "claims.csv",
        "format": "csv",
        "itemCount": 87,
        "validationErrors": [],
        "expiresAt": "2026-03-09T09:14:08Z",
        "message": "File uploaded successfully",
    }
    assert list(response.json()) == [
        "fileId",
        "originalFileName",
        "format",
        "itemCount",
        "validationErrors",
        "expiresAt",
        "message",
    ]


def test_upload_batch_file_with_skipped_rows_returns_warnings(check: TestClient) -> None:
    response = upload(check, fixture("claims_with_warnings.csv"))
    assert response.status_code == 200
    body = response.json()
    assert body["itemCount"] == 85
    assert body["validationErrors"] == [
        {"row": 12, "error": "Content is empty, row skipped"},
        {"row": 45, "error": "Content exceeds maximum length (50000 chars), row skipped"},
    ]
    assert body["message"] == (
        "File uploaded with 2 validation warning(s). Items with errors were skipped."
    )


def test_upload_batch_file_without_file_returns_400(check: TestClient) -> None:
    response = check.post("/v1/batch/upload", headers=auth(), files={"other": ("a.csv", b"x")})
    assert error(response, 400) == {
        "error": {
            "code": "validation_error",
            "message": 'File is required. Use form field name "file".',
        }
    }


def test_upload_batch_file_json_body_instead_of_form_returns_400(check: TestClient) -> None:
    response = check.post("/v1/batch/upload", headers=auth(), json={"file": "content\nx\n"})
    assert error(response, 400)["error"]["code"] == "validation_error"


def test_upload_batch_file_missing_content_column_returns_parse_failure(
    check: TestClient,
) -> None:
    response = upload(check, fixture("missing_content_column.csv"))
    assert error(response, 400) == {
        "error": "File parsing failed",
        "validationErrors": [{"row": 1, "error": "Missing required column: content"}],
    }


@pytest.mark.parametrize(
    ("name", "row", "message"),
    [
        ("unterminated_quote.csv", 2, "Unterminated quoted field"),
        ("not_utf8.csv", 1, "File is not valid UTF-8 text"),
        ("too_many_items.csv", 102, "File exceeds maximum of 100 items"),
        ("invalid.json", 2, "Invalid JSON: Expecting value"),
    ],
)
def test_upload_batch_file_bad_fixture_returns_parse_failure(
    check: TestClient, name: str, row: int, message: str
) -> None:
    response = upload(check, fixture(name), name=name)
    assert error(response, 400) == {
        "error": "File parsing failed",
        "validationErrors": [{"row": row, "error": message}],
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "File is empty"),
        (b"content\n\n\n", "File has no items"),
        (b"content\n  \n,\n", "File has no valid items"),
    ],
)
def test_upload_batch_file_without_items_returns_parse_failure(
    check: TestClient, data: bytes, message: str
) -> None:
    rows = error(upload(check, data), 400)["validationErrors"]
    assert rows[0] == {"row": 1, "error": message}


def test_upload_batch_file_exactly_100_items_is_accepted(check: TestClient) -> None:
    data = b"content\n" + b"".join(b"claim %d\n" % n for n in range(100))
    assert upload(check, data).json()["itemCount"] == 100


def test_upload_batch_file_csv_follows_rfc4180_and_parsing_rules(check: TestClient) -> None:
    response = upload(check, fixture("rfc4180.csv"), name="rfc4180.csv")
    assert response.status_code == 200, response.text
    assert response.json()["itemCount"] == 4
    items = items_of(check, response.json()["fileId"])
    assert [(i["content"], i["itemContext"], i["idempotencyKey"]) for i in items] == [
        ("Paris, the capital of France, is on the Seine.", {"Source": "atlas"}, "geo-1"),
        ('He said "water boils at 100 °C".', {"Source": "quotes"}, "phys-1"),
        ("A claim\r\nacross two lines", {"Source": "multiline"}, None),
        ("Unquoted claim with no context", None, None),
    ]


def test_upload_batch_file_rows_are_numbered_by_line(check: TestClient) -> None:
    data = b'content\n"two\nlines"\n\n,\n'
    body = upload(check, data).json()
    assert body["validationErrors"] == [{"row": 5, "error": "Content is empty, row skipped"}]


def test_upload_batch_file_context_columns_become_context(check: TestClient) -> None:
    data = fixture("claims.csv")
    items = items_of(check, file_id(check, data))
    assert items[0]["itemContext"] == {"source": "wikipedia", "category": "science"}
    assert items[0]["idempotencyKey"] == "claim-001"


@pytest.mark.parametrize("name", ["claims.json", "claims_items.json"])
def test_upload_batch_file_json_array_or_items_object_is_accepted(
    check: TestClient, name: str
) -> None:
    response = upload(check, fixture(name), name=name, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["format"] == "json"
    assert response.json()["itemCount"] == 3
    items = items_of(check, response.json()["fileId"])
    assert items[2]["content"] == "The Great Wall of China is visible from space."
    assert items[2]["itemContext"] == {"source": "wikipedia", "category": "myth"}
    assert items[2]["idempotencyKey"] == "claim-003"


def test_upload_batch_file_json_items_are_skipped_with_their_row(check: TestClient) -> None:
    document = [
        {"content": "ok"},
        {"content": ""},
        "not an object",
        {"content": 5},
        {"content": "x" * 50_001},
        {"content": "ok", "context": "nope"},
        {"content": "ok", "idempotency_key": "snake-key"},
    ]
    response = upload(check, json.dumps(document).encode(), name="items.json")
    body = response.json()
    assert body["itemCount"] == 2
    assert body["validationErrors"] == [
        {"row": 2, "error": "Content is empty, row skipped"},
        {"row": 3, "error": "Item must be an object, row skipped"},
        {"row": 4, "error": "Content must be a string, row skipped"},
        {"row": 5, "error": "Content exceeds maximum length (50000 chars), row skipped"},
        {"row": 6, "error": "Context must be an object, row skipped"},
    ]
    assert items_of(check, body["fileId"])[1]["idempotencyKey"] == "snake-key"


@pytest.mark.parametrize(
    ("document", "row", "message"),
    [
        (b'{"claims": []}', 1, "JSON must be an array of items or an object with an items array"),
        (b'[{"content": NaN}]', 1, "Invalid JSON: NaN is not allowed"),
        (b"[" * 100_000, 1, "Invalid JSON: nesting too deep"),
    ],
)
def test_upload_batch_file_unusable_json_returns_parse_failure(
    check: TestClient, document: bytes, row: int, message: str
) -> None:
    rows = error(upload(check, document, name="f.json"), 400)["validationErrors"]
    assert rows == [{"row": row, "error": message}]


def test_upload_batch_file_format_is_sniffed_without_extension(check: TestClient) -> None:
    response = upload(check, b'[{"content": "a"}]', name="upload", content_type="")
    assert response.json()["format"] == "json"
    response = upload(check, b"content\na\n", name="upload", content_type="")
    assert response.json()["format"] == "csv"


def test_upload_batch_file_unsupported_type_returns_parse_failure(check: TestClient) -> None:
    rows = error(upload(check, b"PK\x03\x04", name="claims.xlsx"), 400)["validationErrors"]
    assert rows == [{"row": 1, "error": "Unsupported file type: .xlsx. Upload a CSV or JSON file"}]


def test_upload_batch_file_on_free_plan_returns_402(check: TestClient) -> None:
    response = upload(check, fixture("claims.csv"), plan="free")
    assert error(response, 402) == {
        "error": {
            "code": "quota_exceeded",
            "message": "Batch processing is not available on the free plan.",
        }
    }


STORAGE_OFF = {
    "error": {
        "code": "FILE_STORAGE_UNAVAILABLE",
        "message": "File upload is not configured. Please use direct JSON items array instead.",
    }
}


def test_upload_batch_file_with_storage_off_returns_503(app_factory: AppFactory) -> None:
    app = app_factory(options=(("check.file_storage", "false"),))
    with TestClient(app, base_url=BASE) as client:
        assert error(upload(client, fixture("claims.csv")), 503) == STORAGE_OFF
        # Direct items still work, as the message suggests.
        created(client, {"items": [{"content": "The sky is blue."}]})


def test_upload_batch_file_storage_switched_off_at_runtime_returns_503(
    check: TestClient,
) -> None:
    fid = file_id(check, fixture("claims.csv"))
    set_options(check, file_storage=False)
    assert error(upload(check, fixture("claims.csv")), 503) == STORAGE_OFF
    response = check.post("/v1/batch", headers=auth(), json={"fileId": fid})
    assert error(response, 503) == STORAGE_OFF


def test_upload_batch_file_storage_fault_returns_503(check: TestClient) -> None:
    fault = {
        "provider": "check",
        "operation": "upload_batch_file",
        "kind": "error",
        "error": "FileStorageUnavailable",
    }
    assert check.post("http://testserver/_sim/faults", json=fault).status_code == 201
    assert error(upload(check, fixture("claims.csv")), 503) == STORAGE_OFF
    assert upload(check, fixture("claims.csv")).status_code == 200


def test_upload_batch_file_expiry_is_one_hour_pro_and_24_hours_enterprise(
    check: TestClient,
) -> None:
    pro = upload(check, fixture("claims.json"), name="c.json").json()
    enterprise = upload(check, fixture("claims.json"), name="c.json", plan="enterprise").json()
    assert pro["expiresAt"] == "2026-03-09T09:14:08Z"
    assert enterprise["expiresAt"] == "2026-03-10T08:14:08Z"


def test_upload_batch_file_expires_on_the_clock(check: TestClient) -> None:
    fid = file_id(check, fixture("claims.json"), name="c.json")
    advance(check, 3600)
    response = check.post("/v1/batch", headers=auth(), json={"fileId": fid})
    assert error(response, 400) == {
        "error": {
            "code": "bad_request",
            "message": "File has expired. Upload the file again to get a new fileId.",
            "details": [{"field": "fileId", "message": "Expired at 2026-03-09T09:14:08Z"}],
        }
    }


def test_upload_batch_file_just_before_expiry_is_usable(check: TestClient) -> None:
    fid = file_id(check, fixture("claims.json"), name="c.json")
    advance(check, 3599)
    created(check, {"fileId": fid})


def test_upload_batch_file_unauthenticated_returns_401(check: TestClient) -> None:
    response = check.post("/v1/batch/upload", files={"file": ("c.csv", b"content\nx\n")})
    assert error(response, 401) == {
        "error": {
            "code": "unauthorized",
            "message": (
                "API key is required. Include it in the Authorization header as 'Bearer vfy_...'"
            ),
        }
    }


def test_upload_batch_file_malformed_multipart_returns_400(check: TestClient) -> None:
    response = check.post(
        "/v1/batch/upload",
        headers={**auth(), "Content-Type": "multipart/form-data; boundary=x"},
        content=b"--x\r\nContent-Disposition: form-data; name=file; filename=a.csv\r\n\r\nbroken",
    )
    assert error(response, 400) == {
        "error": {
            "code": "bad_request",
            "message": "Invalid multipart body: the closing boundary is missing",
        }
    }


def test_upload_batch_file_is_deterministic_under_the_seed(app_factory: AppFactory) -> None:
    ids = []
    for _ in range(2):
        with TestClient(app_factory(), base_url=BASE) as client:
            ids.append(file_id(client, fixture("claims.csv")))
    assert ids[0] == ids[1]
