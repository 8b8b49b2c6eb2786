"""POST /v1/batch, GET /v1/batch, /v1/batch/{id}, /results and /cancel, on the clock."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from simulator.ids import IdFactory
from simulator.providers.check import models
from tests.conftest import AppFactory
from tests.providers.check.conftest import (
    BASE,
    Body,
    advance,
    auth,
    create,
    created,
    error,
    file_id,
    fixture,
    get_json,
)

BATCH_ID = re.compile(r"batch_[a-z0-9]{12}")
SEED_DONE = "batch_abc123def456"
SEED_RUNNING = "batch_inprogress01"
SEED_FILE = "550e8400-e29b-41d4-a716-446655440000"


def items(*contents: str) -> list[Body]:
    return [{"content": content} for content in contents]


def results(client: TestClient, batch_id: str, plan: str = "pro", **params: object) -> Body:
    return get_json(client, f"/v1/batch/{batch_id}/results", plan, **params)


def test_create_batch_from_file_returns_202_with_documented_body(check: TestClient) -> None:
    fid = file_id(check, fixture("claims.csv"))
    body = created(check, {"fileId": fid, "methods": {"reasoning": 1.0, "tool": 0.5}})
    assert BATCH_ID.fullmatch(body.pop("id"))
    assert body == {
        "status": "processing",
        "name": None,
        "totalItems": 87,
        "processedItems": 0,
        "successCount": 0,
        "failureCount": 0,
        "methods": {"reasoning": 1.0, "tool": 0.5},
        "createdAt": "2026-03-09T08:14:08Z",
        "message": "Batch created successfully. Items are being processed.",
    }


def test_create_batch_from_items_keeps_name_and_context(check: TestClient) -> None:
    body = created(
        check,
        {
            "name": "Article verification batch",
            "items": [{"content": "A", "context": {"source": "x"}, "idempotencyKey": "k-1"}],
            "methods": {"reasoning": 1},
            "webhookUrl": "https://example.com/hook",
        },
    )
    assert body["name"] == "Article verification batch"
    item = results(check, body["id"])["items"][0]
    assert (item["content"], item["itemContext"], item["idempotencyKey"]) == (
        "A",
        {"source": "x"},
        "k-1",
    )


def test_create_batch_without_methods_uses_reasoning(check: TestClient) -> None:
    assert created(check, {"items": items("A")})["methods"] == {"reasoning": 1.0}


def test_create_batch_second_use_of_file_returns_409(check: TestClient) -> None:
    fid = file_id(check, fixture("claims.csv"))
    created(check, {"fileId": fid})
    response = create(check, {"fileId": fid})
    assert error(response, 409) == {
        "error": {
            "code": "conflict",
            "message": (
                "File has already been used to create a batch. Each fileId can only be used once;"
                " upload the file again to create another batch."
            ),
            "details": [{"field": "fileId", "message": "Used at 2026-03-09T08:14:08Z"}],
        }
    }


def test_create_batch_used_file_stays_used_after_expiry(check: TestClient) -> None:
    fid = file_id(check, fixture("claims.csv"))
    created(check, {"fileId": fid})
    advance(check, 7200)
    assert error(create(check, {"fileId": fid}), 409)["error"]["code"] == "conflict"


def test_create_batch_unknown_file_returns_404(check: TestClient) -> None:
    response = create(check, {"fileId": "00000000-0000-4000-8000-000000000000"})
    assert error(response, 404) == {
        "error": {
            "code": "not_found",
            "message": "File not found. Upload the file again to get a new fileId.",
            "details": [
                {
                    "field": "fileId",
                    "message": "No uploaded file with id 00000000-0000-4000-8000-000000000000",
                }
            ],
        }
    }


def test_create_batch_with_another_orgs_file_returns_404(check: TestClient) -> None:
    fid = file_id(check, fixture("claims.csv"), plan="enterprise")
    assert error(create(check, {"fileId": fid}), 404)["error"]["code"] == "not_found"
    created(check, {"fileId": fid}, plan="enterprise")


def test_create_batch_invalid_request_leaves_file_unused(check: TestClient) -> None:
    fid = file_id(check, fixture("claims.csv"))
    error(create(check, {"fileId": fid, "options": {"timeout": 5}}), 422)
    error(create(check, {"fileId": fid, "methods": {"formal": 1}}), 403)
    created(check, {"fileId": fid})


def test_create_batch_forgotten_file_becomes_unknown(check: TestClient) -> None:
    fid = file_id(check, fixture("claims.csv"))
    advance(check, 3600 + 86_400 + 1)
    file_id(check, fixture("claims.json"), name="c.json")  # any upload sweeps old references
    assert error(create(check, {"fileId": fid}), 404)["error"]["code"] == "not_found"


def test_create_batch_seeded_file_id_from_the_docs_works_once(check: TestClient) -> None:
    body = created(check, {"fileId": SEED_FILE, "methods": {"reasoning": 1}})
    assert body["totalItems"] == 87
    assert error(create(check, {"fileId": SEED_FILE}), 409)["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "fileId|items", "is required"),
        (
            {"fileId": SEED_FILE, "items": items("A")},
            "fileId",
            "provide either fileId or items, not both",
        ),
        ({"fileId": None}, "fileId", "must be a string of 1 to 200 characters"),
        ({"items": []}, "items", "must be a non-empty array of items"),
        ({"items": [{"content": " "}]}, "items[0]", "Content is empty"),
        (
            {"items": [{"content": "x" * 50_001}]},
            "items[0]",
            "Content exceeds maximum length (50000 chars)",
        ),
        ({"items": [{}]}, "items[0]", "Content is empty"),
        ({"items": items("A"), "name": 5}, "name", "must be a string of at most 255 characters"),
        (
            {"items": items("A"), "methods": {}},
            "methods",
            'must be an object of method weights, e.g. {"reasoning": 1}',
        ),
        (
            {"items": items("A"), "methods": {"magic": 1}},
            "methods.magic",
            "unknown method; use one of "
            "semantic, reasoning, tool, biprm, ensemble, entropy, formal",
        ),
        (
            {"items": items("A"), "methods": {"reasoning": 2}},
            "methods.reasoning",
            "weight must be a number from 0 to 1",
        ),
        (
            {"items": items("A"), "methods": {"reasoning": True}},
            "methods.reasoning",
            "weight must be a number from 0 to 1",
        ),
        (
            {"items": items("A"), "methods": {"reasoning": 0}},
            "methods",
            "at least one method needs a weight above 0",
        ),
        ({"items": items("A"), "options": []}, "options", "must be an object"),
        (
            {"items": items("A"), "options": {"timeout": 999}},
            "options.timeout",
            "must be an integer from 1000 to 300000 (ms)",
        ),
        (
            {"items": items("A"), "options": {"timeout": 300_001}},
            "options.timeout",
            "must be an integer from 1000 to 300000 (ms)",
        ),
        (
            {"items": items("A"), "options": {"timeout": 1500.5}},
            "options.timeout",
            "must be an integer from 1000 to 300000 (ms)",
        ),
        (
            {"items": items("A"), "options": {"maxRetries": 6}},
            "options.maxRetries",
            "must be an integer from 0 to 5",
        ),
        (
            {"items": items("A"), "options": {"maxRetries": -1}},
            "options.maxRetries",
            "must be an integer from 0 to 5",
        ),
        (
            {"items": items("A"), "options": {"minConfidence": 1.5}},
            "options.minConfidence",
            "must be a number from 0 to 1",
        ),
        (
            {"items": items("A"), "options": {"acceptThreshold": None}},
            "options.acceptThreshold",
            "must be a number from 0 to 1",
        ),
        (
            {"items": items("A"), "options": {"retryOnLowConfidence": True}},
            "options.minConfidence",
            "is required when retryOnLowConfidence is set",
        ),
        (
            {"items": items("A"), "options": {"retryOnLowConfidence": "yes"}},
            "options.retryOnLowConfidence",
            "must be a boolean",
        ),
        (
            {"items": items("A"), "options": {"acceptThreshold": 0.5, "escalateThreshold": 0.5}},
            "options.acceptThreshold",
            "must be greater than escalateThreshold",
        ),
        (
            {"items": items("A"), "options": {"escalateThreshold": 0.97}},
            "options.acceptThreshold",
            "must be greater than escalateThreshold",
        ),
    ],
)
def test_create_batch_invalid_body_returns_422_with_details(
    check: TestClient, body: Body, field: str, message: str
) -> None:
    assert error(create(check, body), 422) == {
        "error": {
            "code": "validation_error",
            "message": f"{field}: {message}",
            "details": [{"field": field, "message": message}],
        }
    }


def test_create_batch_several_problems_are_all_listed(check: TestClient) -> None:
    body = {"items": items("A"), "options": {"timeout": 1, "maxRetries": 9}}
    answer = error(create(check, body), 422)["error"]
    assert answer["message"] == "Request validation failed (2 errors)"
    assert [d["field"] for d in answer["details"]] == ["options.timeout", "options.maxRetries"]


def test_create_batch_options_at_their_bounds_are_accepted(check: TestClient) -> None:
    options = {
        "timeout": 300_000,
        "minConfidence": 0,
        "acceptThreshold": 1,
        "escalateThreshold": 0,
        "maxRetries": 5,
        "retryOnLowConfidence": True,
    }
    batch = created(check, {"items": items("A"), "options": options})
    detail = get_json(check, f"/v1/batch/{batch['id']}")
    assert detail["options"] == {
        **options,
        "minConfidence": 0.0,
        "acceptThreshold": 1.0,
        "escalateThreshold": 0.0,
    }


@pytest.mark.parametrize(
    ("plan", "method", "needed"),
    [("pro", "formal", "Enterprise")],
)
def test_create_batch_method_outside_plan_returns_403(
    check: TestClient, plan: str, method: str, needed: str
) -> None:
    response = create(check, {"items": items("A"), "methods": {method: 1}}, plan)
    problem = f"Method '{method}' requires the {needed} plan"
    assert error(response, 403) == {
        "error": {
            "code": "forbidden",
            "message": problem,
            "details": [{"field": f"methods.{method}", "message": problem}],
        }
    }


def test_create_batch_every_method_is_allowed_on_enterprise(check: TestClient) -> None:
    methods = dict.fromkeys(
        ("semantic", "reasoning", "tool", "biprm", "ensemble", "entropy", "formal"), 0.5
    )
    assert (
        created(check, {"items": items("A"), "methods": methods}, "enterprise")["methods"]
        == methods
    )


def test_create_batch_on_free_plan_returns_402(check: TestClient) -> None:
    response = create(check, {"items": items("A"), "methods": {"reasoning": 1}}, "free")
    assert error(response, 402)["error"] == {
        "code": "quota_exceeded",
        "message": "Batch processing is not available on the free plan.",
    }


def test_create_batch_over_plan_item_limit_returns_422(check: TestClient) -> None:
    response = create(check, {"items": items(*["A"] * 1001)})
    assert error(response, 422)["error"]["details"] == [
        {"field": "items", "message": "the Pro plan allows at most 1000 items per batch"}
    ]
    assert created(check, {"items": items(*["A"] * 1001)}, "enterprise")["totalItems"] == 1001


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "Request body must be valid JSON"),
        (b"", "Request body is required (JSON)"),
        (b'{"items": [{"content": NaN}]}', "Request body must be valid JSON"),
        (
            b'{"items": [{"content": "a", "context": {"n": 1e999}}]}',
            "Request body must be valid JSON",
        ),
        (b'{"items": [{"content": "\\ud800"}]}', "Request body must be valid JSON in UTF-8"),
        (b"[" * 100_000, "Request body must be valid JSON"),
    ],
)
def test_create_batch_unusable_body_returns_400(
    check: TestClient, content: bytes, message: str
) -> None:
    response = check.post(
        "/v1/batch", headers={**auth(), "Content-Type": "application/json"}, content=content
    )
    assert error(response, 400) == {"error": {"code": "bad_request", "message": message}}


def test_create_batch_body_that_is_not_an_object_returns_422(check: TestClient) -> None:
    response = check.post("/v1/batch", headers=auth(), json=[{"content": "A"}])
    assert error(response, 422)["error"]["details"] == [
        {"field": "body", "message": "must be a JSON object"}
    ]


def test_create_batch_body_over_plan_size_returns_413(app_factory: AppFactory) -> None:
    app = app_factory(options=(("check.pro_max_file_mb", "0.001"),))
    with TestClient(app, base_url=BASE) as client:
        response = create(client, {"items": items("x" * 2000)})
        assert error(response, 413) == {
            "error": {
                "code": "payload_too_large",
                "message": "Request body exceeds maximum of 0.001 MB",
            }
        }


# -- lifecycle --------------------------------------------------------------------------------


def statuses(client: TestClient, batch_id: str) -> list[str]:
    return [i["status"] for i in results(client, batch_id, limit=100)["items"]]


def test_items_move_pending_queued_processing_completed_on_the_clock(
    check: TestClient,
) -> None:
    batch = created(check, {"items": items(*[f"claim {n}" for n in range(12)])})
    assert set(statuses(check, batch["id"])) == {"pending"}
    advance(check, 1)
    # Ten lanes: the first ten items are processing, the other two queued behind them.
    assert statuses(check, batch["id"]) == ["processing"] * 10 + ["queued"] * 2
    advance(check, 60)
    assert set(statuses(check, batch["id"])) == {"completed"}
    detail = get_json(check, f"/v1/batch/{batch['id']}")
    assert detail["status"] == "completed"
    assert (detail["processedItems"], detail["successCount"], detail["failureCount"]) == (12, 12, 0)
    assert detail["startedAt"] == "2026-03-09T08:14:09Z"
    assert detail["completedAt"] is not None


def test_get_batch_counts_grow_while_processing(check: TestClient) -> None:
    batch = created(check, {"items": items(*[f"claim {n}" for n in range(30)])})
    seen = []
    for _ in range(8):
        detail = get_json(check, f"/v1/batch/{batch['id']}")
        seen.append(detail["processedItems"])
        advance(check, 1)
    assert seen == sorted(seen)
    assert seen[0] == 0
    assert 0 < seen[3] < 30
    assert get_json(check, f"/v1/batch/{batch['id']}")["status"] == "completed"


def test_results_completed_item_has_every_documented_field(check: TestClient) -> None:
    batch = created(
        check, {"items": [{"content": "[true] The sky is blue.", "idempotencyKey": "k"}]}
    )
    advance(check, 10)
    page = results(check, batch["id"])
    item = page["items"][0]
    assert re.fullmatch(r"ver_[a-z0-9]{12}", item.pop("verificationId"))
    assert isinstance(item.pop("processingTimeMs"), int)
    assert item.pop("completedAt").startswith("2026-03-09T08:14:")
    assert item == {
        "id": "item_001",
        "itemIndex": 0,
        "idempotencyKey": "k",
        "content": "[true] The sky is blue.",
        "itemContext": None,
        "status": "completed",
        "verdict": "true",
        "confidence": 0.97,
        "decision": "accept",
        "costCents": 5,
        "errorMessage": None,
        "createdAt": "2026-03-09T08:14:08Z",
    }
    assert page["batch"] == {
        "id": batch["id"],
        "status": "completed",
        "totalItems": 1,
        "processedItems": 1,
        "successCount": 1,
        "failureCount": 0,
    }
    assert page["pagination"] == {"total": 1, "limit": 20, "offset": 0, "hasMore": False}


@pytest.mark.parametrize(
    ("content", "verdict", "confidence", "decision"),
    [
        ("[true] x", "true", 0.97, "accept"),
        ("[false] x", "false", 0.91, "reject"),
        ("[uncertain] x", "uncertain", 0.62, "escalate"),
        ("  [TRUE] leading spaces and case", "true", 0.97, "accept"),
    ],
)
def test_results_magic_prefix_forces_the_verdict(
    check: TestClient, content: str, verdict: str, confidence: float, decision: str
) -> None:
    batch = created(check, {"items": items(content)})
    advance(check, 10)
    item = results(check, batch["id"])["items"][0]
    assert (item["verdict"], item["confidence"], item["decision"]) == (
        verdict,
        confidence,
        decision,
    )


def test_results_decision_follows_the_batch_thresholds(check: TestClient) -> None:
    options = {"acceptThreshold": 0.99, "escalateThreshold": 0.95}
    batch = created(check, {"items": items("[true] x", "[false] x"), "options": options})
    advance(check, 10)
    decisions = [i["decision"] for i in results(check, batch["id"])["items"]]
    assert decisions == ["escalate", "escalate"]


def test_results_timeout_magic_fails_after_every_attempt(check: TestClient) -> None:
    batch = created(check, {"items": items("[timeout] x")})
    advance(check, 119)
    assert statuses(check, batch["id"]) == ["processing"]
    advance(check, 3)
    item = results(check, batch["id"])["items"][0]
    assert {
        k: item[k] for k in ("status", "verificationId", "verdict", "confidence", "decision")
    } == {
        "status": "failed",
        "verificationId": None,
        "verdict": None,
        "confidence": None,
        "decision": None,
    }
    assert item["errorMessage"] == "Verification timeout after 120 seconds"
    assert item["retryCount"] == 3
    assert item["costCents"] == 0
    detail = get_json(check, f"/v1/batch/{batch['id']}")
    assert (detail["status"], detail["failureCount"], detail["totalCostCents"]) == ("failed", 1, 0)


def test_results_timeout_follows_the_options(check: TestClient) -> None:
    options = {"timeout": 2000, "maxRetries": 1}
    batch = created(check, {"items": items("[timeout] x"), "options": options})
    advance(check, 10)
    item = results(check, batch["id"])["items"][0]
    assert (item["errorMessage"], item["retryCount"]) == ("Verification timeout after 4 seconds", 1)


def test_results_fail_magic_fails_the_item(check: TestClient) -> None:
    batch = created(check, {"items": items("[fail] x", "[true] y")})
    advance(check, 30)
    failed, done = results(check, batch["id"])["items"]
    assert failed["status"] == "failed"
    assert failed["errorMessage"] == "Verification failed: all verification methods returned errors"
    assert done["status"] == "completed"
    detail = get_json(check, f"/v1/batch/{batch['id']}")
    assert (detail["status"], detail["successCount"], detail["failureCount"]) == ("completed", 1, 1)


def test_results_are_deterministic_per_content(check: TestClient) -> None:
    first = created(check, {"items": items("Claim one", "Claim two")})
    second = created(check, {"items": items("Claim two", "Claim one")})
    advance(check, 30)
    keys = ("verdict", "confidence", "decision", "costCents", "processingTimeMs")

    def outcome(batch_id: str, index: int) -> tuple[Any, ...]:
        item = results(check, batch_id)["items"][index]
        return tuple(item[k] for k in keys)

    assert outcome(first["id"], 0) == outcome(second["id"], 1)
    assert outcome(first["id"], 1) == outcome(second["id"], 0)


def test_results_cost_depends_on_methods(check: TestClient) -> None:
    cheap = created(check, {"items": items("[true] x"), "methods": {"semantic": 1}})
    dear = created(check, {"items": items("[true] x"), "methods": {"reasoning": 1, "tool": 1}})
    advance(check, 30)
    assert results(check, cheap["id"])["items"][0]["costCents"] == 1
    assert results(check, dear["id"])["items"][0]["costCents"] == 10
    assert get_json(check, f"/v1/batch/{dear['id']}")["totalCostCents"] == 10


def test_results_are_paged_with_limit_and_offset(check: TestClient) -> None:
    batch = created(check, {"items": items(*[f"c{n}" for n in range(45)])})
    page = results(check, batch["id"], limit=20, offset=40)
    assert [i["id"] for i in page["items"]] == [f"item_{n:03d}" for n in range(41, 46)]
    assert [i["itemIndex"] for i in page["items"]] == list(range(40, 45))
    assert page["pagination"] == {"total": 45, "limit": 20, "offset": 40, "hasMore": False}
    first = results(check, batch["id"])
    assert len(first["items"]) == 20
    assert first["pagination"]["hasMore"] is True


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"limit": 0}, "limit", "must be an integer from 1 to 100"),
        ({"limit": 101}, "limit", "must be an integer from 1 to 100"),
        ({"limit": "ten"}, "limit", "must be an integer from 1 to 100"),
        ({"offset": -1}, "offset", "must be an integer of at least 0"),
        ({"offset": "1.5"}, "offset", "must be an integer of at least 0"),
    ],
)
def test_results_bad_paging_returns_422(
    check: TestClient, params: Body, field: str, message: str
) -> None:
    response = check.get(f"/v1/batch/{SEED_DONE}/results", headers=auth(), params=params)
    assert error(response, 422)["error"]["details"] == [{"field": field, "message": message}]


def test_results_unknown_batch_returns_404(check: TestClient) -> None:
    response = check.get("/v1/batch/batch_nosuchbatch1/results", headers=auth())
    assert error(response, 404) == {"error": {"code": "not_found", "message": "Batch not found"}}


def test_get_batch_of_another_org_returns_404(check: TestClient) -> None:
    batch = created(check, {"items": items("A")}, "enterprise")
    response = check.get(f"/v1/batch/{batch['id']}", headers=auth("pro"))
    assert error(response, 404) == {"error": {"code": "not_found", "message": "Batch not found"}}


def test_get_batch_returns_summary_methods_and_options(check: TestClient) -> None:
    batch = created(check, {"items": items("A"), "name": "n", "options": {"maxRetries": 1}})
    detail = get_json(check, f"/v1/batch/{batch['id']}")
    assert detail == {
        "id": batch["id"],
        "name": "n",
        "status": "processing",
        "totalItems": 1,
        "processedItems": 0,
        "successCount": 0,
        "failureCount": 0,
        "totalCostCents": 0,
        "createdAt": "2026-03-09T08:14:08Z",
        "startedAt": None,
        "completedAt": None,
        "methods": {"reasoning": 1.0},
        "options": {
            "timeout": 30000,
            "minConfidence": None,
            "acceptThreshold": 0.95,
            "escalateThreshold": 0.5,
            "maxRetries": 1,
            "retryOnLowConfidence": False,
        },
    }


# -- list -------------------------------------------------------------------------------------


def test_list_batches_newest_first_with_pagination(check: TestClient) -> None:
    ids = []
    for n in range(3):
        ids.append(created(check, {"items": items(f"c{n}")}, "enterprise")["id"])
        advance(check, 1)
    page = get_json(check, "/v1/batch", "enterprise", limit=2)
    assert [b["id"] for b in page["data"]] == [ids[2], ids[1]]
    assert page["pagination"] == {"total": 3, "limit": 2, "offset": 0, "hasMore": True}
    rest = get_json(check, "/v1/batch", "enterprise", limit=2, offset=2)
    assert [b["id"] for b in rest["data"]] == [ids[0]]
    assert rest["pagination"]["hasMore"] is False
    assert set(page["data"][0]) == {
        "id",
        "name",
        "status",
        "totalItems",
        "processedItems",
        "successCount",
        "failureCount",
        "totalCostCents",
        "createdAt",
        "startedAt",
        "completedAt",
    }


def test_list_batches_filters_by_status(check: TestClient) -> None:
    done = created(check, {"items": items("[true] a")}, "enterprise")["id"]
    failed = created(check, {"items": items("[fail] a")}, "enterprise")["id"]
    advance(check, 30)
    running = created(check, {"items": items("b")}, "enterprise")["id"]
    cancelled = created(check, {"items": items("c")}, "enterprise")["id"]
    check.post(f"/v1/batch/{cancelled}/cancel", headers=auth("enterprise"))

    def listed(status: str) -> list[str]:
        return [b["id"] for b in get_json(check, "/v1/batch", "enterprise", status=status)["data"]]

    assert listed("completed") == [done]
    assert listed("processing") == [running]
    assert listed("cancelled") == [cancelled]
    assert listed("failed") == [failed]


def test_list_batches_unknown_status_returns_422(check: TestClient) -> None:
    response = check.get("/v1/batch", headers=auth(), params={"status": "done"})
    assert error(response, 422)["error"]["details"] == [
        {
            "field": "status",
            "message": (
                "must be one of pending, validating, processing, completed, failed, cancelled"
            ),
        }
    ]


def test_list_batches_free_plan_sees_none(check: TestClient) -> None:
    page = get_json(check, "/v1/batch", "free")
    assert page == {
        "data": [],
        "pagination": {"total": 0, "limit": 20, "offset": 0, "hasMore": False},
    }


def test_list_batches_keeps_at_most_max_batches(app_factory: AppFactory) -> None:
    app = app_factory(options=(("check.max_batches", "3"),))
    with TestClient(app, base_url=BASE) as client:
        answers = [create(client, {"items": items("a")}, "enterprise") for _ in range(5)]
        ids = [a.json()["id"] for a in answers if a.status_code == 202]
        listed = [b["id"] for b in get_json(client, "/v1/batch", "enterprise")["data"]]
        # The creates beyond the cap are refused; those made stay (the seeded examples do
        # not count).
        assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
        assert listed == ids[::-1]


def test_get_batch_is_forgotten_after_retention(check: TestClient) -> None:
    batch = created(check, {"items": items("a")})["id"]
    advance(check, 30 * 86_400 + 60)
    get_json(check, "/v1/batch")  # listing sweeps expired batches
    assert (
        error(check.get(f"/v1/batch/{batch}", headers=auth()), 404)["error"]["code"] == "not_found"
    )


# -- cancel -----------------------------------------------------------------------------------


def test_cancel_batch_skips_pending_and_queued_items(check: TestClient) -> None:
    contents = ["[slow] a", *[f"claim {n}" for n in range(40)]]
    batch = created(check, {"items": items(*contents)})["id"]
    advance(check, 2.5)
    before = statuses(check, batch)
    response = check.post(f"/v1/batch/{batch}/cancel", headers=auth())
    assert response.status_code == 200
    assert response.json() == {
        "id": batch,
        "status": "cancelled",
        "message": "Batch cancelled successfully",
    }
    after = statuses(check, batch)
    assert before[0] == after[0] == "processing"
    assert "completed" in before
    for was, now in zip(before, after, strict=True):
        if was == "completed":
            assert now == "completed"
        if was == "queued":
            assert now == "skipped"
    assert "skipped" in after
    # The slow item was already running: it still completes, and only completed items cost.
    advance(check, 60)
    final = results(check, batch, limit=100)["items"]
    assert final[0]["status"] == "completed"
    detail = get_json(check, f"/v1/batch/{batch}")
    assert detail["status"] == "cancelled"
    completed = [i for i in final if i["status"] == "completed"]
    assert detail["successCount"] == len(completed)
    assert detail["totalCostCents"] == sum(i["costCents"] for i in completed)
    skipped = [i for i in final if i["status"] == "skipped"]
    assert all(i["costCents"] is None and i["verdict"] is None for i in skipped)
    assert detail["processedItems"] == len(final) - len(skipped)


def test_cancel_batch_before_processing_skips_everything(check: TestClient) -> None:
    batch = created(check, {"items": items("a", "b")})["id"]
    check.post(f"/v1/batch/{batch}/cancel", headers=auth())
    advance(check, 60)
    assert statuses(check, batch) == ["skipped", "skipped"]
    detail = get_json(check, f"/v1/batch/{batch}")
    assert (detail["startedAt"], detail["completedAt"]) == (None, "2026-03-09T08:14:08Z")


@pytest.mark.parametrize("state", ["completed", "cancelled"])
def test_cancel_batch_finished_returns_cannot_cancel(check: TestClient, state: str) -> None:
    batch = created(check, {"items": items("a")})["id"]
    if state == "completed":
        advance(check, 30)
    else:
        check.post(f"/v1/batch/{batch}/cancel", headers=auth())
    response = check.post(f"/v1/batch/{batch}/cancel", headers=auth())
    assert error(response, 400) == {
        "error": {
            "code": "CANNOT_CANCEL",
            "message": "Cannot cancel batch. Batch not found or already completed/cancelled.",
        }
    }


def test_cancel_batch_unknown_returns_404(check: TestClient) -> None:
    response = check.post("/v1/batch/batch_nosuchbatch1/cancel", headers=auth())
    assert error(response, 404) == {"error": {"code": "not_found", "message": "Batch not found"}}


# -- the documentation's examples -------------------------------------------------------------


def test_seeded_results_match_the_results_page(check: TestClient) -> None:
    page = results(check, SEED_DONE, limit=3)
    assert page["batch"] == {
        "id": SEED_DONE,
        "status": "completed",
        "totalItems": 50,
        "processedItems": 50,
        "successCount": 48,
        "failureCount": 2,
    }
    first, second, third = page["items"]
    assert {k: first[k] for k in ("id", "verificationId", "verdict", "confidence", "decision")} == {
        "id": "item_001",
        "verificationId": "ver_xyz789",
        "verdict": "true",
        "confidence": 0.95,
        "decision": "accept",
    }
    assert (first["costCents"], first["processingTimeMs"], first["itemContext"]) == (
        5,
        1250,
        {"source": "textbook"},
    )
    assert (second["verificationId"], second["verdict"], second["decision"]) == (
        "ver_abc456",
        "false",
        "reject",
    )
    assert (third["status"], third["errorMessage"], third["retryCount"]) == (
        "failed",
        "Verification timeout after 120 seconds",
        3,
    )
    assert page["pagination"] == {"total": 50, "limit": 3, "offset": 0, "hasMore": True}


def test_seeded_running_batch_progresses_and_can_be_cancelled(check: TestClient) -> None:
    detail = get_json(check, f"/v1/batch/{SEED_RUNNING}")
    assert detail["status"] == "processing"
    advance(check, 300)
    halfway = get_json(check, f"/v1/batch/{SEED_RUNNING}")["processedItems"]
    assert 0 < halfway < 25
    assert check.post(f"/v1/batch/{SEED_RUNNING}/cancel", headers=auth()).status_code == 200


def test_seeded_examples_come_back_after_reset(check: TestClient) -> None:
    created(check, {"fileId": SEED_FILE})
    check.post(f"/v1/batch/{SEED_RUNNING}/cancel", headers=auth())
    assert check.post("http://testserver/_sim/reset").status_code == 200
    assert get_json(check, f"/v1/batch/{SEED_RUNNING}")["status"] == "processing"
    created(check, {"fileId": SEED_FILE})


def test_a_results_page_derives_no_outcome_again_and_still_follows_the_clock(
    check: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each item's outcome is fixed when the batch is made; its status is the clock's."""
    body = created(check, {"items": items(*(f"Claim {i}" for i in range(100)))})
    before = results(check, body["id"], limit=100)
    assert {item["status"] for item in before["items"]} <= {"pending", "queued", "processing"}
    derived: list[tuple[object, ...]] = []
    real = IdFactory.derive

    def counting(self: IdFactory, *parts: object) -> Any:
        derived.append(parts)
        return real(self, *parts)

    monkeypatch.setattr(IdFactory, "derive", counting)
    check.post("http://testserver/_sim/clock/advance", json={"seconds": 86_400})
    first = results(check, body["id"], limit=100)
    again = results(check, body["id"], limit=100)
    assert {item["status"] for item in first["items"]} <= {"completed", "failed"}
    assert first == again
    assert len([p for p in derived if p[0] == "content"]) == 0  # outcomes: made with the batch
    assert len([p for p in derived if p[-1] == "ver"]) <= 100  # ids: once each, at most


