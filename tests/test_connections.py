"""What a connection may cost the served simulator: its head's size, its time, its count."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import httpx
import pytest

from simulator import Settings, create_app
from simulator.server import HEAD_LIMIT, ConnectionLimits, HttpKind, _Outbox, running_in_thread
from tests.conftest import START


@pytest.fixture(params=["h11", "httptools"])
def protocol(request: pytest.FixtureRequest) -> HttpKind:
    kind: HttpKind = request.param
    if kind == "httptools":
        pytest.importorskip("httptools")
    return kind


@pytest.fixture
def address(protocol: HttpKind) -> Iterator[tuple[str, int]]:
    app = create_app(Settings(clock="manual", start=START))
    with running_in_thread(app, http=protocol) as origin:
        host, port = origin.removeprefix("http://").split(":")
        yield host, int(port)


def head_of(size: int) -> bytes:
    """A complete ``GET /_sim/health`` head of exactly ``size`` bytes."""
    start = b"GET /_sim/health HTTP/1.1\r\nHost: localhost\r\nX-Long: "
    return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"


def answer_to(address: tuple[str, int], head: bytes, piece: int) -> bytes:
    """Send ``head`` in pieces of ``piece`` bytes; what came back until the server closed or
    the first read of a served answer."""
    with socket.create_connection(address, timeout=30) as conn:
        for start in range(0, len(head), piece):
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                conn.sendall(head[start : start + piece])
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := conn.recv(65536):
                answer += chunk
                if answer.startswith(b"HTTP/1.1 200"):
                    break
    return answer


@pytest.mark.parametrize("size", [HEAD_LIMIT + 1, 70_000])
@pytest.mark.parametrize("piece", [1 << 20, 1000])
def test_a_complete_head_over_the_limit_is_refused_however_it_arrives(
    address: tuple[str, int], size: int, piece: int
) -> None:
    answer = answer_to(address, head_of(size), piece)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Invalid HTTP request received." in answer


@pytest.mark.parametrize("piece", [1 << 20, 1000])
def test_a_head_at_the_limit_is_served_however_it_arrives(
    address: tuple[str, int], piece: int
) -> None:
    answer = answer_to(address, head_of(HEAD_LIMIT), piece)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize(("size", "second"), [(HEAD_LIMIT, b"200 OK"), (HEAD_LIMIT + 1, b"400")])
def test_a_head_begun_behind_a_request_in_one_read_is_measured_whole(
    address: tuple[str, int], size: int, second: bytes
) -> None:
    """A head whose first part came in the read that finished the request before it, and
    whose rest comes in a later read, is judged on its whole size."""
    head = head_of(size)
    with socket.create_connection(address, timeout=30) as conn:
        conn.sendall(b"GET /_sim/health HTTP/1.1\r\nHost: localhost\r\n\r\n" + head[:1000])
        first = conn.recv(65536)  # the first request answered: its read was parsed
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        conn.sendall(head[1000:])
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while not answer.startswith(b"HTTP/1.1 200") and (chunk := conn.recv(65536)):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 " + second)


def test_answers_pipelined_on_one_connection_come_back_whole_and_in_order(
    address: tuple[str, int],
) -> None:
    """Thirty requests in one write, two kinds in turn: thirty answers, in the order asked."""
    paths = ["/_sim/health" if n % 2 else "/_sim/clock" for n in range(30)]
    heads = b"".join(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode() for path in paths)
    with socket.create_connection(address, timeout=30) as conn:
        conn.sendall(heads)
        received = answers(conn, len(paths))
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in received.split(b"HTTP/1.1 200 OK\r\n")[1:]]
    assert len(bodies) == len(paths)
    kinds = ["/_sim/health" if b'"pid"' in body else "/_sim/clock" for body in bodies]
    assert kinds == paths
    assert all(json.loads(body) for body in bodies)


def test_answers_larger_than_what_waits_for_the_loop_arrive_whole(
    address: tuple[str, int],
) -> None:
    """Spec documents of some 38 kB asked on eight connections at once, then the journal
    holding 16 KiB of each (over the 4 MiB that may wait for the loop's turn to end, in one
    answer): every byte of each arrives."""
    origin = f"http://{address[0]}:{address[1]}"
    with httpx.Client(base_url=origin, timeout=30) as client:
        spec = client.get("/check/openapi.json").content
        with ThreadPoolExecutor(8) as pool:
            specs = list(pool.map(lambda _: client.get("/check/openapi.json").content, range(299)))
        assert specs == [spec] * 299
        journal = client.get("/_sim/journal")
    assert len(journal.content) > 4 * 1024 * 1024
    assert len(journal.json()["entries"]) == 300


def test_a_client_that_waits_for_100_continue_is_told_to_send_its_body(
    address: tuple[str, int],
) -> None:
    body = json.dumps({"provider": "deepvue", "kind": "status", "status": 500}).encode()
    head = (
        b"POST /_sim/faults HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    with socket.create_connection(address, timeout=30) as conn:
        conn.sendall(head)
        assert conn.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n")
        conn.sendall(body)
        assert answers(conn, 1).startswith(b"HTTP/1.1 201 Created\r\n")


# Heads and bodies may take long; an idle connection is closed soon (the sweep follows it).
KEEP_ALIVE = ConnectionLimits(keep_alive_timeout=0.3, head_timeout=30, body_timeout=30)
HEALTH = b"GET /_sim/health HTTP/1.1\r\nHost: localhost\r\n\r\n"


def answers(conn: socket.socket, count: int) -> bytes:
    """What ``conn`` received until ``count`` answers had come whole (or it was closed)."""
    received = b""
    while received.count(b"HTTP/1.1 ") < count or not received.endswith(b"}"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(protocol: HttpKind) -> None:
    """A connection is kept between requests (the next one is answered on it), and closed
    once it has sat idle for the keep-alive timeout, however long heads may take."""
    app = create_app(Settings(clock="manual", start=START))
    with running_in_thread(app, http=protocol, limits=KEEP_ALIVE) as origin:
        host, port = origin.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            for _ in range(3):
                conn.sendall(HEALTH)
                assert answers(conn, 1).startswith(b"HTTP/1.1 200 OK\r\n")
            assert closed_by_server(conn)


def test_a_request_read_behind_another_is_answered_however_long_it_takes(
    protocol: HttpKind,
) -> None:
    """Two requests in one write, the second held longer than the keep-alive timeout (a
    latency fault): the connection is busy, not idle, until its answer has left."""
    app = create_app(Settings(clock="manual", start=START))
    with running_in_thread(app, http=protocol, limits=KEEP_ALIVE) as origin:
        fault = {"provider": "passcreator", "kind": "latency", "latency_ms": 1000}
        assert httpx.post(f"{origin}/_sim/faults", json=fault).status_code == 201
        host, port = origin.removeprefix("http://").split(":")
        poll = (
            b"GET /passcreator/api/v3/process/unknown HTTP/1.1\r\nHost: localhost\r\n"
            b"Authorization: pcsim-test-key-5b0e8c7a41d94e2f\r\n\r\n"
        )
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(HEALTH + poll)
            received = answers(conn, 2)
            assert received.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"HTTP/1.1 404 Not Found\r\n" in received  # Passcreator's own 404, late
            assert b'"statusCode":404' in received
            assert closed_by_server(conn)  # idle at last


@contextlib.contextmanager
def served_bulksim(*flags: str) -> Iterator[tuple[tuple[str, int], int]]:
    """``bulksim serve --port 0 FLAGS`` in a process of its own; yields its address and pid."""
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--port", "0", "--clock", "manual", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    origin = process.stdout.readline().split()[3]
    host, port = origin.removeprefix("http://").split(":")
    try:
        yield (host, int(port)), process.pid
    finally:
        process.terminate()
        process.communicate(timeout=30)


def closed_by_server(conn: socket.socket) -> bool:
    """Whether the server closes ``conn`` (read until it does, or the socket times out)."""
    try:
        while conn.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


HALF_HEAD = b"GET /_sim/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
HALF_BODY = (
    b"POST /_sim/faults HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    b'Content-Length: 1000\r\n\r\n{"provider": '
)


def test_slow_and_idle_connections_are_closed_and_a_normal_client_is_still_served() -> None:
    """A few hundred half-sent heads and bodies, past a cap of 50 connections: a normal
    client is served meanwhile, the server keeps about the cap open, and every half-sent
    or idle connection is closed (shed at once, or after its timeout)."""
    flags = ("--head-timeout", "1", "--body-timeout", "1", "--keep-alive-timeout", "1")
    with served_bulksim(*flags, "--max-connections", "50") as (address, pid):
        origin = f"http://{address[0]}:{address[1]}"
        assert httpx.get(f"{origin}/_sim/health").status_code == 200
        before = open_fds(pid)
        slow: list[socket.socket] = []
        try:
            for n in range(300):
                conn = socket.create_connection(address, timeout=15)
                slow.append(conn)
                conn.sendall(HALF_HEAD if n % 2 else HALF_BODY)
            idle = socket.create_connection(address, timeout=15)
            slow.append(idle)
            idle.sendall(b"GET /_sim/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert idle.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
            with httpx.Client(timeout=15) as client:
                assert client.get(f"{origin}/_sim/health").status_code == 200
            # About the cap: a shed connection's descriptor is freed a moment after it is closed.
            assert open_fds(pid) - before <= 50 + 20
            assert all(closed_by_server(conn) for conn in slow)
        finally:
            for conn in slow:
                conn.close()


class RecordingTransport:
    """A connection's transport that records what it is asked to write, and how."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def writelines(self, parts: Iterable[bytes]) -> None:
        self.calls.append(("writelines", list(parts)))


def test_what_a_turn_answers_a_connection_is_written_in_one_call_in_order() -> None:
    """The parts one connection is answered one after another in a turn of the loop (an
    answer's head and body) are written in one call (one system call on uvloop, not one a
    part); each connection's parts keep their order among the others'."""
    loop = asyncio.new_event_loop()
    try:
        outbox = _Outbox(loop)
        first, second = RecordingTransport(), RecordingTransport()
        for transport, part in [
            (first, b"head 1"),
            (first, b"body 1"),
            (second, b"head 2"),
            (first, b"head 3"),
            (first, b"body 3"),
            (first, b"end 3"),
        ]:
            outbox.put(cast(asyncio.Transport, transport), part)
        outbox.flush()
    finally:
        loop.close()
    assert first.calls == [
        ("writelines", [b"head 1", b"body 1"]),
        ("writelines", [b"head 3", b"body 3", b"end 3"]),
    ]
    assert second.calls == [("write", b"head 2")]
