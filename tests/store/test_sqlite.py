"""What the SQLite backend adds to the store contract: the file outlives the process's view of
it, expired records do not pile up in it, and a URL that cannot be used says why in one line."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from email.utils import parsedate_to_datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator import Settings, create_app
from simulator.clock import ManualClock
from simulator.store import SqliteStore, StoreError, open_store
from simulator.store import sqlite as sqlite_module
from tests.store.test_store import RING, START, THINGS, run, thing


def test_a_store_opened_again_on_the_file_has_everything(tmp_path: Path) -> None:
    clock = ManualClock(START)
    first = SqliteStore(tmp_path / "state.db").scoped("p", now=clock.now)

    async def write() -> None:
        await first.put(THINGS, "kept", thing("kept"))
        await first.put(THINGS, "soon", thing("soon"), expires_at=START + timedelta(seconds=5))
        await first.incr("ids", 41)
        await first.push(RING, "entry", size=10)

    run(write())
    again = SqliteStore(tmp_path / "state.db").scoped("p", now=clock.now)

    async def read() -> None:
        assert await again.get(THINGS, "kept") == thing("kept")
        assert await again.get(THINGS, "soon") == thing("soon")
        assert await again.incr("ids") == 42
        assert await again.recent(RING) == [(1, "entry")]
        assert await again.push(RING, "next", size=10) == 2
        clock.advance(timedelta(seconds=5))
        assert await again.get(THINGS, "soon") is None

    run(read())


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "state.db")
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize(
    ("query", "level"), [("", 0), ("?synchronous=normal", 1), ("?synchronous=FULL", 2)]
)
def test_the_url_says_whether_sqlite_fsyncs(tmp_path: Path, query: str, level: int) -> None:
    """Off by default (a process's crash loses nothing); normal or full when asked, on every
    connection the store opens: the one that reads and the writer thread's."""
    store = open_store(f"sqlite:///{tmp_path}/state.db{query}")
    assert isinstance(store, SqliteStore)
    run(store.put(THINGS, "k", thing("k")))  # through the writer thread
    database = store._db
    assert database.writer_connection is not None
    for connection in (database.connection(), database.writer_connection):
        assert connection.execute("PRAGMA synchronous").fetchone() == (level,)
    store.close()


def test_expired_records_leave_the_file_as_new_ones_come(tmp_path: Path) -> None:
    clock = ManualClock(START)
    store = SqliteStore(tmp_path / "state.db").scoped("p", now=clock.now)

    async def scenario() -> None:
        for n in range(300):
            await store.put(THINGS, f"old{n}", thing("x"), expires_at=START + timedelta(hours=1))
        clock.advance(timedelta(hours=2))
        for n in range(10):
            await store.put(THINGS, f"new{n}", thing("y"), expires_at=START + timedelta(hours=3))

    run(scenario())
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT count(*) FROM records").fetchone() == (10,)


def test_a_transaction_that_raises_writes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db").scoped("p")

    async def refused() -> None:
        async with store.transaction() as tx:
            await tx.put(THINGS, "k", thing("k"))
            await tx.incr("ids")
            raise LookupError("refused")

    async def scenario() -> None:
        with pytest.raises(LookupError):
            await refused()
        assert await store.get(THINGS, "k") is None
        assert await store.incr("ids") == 1

    run(scenario())


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x", "is not a store URL: use memory, sqlite:///"),
        ("sqlite://", "give a file"),
        ("sqlite:///", "give a file"),
        ("sqlite:////{tmp}/missing/state.db", "the directory {tmp}/missing does not exist"),
        ("sqlite:////{tmp}", "is a directory, not a database file"),
        (
            "sqlite:////{tmp}/text.db",
            "cannot use {tmp}/text.db as a SQLite database, read and written: file is not",
        ),
        ("redis://127.0.0.1:1/0", "store 'redis://127.0.0.1:1/0': cannot reach Redis"),
    ],
)
def test_a_store_url_that_cannot_be_used_says_why(tmp_path: Path, url: str, message: str) -> None:
    (tmp_path / "text.db").write_text("not a database, " * 100)
    tmp = str(tmp_path).lstrip("/")
    with pytest.raises(StoreError) as caught:
        open_store(url.replace("{tmp}", tmp))
    assert message.replace("{tmp}", "/" + tmp) in str(caught.value)
    assert "\n" not in str(caught.value)


PROCESS = "/passcreator/api/v3/process/627d21f7-e1a0-4085-84cb-130906cd097c"


def _passcreator_key(app: Any) -> str:
    runtime = app.state.sim.runtimes["passcreator"]
    key: str = runtime.provider.credentials(runtime.context)["api_key"]
    return key


