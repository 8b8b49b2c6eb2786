"""What a poll does not pay for: its route matched again, its journal entry built while it is
answered; and what serving sets up once."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import httpx
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


def test_a_request_without_a_body_is_journaled_as_one_with_a_body_is(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request with no body and no fault is kept as the parts at hand while it is answered
    (no entry is built on the serving path); its entry, made when the journal is read,
    shows what the same request sent the other way shows."""
    from simulator.journal import Entry

    built: list[int] = []
    real = Entry.__init__

    def counting(self: Entry, *args: Any, **kwargs: Any) -> None:
        built.append(kwargs["seq"])
        real(self, *args, **kwargs)

    path = f"/check/v1/batch/{SEEDED[0]}"
    client.delete("/_sim/journal")
    monkeypatch.setattr(Entry, "__init__", counting)
    sketched = client.get(path, params={"fields": "id"}, headers=CHECK_KEY)
    assert built == []  # answered without an entry
    whole = client.request(
        "GET", path, params={"fields": "id"}, headers={**CHECK_KEY, "content-length": "0"}
    )
    assert len(built) == 1  # a request that names a body length is recorded the full way
    assert sketched.content == whole.content
    entries = client.get("/_sim/journal").json()["entries"]
    assert len(built) == 2  # the sketch made its entry when the journal was read
    assert len(entries) == 2
    assert entries[1]["request"]["headers"]["content-length"] == "0"
    shown = []
    for entry in entries:
        for varies in ("seq", "time", "epoch_ms", "duration_ms"):
            assert entry.pop(varies) is not None
        entry["request"]["headers"].pop("content-length", None)
        entry["response"]["headers"].pop("x-ratelimit-remaining")  # one call fewer left
        shown.append(entry)
    assert shown[0] == shown[1]
    assert shown[0]["request"]["headers"]["authorization"] == "Bearer ***7e35"
    assert shown[0]["query"] == "fields=id"
    assert shown[0]["response"]["body"] == sketched.json()
    assert shown[0]["violations"] == []
    client.get("/_sim/journal")
    assert len(built) == 2  # made once: read again, it is the same entry


def test_a_sandboxs_request_without_a_body_is_judged_at_its_own_path(client: TestClient) -> None:
    made = client.post("/_sim/sandboxes", json={"name": "ci"})
    assert made.status_code == 201, made.text
    sandbox = made.json()
    base = f"/sandboxes/{sandbox['id']}"
    assert client.get(f"{base}/check/v1/batch/nope", headers=CHECK_KEY).status_code == 404
    assert client.get(f"{base}/check/v1/nowhere", headers=CHECK_KEY).status_code == 404
    entries = client.get(f"/_sim/sandboxes/{sandbox['id']}/journal").json()["entries"]
    assert [e["path"] for e in entries] == [
        f"{base}/check/v1/batch/nope",
        f"{base}/check/v1/nowhere",
    ]
    assert entries[0]["violations"] == []
    assert entries[1]["violations"] != []


def test_a_request_still_being_answered_is_in_the_journal_as_it_stands(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded when it arrives, not when it is answered: read meanwhile, the journal shows
    it unanswered; read after, answered (no body, no fault: the sketched way)."""
    from simulator.providers.check import routes

    entered, release = asyncio.Event(), asyncio.Event()
    real = routes.load_head

    async def held(*args: Any) -> Any:
        entered.set()
        await release.wait()
        return await real(*args)

    monkeypatch.setattr(routes, "load_head", held)

    async def run() -> tuple[list[Any], httpx.Response, list[Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            results = f"/check/v1/batch/{SEEDED[0]}/results"
            poll = asyncio.create_task(client.get(results, headers=CHECK_KEY))
            await entered.wait()
            during = (await client.get("/_sim/journal")).json()["entries"]
            release.set()
            answer = await poll
            after = (await client.get("/_sim/journal")).json()["entries"]
        return during, answer, after

    during, answer, after = asyncio.run(run())
    assert answer.status_code == 200, answer.text
    assert [(e["seq"], e["response"]["status"], e["duration_ms"]) for e in during] == [
        (1, None, None)
    ]
    ((seq, status, body),) = [
        (e["seq"], e["response"]["status"], e["response"]["body"]) for e in after
    ]
    assert (seq, status, body) == (1, 200, answer.json())
    assert after[0]["duration_ms"] is not None


def test_a_crash_answering_a_request_without_a_body_is_its_500_in_the_journal(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simulator.providers.check import routes

    async def crash(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(routes, "load_head", crash)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get(f"/check/v1/batch/{SEEDED[0]}/results", headers=CHECK_KEY)
        assert answer.status_code == 500
        assert [str(c) for c in app.state.sim.crashes] == ["boom"]
        (entry,) = client.get("/_sim/journal").json()["entries"]
    assert entry["operation"] == "get_batch_results"
    assert entry["response"]["status"] == 500
    assert entry["response"]["body"] == answer.json()
    assert entry["duration_ms"] is not None
