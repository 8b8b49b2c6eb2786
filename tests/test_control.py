"""The /_sim control plane: health, providers, reset, clock, faults and journal."""

from __future__ import annotations

import dataclasses

import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app
from simulator.gateway import MALFORMED_BODY, ConnectionDropped
from simulator.providers import PROVIDERS, deepvue
from tests.conftest import AppFactory, Sleeps
from tests.providers.deepvue.conftest import CLIENT

SEED_DONE = "06d0d7c340ed460d96103aaa0b26f0de"
SEEDED_CHECK = 2  # the documentation's example batches of the pro key
STATUS = f"/deepvue/v1/verification/batch-processing-status?request_id={SEED_DONE}"


def deepvue_headers(client: TestClient) -> dict[str, str]:
    response = client.post(
        "/deepvue/v1/authorize",
        data={"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret},
    )
    return {
        "Authorization": f"Bearer {response.json()['access_token']}",
        "x-api-key": CLIENT.client_secret,
    }


def schedule(client: TestClient, **fault: object) -> dict[str, object]:
    response = client.post("/_sim/faults", json={"provider": "deepvue", **fault})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_health_reports_providers_and_clock(client: TestClient) -> None:
    body = client.get("/_sim/health").json()
    assert body["status"] == "ok"
    assert body["providers"] == [p.name for p in PROVIDERS]
    assert body["clock"] == {
        "kind": "manual",
        "now": "2026-03-09T08:14:08Z",
        "epoch_ms": 1773044048000,
    }


def test_providers_lists_base_urls_spec_and_credentials(client: TestClient) -> None:
    listing = {p["name"]: p for p in client.get("/_sim/providers").json()["providers"]}
    deepvue = listing["deepvue"]
    assert deepvue["base_path"] == "/deepvue"
    assert deepvue["base_url"] == "http://testserver/deepvue"
    assert deepvue["spec_url"] == "http://testserver/deepvue/openapi.json"
    assert deepvue["credentials"]["client_id"] == CLIENT.client_id
    assert "get_batch_processing_status" in deepvue["operations"]
    assert "InternalServerError" in deepvue["errors"]
    assert deepvue["options"]["token_ttl_seconds"] == 86400
    spec = client.get(deepvue["spec_url"]).json()
    assert spec["openapi"] == "3.1.0"


def test_clock_advance_and_set_move_the_clock(client: TestClient) -> None:
    assert (
        client.post("/_sim/clock/advance", json={"seconds": 90.5}).json()["now"]
        == "2026-03-09T08:15:38Z"
    )
    body = client.post("/_sim/clock/set", json={"now": "2027-01-01T00:00:00Z"}).json()
    assert body == {"kind": "manual", "now": "2027-01-01T00:00:00Z", "epoch_ms": 1798761600000}
    assert client.get("/_sim/clock").json()["now"] == "2027-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_sim/clock/advance", {"seconds": -1}),
        ("/_sim/clock/advance", {"seconds": "10"}),
        ("/_sim/clock/advance", {"seconds": True}),
        ("/_sim/clock/advance", {}),
        ("/_sim/clock/advance", [1]),
        ("/_sim/clock/advance", {"seconds": 1e30}),
        ("/_sim/clock/set", {"now": "tomorrow"}),
        ("/_sim/clock/set", {"now": 5}),
    ],
)
def test_clock_bad_input_returns_400(client: TestClient, path: str, body: object) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


