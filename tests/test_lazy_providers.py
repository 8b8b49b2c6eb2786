"""A provider's package is loaded when it is first needed, not at start-up.

Its first request (or a control call that reads it: ``/_sim/providers``, options) loads it,
once, however many first requests arrive together; the others stay unloaded. One that fails
to load answers 500 naming it, every time, and the rest of the simulator keeps serving.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app, provider_names
from simulator.kit.context import ProviderContext
from simulator.providers import PROVIDERS, Registered
from tests.fifth.acme import PROVIDER as ACME
from tests.fifth.acme.models import TEST_KEY
from tests.providers.deepvue.conftest import BASE, auth
from tests.providers.deepvue.test_batches import STATUS, status, submit
from tests.providers.passcreator.conftest import ACCOUNT, SEED_PROCESS

ROOT = Path(__file__).parent.parent

# Run in a fresh interpreter: which provider packages are imported after each request.
PROBE = """
import json, sys
from starlette.testclient import TestClient
from simulator import Settings, create_app

def loaded():
    return sorted({m.split(".")[2] for m in sys.modules if m.startswith("simulator.providers.")})

steps = {"start": loaded()}
client = TestClient(create_app(Settings(seed=1)))
steps["created"] = loaded()
answers = {}
for label, path, headers in json.loads(sys.argv[1]):
    answers[label] = client.get(path, headers=headers).status_code
    steps[label] = loaded()
print(json.dumps({"steps": steps, "answers": answers}))
"""


def probe(*requests: tuple[str, str, dict[str, str]]) -> dict[str, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(requests)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, dict[str, object]] = json.loads(done.stdout)
    return result


def test_start_up_loads_no_provider_and_a_first_request_only_its_own() -> None:
    passcreator_poll = f"/passcreator/api/v3/process/{SEED_PROCESS}"
    seen = probe(
        ("health", "/_sim/health", {}),
        ("passcreator", passcreator_poll, {"Authorization": ACCOUNT.api_key}),
        ("deepvue", "/deepvue/v1/verification/batch-processing-status?request_id=x", {}),
        ("providers", "/_sim/providers", {}),
    )
    assert seen["answers"] == {"health": 200, "passcreator": 200, "deepvue": 401, "providers": 200}
    assert seen["steps"] == {
        "start": [],
        "created": [],
        "health": [],
        "passcreator": ["passcreator"],
        "deepvue": ["deepvue", "passcreator"],
        "providers": ["check", "deepvue", "helloatlas", "passcreator"],
    }


def test_the_listing_names_every_provider_of_a_fresh_app() -> None:
    with TestClient(create_app(Settings(seed=1))) as client:
        health = client.get("/_sim/health").json()
        listing = client.get("/_sim/providers").json()["providers"]
    assert health["providers"] == [entry.name for entry in PROVIDERS] == list(provider_names())
    assert [p["name"] for p in listing] == ["deepvue", "passcreator", "helloatlas", "check"]
    assert all(p["credentials"] and p["operations"] for p in listing)


@dataclasses.dataclass
class Counting:
    """Acme's ``store_factory``, counting how many runtimes were built."""

    built: int = 0

    def __call__(self, ctx: ProviderContext) -> object:
        self.built += 1
        return ACME.store_factory(ctx)


def test_concurrent_first_requests_build_the_provider_once(clock: ManualClock) -> None:
    counting = Counting()
    acme = dataclasses.replace(ACME, store_factory=counting)
    app = create_app(Settings(seed=1), clock=clock, providers=[*PROVIDERS, acme])
    assert counting.built == 0

    async def first_requests() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            key = {"X-Acme-Key": TEST_KEY}
            asks = [http.get("/acme/v1/batches/none", headers=key) for _ in range(8)]
            return await asyncio.gather(*asks)

    answers = asyncio.run(first_requests())
    assert [a.status_code for a in answers] == [404] * 8
    assert counting.built == 1
    # Built once for the app; later requests reuse it.
    with TestClient(app) as client:
        assert client.get("/acme/v1/batches/none", headers={"X-Acme-Key": TEST_KEY}).status_code
    assert counting.built == 1


BROKEN = Registered("broken", "tests.no_such_provider_package")


@pytest.fixture
def with_broken(clock: ManualClock) -> Iterator[TestClient]:
    app = create_app(Settings(seed=1), clock=clock, providers=[*PROVIDERS, BROKEN])
    with TestClient(app) as client:
        yield client