@pytest.mark.parametrize("same_connection", [False, True], ids=["two-files", "one-store"])
def test_a_poll_reads_the_shared_state_only_after_someone_changed_it(
    tmp_path: Path, same_connection: bool
) -> None:
    """A poll on SQLite skips the read of the shared clock and options while nobody wrote
    them (SQLite's data_version, and this process's own writes, say so), and still sees a
    clock advance made through another app at once: through another connection to the file,
    or through the same store (one connection, whose data_version does not move)."""
    path = tmp_path / "state.db"
    first_store = SqliteStore(path)
    second_store = first_store if same_connection else SqliteStore(path)
    first = create_app(Settings(seed=7), clock=ManualClock(START), store=first_store)
    second = create_app(Settings(seed=7), clock=ManualClock(START), store=second_store)
    statements: list[str] = []

    async def scenario() -> list[str]:
        one = httpx.AsyncClient(transport=httpx.ASGITransport(first), base_url="http://a")
        two = httpx.AsyncClient(transport=httpx.ASGITransport(second), base_url="http://b")
        headers = {"Authorization": _passcreator_key(first)}
        async with one, two:
            assert (await one.get(PROCESS, headers=headers)).status_code == 200
            assert (await two.get(PROCESS, headers=headers)).status_code == 200
            assert (await one.get(PROCESS, headers=headers)).status_code == 200
            first_store._db.connection().set_trace_callback(statements.append)
            quiet = await one.get(PROCESS, headers=headers)
            first_store._db.connection().set_trace_callback(None)
            advanced = await two.post("/_sim/clock/advance", json={"seconds": 3600})
            assert advanced.status_code == 200, advanced.text
            moved = await one.get(PROCESS, headers=headers)
        return [quiet.headers["date"], moved.headers["date"]]

    before, after = run(scenario())
    assert not [s for s in statements if "_sim/shared" in s], statements
    assert (parsedate_to_datetime(after) - parsedate_to_datetime(before)) == timedelta(hours=1)
    first_store.close()
    second_store.close()


def test_a_full_ring_rewrites_its_oldest_value_in_place(tmp_path: Path) -> None:
    """Once a ring (the journal's, on a shared store) is full, a push rewrites the row of
    the slot its number names, the oldest value's: it deletes no row (an insert and a
    delete of a large value each time cost most of a push), but once a turn, to drop what
    another size or a restore left; the ring still holds its newest values, in order."""
    store = SqliteStore(tmp_path / "state.db")
    view = store.scoped("_sim")
    large = "x" * 20_000  # several overflow pages, as a journal entry with a body has

    async def pushes(first: int, count: int) -> None:
        for n in range(first, first + count):
            assert await view.push(RING, f"{n}:{large}", size=10) == n

    run(pushes(1, 25))
    statements: list[str] = []
    writer = store._db.writer_connection  # pushes are written on the writer thread's
    assert writer is not None
    writer.set_trace_callback(statements.append)
    run(pushes(26, 40))
    writer.set_trace_callback(None)
    deletes = [s for s in statements if s.lstrip().upper().startswith("DELETE")]
    # One a turn of 10, of 40 pushes: of the slots another size or a restore left, and of
    # the tails shared by no value left.
    assert [d.split()[2] for d in deletes] == ["ring_slots", "ring_parts"] * 4
    held = run(view.recent(RING))
    assert [n for n, _ in held] == list(range(56, 66))
    assert [value.partition(":")[0] for _, value in held] == [str(n) for n in range(56, 66)]
    assert run(view.recent(RING, after=63)) == [(64, f"64:{large}"), (65, f"65:{large}")]
    store.close()


def test_pushes_of_one_pass_are_one_write_each_answered_with_its_own_number(
    tmp_path: Path,
) -> None:
    """Values pushed to a ring in one pass of the event loop go to the writer as one write
    (one statement, run over the newest ``size`` of them, and the turn's DELETE once): each
    pusher gets its own number; one that went away (cancelled) does not fail the others,
    and its value is kept all the same (it was written)."""
    store = SqliteStore(tmp_path / "state.db")
    view = store.scoped("_sim")

    async def scenario() -> None:
        await view.push(RING, "0", size=10)  # the writer started
        statements: list[str] = []
        writer = store._db.writer_connection
        assert writer is not None
        writer.set_trace_callback(statements.append)
        tasks = [asyncio.ensure_future(view.push(RING, str(n), size=10)) for n in range(1, 25)]
        await asyncio.sleep(0)  # each task has pushed: the pass's values wait together
        tasks[3].cancel()
        numbers = await asyncio.gather(*tasks, return_exceptions=True)
        writer.set_trace_callback(None)
        assert isinstance(numbers[3], asyncio.CancelledError)
        assert numbers[:3] + numbers[4:] == [n + 1 for n in range(1, 25) if n != 4]
        inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO RING")]
        assert len(inserts) == 10  # the newest 10 of 24, in one executemany
        assert sum(1 for s in statements if s.upper().startswith("COMMIT")) == 1
        assert await view.recent(RING) == [(n + 1, str(n)) for n in range(15, 25)]

    run(scenario())
    store.close()


