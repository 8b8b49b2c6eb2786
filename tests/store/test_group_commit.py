"""Group commit on SQLite: the writes of concurrent requests that wait for the writer thread
are committed together, in one transaction, each in a savepoint of its own; every caller
gets its own result, and one write that fails fails its own request alone."""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator import Settings, create_app
from simulator.clock import ManualClock
from simulator.store import SqliteStore
from tests.store.test_round_trips import Counter
from tests.store.test_store import START, THINGS, Thing, run, thing

POLLS = 16
SUBMIT = "/deepvue/v1/verification/upi-basic/batch"
STATUS = "/deepvue/v1/verification/batch-processing-status?request_id="
CSV = {"batch_file": ("vpas.csv", b"vpa\nrahul@okaxis\n", "text/csv")}
# Fails the write of Deepvue's next batch id (its counter), and no other.
REFUSE = (
    "CREATE TRIGGER refused BEFORE UPDATE ON counters WHEN new.name LIKE '%ids/batch'"
    " BEGIN SELECT RAISE(ABORT, 'refused'); END"
)


class Held:
    """The writer's queue, which counts the writes put on it and, once armed, holds the
    writer with the first write it takes until ``count`` writes (that one included) were
    put: those after it then wait together, deterministically."""

    def __init__(self) -> None:
        self.waiting: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.writes = 0
        self.count = 0
        self.gate = threading.Event()
        self.gate.set()
        self.held = self.armed = False

    def arm(self, count: int) -> None:
        self.count, self.writes = count, 0
        self.gate.clear()
        self.armed = True

    def put(self, item: Any) -> None:
        self.writes += len(item or ())
        self.waiting.put(item)
        if self.writes >= self.count:
            self.gate.set()

    def get(self) -> Any:
        item = self.waiting.get()
        if self.armed:
            # Bounded only so that a writer never released cannot hang the run.
            self.held = self.gate.wait(timeout=10)
            self.armed = False
        return item

    def get_nowait(self) -> Any:
        return self.waiting.get_nowait()


def _deepvue_headers(app: Any) -> dict[str, str]:
    runtime = app.state.sim.runtimes["deepvue"]
    creds = runtime.provider.credentials(runtime.context)
    return {"x-api-key": creds["client_secret"], "client": creds["client_id"]}


async def _authorized(client: httpx.AsyncClient, app: Any) -> dict[str, str]:
    creds = _deepvue_headers(app)
    token = (
        await client.post(
            "/deepvue/v1/authorize",
            data={"client_id": creds["client"], "client_secret": creds["x-api-key"]},
        )
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}", "x-api-key": creds["x-api-key"]}


