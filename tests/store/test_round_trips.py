"""How many times a poll goes to the store, on SQLite and on Redis: counted, not timed.

On Redis a round trip is one command (or one pipeline) sent on a connection; on SQLite it
is one statement run on its own, or one ``BEGIN ... COMMIT`` with all it holds. Each of the
four polls the bench measures stays within a small, fixed number of them: the shared state
(clock, options), the polled record and the journal's entry, plus what the provider itself
must count (Deepvue's transaction id; Check's rate window).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app
from simulator.providers.passcreator.models import PROCESSES
from simulator.store import SqliteStore, Store, open_store

# The most round trips each poll may take, per backend.
BUDGET = {
    "redis": {
        # The shared state read with the records the last answer read (one pipeline), then
        # the journal's entry; and what the provider must count in between.
        "deepvue": 3,  # shared state and the batch, its transaction id, the journal
        "passcreator": 2,  # shared state and the process, the journal
        "helloatlas": 2,  # shared state and the batch, the journal
        "check": 3,  # shared state and the batch, the rate window (one atomic add), the journal
    },
    "sqlite": {
        # The shared state is read only when someone wrote it (PRAGMA data_version says so,
        # one statement that reads no table); then the records and the journal's entry.
        "deepvue": 4,  # data_version, the batch, its transaction id, the journal
        "passcreator": 3,  # data_version, the process, the journal
        "helloatlas": 3,  # data_version, the batch, the journal
        "check": 4,  # data_version, the rate window, the batch, the journal
    },
}


def backend(url: str) -> str:
    return url.partition(":")[0]


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.in_transaction = False
        self.last = ""

    def statement(self, sql: str) -> None:
        """SQLite's trace callback: a statement alone, or a whole transaction, is one.

        The triggers a statement fires are reported again with the statement's own text,
        right after it: they are part of it.
        """
        if sql == self.last:
            return
        self.last = sql
        head = sql.lstrip().split(None, 1)[0].upper()
        if head == "BEGIN":
            self.in_transaction = True
            self.count += 1
        elif head in ("COMMIT", "ROLLBACK"):
            self.in_transaction = False
        elif not self.in_transaction:
            self.count += 1


@contextmanager
def counted(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    counter = Counter()
    if isinstance(store, SqliteStore):
        database = store._db
        original = database.connection

        def connection() -> Any:
            found = original()
            found.set_trace_callback(counter.statement)
            return found

        monkeypatch.setattr(database, "connection", connection)
    else:
        import redis.asyncio.connection as wire

        send = wire.AbstractConnection.send_packed_command

        async def sending(self: Any, command: Any, check_health: bool = True) -> None:
            counter.count += 1
            await send(self, command, check_health)

        monkeypatch.setattr(wire.AbstractConnection, "send_packed_command", sending)
    yield counter


def credentials(client: TestClient, provider: str) -> dict[str, Any]:
    listing = client.get("/_sim/providers").json()["providers"]
    found: dict[str, Any] = next(p for p in listing if p["name"] == provider)["credentials"]
    return found


def deepvue(client: TestClient) -> tuple[str, dict[str, str]]:
    creds = credentials(client, "deepvue")
    token = client.post(
        "/deepvue/v1/authorize",
        data={"client_id": creds["client_id"], "client_secret": creds["client_secret"]},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "x-api-key": creds["client_secret"]}
    files = {"batch_file": ("vpas.csv", b"vpa\nrahul@okaxis\npriya@oksbi\n", "text/csv")}
    submitted = client.post(
        "/deepvue/v1/verification/upi-basic/batch", headers=headers, files=files
    ).json()["request_id"]
    path = f"/deepvue/v1/verification/batch-processing-status?request_id={submitted}"
    return path, headers


def passcreator(client: TestClient) -> tuple[str, dict[str, str]]:
    key = credentials(client, "passcreator")["api_key"]
    return "/passcreator/api/v3/process/627d21f7-e1a0-4085-84cb-130906cd097c", {
        "Authorization": key
    }


def helloatlas(client: TestClient) -> tuple[str, dict[str, str]]:
    creds = credentials(client, "helloatlas")
    auth = {"Client-Id": creds["client_id"], "Client-Secret": creds["client_secret"]}
    token = client.post("/helloatlas/v1/bulk/authtoken", headers=auth).json()["access_token"]
    urls = [
        {"file_url": f"https://files.example/doc{i}.jpg", "document_id": str(i + 1)}
        for i in range(60)
    ]
    response = client.post(
        "/helloatlas/v1/bulk/multiupload",
        headers={"Token": token},
        json={"product_type": "POC_CDL", "file_urls": urls},
    )
    batch_id = response.json()[0]["batch_id"]
    client.post("/_sim/clock/advance", json={"seconds": 3600})
    token = client.post("/helloatlas/v1/bulk/authtoken", headers=auth).json()["access_token"]
    return f"/helloatlas/v1/bulk/extracts?batch_id={batch_id}&page=1&per_page=50", {"Token": token}


def check(client: TestClient) -> tuple[str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {credentials(client, 'check')['api_key']}"}
    items = [{"content": f"Claim number {i}: the sea is salty."} for i in range(100)]
    response = client.post(
        "/check/v1/batch", headers=headers, json={"items": items, "methods": {"reasoning": 1.0}}
    )
    assert response.status_code == 202, response.text
    client.post("/_sim/clock/advance", json={"seconds": 86_400})
    return f"/check/v1/batch/{response.json()['id']}/results?limit=100", headers


POLLS: dict[str, Callable[[TestClient], tuple[str, dict[str, str]]]] = {
    "deepvue": deepvue,
    "passcreator": passcreator,
    "helloatlas": helloatlas,
    "check": check,
}


@pytest.mark.parametrize("provider", POLLS)
def test_a_poll_takes_few_round_trips(
    store_url: str, provider: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store_url == "memory":
        pytest.skip("the memory store makes no round trips")
    store = open_store(store_url)
    app = create_app(Settings(seed=7), clock=clock, store=store)
    with TestClient(app) as client:
        path, headers = POLLS[provider](client)
        first = client.get(path, headers=headers)
        assert first.status_code == 200, first.text
        with counted(store, monkeypatch) as counter:
            again = client.get(path, headers=headers)
        assert again.status_code == 200, again.text
    assert 0 < counter.count <= BUDGET[backend(store_url)][provider], counter.count
    if isinstance(store, SqliteStore):
        store.close()


def test_concurrent_check_polls_count_the_rate_window_without_retrying(
    store_url: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 connections polling at once all count in one organisation's rate window: each is
    counted once, and none goes back to the store to try its count again."""
    if store_url == "memory":
        pytest.skip("the memory store makes no round trips")
    store = open_store(store_url)
    app = create_app(Settings(seed=7), clock=clock, store=store)
    with TestClient(app) as client:
        path, headers = check(client)
        assert client.get(path, headers=headers).status_code == 200
        client.post("/_sim/clock/advance", json={"seconds": 60})  # a fresh window

    async def polls(counter: Counter) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            # A first round opens this loop's connections (their handshakes are not counted).
            await asyncio.gather(*(c.get(path, headers=headers) for _ in range(64)))
            counter.count = 0
            return list(await asyncio.gather(*(c.get(path, headers=headers) for _ in range(64))))

    with counted(store, monkeypatch) as counter:
        answers = asyncio.run(polls(counter))
    assert {a.status_code for a in answers} == {200}
    limit = int(answers[0].headers["x-ratelimit-limit"])
    remaining = sorted(int(a.headers["x-ratelimit-remaining"]) for a in answers)
    assert remaining == list(range(limit - 128, limit - 64))
    assert counter.count <= 64 * BUDGET[backend(store_url)]["check"], counter.count
    if isinstance(store, SqliteStore):
        store.close()