def test_a_results_page_is_compact_json_with_unicode_as_it_is(check: TestClient) -> None:
    body = created(check, {"items": items("Café — «naïve» claim ✓", 'Quote " and \\ back')})
    check.post("http://testserver/_sim/clock/advance", json={"seconds": 86_400})
    response = check.get(f"/v1/batch/{body['id']}/results", headers=auth())
    assert response.headers["content-type"] == "application/json"
    expected = json.dumps(response.json(), ensure_ascii=False, separators=(",", ":"))
    assert response.content == expected.encode()


def test_list_batches_reads_the_stored_heads_without_joining_their_items(
    check: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing summarises each stored batch from its head, as ``GET /v1/batch/{id}``
    does: it builds no stand-in for each of its items (a listing of many large batches
    would build one per item of every batch)."""
    made = [created(check, {"items": items("a", "b", "[fail] c")})["id"] for _ in range(3)]
    advance(check, 30)
    joined: list[str] = []
    real = models.joined

    def counting(head: models.BatchHead, chunks: dict[int, models.BatchChunk]) -> models.Batch:
        joined.append(head.id)
        return real(head, chunks)

    monkeypatch.setattr(models, "joined", counting)
    listed = get_json(check, "/v1/batch", limit=100)["data"]
    assert joined == []
    for batch_id in made:
        shown = next(b for b in listed if b["id"] == batch_id)
        assert shown == {
            key: value
            for key, value in get_json(check, f"/v1/batch/{batch_id}").items()
            if key in shown
        }
        assert (shown["totalItems"], shown["failureCount"]) == (3, 1)