def test_concurrent_requests_commit_their_writes_together_each_with_its_own_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 Deepvue polls and a submit, concurrent: their first writes (each poll's transaction
    id, the submit's batch id) wait for the writer together and are committed in ONE
    transaction (counted on the writer's connection as test_round_trips counts), fewer
    than the writes; the polls' ids, taken in one pass of the event loop, are one write
    (one statement) and each poll answers with a transaction id of its own. The submit's write
    fails (a trigger refuses it): that request alone gets the provider's 500, the polls in
    its group are answered and their writes kept, and the next submit is taken."""
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    held = Held()
    monkeypatch.setattr(store._db, "_writes", held)
    app = create_app(Settings(seed=7), clock=ManualClock(START), store=store)

    async def scenario() -> None:
        # A crash is answered with the provider's 500 and raised on, to the server.
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            headers = await _authorized(client, app)
            first = await client.post(SUBMIT, headers=headers, files=CSV)
            assert first.status_code == 201, first.text
            status = STATUS + first.json()["request_id"]
            assert (await client.get(status, headers=headers)).status_code == 200
            with sqlite3.connect(path) as other:
                other.execute(REFUSE)
            counter = Counter()
            writer = store._db.writer_connection
            assert writer is not None
            writer.set_trace_callback(counter.statement)
            # The writer is held until the 16 polls' and the submit's first writes wait: the
            # polls' 16 increments of one counter as one write, and the submit's.
            held.arm(2)
            answers = await asyncio.gather(
                *(client.get(status, headers=headers) for _ in range(POLLS)),
                client.post(SUBMIT, headers=headers, files=CSV),
            )
            assert held.held, "the writer was never held while the writes came"
            writer.set_trace_callback(None)
            polls, refused = answers[:POLLS], answers[POLLS]
            assert [a.status_code for a in polls] == [200] * POLLS
            assert refused.status_code == 500, refused.text
            assert "refused" not in refused.text  # the provider's own 500, not the error
            ids = {a.json()["transaction_id"] for a in polls}
            assert len(ids) == POLLS
            # Each request wrote again after its answer (its journal entry): the 17 entries,
            # pushed in one pass of the event loop, in one write (one statement), and the
            # first writes in one transaction.
            assert held.writes == 2 + 1
            assert counter.count <= 1 + (POLLS + 1), counter.count
            with sqlite3.connect(path) as other:
                other.execute("DROP TRIGGER refused")
            again = await client.post(SUBMIT, headers=headers, files=CSV)
            assert again.status_code == 201, again.text
            # Every request answered is in the journal (authorize, first poll, the 16 polls, the
            # refused submit): the writes of its group were kept.
            listed = (await client.get("/_sim/journal", params={"provider": "deepvue"})).json()
            statuses = [e["response"]["status"] for e in listed["entries"]]
            assert statuses.count(200) == 2 + POLLS, statuses
            assert statuses.count(500) == 1, statuses

    run(scenario())
    store.close()


def test_a_write_that_fails_in_a_group_rolls_back_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes waiting together, one of which raises (an update whose change refuses): its
    caller gets its error and its record is unchanged; the others are committed and their
    callers get their own results, read back from the file by another connection."""
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    held = Held()
    monkeypatch.setattr(store._db, "_writes", held)
    view = store.scoped("p")

    def refuse(value: Thing) -> Thing:
        raise ValueError("refused")

    async def scenario() -> list[Any]:
        await view.put(THINGS, "kept", thing("before"))
        held.arm(4)  # the two increments of "n", made in one pass, are one write
        writes: list[Awaitable[Any]] = [
            view.incr("n", 5),
            view.update(THINGS, "kept", refuse),
            view.put_if_absent(THINGS, "new", thing("new")),
            view.incr("n", 2),
            view.take(THINGS, "absent"),
        ]
        outcomes = list(await asyncio.gather(*writes, return_exceptions=True))
        assert held.held
        return outcomes

    outcomes = run(scenario())
    assert outcomes[0] == 5
    assert outcomes[3] == 7
    assert isinstance(outcomes[1], ValueError)
    assert str(outcomes[1]) == "refused"
    assert outcomes[2] == (thing("new"), True)
    assert outcomes[4] is None
    store.close()
    again = SqliteStore(path).scoped("p")

    async def read() -> None:
        assert await again.get(THINGS, "kept") == thing("before")
        assert await again.get(THINGS, "new") == thing("new")
        assert await again.incr("n", 0) == 7

    run(read())


def test_close_commits_the_writes_waiting_and_stops_the_writer(tmp_path: Path) -> None:
    """``close`` lets the writer commit every write queued before it, then stops its thread;
    the store opens its connections (and a writer) again when used after."""
    store = SqliteStore(tmp_path / "state.db")
    view = store.scoped("p")
    db = store._db

    def incr() -> int:
        return view._incr(db.connection(), "p/n", 1)

    async def scenario() -> list[int]:
        pending = [db.submit(incr, "p/n") for _ in range(20)]  # queued: close commits them first
        writer = db._writer
        store.close()
        assert writer is not None
        assert not writer.is_alive()
        return list(await asyncio.gather(*pending))

    assert run(scenario()) == list(range(1, 21))

    async def after() -> int:
        return await view.incr("n")

    assert run(after()) == 21
    writer = db._writer
    store.close()
    assert writer is not None
    assert not writer.is_alive()


def test_concurrent_check_requests_count_in_their_rate_window_in_one_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 Check polls at once each count in their organisation's rate window: the 16
    additions to the one record, made in one pass of the event loop, are one write (one
    statement), and each poll is told a remaining count of its own, as if counted in turn.
    The next poll counts on from there."""
    store = SqliteStore(tmp_path / "state.db")
    held = Held()
    monkeypatch.setattr(store._db, "_writes", held)
    app = create_app(Settings(seed=7), clock=ManualClock(START), store=store)
    runtime = app.state.sim.runtimes["check"]
    key = runtime.provider.credentials(runtime.context)["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    poll = "/check/v1/batch/batch_does_not_exist"

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            first = await client.get(poll, headers=headers)
            assert first.status_code == 404, first.text
            statements: list[str] = []
            writer = store._db.writer_connection
            assert writer is not None
            writer.set_trace_callback(statements.append)
            held.arm(1)
            answers = await asyncio.gather(
                *(client.get(poll, headers=headers) for _ in range(POLLS))
            )
            assert held.held, "the writer was never held while the writes came"
            writer.set_trace_callback(None)
            # The additions, and then the journal's entries: one write each.
            assert held.writes == 1 + 1
            # (SQLite reports a statement again for each trigger it fires.)
            additions = {s for s in statements if "INSERT INTO records" in s}
            assert len(additions) == 1, additions
            assert "rate_counts" in additions.pop()
            return [first, *answers, await client.get(poll, headers=headers)]

    answers = run(scenario())
    assert {a.status_code for a in answers} == {404}
    limit = int(answers[0].headers["x-ratelimit-limit"])
    remaining = [int(a.headers["x-ratelimit-remaining"]) for a in answers]
    assert sorted(remaining[1:-1], reverse=True) == list(range(limit - 2, limit - 2 - POLLS, -1))
    assert remaining[0] == limit - 1
    assert remaining[-1] == limit - 2 - POLLS
    store.close()