def test_clock_non_json_body_returns_400(client: TestClient) -> None:
    response = client.post(
        "/_sim/clock/advance", content=b"\xff{", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


def test_system_clock_advance_moves_time_forward() -> None:
    app = create_app(Settings(clock="system"))
    with TestClient(app) as client:
        before = client.get("/_sim/clock").json()["epoch_ms"]
        after = client.post("/_sim/clock/advance", json={"seconds": 3600}).json()["epoch_ms"]
    assert after - before >= 3600 * 1000
    assert client.get("/_sim/clock").json()["kind"] == "system"


def test_reset_unknown_provider_returns_404(client: TestClient) -> None:
    response = client.post("/_sim/reset?provider=nope")
    assert response.status_code == 404
    assert "unknown provider" in response.json()["error"]


def test_reset_all_returns_every_provider(client: TestClient) -> None:
    assert client.post("/_sim/reset").json() == {"reset": [p.name for p in PROVIDERS]}


def test_fault_error_by_name_strikes_count_times_then_stops(client: TestClient) -> None:
    headers = deepvue_headers(client)
    fault = schedule(
        client,
        operation="get_batch_processing_status",
        kind="error",
        error="SourceUnavailable",
        count=2,
    )
    assert fault["remaining"] == 2
    answers = [client.get(STATUS, headers=headers) for _ in range(3)]
    assert [r.status_code for r in answers] == [503, 503, 200]
    assert answers[0].json() == {"detail": "Source Unavailable"}
    assert client.get("/_sim/faults").json() == {"faults": []}


def test_fault_on_any_operation_hits_authorize_too(client: TestClient) -> None:
    schedule(client, kind="status", status=502)
    response = client.post("/deepvue/v1/authorize", data={"client_id": "x", "client_secret": "y"})
    assert (response.status_code, response.json()) == (502, {"detail": "Bad Gateway"})


def test_fault_rich_error_gets_fresh_timestamp_and_transaction(client: TestClient) -> None:
    headers = deepvue_headers(client)
    schedule(
        client, operation="get_batch_processing_status", kind="error", error="InvalidRequestId"
    )
    body = client.get(STATUS, headers=headers).json()
    assert body["sub_code"] == "INVALID_REQUEST_ID"
    assert body["timestamp"] == 1773044048000


def test_fault_rate_limit_sends_retry_after(client: TestClient) -> None:
    headers = deepvue_headers(client)
    schedule(client, operation="get_batch_processing_status", kind="rate_limit", retry_after=17)
    response = client.get(STATUS, headers=headers)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "17"
    assert response.json() == {"detail": "Rate limit exceeded. Please retry after some time."}


def test_fault_latency_waits_then_answers_normally(client: TestClient, sleeps: Sleeps) -> None:
    headers = deepvue_headers(client)
    schedule(client, operation="get_batch_processing_status", kind="latency", latency_ms=1500)
    assert client.get(STATUS, headers=headers).status_code == 200
    assert sleeps == [1.5]


def test_fault_malformed_body_is_truncated_json(client: TestClient) -> None:
    headers = deepvue_headers(client)
    schedule(client, operation="get_batch_processing_status", kind="malformed")
    response = client.get(STATUS, headers=headers)
    assert response.status_code == 200
    assert response.content == MALFORMED_BODY
    with pytest.raises(ValueError, match=r"Expecting|Unterminated"):
        response.json()


def test_fault_drop_closes_the_connection(client: TestClient) -> None:
    headers = deepvue_headers(client)
    schedule(client, operation="get_batch_processing_status", kind="drop")
    with pytest.raises(ConnectionDropped):
        client.get(STATUS, headers=headers)
    assert client.get(STATUS, headers=headers).status_code == 200


def test_fault_probability_is_deterministic_under_the_seed(app_factory: AppFactory) -> None:
    runs = []
    for _ in range(2):
        with TestClient(app_factory()) as client:
            headers = deepvue_headers(client)
            schedule(
                client,
                operation="get_batch_processing_status",
                kind="status",
                status=500,
                probability=0.5,
            )
            runs.append([client.get(STATUS, headers=headers).status_code for _ in range(40)])
    assert runs[0] == runs[1]
    assert 5 < runs[0].count(500) < 35


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"provider": "nope", "kind": "drop"}, "unknown provider"),
        ({"provider": "deepvue", "operation": "nope", "kind": "drop"}, "unknown operation"),
        ({"provider": "deepvue", "kind": "explode"}, "kind must be one of"),
        ({"provider": "deepvue", "kind": "error", "error": "Nope"}, "unknown error"),
        ({"provider": "deepvue", "kind": "status", "status": 99}, "status must be"),
        ({"provider": "deepvue", "kind": "latency"}, "latency_ms must be"),
        ({"provider": "deepvue", "kind": "drop", "count": 0}, "count must be"),
        ({"provider": "deepvue", "kind": "drop", "probability": 2}, "probability must be"),
        ({"provider": "deepvue", "kind": "drop", "probability": 0.5, "count": 1}, "not both"),
        ({"kind": "drop"}, "provider is required"),
    ],
)
def test_fault_invalid_spec_returns_400_saying_why(
    client: TestClient, fault: dict[str, object], message: str
) -> None:
    response = client.post("/_sim/faults", json=fault)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_faults_list_and_clear(client: TestClient) -> None:
    schedule(client, kind="drop", count=3)
    schedule(client, kind="malformed", probability=0.1)
    listed = client.get("/_sim/faults?provider=deepvue").json()["faults"]
    assert [(f["kind"], f["remaining"], f["probability"]) for f in listed] == [
        ("drop", 3, None),
        ("malformed", None, 0.1),
    ]
    assert client.delete("/_sim/faults").json() == {"cleared": 2}
    assert client.get("/_sim/faults").json() == {"faults": []}