@pytest.mark.parametrize("provider", POLLS)
def test_polls_on_redis_keep_their_connections(
    redis_url: str, provider: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taking a connection from redis-py's pool and giving it back costs about what a command
    does: once warm, a poll's commands run on connections kept between them."""
    import redis.asyncio as aioredis

    store = open_store(redis_url)
    app = create_app(Settings(seed=7), clock=clock, store=store)
    taken: list[object] = []
    real: Any = aioredis.BlockingConnectionPool.get_connection

    async def taking(self: Any, *args: Any, **kwargs: Any) -> Any:
        taken.append(self)
        return await real(self, *args, **kwargs)

    with TestClient(app) as client:
        path, headers = POLLS[provider](client)
        assert client.get(path, headers=headers).status_code == 200
        monkeypatch.setattr(aioredis.BlockingConnectionPool, "get_connection", taking)
        answers = [client.get(path, headers=headers).status_code for _ in range(20)]
    assert answers == [200] * 20
    assert taken == []


def test_a_record_read_ahead_is_read_again_for_each_request(
    redis_url: str, clock: ManualClock
) -> None:
    """A poll on Redis reads its record in the round trip that reads the shared state, and
    that read is made anew for each request: a change another process makes to the record
    between two polls is in the next answer."""
    store = open_store(redis_url)
    app = create_app(Settings(seed=7), clock=clock, store=store)
    other = open_store(redis_url).scoped("passcreator")
    process_id = "627d21f7-e1a0-4085-84cb-130906cd097c"
    with TestClient(app) as client:
        path, headers = passcreator(client)
        for _ in range(3):  # the record is read ahead once the first answer read it
            assert client.get(path, headers=headers).json()["data"]["total"] == 1000

        seeded = app.state.sim.runtimes["passcreator"].store.seed_process
        assert seeded.identifier == process_id

        async def shrink() -> None:  # the seeded process, as another process may store it
            await other.put(PROCESSES, process_id, replace(seeded, total=7))

        asyncio.run(shrink())
        assert client.get(path, headers=headers).json()["data"]["total"] == 7
