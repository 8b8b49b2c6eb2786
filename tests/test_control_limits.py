"""What the control plane refuses: out-of-range options, oversized or deeply nested bodies,
instants the clock cannot show, and calls a web page could make."""

from __future__ import annotations

import asyncio
import json
import typing
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import Message

from simulator import Settings, available_providers, create_app
from simulator.settings import option_ranges

# Every provider's record (each provider's package loaded).
PROVIDERS = available_providers()

NUMERIC = [
    (provider.name, name)
    for provider in PROVIDERS
    for name, kind in typing.get_type_hints(provider.options_type).items()
    if kind in (int, float)
]
# Refused by every numeric option, whatever its range.
BAD_VALUES = ["nan", "inf", "-inf", "1e300", str(10**30), "-1e300", str(-(10**30))]


def test_every_numeric_option_declares_its_range() -> None:
    for provider in PROVIDERS:
        ranges = option_ranges(provider.options_type)
        numeric = [n for p, n in NUMERIC if p == provider.name]
        assert sorted(ranges) == sorted(numeric), provider.name


@pytest.mark.parametrize(("provider", "option"), NUMERIC)
def test_out_of_range_option_is_refused_through_the_control_plane(
    client: TestClient, provider: str, option: str
) -> None:
    before = client.get("/_sim/options").json()
    declared = option_ranges(next(p for p in PROVIDERS if p.name == provider).options_type)
    below = declared[option].low - 1
    for value in [*BAD_VALUES, str(below), below, 10**30, 1e300]:
        response = client.post(
            "/_sim/options", json={"provider": provider, "options": {option: value}}
        )
        assert response.status_code == 400, (value, response.text)
        assert f"{provider}.{option}" in response.json()["error"]
    # NaN and Infinity are not JSON: refused before they reach an option.
    for constant in ("NaN", "Infinity", "-Infinity"):
        response = client.post(
            "/_sim/options",
            content=f'{{"provider": "{provider}", "options": {{"{option}": {constant}}}}}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400
    # Nothing was stored, and the simulator still answers.
    assert client.get("/_sim/options").json() == before
    assert client.get("/_sim/providers").status_code == 200
    assert client.get("/_sim/health").status_code == 200


def test_in_range_option_is_still_accepted(client: TestClient) -> None:
    response = client.post(
        "/_sim/options", json={"provider": "check", "options": {"concurrency": 1000}}
    )
    assert response.status_code == 200
    assert response.json()["check"]["concurrency"] == 1000


@pytest.mark.parametrize(("provider", "option"), NUMERIC)
def test_out_of_range_option_is_a_usage_error_for_serve(
    provider: str, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from simulator.__main__ import main

    for value in BAD_VALUES:
        code = main(["serve", "--port", "0", "--option", f"{provider}.{option}={value}"])
        err = capsys.readouterr().err
        assert code == 2
        assert err.count("\n") == 1
        assert err.startswith("bulksim: ")
        assert f"{provider}.{option}" in err


def test_out_of_range_option_refused_for_a_sandbox_and_its_scenario(client: TestClient) -> None:
    response = client.post("/_sim/sandboxes", json={"options": {"check": {"concurrency": 1e20}}})
    assert response.status_code == 400
    assert "check.concurrency" in response.json()["error"]
    scenario = {"options": {"deepvue": {"processing_seconds": 1e300}}}
    response = client.post("/_sim/sandboxes", json={"scenario": scenario})
    assert response.status_code == 400
    assert "deepvue.processing_seconds" in response.json()["error"]
    assert client.get("/_sim/sandboxes").json()["live"] == 0


def test_time_scale_is_bounded() -> None:
    with pytest.raises(ValueError, match="time_scale"):
        Settings(time_scale=1e300).checked()


# -- bodies ---------------------------------------------------------------------------------


def test_a_body_over_the_cap_is_refused_with_413_without_being_read_whole(app: Starlette) -> None:
    # 4 MiB offered in 64 KiB chunks with no Content-Length, straight to the ASGI app, which
    # counts what it is handed.
    pulled: list[int] = []
    sent: list[Message] = []

    async def receive() -> Message:
        pulled.append(1)
        return {"type": "http.request", "body": b" " * 65536, "more_body": len(pulled) < 64}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/_sim/faults",
        "raw_path": b"/_sim/faults",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8700"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8700),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert "at most 1048576 bytes" in body["error"]
    assert len(pulled) == 17  # 16 chunks make the cap; the 17th passes it and reading stops


def test_a_declared_body_over_the_cap_is_refused_unread(client: TestClient) -> None:
    declared = client.post(
        "/_sim/options",
        content=b" " * (1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )
    assert declared.status_code == 413
    assert client.get("/_sim/health").status_code == 200


def test_the_body_cap_is_a_setting(app_factory: object) -> None:
    from tests.conftest import AppFactory

    assert callable(app_factory)
    factory: AppFactory = app_factory
    with TestClient(factory(control_body_bytes=2048)) as client:
        body = {"provider": "deepvue", "kind": "drop", "operation": "x" * 4096}
        assert client.post("/_sim/faults", json=body).status_code == 413


@pytest.mark.parametrize("path", ["/_sim/faults", "/_sim/options", "/_sim/sandboxes"])
@pytest.mark.parametrize("depth", [100, 8000])
def test_a_deeply_nested_body_is_a_400(client: TestClient, path: str, depth: int) -> None:
    body = '{"provider": ' + "[" * depth + "]" * depth + "}"
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "nests deeper" in response.json()["error"]
    assert client.get("/_sim/faults").status_code == 200


# -- the clock ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        "9999-12-31T23:59:59Z",
        "9001-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
    ],
)
def test_clock_set_beyond_what_it_can_show_is_a_400(client: TestClient, now: str) -> None:
    before = client.get("/_sim/clock").json()
    response = client.post("/_sim/clock/set", json={"now": now})
    assert response.status_code == 400
    assert "1970-01-01T00:00:00Z to 9000-12-31T23:59:59Z" in response.json()["error"]
    assert client.get("/_sim/clock").json() == before
    assert client.get("/_sim/health").status_code == 200
    assert client.post("/_sim/reset").status_code == 200


def test_clock_advance_beyond_what_it_can_show_is_a_400(client: TestClient) -> None:
    assert client.post("/_sim/clock/set", json={"now": "9000-01-01T00:00:00Z"}).status_code == 200
    response = client.post("/_sim/clock/advance", json={"seconds": 366 * 86400})
    assert response.status_code == 400
    assert client.get("/_sim/clock").json()["now"] == "9000-01-01T00:00:00Z"
    assert client.get("/_sim/health").status_code == 200


def test_the_clock_shows_early_years_in_four_digits(client: TestClient) -> None:
    body = client.post("/_sim/clock/set", json={"now": "1970-01-01T00:00:00Z"}).json()
    assert body["now"] == "1970-01-01T00:00:00Z"
    assert body["epoch_ms"] == 0


def test_start_beyond_what_the_clock_can_show_is_refused() -> None:
    from datetime import UTC, datetime

    with pytest.raises(ValueError, match="start"):
        Settings(clock="manual", start=datetime(9999, 1, 1, tzinfo=UTC)).checked()


# -- what a web page can do -----------------------------------------------------------------


@pytest.fixture
def local(app_factory: object) -> Iterator[TestClient]:
    """A client addressing the simulator as a browser on this machine would."""
    assert callable(app_factory)
    with TestClient(app_factory(), base_url="http://127.0.0.1:8700") as client:
        yield client


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_control_post_that_is_not_json_is_refused(local: TestClient, kind: str) -> None:
    body = b'{"provider": "deepvue", "kind": "drop"}'
    headers = {"Content-Type": kind} if kind else {}
    response = local.post("/_sim/faults", content=body, headers=headers)
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    assert local.get("/_sim/faults").json() == {"faults": []}


def test_a_control_post_without_a_body_needs_no_content_type(local: TestClient) -> None:
    assert local.post("/_sim/reset").status_code == 200


def test_a_sink_takes_any_body(local: TestClient) -> None:
    response = local.post("/_sim/sink/any", content=b"a=1", headers={"Content-Type": "text/plain"})
    assert response.status_code == 200


@pytest.mark.parametrize("page", ["http://evil.example", "null", "http://127.0.0.1:8701"])
def test_a_foreign_origin_is_refused(local: TestClient, page: str) -> None:
    response = local.post("/_sim/reset", headers={"Origin": page})
    assert response.status_code == 403
    assert "origin" in response.json()["error"]
    assert local.get("/_sim/faults", headers={"Origin": page}).status_code == 403


def test_the_own_origin_is_accepted(local: TestClient) -> None:
    response = local.post(
        "/_sim/clock/advance", json={"seconds": 1}, headers={"Origin": "http://127.0.0.1:8700"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["localhost:8700", "127.0.0.1:8700", "[::1]:8700", "localhost"])
def test_local_host_names_are_accepted(local: TestClient, host: str) -> None:
    assert local.get("/_sim/health", headers={"Host": host}).status_code == 200


def test_a_foreign_host_is_refused_unless_a_token_is_set(app_factory: object) -> None:
    assert callable(app_factory)
    rebound = {"Host": "attacker.example:8700"}
    with TestClient(app_factory(), base_url="http://127.0.0.1:8700") as client:
        response = client.post("/_sim/reset", headers=rebound)
        assert response.status_code == 403
        assert "attacker.example" in response.json()["error"]
        assert client.get("/_sim/journal", headers=rebound).status_code == 403
    with TestClient(app_factory(control_token="t0k"), base_url="http://127.0.0.1:8700") as client:
        headers = {**rebound, "X-Bulksim-Token": "t0k"}
        assert client.get("/_sim/health", headers=headers).status_code == 200
        assert client.get("/_sim/health", headers=rebound).status_code == 401


def test_a_served_simulator_refuses_a_rebound_host() -> None:
    import httpx

    from simulator.server import running_in_thread

    app = create_app(Settings(clock="manual"))
    with running_in_thread(app) as origin:
        assert httpx.get(f"{origin}/_sim/health").status_code == 200
        response = httpx.post(
            f"{origin}/_sim/faults",
            json={"provider": "deepvue", "kind": "drop"},
            headers={"Host": "rebound.example"},
        )
        assert response.status_code == 403
        assert httpx.get(f"{origin}/_sim/faults").json() == {"faults": []}
        text = httpx.post(
            f"{origin}/_sim/faults",
            content=b'{"provider": "deepvue", "kind": "drop"}',
            headers={"Content-Type": "text/plain"},
        )
        assert text.status_code == 415
        big = httpx.post(
            f"{origin}/_sim/faults",
            content=b" " * (2 * 1024 * 1024),
            headers={"Content-Type": "application/json"},
        )
        assert big.status_code == 413
        assert httpx.get(f"{origin}/_sim/health").status_code == 200


# -- the fault plan -------------------------------------------------------------------------

DEEPVUE_POLL = (
    "/deepvue/v1/verification/batch-processing-status?request_id=06d0d7c340ed460d96103aaa0b26f0de"
)


def test_the_fault_plan_is_capped_with_a_409(app_factory: object) -> None:
    assert callable(app_factory)
    with TestClient(app_factory(max_faults=3)) as client:
        fault = {"provider": "deepvue", "kind": "status", "status": 502}
        for _ in range(3):
            assert client.post("/_sim/faults", json=fault).status_code == 201
        full = client.post("/_sim/faults", json=fault)
        assert full.status_code == 409
        assert "max_faults" in full.json()["error"]
        assert len(client.get("/_sim/faults").json()["faults"]) == 3
        client.delete("/_sim/faults?provider=deepvue")
        assert client.post("/_sim/faults", json=fault).status_code == 201


def test_the_default_fault_cap_is_a_thousand(client: TestClient) -> None:
    fault = {"provider": "check", "kind": "drop"}
    for _ in range(1000):
        assert client.post("/_sim/faults", json=fault).status_code == 201
    assert client.post("/_sim/faults", json=fault).status_code == 409


def test_a_call_looks_only_at_the_faults_aimed_at_it(
    app_factory: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simulator.faults import Fault

    assert callable(app_factory)
    with TestClient(app_factory(max_faults=20_000)) as client:
        for _ in range(2000):
            body = {"provider": "passcreator", "kind": "drop", "count": 5}
            assert client.post("/_sim/faults", json=body).status_code == 201
        other = {"provider": "deepvue", "operation": "authorize", "kind": "drop"}
        assert client.post("/_sim/faults", json=other).status_code == 201
        # Every read of a fault's fields while a Deepvue poll is answered.
        reads: list[str] = []
        original = Fault.__getattribute__

        def counted(self: Fault, name: str) -> object:
            reads.append(name)
            return original(self, name)

        monkeypatch.setattr(Fault, "__getattribute__", counted)
        assert client.get(DEEPVUE_POLL).status_code == 401  # answered, no fault struck
        monkeypatch.undo()
        assert reads == []


def test_each_manual_gives_every_option_range() -> None:
    from pathlib import Path

    docs = Path(__file__).resolve().parent.parent / "docs" / "providers"
    for provider in PROVIDERS:
        manual = (docs / f"{provider.name}.md").read_text()
        for name, declared in option_ranges(provider.options_type).items():
            assert f"`{name}` {declared}" in manual, (provider.name, name)
