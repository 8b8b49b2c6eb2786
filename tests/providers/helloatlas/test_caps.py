"""HelloAtlas's caps: live batches are never dropped; a full store refuses with its 429."""

from __future__ import annotations

import hashlib

from starlette.testclient import TestClient

from simulator.providers.helloatlas.models import BATCHES
from tests.conftest import AppFactory
from tests.providers.caps import held
from tests.providers.helloatlas.conftest import BASE, advance, auth, files

EXTRACTS = "/v1/bulk/extracts"
FULL = {"error_code": "429", "error_message": "Too Many Requests: Rate limit exceeded"}


def post(client: TestClient, headers: dict[str, str], names: list[str]) -> object:
    body = {"product_type": "POC_CDL", "file_urls": files(*names)}
    return client.post("/v1/bulk/multiupload", headers=headers, json=body)


def test_ten_times_the_cap_in_flight_every_accepted_batch_completes(
    app_factory: AppFactory,
) -> None:
    # The two seeded batches count towards max_batches: room for five uploads.
    app = app_factory(options=(("helloatlas.max_batches", "7"),))
    with TestClient(app, base_url=BASE) as client:
        headers = auth(client)
        answers = [post(client, headers, [f"doc{n}.jpg"]) for n in range(50)]
        accepted = [a.json()[0]["batch_id"] for a in answers if a.status_code == 201]  # type: ignore[attr-defined]
        refused = [a for a in answers if a.status_code != 201]  # type: ignore[attr-defined]
        assert len(accepted) == 5
        assert {(a.status_code, a.headers["retry-after"]) for a in refused} == {(429, "60")}  # type: ignore[attr-defined]
        assert all(a.json() == FULL for a in refused)  # type: ignore[attr-defined]
        for _ in range(100):  # poll every accepted batch, time passing, until each is done
            pages = [
                client.get(EXTRACTS, params={"batch_id": b}, headers=headers) for b in accepted
            ]
            assert {p.status_code for p in pages} == {200}
            if all(d["file_data"] is not None for p in pages for d in p.json()["data"]):
                break
            advance(client, 60)
            headers = auth(client)
        else:
            raise AssertionError("the accepted batches never completed")
        assert held(client, "helloatlas", BATCHES)[0] == 5
        advance(client, 8 * 86_400)  # past their retention they expire: room again
        headers = auth(client)
        assert post(client, headers, ["late.jpg"]).status_code == 201  # type: ignore[attr-defined]


def test_a_store_full_of_bytes_refuses_the_next_batch(app_factory: AppFactory) -> None:
    budget = 200
    app = app_factory(options=(("helloatlas.max_metadata_bytes", str(budget)),))
    # Names that follow no pattern, so that each batch holds them as they are.
    names = [hashlib.sha1(str(n).encode()).hexdigest() + ".jpg" for n in range(40)]
    with TestClient(app, base_url=BASE) as client:
        headers = auth(client)
        statuses = [post(client, headers, names).status_code for _ in range(30)]  # type: ignore[attr-defined]
        stored = statuses.count(201)
        assert 0 < stored < 30
        assert statuses == [201] * stored + [429] * (30 - stored)
        count, total = held(client, "helloatlas", BATCHES)
        assert count == stored
        assert 0 < total <= budget