def test_increments_of_one_pass_are_one_statement_and_each_caller_sees_its_own_value(
    tmp_path: Path,
) -> None:
    """Two stores on one file (as two processes), each incrementing one counter 30 times
    in one pass: each store's increments are one statement (by their sum), and every
    caller sees a value of its own, as if each were added in turn; none is lost."""
    first, second = SqliteStore(tmp_path / "state.db"), SqliteStore(tmp_path / "state.db")
    views = [first.scoped("p"), second.scoped("p")]

    async def scenario() -> list[int]:
        await views[0].incr("ids", 0)
        statements: list[str] = []
        writer = first._db.writer_connection
        assert writer is not None
        writer.set_trace_callback(statements.append)
        calls = [view.incr("ids", by) for view in views for by in (1, 2, 0, 3) * 30]
        seen = list(await asyncio.gather(*calls))
        writer.set_trace_callback(None)
        upserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO COUNTERS")]
        assert len(upserts) == 1
        return seen

    seen = run(scenario())
    for half in (seen[:120], seen[120:]):
        steps = [b - a for a, b in pairwise(half)]
        assert steps == ([2, 0, 3] + [1, 2, 0, 3] * 29), half  # in turn, within a pass
    nonzero = [v for n, v in enumerate(seen) if n % 4 != 2]
    assert len(set(nonzero)) == len(nonzero)  # no value seen twice but for the zero adds
    assert max(seen) == 2 * 30 * 6
    first.close()
    second.close()


def test_a_smaller_ring_or_a_restored_one_keeps_only_its_newest_values(tmp_path: Path) -> None:
    """Values left in slots no push writes now (pushed with a larger size, or restored from
    a snapshot) go once newer values fill the ring."""
    store = SqliteStore(tmp_path / "state.db")
    view = store.scoped("_sim")

    async def scenario() -> None:
        for n in range(1, 8):
            await view.push(RING, str(n), size=100)
        for n in range(8, 12):
            await view.push(RING, str(n), size=3)
        assert [n for n, _ in await view.recent(RING)] == [9, 10, 11]
        snapshot = await view.snapshot()
        await view.restore(snapshot)
        assert [n for n, _ in await view.recent(RING)] == [9, 10, 11]
        for n in range(12, 15):
            assert await view.push(RING, str(n), size=3) == n
        assert await view.recent(RING) == [(12, "12"), (13, "13"), (14, "14")]

    run(scenario())
    store.close()


def assert_rings_carried_over(path: Path) -> None:
    """The file at ``path``, whose ring of size 3 held values 4 to 6 in an older schema,
    reads them back opened now, and pushes go on."""
    store = SqliteStore(path)
    view = store.scoped("_sim")

    async def scenario() -> None:
        assert await view.recent(RING) == [(4, "4"), (5, "5"), (6, "6")]
        assert await view.push(RING, "7", size=3) == 7
        assert await view.recent(RING) == [(5, "5"), (6, "6"), (7, "7")]

    run(scenario())
    store.close()


def test_a_file_from_before_the_ring_slots_keeps_its_rings(tmp_path: Path) -> None:
    """A file whose rings are in the table of before (one row a value, deleted as it left
    the ring) is carried over when opened: the values, their numbers, what comes next."""
    path = tmp_path / "state.db"
    SqliteStore(path).close()
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("DROP TABLE ring_slots")
    old.execute(
        "CREATE TABLE rings (name TEXT NOT NULL, number INTEGER NOT NULL, value TEXT NOT NULL,"
        " PRIMARY KEY (name, number)) WITHOUT ROWID"
    )
    old.executemany(
        "INSERT INTO rings VALUES ('_sim/ring', ?, ?)", [(n, f'"{n}"') for n in (4, 5, 6)]
    )
    old.execute("INSERT INTO counters VALUES (?, 6)", ("_sim/ring\x00ring",))
    old.execute("UPDATE meta SET value = '2' WHERE name = 'schema'")
    old.close()
    assert_rings_carried_over(path)


