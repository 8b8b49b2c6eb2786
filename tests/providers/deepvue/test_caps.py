"""Deepvue's caps: live batches are never dropped; a full store refuses with Deepvue's 429."""

from __future__ import annotations

from starlette.testclient import TestClient

from simulator.providers.deepvue.models import BATCHES
from tests.conftest import AppFactory
from tests.providers.caps import held
from tests.providers.deepvue.conftest import advance, auth

SUBMIT = "/v1/verification/upi-basic/batch"
STATUS = "/v1/verification/batch-processing-status"
FULL = {"detail": "Rate limit exceeded. Please retry after some time."}


def submit(client: TestClient, headers: dict[str, str], content: bytes) -> object:
    files = {"batch_file": ("vpas.csv", content, "text/csv")}
    return client.post(SUBMIT, headers=headers, files=files)


def test_ten_times_the_cap_in_flight_every_accepted_batch_completes(
    app_factory: AppFactory,
) -> None:
    app = app_factory(options=(("deepvue.max_batches", "5"),))
    with TestClient(app, base_url="http://testserver/deepvue") as client:
        headers = auth(client)
        answers = [submit(client, headers, f"vpa\nu{n}@okaxis\n".encode()) for n in range(50)]
        accepted = [a.json()["request_id"] for a in answers if a.status_code == 201]  # type: ignore[attr-defined]
        refused = [a for a in answers if a.status_code != 201]  # type: ignore[attr-defined]
        assert len(accepted) == 5
        assert {(a.status_code, a.headers["retry-after"]) for a in refused} == {(429, "60")}  # type: ignore[attr-defined]
        assert all(a.json() == FULL for a in refused)  # type: ignore[attr-defined]
        for _ in range(10):  # poll every accepted batch, time passing, until each is done
            polls = [
                client.get(STATUS, params={"request_id": r}, headers=headers) for r in accepted
            ]
            assert {p.status_code for p in polls} == {200}
            if all(p.json()["data"]["status"] == 200 for p in polls):
                break
            advance(client, 10)
        else:
            raise AssertionError("the accepted batches never completed")
        assert held(client, "deepvue", BATCHES)[0] == 5
        # Past their retention the batches expire, and new ones are accepted again.
        advance(client, 8 * 86_400)
        headers = auth(client)
        assert submit(client, headers, b"vpa\nlate@okaxis\n").status_code == 201  # type: ignore[attr-defined]


def test_a_store_full_of_bytes_refuses_the_next_batch(app_factory: AppFactory) -> None:
    budget = 4000
    app = app_factory(options=(("deepvue.max_stored_bytes", str(budget)),))
    rows = b"vpa\n" + b"".join(f"user{n}@okaxis\n".encode() for n in range(10))
    with TestClient(app, base_url="http://testserver/deepvue") as client:
        headers = auth(client)
        statuses = [submit(client, headers, rows).status_code for _ in range(20)]  # type: ignore[attr-defined]
        stored = statuses.count(201)
        assert 0 < stored < 20
        assert statuses == [201] * stored + [429] * (20 - stored)
        count, total = held(client, "deepvue", BATCHES)
        assert count == stored
        assert 0 < total <= budget
