"""Passcreator's caps: live processes are never dropped (a full store refuses with its 429);
passes are bounded in number and bytes, the oldest going first with every index entry that
names them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.testclient import TestClient

from simulator.providers.passcreator.models import PASSES as PASS_TABLE
from simulator.providers.passcreator.models import PROCESSES, USER_IDS
from tests.conftest import AppFactory
from tests.providers.caps import held
from tests.providers.passcreator.conftest import (
    BASE,
    KEY,
    PASSES,
    TEMPLATE,
    advance,
    by_user_id,
    process,
)

FULL_ERRORS = ["Too many requests"]


def bulk(client: TestClient, items: Sequence[Mapping[str, object]]) -> Any:
    return client.post(PASSES, headers=KEY, json={"data": items})


def one(client: TestClient, data: dict[str, object]) -> Any:
    return client.post(PASSES, headers=KEY, json={"data": data})


def test_ten_times_the_cap_in_flight_every_accepted_process_completes(
    app_factory: AppFactory,
) -> None:
    # The seed page's process counts towards max_processes: room for five.
    app = app_factory(options=(("passcreator.max_processes", "6"),))
    with TestClient(app, base_url=BASE) as client:
        items = [{"templateId": TEMPLATE} for _ in range(20)]
        answers = [bulk(client, items) for _ in range(50)]
        accepted = [a.json()["data"]["identifier"] for a in answers if a.status_code == 200]
        refused = [a for a in answers if a.status_code != 200]
        assert len(accepted) == 5
        assert {(a.status_code, a.headers["retry-after"]) for a in refused} == {(429, "60")}
        assert all(a.json()["errors"] == FULL_ERRORS for a in refused)
        # A refused create wrote nothing: only the accepted processes' passes are stored.
        assert held(client, "passcreator", PASS_TABLE)[0] == 5 * 20
        for _ in range(100):  # poll every accepted process, time passing, until each is done
            polled = [process(client, p) for p in accepted]
            if all(p["status"] == "finished" for p in polled):
                break
            advance(client, 1)
        else:
            raise AssertionError("the accepted processes never finished")
        assert held(client, "passcreator", PROCESSES)[0] == 5
        advance(client, 8 * 86_400)  # past their retention they expire: room again
        assert bulk(client, items[:1]).status_code == 200


def test_passes_are_bounded_in_bytes_and_a_request_larger_than_the_budget_is_refused(
    app_factory: AppFactory,
) -> None:
    budget = 20_000
    app = app_factory(options=(("passcreator.max_stored_bytes", str(budget)),))
    with TestClient(app, base_url=BASE) as client:
        first = None
        for n in range(40):
            answer = one(client, {"templateId": TEMPLATE, "note": "n" * 1000, "seq": str(n)})
            assert answer.status_code == 200, answer.text
            first = first or answer.json()["data"]["identifier"]
        count, total = held(client, "passcreator", PASS_TABLE)
        assert 0 < count < 40
        assert 0 < total <= budget
        assert client.get(f"{PASSES}/{first}", headers=KEY).status_code == 404
        # One request whose passes alone pass the budget is refused, and drops nothing.
        big = bulk(client, [{"templateId": TEMPLATE, "note": "m" * 5000} for _ in range(10)])
        assert big.status_code == 429
        assert big.json()["errors"] == FULL_ERRORS
        assert held(client, "passcreator", PASS_TABLE) == (count, total)
        assert held(client, "passcreator", PROCESSES)[0] == 0  # nor was its process stored


def test_processes_are_bounded_in_bytes(app_factory: AppFactory) -> None:
    budget = 3000
    app = app_factory(options=(("passcreator.max_stored_process_bytes", str(budget)),))
    with TestClient(app, base_url=BASE) as client:
        statuses = [bulk(client, [{"templateId": TEMPLATE}]).status_code for _ in range(30)]
        stored = statuses.count(200)
        assert 0 < stored < 30
        assert statuses == [200] * stored + [429] * (30 - stored)
        count, total = held(client, "passcreator", PROCESSES)
        assert count == stored
        assert 0 < total <= budget


def test_an_evicted_pass_leaves_no_user_provided_id_index_entry(app_factory: AppFactory) -> None:
    # Two seeded passes count towards max_passes: room for five stored ones.
    app = app_factory(
        options=(("passcreator.max_passes", "7"), ("passcreator.max_bulk_items", "5"))
    )
    with TestClient(app, base_url=BASE) as client:
        made = []
        for n in range(50):
            answer = one(client, {"templateId": TEMPLATE, "userProvidedId": f"member-x{n}"})
            assert answer.status_code == 200, answer.text
            made.append(answer.json()["data"]["identifier"])
        for n in range(10):  # bulk creates evict as well
            items = [{"templateId": TEMPLATE, "userProvidedId": f"bulk-{n}-{i}"} for i in range(5)]
            assert bulk(client, items).status_code == 200
        advance(client, 60)
        assert held(client, "passcreator", PASS_TABLE)[0] == 5
        # The index holds an entry for the stored passes only, not one per pass ever made.
        assert held(client, "passcreator", USER_IDS, sized=False)[0] == 5
        gone = client.get(f"{PASSES}/{made[0]}", headers=KEY)
        assert gone.status_code == 404
        assert gone.json()["errors"] == ["Object not found"]
        assert by_user_id(client, "member-x0") == []
        again = one(
            client,
            {
                "templateId": TEMPLATE,
                "userProvidedId": "member-x0",
                "enforceUniqueUserProvidedId": True,
            },
        )
        assert again.status_code == 200, again.text
