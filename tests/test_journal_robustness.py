"""Whatever a client sends, reading the journal answers: nothing recorded crashes a reader."""

from __future__ import annotations

import logging
import select
import socket
from typing import Any

import httpx
import pytest

from contracts.checks import ClientNotConformant
from contracts.harness import Simulator, default_settings, serve_in_thread

CHECK_KEY = {"Authorization": "Bearer vfy_test_pro_8c2e6a4f1b9d7e35"}
SEEDED_BATCH = "batch_abc123def456"


def deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [100, 900, 5000])
def test_a_deeply_nested_body_is_a_finding_not_a_crash(bulksim_app: Simulator, depth: int) -> None:
    key = bulksim_app.credentials("passcreator")["api_key"]
    with bulksim_app.client("passcreator") as client:
        sent = client.post(
            "/api/v3/pass",
            content=deep_json(depth),
            headers={"Authorization": key, "Content-Type": "application/json"},
        )
    assert sent.status_code == 400

    journal = bulksim_app.http.get("/_sim/journal")
    assert journal.status_code == 200
    (entry,) = journal.json()["entries"]
    assert entry["request"]["body"] == deep_json(depth).decode()  # shown as the text it is
    assert entry["violations"] == ["body: JSON nested more than 64 levels deep"]

    with pytest.raises(ClientNotConformant, match="JSON nested more than 64 levels deep"):
        bulksim_app.assert_client_conformant()
    for page in ("/_sim/ui", "/_sim/ui/live?check=1"):
        assert bulksim_app.http.get(page).status_code == 200


def http_get(port: int, path: str) -> socket.socket:
    """A connection that has sent ``GET path`` (its answer is read later)."""
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )
    return connection


def test_reading_a_long_journal_for_the_first_time_does_not_hold_up_other_requests() -> None:
    with serve_in_thread(default_settings()) as simulator:
        with simulator.client("check") as client:
            for _ in range(400):
                assert client.get(f"/v1/batch/{SEEDED_BATCH}", headers=CHECK_KEY).is_success
        port = httpx.URL(simulator.origin).port
        assert port is not None
        journal = http_get(port, "/_sim/journal")  # checks 400 entries against the spec
        health = http_get(port, "/_sim/health")
        with journal, health:
            ready, _, _ = select.select([journal, health], [], [])
            # The health probe was answered while the journal was still being read.
            assert ready == [health]
            assert health.recv(64).startswith(b"HTTP/1.1 200")
            journal.settimeout(30)
            assert journal.recv(64).startswith(b"HTTP/1.1 200")


ABORTED_UPLOADS = {
    "deepvue": ("/deepvue/v1/authorize", "application/x-www-form-urlencoded", {}),
    "check": ("/check/v1/batch/upload", "multipart/form-data; boundary=cut", CHECK_KEY),
    "passcreator": (
        "/passcreator/api/v3/pass",
        "application/json",
        {"Authorization": "placeholder"},
    ),
}


@pytest.mark.parametrize("provider", sorted(ABORTED_UPLOADS))
def test_a_client_that_aborts_its_upload_is_a_journal_event_not_a_crash(
    provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    path, content_type, headers = ABORTED_UPLOADS[provider]
    with serve_in_thread(default_settings()) as simulator:
        if provider == "passcreator":
            headers = {"Authorization": simulator.credentials("passcreator")["api_key"]}
        port = httpx.URL(simulator.origin).port
        assert port is not None
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        with caplog.at_level(logging.DEBUG), socket.create_connection(("127.0.0.1", port)) as sent:
            sent.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: 2000\r\n{head}\r\n".encode()
                + b'--cut\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
                + b"x" * 500  # the start of a body, then the client leaves
            )
        entry = finished_entry(simulator)
        assert entry["disconnected"] is True
        assert entry["response"]["status"] is None
        simulator.raise_crashes()  # nothing crashed
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def finished_entry(simulator: Simulator) -> dict[str, Any]:
    """The journal's one entry, once its request is done with (the server notices the closed
    connection on its own schedule: asked again until it has)."""
    for _ in range(10_000):
        entries = simulator.journal.entries()
        if entries and entries[-1]["duration_ms"] is not None:
            return entries[-1]
    raise AssertionError("the aborted request never finished")
