"""Serving: a dropped connection carries no answer, ``Date`` follows the simulator's clock,
and the request log (one line per provider request, secrets never) of ``bulksim serve``."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import logging
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from contracts.harness import in_process, serve_in_thread
from simulator import Settings, create_app
from simulator.clock import parse_iso
from simulator.server import HEAD_LIMIT, http_protocol, running_in_thread, uvicorn_config
from simulator.state import SimulatorState
from simulator.tls import local_certificate
from tests.conftest import START
from tests.providers.deepvue.conftest import CLIENT

STATUS = "/deepvue/v1/verification/batch-processing-status"
CHECK_KEY = "vfy_test_pro_8c2e6a4f1b9d7e35"
SEEDED_CHECK = 2  # the documentation's example batches of the pro key


def manual_app() -> Starlette:
    return create_app(Settings(clock="manual", start=START))


def exchange(origin: str, request: bytes) -> bytes:
    """Send raw bytes and read until the server closes: what came back, byte for byte."""
    host, port = origin.removeprefix("http://").split(":")
    chunks = []
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(params=["h11", "httptools"])
def protocol(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "httptools":
        pytest.importorskip("httptools")
    return kind


@pytest.fixture
def origin(protocol: Any) -> Iterator[str]:
    with running_in_thread(manual_app(), http=protocol) as served_origin:
        yield served_origin


def schedule(origin: str, provider: str, operation: str, kind: str) -> None:
    fault = {"provider": provider, "operation": operation, "kind": kind}
    assert httpx.post(f"{origin}/_sim/faults", json=fault).status_code == 201


def journal(origin: str, operation: str) -> list[dict[str, Any]]:
    params = {"operation": operation}
    entries: list[dict[str, Any]] = httpx.get(f"{origin}/_sim/journal", params=params).json()[
        "entries"
    ]
    return entries


# -- drop: not one byte of an answer --------------------------------------------------------


def test_drop_served_closes_the_connection_without_a_status_line(
    origin: str, caplog: pytest.LogCaptureFixture
) -> None:
    schedule(origin, "deepvue", "get_batch_processing_status", "drop")
    answer = exchange(origin, f"GET {STATUS}?request_id=x HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer == b""
    [entry] = journal(origin, "get_batch_processing_status")
    assert (entry["dropped"], entry["response"]["status"], entry["fault"]) == (True, None, "drop")
    # The next request on a new connection is answered as usual, and uvicorn said nothing.
    assert httpx.get(f"{origin}{STATUS}?request_id=x").status_code == 401
    assert [r.getMessage() for r in caplog.records if r.name.startswith("uvicorn")] == []


def test_drop_after_served_does_the_work_and_sends_nothing(
    origin: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = {"Authorization": f"Bearer {CHECK_KEY}"}
    upload = httpx.post(
        f"{origin}/check/v1/batch/upload", headers=key, files={"file": ("a.csv", b"content\nx\n")}
    )
    body = json.dumps({"fileId": upload.json()["fileId"]}).encode()
    schedule(origin, "check", "create_batch", "drop_after")
    request = (
        f"POST /check/v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CHECK_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    assert exchange(origin, request) == b""
    listing = httpx.get(f"{origin}/check/v1/batch", headers=key).json()
    assert listing["pagination"]["total"] == SEEDED_CHECK + 1  # made, though never answered
    [entry] = journal(origin, "create_batch")
    assert (entry["dropped"], entry["response"]["status"]) == (True, None)
    assert entry["response"]["body"] is None
    assert [r.getMessage() for r in caplog.records if r.name.startswith("uvicorn")] == []


def test_drop_in_process_is_a_remote_protocol_error_and_a_dropped_entry() -> None:
    with in_process() as sim:
        sim.faults.schedule("deepvue", "drop", operation="get_batch_processing_status")
        with sim.client("deepvue") as client, pytest.raises(httpx.RemoteProtocolError):
            client.get("/v1/verification/batch-processing-status", params={"request_id": "x"})
        [entry] = sim.journal.entries(operation="get_batch_processing_status")
        assert (entry["dropped"], entry["response"]["status"]) == (True, None)


def test_drop_leaves_the_client_checks_working() -> None:
    """A dropped status poll has no status: the checks read it without failing."""
    with in_process() as sim:
        sim.faults.schedule("deepvue", "drop", operation="get_batch_processing_status")
        with sim.client("deepvue") as client, pytest.raises(httpx.RemoteProtocolError):
            client.get("/v1/verification/batch-processing-status", params={"request_id": "x"})
        assert [f.request for f in sim.findings(skip=["spec"])] == []
        [spec] = sim.findings()
        assert spec.request.endswith("→ dropped")


# -- Date -----------------------------------------------------------------------------------


def test_date_header_follows_the_simulated_clock_in_process() -> None:
    with in_process(Settings(clock="manual", start=parse_iso("2026-03-09T08:14:08Z"))) as sim:
        assert sim.http.get("/_sim/health").headers["date"] == "Mon, 09 Mar 2026 08:14:08 GMT"
        sim.clock.advance(3600)
        with sim.client("deepvue") as deepvue:
            answer = deepvue.post("/v1/authorize", data={"client_id": "x", "client_secret": "y"})
        assert answer.headers.get_list("date") == ["Mon, 09 Mar 2026 09:14:08 GMT"]
        state: SimulatorState | None = sim.state
        assert state is not None
        state.clock.advance(timedelta(milliseconds=999))  # same second, same header
        assert sim.http.get("/_sim/clock").headers["date"] == "Mon, 09 Mar 2026 09:14:08 GMT"
        state.clock.advance(timedelta(milliseconds=1))  # the next second
        with sim.client("deepvue") as deepvue:
            answer = deepvue.get("/v1/verification/batch-processing-status")
        assert answer.headers.get_list("date") == ["Mon, 09 Mar 2026 09:14:09 GMT"]
        state.clock.set(parse_iso("2026-03-09T09:14:08Z"))  # moved back into the last second
        assert sim.http.get("/_sim/clock").headers["date"] == "Mon, 09 Mar 2026 09:14:08 GMT"


def test_date_header_served_is_one_header_from_the_simulated_clock(origin: str) -> None:
    httpx.post(f"{origin}/_sim/clock/advance", json={"seconds": 3600})
    for path in ("/_sim/health", f"{STATUS}?request_id=x"):
        answer = exchange(
            origin, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        head = answer.split(b"\r\n\r\n")[0].lower().split(b"\r\n")
        assert [h for h in head if h.startswith(b"date:")] == [
            b"date: mon, 09 mar 2026 09:14:08 gmt"
        ]


# -- the request log ------------------------------------------------------------------------


@contextlib.contextmanager
def bulksim(*flags: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """``bulksim serve --port 0 FLAGS``; yields its origin and, after the block, its stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--port", "0", "--clock", "manual", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    logged: list[str] = []
    try:
        yield first.split()[3], logged
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
        logged += err.splitlines()