def test_journal_records_requests_with_operation_status_and_fault(client: TestClient) -> None:
    headers = deepvue_headers(client)
    schedule(client, operation="get_batch_processing_status", kind="status", status=503)
    client.get(STATUS, headers=headers)
    client.get("/deepvue/nowhere")
    entries = client.get("/_sim/journal").json()["entries"]
    assert [(e["operation"], e["response"]["status"], e["fault"]) for e in entries] == [
        ("authorize", 200, None),
        ("get_batch_processing_status", 503, "status:503"),
        ("unknown", 404, None),
    ]
    assert entries[1]["query"] == f"request_id={SEED_DONE}"
    assert entries[1]["response"]["body"] == {"detail": "Service Unavailable"}


def test_journal_filters_by_operation_and_since(client: TestClient) -> None:
    headers = deepvue_headers(client)
    for _ in range(3):
        client.get(STATUS, headers=headers)
    polls = client.get("/_sim/journal?operation=get_batch_processing_status").json()["entries"]
    assert len(polls) == 3
    since = polls[0]["seq"]
    later = client.get(f"/_sim/journal?since={since}").json()["entries"]
    assert [e["seq"] for e in later] == [polls[1]["seq"], polls[2]["seq"]]
    assert client.get("/_sim/journal?since=2026-03-09T08:14:08Z").json()["entries"]
    assert client.get("/_sim/journal?since=yesterday").status_code == 400
    assert [e["seq"] for e in client.get("/_sim/journal?tail=2").json()["entries"]] == [
        polls[1]["seq"],
        polls[2]["seq"],
    ]
    assert client.get("/_sim/journal?tail=-1").status_code == 400
    assert client.get("/_sim/journal?provider=nope").status_code == 404


def test_journal_is_a_bounded_ring_and_can_be_cleared(app_factory: AppFactory) -> None:
    with TestClient(app_factory(journal_size=5)) as client:
        for _ in range(12):
            client.get("/deepvue/nowhere")
        body = client.get("/_sim/journal").json()
        assert body["size"] == 5
        assert [e["seq"] for e in body["entries"]] == [8, 9, 10, 11, 12]
        assert client.delete("/_sim/journal").json() == {"cleared": 5}
        assert client.get("/_sim/journal").json()["entries"] == []


def test_journal_off_records_nothing(app_factory: AppFactory) -> None:
    with TestClient(app_factory(journal=False)) as client:
        client.get("/deepvue/nowhere")
        assert client.get("/_sim/journal").json()["entries"] == []


def test_control_token_is_required_when_set(app_factory: AppFactory) -> None:
    with TestClient(app_factory(control_token="s3cret-token")) as client:
        denied = client.get("/_sim/health")
        assert denied.status_code == 401
        assert (
            client.get("/_sim/health", headers={"X-Bulksim-Token": "s3cret-token"}).status_code
            == 200
        )
        assert (
            client.get("/_sim/health", headers={"Authorization": "Bearer s3cret-token"}).status_code
            == 200
        )
        assert client.get("/_sim/health", headers={"X-Bulksim-Token": "wrong"}).status_code == 401
        # Provider routes never need the control token.
        assert client.get("/deepvue/nowhere").status_code == 404


def test_control_unknown_path_and_method_are_json(client: TestClient) -> None:
    missing = client.get("/_sim/nothing")
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
    wrong = client.get("/_sim/reset")
    assert (wrong.status_code, wrong.json()) == (405, {"error": "Method Not Allowed"})


def test_root_unknown_path_lists_providers(clock: ManualClock) -> None:
    twin = dataclasses.replace(deepvue.PROVIDER, name="twin")
    app = create_app(Settings(), clock=clock, providers=[deepvue.PROVIDER, twin])
    with TestClient(app) as client:
        response = client.get("/elsewhere")
        assert response.status_code == 404
        assert response.json() == {
            "error": "no provider serves /elsewhere",
            "providers": ["/deepvue", "/twin"],
        }
        # Under a provider's prefix, the provider's own envelope answers.
        assert client.get("/twin/v1/nothing").json() == {"detail": "Not Found"}


