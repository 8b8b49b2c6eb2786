"""Sandboxes: isolated simulators on one server, reached by changing only the base URL.

Every test runs twice: in process (Starlette's test client) and served (uvicorn on a
loopback port, through httpx).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from simulator import Settings, create_app
from simulator.providers.deepvue.models import BATCHES
from simulator.server import running_in_thread
from simulator.settings import SettingsError
from simulator.store import MemoryStore
from tests.conftest import START
from tests.providers.deepvue.conftest import CLIENT

SUBMIT = "/v1/verification/upi-basic/batch"
STATUS = "/v1/verification/batch-processing-status"
ROWS = b"vpa,name\nrahul@okaxis,Rahul\n9876543210@paytm,\n"

Serve = Callable[..., tuple[Starlette, httpx.Client]]


@pytest.fixture(params=["in-process", "served"])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    """Build an app (Settings fields as keywords) and an HTTP client for it."""
    with ExitStack() as stack:

        def build(**fields: Any) -> tuple[Starlette, httpx.Client]:
            fields.setdefault("clock", "manual")
            fields.setdefault("start", START)
            fields.setdefault("seed", 7)
            store = fields.pop("store", None)
            app = create_app(Settings(**fields), store=store)
            if request.param == "in-process":
                client: httpx.Client = TestClient(app, base_url="http://testserver")  # type: ignore[assignment]
            else:
                origin = stack.enter_context(running_in_thread(app))
                client = httpx.Client(base_url=origin)
            stack.callback(client.close)
            return app, client

        yield build


def create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/_sim/sandboxes", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def deepvue_headers(client: httpx.Client, base: str) -> dict[str, str]:
    response = client.post(
        f"{base}/deepvue/v1/authorize",
        data={"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret},
    )
    assert response.status_code == 200, response.text
    return {
        "Authorization": f"Bearer {response.json()['access_token']}",
        "x-api-key": CLIENT.client_secret,
    }


def submit(client: httpx.Client, base: str, headers: dict[str, str]) -> str:
    response = client.post(
        f"{base}/deepvue{SUBMIT}",
        headers=headers,
        files={"batch_file": ("vpas.csv", ROWS, "text/csv")},
    )
    assert response.status_code == 201, response.text
    request_id: str = response.json()["request_id"]
    return request_id


def poll(client: httpx.Client, base: str, headers: dict[str, str], request_id: str) -> Any:
    return client.get(f"{base}/deepvue{STATUS}", params={"request_id": request_id}, headers=headers)


def path_of(sandbox: dict[str, Any]) -> str:
    """The sandbox's base path: its base URL without the origin."""
    return str(httpx.URL(sandbox["base_url"]).path)


def snapshot(client: httpx.Client, sandbox_id: str) -> dict[str, Any]:
    """Everything the control plane tells of one sandbox."""
    control = f"/_sim/sandboxes/{sandbox_id}"
    return {
        part: client.get(f"{control}/{part}").json()
        for part in ("clock", "faults", "journal", "options", "providers")
    }


def test_creating_a_sandbox_answers_its_id_and_base_urls(serve: Serve) -> None:
    _, client = serve()
    body = create(client, name="ci-job-1", seed=3)
    origin = str(client.base_url).rstrip("/")
    sandbox_id = body["id"]
    assert body["name"] == "ci-job-1"
    assert body["seed"] == 3
    assert body["base_url"] == f"{origin}/sandboxes/{sandbox_id}"
    assert body["control_url"] == f"{origin}/_sim/sandboxes/{sandbox_id}"
    assert body["urls"]["deepvue"] == f"{origin}/sandboxes/{sandbox_id}/deepvue"
    assert client.get(f"/_sim/sandboxes/{sandbox_id}").json() == body
    listed = client.get("/_sim/sandboxes").json()
    assert [s["id"] for s in listed["sandboxes"]] == ["default", sandbox_id]
    providers = client.get(f"/_sim/sandboxes/{sandbox_id}/providers").json()["providers"]
    assert providers[0]["base_url"] == f"{origin}/sandboxes/{sandbox_id}/deepvue"


def test_a_sandbox_is_served_below_its_prefix_with_the_providers_paths_unchanged(
    serve: Serve,
) -> None:
    _, client = serve()
    base = path_of(create(client))
    headers = deepvue_headers(client, base)
    request_id = submit(client, base, headers)
    assert poll(client, base, headers, request_id).json()["data"]["status"] == 201
    spec = client.get(f"{base}/passcreator/openapi.json")
    assert spec.status_code == 200
    assert spec.json()["info"]["title"]