def traffic(origin: str) -> list[str]:
    """Three provider requests carrying secrets, the last one dropped; returns the secrets."""
    form = {"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret}
    token = httpx.post(f"{origin}/deepvue/v1/authorize", data=form).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "x-api-key": CLIENT.client_secret}
    status = f"{origin}{STATUS}?request_id=secret-in-query"
    assert httpx.get(status, headers=headers).status_code == 422
    schedule(origin, "deepvue", "get_batch_processing_status", "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(status, headers=headers)
    return [CLIENT.client_secret, token, "secret-in-query"]


def test_request_log_text_is_one_line_per_provider_request_without_secrets() -> None:
    with bulksim("--start", "2026-03-09T08:14:08Z") as (origin, logged):
        secrets = traffic(origin)
    assert len(logged) == 3, logged
    auth, poll, dropped = (line.split() for line in logged)
    assert auth[:5] == [
        "2026-03-09T08:14:08Z",
        "POST",
        "/deepvue/v1/authorize",
        "200",
        "deepvue.authorize",
    ]
    assert poll[1:5] == ["GET", STATUS, "422", "deepvue.get_batch_processing_status"]
    assert dropped[3:5] == ["dropped", "deepvue.get_batch_processing_status"]
    assert dropped[6:] == ["fault=drop"]
    assert all(line.split()[5].endswith("ms") for line in logged)
    assert [s for s in secrets if any(s in line for line in logged)] == []


def test_request_log_json_is_one_object_a_line() -> None:
    with bulksim("--log-format", "json", "--start", "2026-03-09T08:14:08Z") as (origin, logged):
        secrets = traffic(origin)
    records = [json.loads(line) for line in logged]
    assert [(r["operation"], r["status"], r["dropped"], r["fault"]) for r in records] == [
        ("authorize", 200, False, None),
        ("get_batch_processing_status", 422, False, None),
        ("get_batch_processing_status", None, True, "drop"),
    ]
    first = records[0]
    assert {k: first[k] for k in ("level", "logger", "provider", "method", "path", "time")} == {
        "level": "info",
        "logger": "bulksim.access",
        "provider": "deepvue",
        "method": "POST",
        "path": "/deepvue/v1/authorize",
        "time": "2026-03-09T08:14:08Z",
    }
    assert all(isinstance(r["duration_ms"], float | int) for r in records)
    assert [s for s in secrets if any(s in line for line in logged)] == []


@pytest.mark.parametrize(
    ("flags", "env"),
    [(("--access-log", "off"), {}), ((), {"BULKSIM_ACCESS_LOG": "off"})],
    ids=["flag", "environment"],
)
def test_request_log_off_logs_nothing(flags: tuple[str, ...], env: dict[str, str]) -> None:
    import os

    with bulksim(*flags, env={**os.environ, **env}) as (origin, logged):
        traffic(origin)
    assert logged == []


def test_request_log_in_process_follows_the_logger_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bulksim.access")
    with in_process() as sim, sim.client("deepvue") as client:
        client.get("/v1/verification/batch-processing-status", params={"request_id": "x"})
    [record] = caplog.records
    fields = getattr(record, "access")  # noqa: B009
    assert (fields["operation"], fields["status"], fields["path"]) == (
        "get_batch_processing_status",
        401,
        "/deepvue/v1/verification/batch-processing-status",
    )


def test_request_log_silent_logger_logs_nothing_in_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bulksim.access")
    with in_process() as sim, sim.client("deepvue") as client:
        client.get("/v1/verification/batch-processing-status", params={"request_id": "x"})
    assert caplog.records == []


def test_bad_log_level_is_a_one_line_usage_error_before_the_banner() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "serve", "--log-level", "loud"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "invalid choice: 'loud'" in done.stderr


def test_bad_log_level_in_the_environment_is_a_one_line_error() -> None:
    import os

    done = subprocess.run(
        [sys.executable, "-m", "simulator", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "BULKSIM_LOG_LEVEL": "loud"},
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "bulksim: BULKSIM_LOG_LEVEL='loud': must be one of "
        "critical, error, warning, info, debug, trace\n"
    )


def test_serve_in_thread_still_serves() -> None:
    with serve_in_thread() as sim:
        assert sim.http.get("/_sim/health").status_code == 200


# -- both parsers: the default, every fault, the head limit, TLS ----------------------------


def test_the_default_parser_is_httptools_where_installed_and_h11_where_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("httptools")
    assert http_protocol().__name__ == "DroppingHttpToolsProtocol"
    real = importlib.util.find_spec

    def without_httptools(name: str, *args: Any) -> Any:
        return None if name == "httptools" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_httptools)
    assert http_protocol.__wrapped__("auto").__name__ == "DroppingH11Protocol"


