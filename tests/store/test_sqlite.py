"""What the SQLite backend adds to the store contract: the file outlives the process's view of
it, expired records do not pile up in it, and a URL that cannot be used says why in one line."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator import Settings, create_app
from simulator.clock import ManualClock
from simulator.store import SqliteStore, StoreError, open_store
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