def test_advancing_faulting_and_resetting_one_sandbox_leaves_the_other_as_it_was(
    serve: Serve,
) -> None:
    _, client = serve()
    one, two = create(client), create(client)
    for sandbox in (one, two):
        base = path_of(sandbox)
        submit(client, base, deepvue_headers(client, base))
    before = snapshot(client, two["id"])
    default_before = snapshot(client, "default")

    control = f"/_sim/sandboxes/{one['id']}"
    assert client.post(f"{control}/clock/advance", json={"seconds": 3600}).status_code == 200
    fault = {"provider": "deepvue", "kind": "rate_limit", "retry_after": 5}
    assert client.post(f"{control}/faults", json=fault).status_code == 201
    assert (
        client.post(
            f"{control}/options", json={"provider": "deepvue", "options": {"processing_seconds": 1}}
        ).status_code
        == 200
    )
    base_one = path_of(one)
    limited = client.post(
        f"{base_one}/deepvue/v1/authorize",
        data={"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret},
    )
    assert limited.status_code == 429
    assert client.post(f"{control}/reset").json()["reset"] == [
        "deepvue",
        "passcreator",
        "helloatlas",
        "check",
    ]

    assert snapshot(client, two["id"]) == before
    assert snapshot(client, "default") == default_before
    assert client.get(f"{control}/clock").json()["now"] == "2026-03-09T09:14:08Z"
    assert before["clock"]["now"] == "2026-03-09T08:14:08Z"


def test_a_fault_strikes_only_in_its_sandbox(serve: Serve) -> None:
    _, client = serve()
    one, two = create(client), create(client)
    fault = {"provider": "deepvue", "kind": "status", "status": 503, "operation": "authorize"}
    assert client.post(f"/_sim/sandboxes/{one['id']}/faults", json=fault).status_code == 201
    form = {"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret}
    assert client.post(f"{path_of(two)}/deepvue/v1/authorize", data=form).status_code == 200
    assert client.post("/deepvue/v1/authorize", data=form).status_code == 200
    assert client.post(f"{path_of(one)}/deepvue/v1/authorize", data=form).status_code == 503
    journal = client.get(f"/_sim/sandboxes/{two['id']}/journal").json()["entries"]
    assert [(e["operation"], e["response"]["status"]) for e in journal] == [("authorize", 200)]


def test_the_same_seed_gives_the_same_ids_and_state_is_not_shared(serve: Serve) -> None:
    _, client = serve()
    one, two, other = create(client, seed=11), create(client, seed=11), create(client, seed=12)
    ids = []
    for sandbox in (one, two, other):
        base = path_of(sandbox)
        ids.append(submit(client, base, deepvue_headers(client, base)))
    assert ids[0] == ids[1] != ids[2]

    # A request_id of one sandbox is unknown in another (the second batch exists in neither).
    base_one, base_two = path_of(one), path_of(two)
    second = submit(client, base_one, deepvue_headers(client, base_one))
    unknown = poll(client, base_two, deepvue_headers(client, base_two), second)
    assert unknown.status_code == 422
    assert unknown.json()["sub_code"] == "INVALID_REQUEST_ID"
    assert poll(client, base_one, deepvue_headers(client, base_one), second).status_code == 200


def test_the_output_file_url_points_into_its_own_sandbox(serve: Serve) -> None:
    _, client = serve()
    one, two = create(client), create(client)
    base = path_of(one)
    headers = deepvue_headers(client, base)
    request_id = submit(client, base, headers)
    advance = {"seconds": 120}
    assert client.post(f"/_sim/sandboxes/{one['id']}/clock/advance", json=advance).is_success
    url = poll(client, base, headers, request_id).json()["data"]["batch_output_file_url"]
    assert url.startswith(f"{one['base_url']}/deepvue/")
    assert client.get(url).status_code == 200
    elsewhere = url.replace(one["base_url"], two["base_url"])
    assert client.get(elsewhere).status_code == 404


def test_an_unknown_sandbox_is_a_json_404_on_provider_paths_and_the_control_plane(
    serve: Serve,
) -> None:
    _, client = serve()
    for path in (
        "/sandboxes/nope/deepvue/v1/authorize",
        "/_sim/sandboxes/nope",
        "/_sim/sandboxes/nope/clock",
        "/_sim/sandboxes/nope/journal",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "no sandbox 'nope'" in response.json()["error"]
    assert client.delete("/_sim/sandboxes/nope").status_code == 404


def test_the_default_sandbox_is_todays_state_and_cannot_be_deleted(serve: Serve) -> None:
    _, client = serve()
    headers = deepvue_headers(client, "")
    request_id = submit(client, "", headers)
    assert poll(client, "/sandboxes/default", headers, request_id).status_code == 200
    client.post("/_sim/sandboxes/default/clock/advance", json={"seconds": 60})
    assert client.get("/_sim/clock").json()["now"] == "2026-03-09T08:15:08Z"
    refused = client.delete("/_sim/sandboxes/default")
    assert refused.status_code == 409
    assert "cannot be deleted" in refused.json()["error"]


def test_a_sandbox_starts_from_its_own_clock_seed_and_options(serve: Serve) -> None:
    _, client = serve()
    body = create(
        client,
        clock="manual",
        start="2030-01-01T00:00:00Z",
        options={"deepvue": {"processing_seconds": 5, "seconds_per_row": 0}},
    )
    assert body["clock"] == {"kind": "manual", "now": "2030-01-01T00:00:00Z"}
    options = client.get(f"/_sim/sandboxes/{body['id']}/options").json()
    assert options["deepvue"]["processing_seconds"] == 5
    assert client.get("/_sim/options").json()["deepvue"]["processing_seconds"] == 30
    system = create(client, clock="system")
    assert system["clock"]["kind"] == "system"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"clock": "sundial"}, "clock: Input should be 'manual' or 'system'"),
        ({"seed": "x"}, "seed: Input should be a valid integer"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"start": "yesterday"}, "start: Input should be a valid datetime"),
        ({"clock": "system", "start": "2030-01-01T00:00:00Z"}, "start: only applies"),
        ({"options": {"nobody": {"x": 1}}}, "options.nobody: unknown provider"),
        ({"options": {"deepvue": {"speed": 1}}}, "unknown option deepvue.speed"),
        ([1, 2], "body must be a JSON object"),
    ],
)
def test_a_bad_create_body_is_a_400_naming_the_field(
    serve: Serve, body: object, message: str
) -> None:
    _, client = serve()
    response = client.post("/_sim/sandboxes", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_the_cap_refuses_a_sandbox_beyond_it_with_a_429_naming_it(serve: Serve) -> None:
    _, client = serve(sandbox_cap=2)
    first = create(client)
    create(client)
    refused = client.post("/_sim/sandboxes", json={})
    assert refused.status_code == 429
    assert "sandbox cap reached: 2 live sandboxes of at most 2" in refused.json()["error"]
    assert client.delete(f"/_sim/sandboxes/{first['id']}").json() == {"deleted": first["id"]}
    create(client)


def test_with_a_cap_of_zero_sandboxes_are_off(serve: Serve) -> None:
    _, client = serve(sandbox_cap=0)
    refused = client.post("/_sim/sandboxes", json={})
    assert refused.status_code == 409
    assert "sandbox cap is 0" in refused.json()["error"]


def test_an_idle_sandbox_expires(serve: Serve) -> None:
    app, client = serve(sandbox_idle_seconds=600)
    wall = [1000.0]
    app.state.sandboxes.monotonic = lambda: wall[0]
    kept, idle = create(client), create(client)
    wall[0] += 500
    assert client.get(f"/_sim/sandboxes/{kept['id']}/clock").status_code == 200
    wall[0] += 200  # idle has waited 700 s, kept 200 s
    assert client.get(f"{path_of(idle)}/deepvue/openapi.json").status_code == 404
    assert client.get(f"/_sim/sandboxes/{kept['id']}").status_code == 200
    listed = client.get("/_sim/sandboxes").json()
    assert [s["id"] for s in listed["sandboxes"]] == ["default", kept["id"]]


def test_deleting_a_sandbox_clears_its_store_and_drops_its_state(serve: Serve) -> None:
    store = MemoryStore()
    app, client = serve(store=store)
    one, two = create(client), create(client)
    for sandbox in (one, two):
        base = path_of(sandbox)
        submit(client, base, deepvue_headers(client, base))

    def batches(sandbox_id: str) -> int:
        view = store.scoped(f"sandboxes/{sandbox_id}").scoped("deepvue")
        return asyncio.run(view.count(BATCHES)) + asyncio.run(view.incr("ids/batch", 0))

    assert batches(one["id"]) == batches(two["id"]) > 0
    assert client.delete(f"/_sim/sandboxes/{one['id']}").json() == {"deleted": one["id"]}
    assert batches(one["id"]) == 0
    assert batches(two["id"]) > 0
    assert one["id"] not in app.state.sandboxes.live
    assert client.get(f"{path_of(one)}/deepvue/openapi.json").status_code == 404


def test_the_cap_and_idle_expiry_are_settings_from_flags_and_the_environment() -> None:
    from simulator.__main__ import build_parser, settings_from_args

    args = build_parser().parse_args(["serve", "--sandbox-cap", "5"])
    environ = {"BULKSIM_SANDBOX_IDLE_SECONDS": "90", "BULKSIM_SANDBOX_CAP": "9"}
    settings = settings_from_args(args, environ)
    assert (settings.sandbox_cap, settings.sandbox_idle_seconds) == (5, 90.0)
    with pytest.raises(SettingsError, match="sandbox_cap must not be negative"):
        Settings(sandbox_cap=-1).checked()
    with pytest.raises(SettingsError, match="sandbox_idle_seconds must be a positive number"):
        Settings.from_env({"BULKSIM_SANDBOX_IDLE_SECONDS": "0"})
