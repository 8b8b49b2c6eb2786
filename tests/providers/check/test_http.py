"""Auth, rate-limit headers and enforcement, Check-shaped 404/405, the served spec, faults."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from simulator.ids import IdFactory
from simulator.providers.check.models import KEYS_BY_PLAN, CheckOptions, webhook_secret
from tests.conftest import START, AppFactory
from tests.providers.check.conftest import BASE, advance, auth, error, get_json, set_options

MISSING = "API key is required. Include it in the Authorization header as 'Bearer vfy_...'"
INVALID = "Invalid API key. Check the key in the Authorization header ('Bearer vfy_...')"
WINDOW_END = str((int(START.timestamp()) // 60 + 1) * 60)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, MISSING),
        ({"Authorization": "Bearer"}, MISSING),
        ({"Authorization": "Basic dnB5Og=="}, MISSING),
        ({"Authorization": "Bearer vfy_not_a_key"}, INVALID),
        ({"Authorization": "Bearer sk_live_123"}, INVALID),
    ],
)
def test_list_batches_without_valid_key_returns_401(
    check: TestClient, headers: dict[str, str], message: str
) -> None:
    response = check.get("/v1/batch", headers=headers)
    assert error(response, 401) == {"error": {"code": "unauthorized", "message": message}}
    assert response.headers["x-ratelimit-limit"] == "20"


def test_bearer_scheme_is_case_insensitive(check: TestClient) -> None:
    headers = {"Authorization": f"bearer {KEYS_BY_PLAN['pro']}"}
    assert check.get("/v1/batch", headers=headers).status_code == 200


def test_providers_listing_shows_a_test_key_per_plan(check: TestClient) -> None:
    listing = check.get("http://testserver/_sim/providers").json()["providers"]
    credentials = next(p["credentials"] for p in listing if p["name"] == "check")
    assert credentials == {
        "api_key": KEYS_BY_PLAN["pro"],
        "plans": {
            "free": KEYS_BY_PLAN["free"],
            "pro": KEYS_BY_PLAN["pro"],
            "enterprise": KEYS_BY_PLAN["enterprise"],
        },
        "webhook_secrets": {
            "org_free_test": webhook_secret(IdFactory(7).child("check"), "org_free_test"),
            "org_pro_test": webhook_secret(IdFactory(7).child("check"), "org_pro_test"),
            "org_enterprise_test": webhook_secret(
                IdFactory(7).child("check"), "org_enterprise_test"
            ),
        },
    }
    assert all(key.startswith("vfy_") for key in KEYS_BY_PLAN.values())


@pytest.mark.parametrize(("plan", "limit"), [("free", 20), ("pro", 200), ("enterprise", 1000)])
def test_every_response_carries_rate_limit_headers_per_plan(
    check: TestClient, plan: str, limit: int
) -> None:
    first = check.get("/v1/batch", headers=auth(plan))
    second = check.get("/v1/batch/batch_nosuchbatch1", headers=auth(plan))
    assert second.status_code == 404
    assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == (
        str(limit),
        str(limit - 1),
    )
    assert second.headers["x-ratelimit-remaining"] == str(limit - 2)
    assert first.headers["x-ratelimit-reset"] == WINDOW_END


def test_rate_window_resets_on_the_clock(check: TestClient) -> None:
    for _ in range(3):
        check.get("/v1/batch", headers=auth())
    advance(check, 60)
    response = check.get("/v1/batch", headers=auth())
    assert response.headers["x-ratelimit-remaining"] == "199"
    assert response.headers["x-ratelimit-reset"] == str(int(WINDOW_END) + 60)


def test_rate_limit_is_not_enforced_by_default(check: TestClient) -> None:
    for _ in range(25):
        response = check.get("/v1/batch", headers=auth("free"))
        assert response.status_code == 200
    assert response.headers["x-ratelimit-remaining"] == "0"


def test_rate_limit_enforced_returns_429_with_retry_after(app_factory: AppFactory) -> None:
    app = app_factory(options=(("check.enforce_rate_limits", "true"),))
    with TestClient(app, base_url=BASE) as client:
        advance(client, 15)  # 15 seconds into the minute
        for _ in range(20):
            assert client.get("/v1/batch", headers=auth("free")).status_code == 200
        response = client.get("/v1/batch", headers=auth("free"))
        assert error(response, 429) == {
            "error": {
                "code": "rate_limited",
                "message": "Rate limit exceeded. Try again in 37 seconds.",
                "retryAfter": 37,
            }
        }
        assert response.headers["retry-after"] == "37"
        assert response.headers["x-ratelimit-remaining"] == "0"
        # Another organisation has its own window; the next minute starts afresh.
        assert client.get("/v1/batch", headers=auth("pro")).status_code == 200
        advance(client, 37)
        assert client.get("/v1/batch", headers=auth("free")).status_code == 200


def test_rate_limit_fault_returns_documented_429(check: TestClient) -> None:
    fault = {"provider": "check", "kind": "rate_limit", "retry_after": 45}
    assert check.post("http://testserver/_sim/faults", json=fault).status_code == 201
    response = check.get("/v1/batch", headers=auth())
    assert error(response, 429) == {
        "error": {
            "code": "rate_limited",
            "message": "Rate limit exceeded. Try again in 45 seconds.",
            "retryAfter": 45,
        }
    }
    assert response.headers["retry-after"] == "45"
    assert response.headers["x-ratelimit-remaining"] == "0"


@pytest.mark.parametrize(
    ("name", "status"),
    [("BatchNotFound", 404), ("CannotCancel", 400), ("RateLimited", 429), ("InternalError", 500)],
)
def test_error_fault_by_catalogue_name_returns_its_body(
    check: TestClient, name: str, status: int
) -> None:
    fault = {"provider": "check", "operation": "get_batch", "kind": "error", "error": name}
    assert check.post("http://testserver/_sim/faults", json=fault).status_code == 201
    response = check.get("/v1/batch/batch_abc123def456", headers=auth())
    assert response.status_code == status
    assert set(response.json()["error"]) >= {"code", "message"}
    assert "x-ratelimit-limit" in response.headers


def test_unknown_path_returns_check_404(check: TestClient) -> None:
    response = check.get("/v1/verify", headers=auth())
    assert error(response, 404) == {"error": {"code": "not_found", "message": "Not Found"}}
    assert "x-ratelimit-reset" in response.headers


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/batch/batch_abc123def456", "GET, HEAD"),
        ("GET", "/v1/batch/upload", "POST"),
        ("PUT", "/v1/batch/upload", "POST"),
        ("GET", "/v1/batch/batch_abc123def456/cancel", "POST"),
    ],
)
def test_wrong_method_returns_check_405(
    check: TestClient, method: str, path: str, allow: str
) -> None:
    response = check.request(method, path, headers=auth())
    assert error(response, 405) == {
        "error": {"code": "method_not_allowed", "message": "Method Not Allowed"}
    }
    assert response.headers["allow"] == allow


def test_openapi_spec_is_served(check: TestClient) -> None:
    spec = check.get("/openapi.json").json()
    assert spec["openapi"] == "3.1.0"
    operations = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    assert operations == {
        "uploadBatchFile",
        "createBatch",
        "listBatches",
        "getBatch",
        "getBatchResults",
        "cancelBatch",
    }


def test_check_alone_is_also_served_at_the_root(app_factory: AppFactory) -> None:
    app = app_factory(providers=("check",))
    with TestClient(app, base_url="http://testserver") as client:
        assert get_json(client, "/v1/batch")["pagination"]["total"] == 2


def test_journal_masks_the_api_key(check: TestClient) -> None:
    check.get("/v1/batch", headers=auth())
    entries = check.get("http://testserver/_sim/journal?provider=check").json()["entries"]
    header = entries[-1]["request"]["headers"]["authorization"]
    assert KEYS_BY_PLAN["pro"] not in header
    assert header.startswith("Bearer ***")


def test_rate_headers_come_once_each_after_the_answers_own(check: TestClient) -> None:
    response = check.get("/v1/batch/batch_abc123def456", headers=auth())
    assert response.status_code == 200
    names = [name.lower() for name, _ in response.headers.multi_items()]
    rate = [name for name in names if name.startswith("x-ratelimit-")]
    assert rate == ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]
    assert names.index("content-type") < names.index("x-ratelimit-limit")
    assert response.headers["x-ratelimit-remaining"] == "199"


def test_a_request_reads_its_plan_without_hashing_the_options_and_follows_a_change(
    check: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plans are worked out once per set of options, not looked up by the options' hash
    (every field of them) on every request; options changed on the control plane are a new
    set, whose limit the next request counts against."""
    hashed: list[object] = []
    real = CheckOptions.__hash__

    def counting(options: CheckOptions) -> int:
        hashed.append(options)
        return real(options)

    monkeypatch.setattr(CheckOptions, "__hash__", counting)
    for remaining in (199, 198, 197):
        response = check.get("/v1/batch", headers=auth())
        assert response.headers["x-ratelimit-remaining"] == str(remaining)
    assert hashed == []
    set_options(check, pro_requests_per_minute=5)
    response = check.get("/v1/batch", headers=auth())
    assert (response.headers["x-ratelimit-limit"], response.headers["x-ratelimit-remaining"]) == (
        "5",
        "1",
    )
    assert response.headers["x-ratelimit-reset"] == WINDOW_END