def test_a_provider_that_fails_to_load_answers_500_naming_it(with_broken: TestClient) -> None:
    for _ in range(2):  # tried again, failing the same way: never a hang or a half-made one
        answer = with_broken.get("/broken/anything")
        assert answer.status_code == 500
        message = answer.json()["error"]
        assert message.startswith("provider 'broken' could not be loaded from ")
        assert "tests.no_such_provider_package" in message
        assert "ModuleNotFoundError" in message
    # The others are served as ever.
    assert with_broken.get("/_sim/health").json()["providers"][-1] == "broken"
    assert with_broken.get(f"/deepvue{STATUS}").status_code == 401


def test_an_option_naming_a_provider_is_checked_at_start() -> None:
    with pytest.raises(Exception, match="speed"):
        create_app(Settings(seed=1, options=(("deepvue.speed", "3"),)))


def test_reset_clears_a_provider_this_app_has_not_loaded(
    tmp_path: Path, clock: ManualClock
) -> None:
    """Two apps on one SQLite file: the second, which never served Deepvue, resets it."""
    settings = Settings(seed=1, store=f"sqlite:///{tmp_path}/state.db")
    with (
        TestClient(create_app(settings, clock=clock), base_url=BASE) as one,
        TestClient(create_app(settings, clock=clock), base_url=BASE) as two,
    ):
        headers = auth(one)
        request_id = str(submit(one, headers, b"vpa\nalice@upi\n")["request_id"])
        assert status(one, headers, request_id)
        assert "deepvue" not in two.app.state.sim.runtimes.loaded()  # type: ignore[attr-defined]
        reset = two.post("http://testserver/_sim/reset").json()
        assert reset == {"reset": list(provider_names())}
        assert "deepvue" not in two.app.state.sim.runtimes.loaded()  # type: ignore[attr-defined]
        # The records are gone for the app that made them.
        gone = one.get(STATUS, params={"request_id": request_id}, headers=auth(one))
        assert gone.status_code == 422, gone.text
        assert gone.json()["sub_code"] == "INVALID_REQUEST_ID"


def test_options_changed_elsewhere_hold_for_a_provider_loaded_later(
    tmp_path: Path, clock: ManualClock
) -> None:
    settings = Settings(seed=1, store=f"sqlite:///{tmp_path}/state.db")
    with (
        TestClient(create_app(settings, clock=clock)) as one,
        TestClient(create_app(settings, clock=clock)) as two,
    ):
        changed = one.post(
            "/_sim/options", json={"provider": "deepvue", "options": {"processing_seconds": 7}}
        )
        assert changed.status_code == 200, changed.text
        assert "deepvue" not in two.app.state.sim.runtimes.loaded()  # type: ignore[attr-defined]
        assert two.get("/_sim/options").json()["deepvue"]["processing_seconds"] == 7


def test_a_provider_first_used_later_shows_its_seeds_as_at_start(clock: ManualClock) -> None:
    """Seeded examples are fixed at start: first used after the clock moved, they are as
    they would have been had the provider served from the start."""
    poll = f"/passcreator/api/v3/process/{SEED_PROCESS}"
    key = {"Authorization": ACCOUNT.api_key}
    with (
        TestClient(create_app(Settings(seed=1), clock=ManualClock(clock.now()))) as early,
        TestClient(create_app(Settings(seed=1), clock=ManualClock(clock.now()))) as late,
    ):
        assert early.get(poll, headers=key).status_code == 200  # built at start
        for client in (early, late):
            moved = client.post("/_sim/clock/advance", json={"seconds": 90})
            assert moved.status_code == 200, moved.text
        assert "passcreator" not in late.app.state.sim.runtimes.loaded()  # type: ignore[attr-defined]
        assert late.get(poll, headers=key).json() == early.get(poll, headers=key).json()


def test_importing_the_simulator_leaves_no_young_objects_for_the_collector() -> None:
    """The import's objects are not left in the young generations, where the collections
    that follow would scan them all again; and nothing is left frozen."""
    script = (
        "import gc, simulator, json; "
        "print(json.dumps([len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1)),"
        " gc.get_freeze_count(), gc.isenabled()]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    young, frozen, enabled = json.loads(done.stdout)
    assert young < 1000  # the import makes some 40,000 tracked objects
    assert (frozen, enabled) == (0, True)
