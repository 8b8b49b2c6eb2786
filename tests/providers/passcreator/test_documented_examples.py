"""The documentation's own bodies, replayed against the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from tests.providers.passcreator.conftest import KEY, PASSES, SEED_PROCESS, advance, process

FIXTURES = Path(__file__).parents[3] / "fixtures" / "passcreator"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_get_process_seed_matches_the_documented_example_but_for_created_on(
    passcreator: TestClient,
) -> None:
    documented = fixture("process-in-progress.json")
    answered = passcreator.get(f"/api/v3/process/{SEED_PROCESS}", headers=KEY).json()
    assert answered["data"].pop("createdOn") != documented["data"].pop("createdOn")
    assert answered == documented


def test_create_pass_documented_bulk_body_makes_both_passes(passcreator: TestClient) -> None:
    response = passcreator.post(PASSES, json=fixture("bulk-create.json"), headers=KEY)
    assert response.status_code == 200
    identifier = response.json()["data"]["identifier"]
    advance(passcreator, 0.04)
    assert process(passcreator, identifier)["status"] == "finished"
    made = passcreator.get(PASSES, headers=KEY).json()["data"]
    assert [(p["firstname"], p["age"]) for p in made] == [
        ("David", 30),
        ("Ray", 31),
        ("David", 30),
        ("Ray", 31),
    ]
