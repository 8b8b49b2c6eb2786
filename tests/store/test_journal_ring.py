"""The journal's ring on a shared store: an entry is stored with its bodies as the bytes they
are (not escaped into JSON text, which took most of a large answer's publishing), and reads
back exactly, in another process's view, in a snapshot, and restored on any backend."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app
from simulator.providers.passcreator.models import TEST_ACCOUNTS
from simulator.store.base import DEFLATED, FRAME, RAW, stored_data, unframed
from tests.conftest import START, STORE_URLS, store_url_maker
from tests.store.test_round_trips import check
from tests.store.test_sqlite import PROCESS

CAP = 512
EVERY_BYTE = bytes(range(256))
# Under the cap, at it, and over it: each body holds every byte value.
BODIES = [EVERY_BYTE, EVERY_BYTE * 2, EVERY_BYTE * 8 + b"tail"]
POST = "/passcreator/api/v3/pass"
# Read whole, and refused: not JSON.
SENT = {"Authorization": TEST_ACCOUNTS[0].api_key, "Content-Type": "application/json"}


@contextmanager
def simulator(store: str, **fields: Any) -> Iterator[TestClient]:
    settings = Settings(seed=7, store=store, **fields)
    app = create_app(settings, clock=ManualClock(START))
    with TestClient(app, base_url="http://testserver") as client:
        yield client
    assert not app.state.sim.crashes, list(app.state.sim.crashes)


def ring(snapshot: dict[str, Any]) -> list[Any]:
    values: list[Any] = snapshot["store"]["rings"]["_sim/journal"]["values"]
    return values


def entries(client: TestClient) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = client.get("/_sim/journal").json()["entries"]
    for entry in listed:
        assert isinstance(entry.pop("duration_ms"), float)  # timed by the process serving it
    return listed


SHARED = ["sqlite:///{tmp}/state.db", "redis"]


@pytest.mark.parametrize("kind", SHARED)
def test_entries_with_every_byte_value_round_trip_on_every_backend(
    kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    store_url = store_url_maker(kind, request, tmp_path_factory)()
    with simulator(store_url, journal_body_bytes=CAP) as client:
        for body in BODIES:
            answer = client.post(POST, content=body, headers=SENT)
            assert answer.status_code == 400
        taken = client.get("/_sim/snapshot").json()
        listed = entries(client)
    recorded = [value for _, value in ring(taken)]
    assert [r["request_body"] for r in recorded] == [b[:CAP].decode("latin-1") for b in BODIES]
    assert [r["request_size"] for r in recorded] == [len(b) for b in BODIES]
    assert all(r["body_seen"] for r in recorded)
    assert all(r["response_body"].startswith("{") for r in recorded)
    # Another process on the same store reads the entries back from the ring.
    with simulator(store_url, journal_body_bytes=CAP) as other:
        assert entries(other)[: len(BODIES)] == listed
    # Restored on every backend, the ring reads back as it was taken (and on a shared one,
    # where the journal is the ring, it lists the same entries).
    for target_kind in STORE_URLS:
        target = store_url_maker(target_kind, request, tmp_path_factory)()
        with simulator(target, journal_body_bytes=CAP) as restored:
            assert restored.post("/_sim/snapshot", json=taken).status_code == 200
            assert ring(restored.get("/_sim/snapshot").json()) == ring(taken)
            if target_kind != "memory":
                assert entries(restored)[: len(BODIES)] == listed


@pytest.mark.parametrize("kind", SHARED)
def test_an_entry_is_stored_with_its_bodies_as_bytes(
    kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A body of 16 KiB of every byte value is stored in about 16 KiB, not in the twice to
    six times as much that JSON text takes for it (latin-1 as UTF-8, control bytes escaped)."""
    url = store_url_maker(kind, request, tmp_path_factory)()
    body = EVERY_BYTE * 64
    with simulator(url) as client:
        answer = client.post(POST, content=body, headers=SENT)
        assert answer.status_code == 400
    sizes = stored_sizes(url)
    assert len(sizes) == 1
    assert len(body) < sizes[0] < len(body) + 2048