def test_served_by_default_on_uvloop_and_httptools() -> None:
    pytest.importorskip("uvloop")
    config = uvicorn_config(manual_app())
    config.load()
    assert config.http_protocol_class.__name__ == "DroppingHttpToolsProtocol"
    assert config.get_loop_factory() is not None
    loop = config.get_loop_factory()()  # type: ignore[misc]
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


def test_malformed_and_latency_faults_are_served_on_either_parser(origin: str) -> None:
    form = {"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret}
    token = httpx.post(f"{origin}/deepvue/v1/authorize", data=form).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "x-api-key": CLIENT.client_secret}
    url = f"{origin}{STATUS}?request_id=06d0d7c340ed460d96103aaa0b26f0de"
    fault = {"provider": "deepvue", "operation": "get_batch_processing_status"}
    assert httpx.post(f"{origin}/_sim/faults", json={**fault, "kind": "malformed"}).is_success
    answer = httpx.get(url, headers=headers)
    assert (answer.status_code, answer.content) == (200, b'{"data": {"status": "in prog')
    latency = {**fault, "kind": "latency", "latency_ms": 1}
    assert httpx.post(f"{origin}/_sim/faults", json=latency).is_success
    answer = httpx.get(url, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["data"]["request_id"] == "06d0d7c340ed460d96103aaa0b26f0de"
    kinds = [e["fault"] for e in journal(origin, "get_batch_processing_status")]
    assert kinds == ["malformed", "latency:1ms"]


@pytest.mark.parametrize("kind", ["rate_limit", "malformed", "drop"])
def test_a_fault_that_answers_a_post_served_still_journals_what_was_sent(
    origin: str, kind: str
) -> None:
    schedule(origin, "deepvue", "authorize", kind)
    form = {"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret}
    with contextlib.suppress(httpx.TransportError):
        httpx.post(f"{origin}/deepvue/v1/authorize", data=form)
    (entry,) = journal(origin, "authorize")
    assert entry["request"]["body"] == f"client_id={CLIENT.client_id}&client_secret=***4c1a"
    assert entry["violations"] == []


@pytest.mark.parametrize("split", [False, True])
def test_a_head_unfinished_after_16_kib_is_refused_on_either_parser(
    origin: str, split: bool
) -> None:
    head = b"GET /_sim/health HTTP/1.1\r\nHost: localhost\r\nX-Long: " + b"a" * HEAD_LIMIT
    host, port = origin.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        if split:  # a head that grows a little at a time, after a request on the connection
            conn.sendall(b"GET /_sim/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert conn.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
            for start in range(0, len(head), 1000):
                conn.sendall(head[start : start + 1000])
        else:
            conn.sendall(head)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := conn.recv(4096):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"content-type: text/plain" in answer.lower()
    assert b"Invalid HTTP request received." in answer  # h11 chunks it after a first request


def test_a_head_of_15_kib_sent_in_pieces_is_answered_on_either_parser(origin: str) -> None:
    head = (
        b"GET /_sim/health HTTP/1.1\r\nHost: localhost\r\nX-Long: "
        + b"a" * (15 * 1024)
        + b"\r\n\r\n"
    )
    host, port = origin.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        for start in range(0, len(head), 1000):
            conn.sendall(head[start : start + 1000])
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


def test_tls_with_a_poll_and_a_drop_on_either_parser(protocol: Any, tmp_path: Path) -> None:
    files = local_certificate(tmp_path, "127.0.0.1")
    assert files.ca_file is not None
    trust = ssl.create_default_context(cafile=str(files.ca_file))
    app = manual_app()
    with running_in_thread(app, http=protocol, **files.uvicorn_options()) as plain:
        origin = plain.replace("http://", "https://")
        with httpx.Client(base_url=origin, verify=trust) as client:
            assert client.get("/_sim/health").status_code == 200
            fault = {"provider": "deepvue", "operation": "get_batch_processing_status"}
            assert client.post("/_sim/faults", json={**fault, "kind": "drop"}).is_success
            with pytest.raises(httpx.RemoteProtocolError):
                client.get(f"{STATUS}?request_id=x")
            assert client.get(f"{STATUS}?request_id=x").status_code == 401


def test_a_served_request_leaves_no_reference_cycle_behind(origin: str) -> None:
    """Garbage in cycles only the collector frees: its pauses would show in the latency."""
    gc.collect()
    gc.disable()
    try:
        with httpx.Client(base_url=origin) as client:
            for _ in range(50):
                assert client.get("/_sim/health").status_code == 200
        cycles = [o for o in gc.get_objects() if type(o).__name__ == "RequestResponseCycle"]
    finally:
        gc.enable()
    assert len(cycles) < 5