def test_single_provider_is_also_served_at_root(app_factory: AppFactory) -> None:
    with TestClient(app_factory(providers=("deepvue",))) as client:
        response = client.post(
            "/v1/authorize",
            data={"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret},
        )
        assert response.status_code == 200
        assert client.get("/elsewhere").json() == {"detail": "Not Found"}
        assert client.get("/_sim/health").json()["providers"] == ["deepvue"]


def test_options_change_at_runtime_and_apply_to_new_work(client: TestClient) -> None:
    headers = deepvue_headers(client)
    changed = client.post(
        "/_sim/options", json={"provider": "deepvue", "options": {"processing_seconds": 5}}
    )
    assert changed.status_code == 200
    assert changed.json()["deepvue"]["processing_seconds"] == 5.0
    submitted = client.post(
        "/deepvue/v1/verification/upi-basic/batch",
        headers=headers,
        files={"batch_file": ("a.csv", b"vpa\nx@okaxis\n")},
    ).json()
    client.post("/_sim/clock/advance", json={"seconds": 5.01})
    status = client.get(
        "/deepvue/v1/verification/batch-processing-status",
        params={"request_id": submitted["request_id"]},
        headers=headers,
    )
    assert status.json()["data"]["status"] == 200
    assert client.get("/_sim/options").json()["deepvue"]["processing_seconds"] == 5.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"provider": "nope", "options": {"x": 1}}, "provider must be one of"),
        ({"provider": "deepvue", "options": {}}, "options must be an object"),
        ({"provider": "deepvue", "options": {"nope": 1}}, "unknown option deepvue.nope"),
        ({"provider": "deepvue", "options": {"max_rows": "many"}}, "deepvue.max_rows='many'"),
        ({"provider": "deepvue", "options": {"max_rows": [1]}}, "option values must be"),
    ],
)
def test_options_bad_change_returns_400(
    client: TestClient, body: dict[str, object], message: str
) -> None:
    response = client.post("/_sim/options", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_drift_setting_changes_status_and_drops_a_field(app_factory: AppFactory) -> None:
    drift = (
        "deepvue.get_batch_processing_status:status=202",
        "deepvue.get_batch_processing_status:drop=data.batch_output_file_url",
    )
    with TestClient(app_factory(drift=drift)) as client:
        response = client.get(STATUS, headers=deepvue_headers(client))
        assert response.status_code == 202
        assert "batch_output_file_url" not in response.json()["data"]
        assert response.json()["data"]["status"] == 200
        # Errors and other operations are left as they are.
        assert client.get("/deepvue/v1/verification/batch-processing-status").status_code == 401


@pytest.mark.parametrize(
    "text", ["deepvue", "deepvue.op:status=99", "deepvue.op:rename=x", "deepvue.op:drop="]
)
def test_drift_setting_malformed_is_refused(text: str) -> None:
    from simulator.settings import SettingsError

    with pytest.raises(SettingsError, match="drift"):
        Settings(drift=(text,)).checked()


def test_fault_drop_after_does_the_work_then_closes_the_connection(client: TestClient) -> None:
    key = {"Authorization": "Bearer vfy_test_pro_8c2e6a4f1b9d7e35"}
    upload = client.post(
        "/check/v1/batch/upload", headers=key, files={"file": ("a.csv", b"content\nx\n")}
    )
    file_id = upload.json()["fileId"]
    client.post(
        "/_sim/faults",
        json={"provider": "check", "operation": "create_batch", "kind": "drop_after"},
    )
    with pytest.raises(ConnectionDropped):
        client.post("/check/v1/batch", headers=key, json={"fileId": file_id})
    # The batch was made although its answer never left: a blind retry meets the used fileId.
    assert (
        client.get("/check/v1/batch", headers=key).json()["pagination"]["total"] == 1 + SEEDED_CHECK
    )
    retry = client.post("/check/v1/batch", headers=key, json={"fileId": file_id})
    assert retry.status_code == 409
    entry = client.get("/_sim/journal?operation=create_batch").json()["entries"][0]
    assert entry["fault"] == "drop_after"


def test_journal_keeps_journal_body_bytes_of_each_body_and_marks_the_cut(
    app_factory: AppFactory,
) -> None:
    with TestClient(app_factory(journal_body_bytes=40)) as client:
        client.post("/deepvue/v1/authorize", data={"client_id": "x" * 100, "client_secret": "y"})
        entry = client.get("/_sim/journal").json()["entries"][0]
    assert entry["request"]["body"] == "client_id=" + "x" * 30 + "…"
    assert (
        entry["response"]["body"] == '{"detail":"Incorrect client_id or client_secret"}'[:40] + "…"
    )


def test_reset_clears_faults_and_the_journal(client: TestClient) -> None:
    schedule(client, kind="drop", count=5)
    client.post("/passcreator/api/v3/pass", json={})
    client.post("/_sim/faults", json={"provider": "passcreator", "kind": "malformed"})
    assert client.post("/_sim/reset?provider=deepvue").status_code == 200
    assert [f["provider"] for f in client.get("/_sim/faults").json()["faults"]] == ["passcreator"]
    assert client.get("/_sim/journal").json()["entries"]  # one provider's reset keeps the ring
    client.post("/_sim/reset")
    assert client.get("/_sim/faults").json() == {"faults": []}
    assert client.get("/_sim/journal").json()["entries"] == []