def stored_sizes(url: str) -> list[int]:
    """The sizes of the journal ring's values as the store holds them."""
    if url.startswith("sqlite:"):
        with sqlite3.connect(Path(url.removeprefix("sqlite:///"))) as db:
            rows = db.execute(
                "SELECT length(CAST(value AS BLOB)) FROM ring_slots WHERE name = '_sim/journal'"
            ).fetchall()
        return [int(size) for (size,) in rows]
    with redis.Redis.from_url(url) as client:
        found = client.xrange("bulksim:_sim/journal#s")
    return [len(fields[b"v"]) for _, fields in found]


@pytest.mark.parametrize("kind", SHARED)
def test_concurrent_requests_past_the_rings_size_keep_the_newest(
    kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """20 requests at once on a journal of 8 (on SQLite their entries are pushed in one
    write): each answer's entry gets a number of its own, the ring keeps the newest 8, and
    another process lists them, numbered on."""
    url = store_url_maker(kind, request, tmp_path_factory)()
    app = create_app(Settings(seed=7, store=url, journal_size=8), clock=ManualClock(START))
    bodies = [f'{{"n": {n}, "bytes": "\\u00ff"}}'.encode() for n in range(20)]

    async def scenario() -> list[dict[str, Any]]:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            answers = await asyncio.gather(
                *(client.post(POST, content=body, headers=SENT) for body in bodies)
            )
            assert [a.status_code for a in answers] == [400] * len(bodies)
            listed: list[dict[str, Any]] = (await client.get("/_sim/journal")).json()["entries"]
            return listed

    listed = asyncio.run(scenario())
    assert [e["seq"] for e in listed] == list(range(13, 21))
    # The newest 8 bodies, in the order they were pushed (each once).
    shown = [e["request"]["body"]["n"] for e in listed]
    assert len(set(shown)) == 8
    with simulator(url, journal_size=8) as other:
        assert [e["seq"] for e in entries(other)] == list(range(13, 21))
        answer = other.post(POST, content=bodies[0], headers=SENT)
        assert answer.status_code == 400
        assert [e["seq"] for e in entries(other)] == list(range(14, 22))


def polled_thrice(client: TestClient) -> tuple[bytes, list[dict[str, Any]]]:
    """A settled results page of 36 kB asked for three times; the page, and their entries."""
    path, headers = check(client)
    answers = [client.get(path, headers=headers) for _ in range(3)]
    assert {a.status_code for a in answers} == {200}
    page = answers[0].content
    assert len(page) > 16 * 1024
    assert {a.content for a in answers} == {page}
    return page, entries(client)[-3:]


@pytest.mark.parametrize("kind", SHARED)
def test_a_page_answered_again_as_the_same_bytes_is_stored_deflated(
    kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A settled results page is answered as the same bytes each time: its entry keeps it as
    it is the first time and deflated from the second on (under a quarter of its 16 KiB), and
    every entry reads back as the journal of a simulator in memory shows it, here and in
    another process, and in a snapshot restored on another backend."""
    with simulator("memory") as alone:
        _, expected = polled_thrice(alone)
    url = store_url_maker(kind, request, tmp_path_factory)()
    with simulator(url) as client:
        page, shown = polled_thrice(client)
        taken = client.get("/_sim/snapshot").json()
    assert shown == expected
    first, second, third = stored_sizes(url)[-3:]
    assert first > 16 * 1024
    assert second < 16 * 1024 // 4
    assert third < 16 * 1024 // 4
    kept = [value["response_body"] for _, value in ring(taken)[-3:]]
    assert kept == [page[: 16 * 1024].decode("latin-1")] * 3
    with simulator(url) as other:
        assert entries(other)[-3:] == shown
    with simulator("memory") as restored:
        assert restored.post("/_sim/snapshot", json=taken).status_code == 200
        assert ring(restored.get("/_sim/snapshot").json())[-3:] == ring(taken)[-3:]


def test_a_framed_field_reads_back_inflated_and_an_unknown_packing_is_refused() -> None:
    body = b'{"page": 1}' * 200
    deflated = zlib.compress(body, 1)
    head = {"n": 1, RAW: [["body", len(deflated), DEFLATED]]}
    stored = FRAME + json.dumps(head).encode() + FRAME + deflated
    assert unframed(stored) == ({"n": 1}, {"body": body})
    assert stored_data(stored) == {"n": 1, "body": body.decode("latin-1")}
    head[RAW] = [["body", len(deflated), "lz4"]]
    with pytest.raises(ValueError, match="lz4"):
        unframed(FRAME + json.dumps(head).encode() + FRAME + deflated)


def file_rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(query).fetchall()


def test_a_page_answered_again_is_kept_once_in_the_file_while_an_entry_names_it(
    tmp_path: Path,
) -> None:
    """On SQLite the entries of a page answered again as the same bytes name one copy of it
    (deflated), kept apart from their heads: the file holds it once for all of them, every
    entry reads back whole, and the copy goes once no entry in the ring names it."""
    path = tmp_path / "state.db"
    with simulator(f"sqlite:///{path}", journal_size=8) as client:
        page_path, headers = check(client)
        answers = [client.get(page_path, headers=headers) for _ in range(6)]
        page = answers[0].content
        assert {a.content for a in answers} == {page}
        shown = entries(client)[-6:]
        kept = ring(client.get("/_sim/snapshot").json())[-6:]
        assert [value["response_body"] for _, value in kept] == [page[: 16 * 1024].decode()] * 6

        parts = file_rows(path, "SELECT key, length(value) FROM ring_parts")
        assert len(parts) == 1  # the five entries after the first name the same copy
        assert parts[0][1] < 16 * 1024 // 4  # deflated
        named = file_rows(
            path, "SELECT length(CAST(value AS BLOB)) FROM ring_slots WHERE part IS NOT NULL"
        )
        assert len(named) == 5
        assert all(size < 2048 for (size,) in named)  # each entry's own fields alone

        with simulator(f"sqlite:///{path}", journal_size=8) as other:
            assert entries(other)[-6:] == shown

        for _ in range(16):  # the ring turns twice: no entry names the page any more
            assert client.post(POST, content=b"{", headers=SENT).status_code == 400
        assert file_rows(path, "SELECT count(*) FROM ring_parts") == [(0,)]
        assert file_rows(path, "SELECT count(*) FROM ring_slots WHERE part IS NOT NULL") == [(0,)]

        # Loading a snapshot clears the copies with the rest, and stores its entries whole.
        taken = client.get("/_sim/snapshot").json()
        for _ in range(3):
            client.get(page_path, headers=headers)
        assert file_rows(path, "SELECT count(*) FROM ring_parts") == [(1,)]
        assert client.post("/_sim/snapshot", json=taken).status_code == 200
        assert file_rows(path, "SELECT count(*) FROM ring_parts") == [(0,)]
        assert ring(client.get("/_sim/snapshot").json()) == ring(taken)


def test_a_whole_answer_leaves_in_one_piece_once_its_entry_is_published(tmp_path: Path) -> None:
    """On a shared store an answer waits until its journal entry is published (a client
    that has its answer finds the request in any process's journal); its head waits with
    its body, so that both leave together, in one write, not the head first and alone."""
    path = tmp_path / "state.db"
    app = create_app(Settings(seed=7, store=f"sqlite:///{path}"), clock=ManualClock(START))
    sent: list[tuple[str, int]] = []

    def published() -> int:
        return int(file_rows(path, "SELECT count(*) FROM ring_slots")[0][0])

    async def observed(scope: Any, receive: Any, send: Any) -> None:
        async def recorded(message: Any) -> None:
            sent.append((message["type"], published()))
            await send(message)

        await app(scope, receive, recorded)

    async def scenario() -> int:
        transport = httpx.ASGITransport(observed)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            answer = await client.get(
                PROCESS,
                headers={"Authorization": TEST_ACCOUNTS[0].api_key},
            )
            return answer.status_code

    assert asyncio.run(scenario()) == 200
    assert sent == [("http.response.start", 1), ("http.response.body", 1)]