def test_a_file_from_before_the_shared_tails_keeps_its_rings(tmp_path: Path) -> None:
    """A file whose ring slots have no column naming a shared tail gains it when opened:
    its values read back, and pushes go on."""
    path = tmp_path / "state.db"
    SqliteStore(path).close()
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("DROP TABLE ring_slots")
    old.execute("DROP TABLE ring_parts")
    old.execute(
        "CREATE TABLE ring_slots (name TEXT NOT NULL, slot INTEGER NOT NULL,"
        " number INTEGER NOT NULL, value TEXT NOT NULL, PRIMARY KEY (name, slot))"
    )
    old.executemany(
        "INSERT INTO ring_slots VALUES ('_sim/ring', ?, ?, ?)",
        [(n % 3, n, f'"{n}"') for n in (4, 5, 6)],
    )
    old.execute("INSERT INTO counters VALUES (?, 6)", ("_sim/ring\x00ring",))
    old.execute("UPDATE meta SET value = '3' WHERE name = 'schema'")
    old.close()
    assert_rings_carried_over(path)


def test_a_request_writes_to_the_file_off_the_event_loop(tmp_path: Path) -> None:
    """Each request writes (its journal entry, its rate-limit window): those commits run on
    the store's writer thread, never on the thread that runs the event loop, so a commit
    that waits (the file's lock, a checkpoint) does not hold up every other connection."""
    import threading

    store = SqliteStore(tmp_path / "state.db")
    app = create_app(Settings(seed=7), clock=ManualClock(START), store=store)
    writes: list[tuple[str, int]] = []

    def traced(statement: str) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "COMMIT")):
            writes.append((statement, threading.get_ident()))

    async def scenario() -> int:
        loop_thread = threading.get_ident()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://a")
        headers = {"Authorization": _passcreator_key(app)}
        async with client:
            assert (await client.get(PROCESS, headers=headers)).status_code == 200
            for connection in list(store._db._all):
                connection.set_trace_callback(traced)
            answer = await client.get(PROCESS, headers=headers)
            assert answer.status_code == 200
            listed = await client.get("/_sim/journal")
            assert listed.status_code == 200
        return loop_thread

    loop_thread = run(scenario())
    assert writes, "the request wrote nothing"
    assert [s for s, thread in writes if thread == loop_thread] == []
    store.close()


