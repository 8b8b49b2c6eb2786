"""What a repeated poll does not pay again: the route match; and what serving sets up once."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from simulator.server import run_uvicorn

CHECK_KEY = {"Authorization": "Bearer vfy_test_pro_8c2e6a4f1b9d7e35"}
SEEDED = ("batch_abc123def456", "batch_inprogress01")


def test_a_repeated_poll_matches_its_route_once_and_each_path_its_own(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tried: list[str] = []
    real = Route.matches

    def counting(self: Route, scope: Any) -> Any:
        tried.append(self.path)
        return real(self, scope)

    monkeypatch.setattr(Route, "matches", counting)
    ids = [client.get(f"/check/v1/batch/{b}", headers=CHECK_KEY).json()["id"] for b in SEEDED * 5]
    assert ids == list(SEEDED * 5)  # each path's own parameters, every time
    # Once a path, for the gateway (the operation and the endpoint), not once a request.
    assert tried.count("/v1/batch/{id}") == 2
    # A method the path does not allow is still Starlette's 405, every time.
    for _ in range(2):
        assert client.delete(f"/check/v1/batch/{SEEDED[0]}", headers=CHECK_KEY).status_code == 405


def test_serving_freezes_what_start_up_made_out_of_the_collectors_way(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Specs, fakes and stores live as long as the server: full collections skip them."""
    import uvicorn

    frozen: list[int] = []

    def run(self: uvicorn.Server, sockets: list[Any]) -> None:
        frozen.append(gc.get_freeze_count())
        sockets[0].close()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    try:
        assert run_uvicorn(app, "127.0.0.1", 0) == 0
    finally:
        gc.unfreeze()
    assert len(frozen) == 1
    assert frozen[0] > 10_000


def test_a_crash_is_the_providers_own_500_recorded_and_journaled(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simulator.providers.deepvue import models

    def crash(client_id: str, client_secret: str) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(models, "authorize", crash)
    form = {"client_id": "x", "client_secret": "y"}
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post("/deepvue/v1/authorize", data=form)
        expected = app.state.sim.runtimes["deepvue"]
        error = expected.provider.error_for_status(500, expected.context).response()
        assert answer.status_code == 500
        assert answer.content == error.body
        assert answer.headers["date"]
        crashes = list(app.state.sim.crashes)
        assert [str(c) for c in crashes] == ["boom"]
        assert isinstance(crashes[0], RuntimeError)
        entries = client.get("/_sim/journal").json()["entries"]
        assert [(e["operation"], e["response"]["status"]) for e in entries] == [("authorize", 500)]


def test_a_deepvue_poll_renders_without_json_dumps_and_ids_without_uuid_objects(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """orjson renders Deepvue's answer (the same bytes as ``json.dumps``); its transaction
    id is made without a ``uuid.UUID``."""
    import json
    import uuid

    from simulator.providers.deepvue.models import SEED_COMPLETED, TEST_CLIENTS

    creds = TEST_CLIENTS[0]
    form = {"client_id": creds.client_id, "client_secret": creds.client_secret}
    token = client.post("/deepvue/v1/authorize", data=form).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "x-api-key": creds.client_secret}
    path = f"/deepvue/v1/verification/batch-processing-status?request_id={SEED_COMPLETED}"
    used: list[str] = []
    real_dumps, real_init = json.dumps, uuid.UUID.__init__

    def dumps(*args: Any, **kwargs: Any) -> str:
        used.append("json.dumps")
        return real_dumps(*args, **kwargs)

    def init(self: uuid.UUID, *args: Any, **kwargs: Any) -> None:
        used.append("uuid.UUID")
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(json, "dumps", dumps)
    monkeypatch.setattr(uuid.UUID, "__init__", init)
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, answer.text
    assert used == []
    monkeypatch.undo()
    document = answer.json()
    assert len(document["transaction_id"]) == 32
    assert (
        answer.content == real_dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    )


def test_a_page_answered_again_is_journaled_with_its_own_first_bytes(
    client: TestClient,
) -> None:
    """A settled Check results page is answered as the same bytes each time: the journal
    keeps the first 16 KiB of every answer, asked again or between others, as they are."""
    items = [{"content": f"Claim number {i}: the sea is salty."} for i in range(100)]
    made = client.post("/check/v1/batch", headers=CHECK_KEY, json={"items": items})
    assert made.status_code == 202, made.text
    client.post("/_sim/clock/advance", json={"seconds": 86_400})
    results = f"/check/v1/batch/{made.json()['id']}/results"
    client.delete("/_sim/journal")
    answers = [
        client.get(results, params={"limit": 90, "offset": offset}, headers=CHECK_KEY).text
        for offset in (0, 0, 1, 0, 2, 2)
    ]
    assert len({answer[:16384] for answer in answers}) == 3
    assert all(len(answer) > 2 * 16384 for answer in answers)
    journal = client.get("/_sim/journal").json()["entries"]
    kept = [entry["response"]["body"] for entry in journal]
    assert kept == [answer[:16384] + "…" for answer in answers]
