"""The two 16 KiB figures of docs/control-plane.md: the HTTP head limit, the journal body cap."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from contracts.harness import Simulator, serve_in_thread
from simulator import Settings

ROOT = Path(__file__).resolve().parents[2]
HEAD_LIMIT = 16 * 1024
JOURNAL_BODY_BYTES = 16384  # the --journal-body-bytes default the docs give


@pytest.fixture(scope="module")
def served() -> Iterator[Simulator]:
    with serve_in_thread(Settings()) as simulator:  # as `bulksim serve` runs, not the harness
        yield simulator


def test_a_head_unfinished_after_16_kib_is_refused_with_a_plain_400(served: Simulator) -> None:
    origin = urlsplit(served.origin)
    assert origin.hostname is not None
    assert origin.port is not None
    head = b"GET /_sim/health HTTP/1.1\r\nHost: localhost\r\nX-Long: " + b"a" * HEAD_LIMIT
    with socket.create_connection((origin.hostname, origin.port), timeout=30) as conn:
        conn.sendall(head)  # no end of head: the server has more than 16 KiB of an unfinished one
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"content-type: text/plain" in answer.lower()
    assert answer.endswith(b"Invalid HTTP request received.")


def test_the_journal_keeps_16384_bytes_of_a_body_and_marks_the_cut(served: Simulator) -> None:
    key = served.credentials("passcreator")["api_key"]
    body = json.dumps({"data": {"templateId": "none", "note": "x" * (JOURNAL_BODY_BYTES + 5000)}})
    with served.client("passcreator") as client:
        response = client.post(
            "/api/v3/pass",
            content=body,
            headers={"Authorization": key, "Content-Type": "application/json"},
        )
    assert response.status_code == 400  # the whole body was read and answered
    entries = served.journal.entries(provider="passcreator", operation="create_pass")
    recorded = entries[-1]["request"]["body"]
    assert recorded == body[:JOURNAL_BODY_BYTES] + "…"


def test_the_control_plane_manual_gives_both_figures() -> None:
    manual = (ROOT / "docs" / "control-plane.md").read_text(encoding="utf-8")
    assert f"| `{JOURNAL_BODY_BYTES}` |" in manual  # the --journal-body-bytes row
    assert "still unfinished after 16 KiB" in manual
