"""Check's caps: live batches are never dropped (a full store refuses with Check's 429), and
the uploaded files' content is bounded in bytes as well as in number."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from simulator.providers.check.models import BATCHES, Check
from simulator.store import Table
from tests.conftest import AppFactory
from tests.providers.caps import held
from tests.providers.check.conftest import BASE, advance, auth, create, error

FULL = {
    "error": {
        "code": "rate_limited",
        "message": "Rate limit exceeded. Try again in 60 seconds.",
        "retryAfter": 60,
    }
}


def payloads(client: TestClient) -> Table[Any]:
    check: Check = client.app.state.sim.runtimes["check"].store  # type: ignore[attr-defined]
    return check.files.payloads


def upload(client: TestClient, text: str) -> Any:
    files = {"file": ("claims.csv", text.encode(), "text/csv")}
    return client.post("/v1/batch/upload", headers=auth(), files=files)


def test_ten_times_the_cap_in_flight_every_accepted_batch_completes(
    app_factory: AppFactory,
) -> None:
    app = app_factory(options=(("check.max_batches", "5"),))
    with TestClient(app, base_url=BASE) as client:
        body = {"items": [{"content": "The sea is salty."}], "methods": {"reasoning": 1.0}}
        answers = [create(client, body) for _ in range(50)]
        accepted = [a.json()["id"] for a in answers if a.status_code == 202]
        refused = [a for a in answers if a.status_code != 202]
        assert len(accepted) == 5
        assert {(a.status_code, a.headers["retry-after"]) for a in refused} == {(429, "60")}
        assert all(a.json() == FULL for a in refused)
        for _ in range(100):  # poll every accepted batch, time passing, until each is done
            polls = [client.get(f"/v1/batch/{b}", headers=auth()) for b in accepted]
            assert {p.status_code for p in polls} == {200}
            if all(p.json()["status"] == "completed" for p in polls):
                break
            advance(client, 10)
        else:
            raise AssertionError("the accepted batches never completed")
        assert held(client, "check", BATCHES)[0] == 5
        advance(client, 31 * 86_400)  # past the plan's retention they expire: room again
        assert create(client, body).status_code == 202


def test_a_store_full_of_bytes_refuses_the_next_batch(app_factory: AppFactory) -> None:
    budget = 20_000
    app = app_factory(options=(("check.max_stored_bytes", str(budget)),))
    body = {"items": [{"content": f"Claim {n}: " + "x" * 200} for n in range(10)]}
    with TestClient(app, base_url=BASE) as client:
        statuses = [create(client, body).status_code for _ in range(30)]
        stored = statuses.count(202)
        assert 0 < stored < 30
        assert statuses == [202] * stored + [429] * (30 - stored)
        count, total = held(client, "check", BATCHES)
        assert count == stored
        assert 0 < total <= budget


def test_uploaded_files_are_bounded_in_bytes_the_oldest_unused_going_first(
    app_factory: AppFactory,
) -> None:
    budget = 30_000
    app = app_factory(options=(("check.max_stored_file_bytes", str(budget)),))
    text = "content\n" + "".join(f"Claim {n}: {'y' * 500}\n" for n in range(10))
    with TestClient(app, base_url=BASE) as client:
        ids = []
        for _ in range(20):
            answer = upload(client, text)
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["fileId"])
        count, total = held(client, "check", payloads(client))
        assert 0 < count < 20
        assert 0 < total <= budget
        # The oldest went first: its id is unknown now; the newest is still usable.
        oldest = create(client, {"fileId": ids[0]})
        assert error(oldest, 404)["error"]["code"] == "not_found"
        assert create(client, {"fileId": ids[-1]}).status_code == 202
        # One file larger than the whole budget is refused, with Check's 413.
        huge = upload(client, "content\n" + "".join(f"C{n} {'z' * 5000}\n" for n in range(10)))
        assert error(huge, 413)["error"]["code"] == "payload_too_large"


def test_a_create_from_a_file_refused_at_the_cap_leaves_the_file_usable(
    app_factory: AppFactory,
) -> None:
    # No retention: a batch is forgotten as soon as it is over (here: cancelled).
    options = (("check.max_batches", "1"), ("check.pro_retention_days", "0"))
    with TestClient(app_factory(options=options), base_url=BASE) as client:
        batch = create(client, {"items": [{"content": "The sea is salty."}]}).json()["id"]
        uploaded = upload(client, "content\nThe sky is blue.\n").json()["fileId"]
        assert create(client, {"fileId": uploaded}).status_code == 429
        assert client.post(f"/v1/batch/{batch}/cancel", headers=auth()).status_code == 200
        advance(client, 1)
        # Room again, and the file was not used by the refused create.
        made = create(client, {"fileId": uploaded})
        assert made.status_code == 202, made.text
        assert made.json()["totalItems"] == 1