def test_the_writer_waits_for_another_writer_in_short_pauses_then_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another connection (another worker's) holds the file's write lock, the writer
    thread tries again after pauses that double from 50 µs, not after SQLite's whole
    millisecond; it commits once the lock is free, and the event loop's reads of the writer's
    connection never wait for its pauses."""
    path = tmp_path / "state.db"
    store = SqliteStore(path).scoped("p")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    pauses: list[float] = []
    free: list[bool] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        lock = store._db.writer_lock
        free.append(lock.acquire(blocking=False))
        lock.release()
        if len(pauses) == 4:
            other.execute("COMMIT")

    monkeypatch.setattr(sqlite_module, "sleep", pause)

    async def scenario() -> None:
        await store.put(THINGS, "k", thing("k"))
        assert await store.get(THINGS, "k") == thing("k")

    run(scenario())
    first = sqlite_module.FIRST_PAUSE
    assert pauses == [first, 2 * first, 4 * first, 8 * first]
    assert free == [True] * 4
    assert other.execute("SELECT count(*) FROM records").fetchone() == (1,)  # committed
    other.close()
    store.close()


def test_a_writer_that_never_gets_its_turn_fails_as_sqlite_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's pauses stop at ``BUSY_TIMEOUT_MS`` (here on a clock that jumps 4 s a
    read), and the write's caller gets SQLite's own error."""
    path = tmp_path / "state.db"
    store = SqliteStore(path).scoped("p")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    pauses: list[float] = []
    ticks = iter(range(0, 1000, 4))
    monkeypatch.setattr(sqlite_module, "sleep", pauses.append)
    monkeypatch.setattr(sqlite_module, "monotonic", lambda: float(next(ticks)))

    async def scenario() -> None:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            await store.put(THINGS, "k", thing("k"))

    run(scenario())
    assert len(pauses) == 3  # tried at 0, 4 and 8 s: at 12 s the 10 s were up
    assert pauses[-1] <= sqlite_module.LONGEST_PAUSE
    other.execute("ROLLBACK")
    other.close()
    store.close()


def _check_key(app: Any) -> dict[str, str]:
    runtime = app.state.sim.runtimes["check"]
    key: str = runtime.provider.credentials(runtime.context)["api_key"]
    return {"Authorization": f"Bearer {key}"}


def test_a_poll_reads_its_record_again_only_once_it_may_have_changed(tmp_path: Path) -> None:
    """A batch polled again is not read from the file while nothing was written to its
    table; a cancel made through another process's store, and one made through this
    process, are each seen by the very next poll."""
    path = tmp_path / "state.db"
    here_store, there_store = SqliteStore(path), SqliteStore(path)
    here = create_app(Settings(seed=7), clock=ManualClock(START), store=here_store)
    there = create_app(Settings(seed=7), clock=ManualClock(START), store=there_store)
    headers = _check_key(here)
    items = [{"content": f"Claim {i}: the sea is salty."} for i in range(3)]
    statements: list[str] = []

    async def scenario() -> tuple[list[str], list[str]]:
        one = httpx.AsyncClient(transport=httpx.ASGITransport(here), base_url="http://a")
        two = httpx.AsyncClient(transport=httpx.ASGITransport(there), base_url="http://b")
        async with one, two:

            async def status(client: httpx.AsyncClient, path: str) -> str:
                answer = await client.get(path, headers=headers)
                assert answer.status_code == 200, answer.text
                found: str = answer.json()["status"]
                return found

            polls = []
            for cancel_through in (two, one):
                created = await one.post("/check/v1/batch", headers=headers, json={"items": items})
                assert created.status_code == 202, created.text
                path = f"/check/v1/batch/{created.json()['id']}"
                polls.append(await status(one, path))
                here_store._db.connection().set_trace_callback(statements.append)
                polls.append(await status(one, path))
                here_store._db.connection().set_trace_callback(None)
                cancelled = await cancel_through.post(f"{path}/cancel", headers=headers)
                assert cancelled.status_code == 200, cancelled.text
                polls.append(await status(one, path))
            return polls[:3], polls[3:]

    elsewhere, here_too = run(scenario())
    for polls in (elsewhere, here_too):
        assert polls[0] == polls[1] != "cancelled", polls
        assert polls[2] == "cancelled", polls
    assert not [s for s in statements if "check/batches" in s], statements
    here_store.close()
    there_store.close()


def test_a_record_read_while_its_write_commits_is_read_again_once_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read made while the writer thread is committing a write to the record's table
    finds the record as it was (the write is not committed yet), and the first read once
    the write is answered finds it written: what was read meanwhile is not kept past it.
    A write of this process's own is seen by its next read (its commit does not move
    data_version, which counts only other connections')."""
    store = SqliteStore(tmp_path / "state.db")
    view = store.scoped("p")
    go = threading.Event()
    commit = sqlite_module._commit

    def held_back(*args: Any) -> Any:
        go.wait(timeout=30)
        return commit(*args)

    async def scenario() -> list[int]:
        await view.put(THINGS, "x", thing("x", 1))
        sizes = [(await view.get(THINGS, "x") or thing("gone", 0)).size]
        await view.put(THINGS, "x", thing("x", 2))
        sizes.append((await view.get(THINGS, "x") or thing("gone", 0)).size)
        monkeypatch.setattr(sqlite_module, "_commit", held_back)
        writing = asyncio.ensure_future(view.put(THINGS, "x", thing("x", 3)))
        await asyncio.sleep(0)  # its turn ends: the write goes to the writer thread
        sizes.append((await view.get(THINGS, "x") or thing("gone", 0)).size)
        go.set()
        await writing
        sizes.append((await view.get(THINGS, "x") or thing("gone", 0)).size)
        return sizes

    assert run(scenario()) == [1, 2, 2, 3]
    store.close()


def test_concurrent_polls_read_the_data_version_once_a_turn(tmp_path: Path) -> None:
    """64 polls answered at once read SQLite's data_version (whether another process wrote)
    once for every turn of the event loop that serves them, not once each, and answer as
    one alone does."""
    store = SqliteStore(tmp_path / "state.db")
    app = create_app(Settings(seed=7), clock=ManualClock(START), store=store)
    headers = {"Authorization": _passcreator_key(app)}
    statements: list[str] = []

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
            await client.get(PROCESS, headers=headers)
            writer = store._db.writer_connection
            assert writer is not None
            writer.set_trace_callback(statements.append)
            answers = await asyncio.gather(
                *(client.get(PROCESS, headers=headers) for _ in range(64))
            )
            writer.set_trace_callback(None)
            answers.append(await client.get(PROCESS, headers=headers))
            return answers

    answers = run(scenario())
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    versions = [s for s in statements if "data_version" in s]
    assert 1 <= len(versions) <= 8, len(versions)
    store.close()
