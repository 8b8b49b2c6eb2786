"""The store contract, run against every backend (``STORE_URLS`` in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from simulator.clock import ManualClock
from simulator.store import Codec, Page, SqliteStore, Store, Table, open_store
from tests.conftest import STORE_URLS, store_url_maker

T = TypeVar("T")
START = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Thing:
    name: str
    size: int
    at: datetime
    tags: tuple[str, ...] = ()


THINGS = Table("things", Thing)
RING = Table("ring", str)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@pytest.fixture
def root(store_url: str) -> Iterator[Store]:
    store = open_store(store_url)
    yield store
    if isinstance(store, SqliteStore):
        store.close()


@dataclass
class Views:
    """Two sibling views of one fresh backend, on one manual clock."""

    clock: ManualClock
    store: Store
    other: Store


@pytest.fixture
def views(root: Store) -> Views:
    clock = ManualClock(START)
    return Views(clock, root.scoped("test", now=clock.now), root.scoped("other", now=clock.now))


def thing(name: str, size: int = 1) -> Thing:
    return Thing(name, size, START, ("a", "b"))


def test_get_put_delete(views: Views) -> None:
    store = views.store

    async def scenario() -> None:
        assert await store.get(THINGS, "x") is None
        await store.put(THINGS, "x", thing("x"))
        assert await store.get(THINGS, "x") == thing("x")
        assert await store.delete(THINGS, "x") is True
        assert await store.delete(THINGS, "x") is False
        assert await store.get(THINGS, "x") is None

    run(scenario())


def test_put_if_absent_keeps_the_first(views: Views) -> None:
    store = views.store

    async def scenario() -> None:
        assert await store.put_if_absent(THINGS, "k", thing("first")) == (thing("first"), True)
        assert await store.put_if_absent(THINGS, "k", thing("second")) == (thing("first"), False)

    run(scenario())


def test_expiry_is_judged_on_the_clock(views: Views) -> None:
    clock, store = views.clock, views.store

    async def scenario() -> None:
        await store.put(THINGS, "k", thing("k"), expires_at=START + timedelta(seconds=10))
        clock.advance(timedelta(seconds=9))
        assert await store.get(THINGS, "k") == thing("k")
        assert await store.count(THINGS) == 1
        clock.advance(timedelta(seconds=1))
        assert await store.get(THINGS, "k") is None
        assert await store.count(THINGS) == 0
        # An expired record does not block put_if_absent.
        assert (await store.put_if_absent(THINGS, "k", thing("new")))[1] is True

    run(scenario())


SIZES = Table("things/sizes", int)


def test_count_and_total_follow_expiry_replacement_and_deletion(views: Views) -> None:
    """``count`` and ``total`` (the sum of a table of ints) see exactly the live records,
    whatever order they expire in, however often a key is stored again or deleted."""
    clock, store = views.clock, views.store

    def at(seconds: int) -> datetime:
        return START + timedelta(seconds=seconds)

    async def scenario() -> list[tuple[int, int]]:
        seen = []
        await store.put(SIZES, "a", 10, expires_at=at(30))
        await store.put(SIZES, "b", 20, expires_at=at(10))
        await store.put(SIZES, "c", 40)
        await store.put(SIZES, "d", 80, expires_at=at(20))
        seen.append((await store.count(SIZES), await store.total(SIZES)))  # all four
        await store.put(SIZES, "b", 25, expires_at=at(40))  # later expiry, new size
        await store.put(SIZES, "d", 5, expires_at=at(5))  # earlier expiry, new size
        assert await store.delete(SIZES, "c")
        seen.append((await store.count(SIZES), await store.total(SIZES)))  # a, b, d
        clock.advance(timedelta(seconds=10))  # d gone at 5; b was moved past 10
        seen.append((await store.count(SIZES), await store.total(SIZES)))  # a, b
        assert [key for key, _ in (await store.scan(SIZES)).items] == ["a", "b"]
        clock.advance(timedelta(seconds=20))  # a gone at 30
        seen.append((await store.count(SIZES), await store.total(SIZES)))  # b
        assert await store.take(SIZES, "b") == 25
        seen.append((await store.count(SIZES), await store.total(SIZES)))  # none
        for n in range(500):  # stored again and again: the heap of expiries stays small
            await store.put(SIZES, "e", n, expires_at=at(1000 + n))
        seen.append((await store.count(SIZES), await store.total(SIZES)))
        return seen

    assert run(scenario()) == [(4, 150), (3, 40), (2, 35), (1, 25), (0, 0), (1, 499)]


def test_count_and_total_through_every_write(views: Views) -> None:
    """The running count and total stay exact through put-if-absent over an expired record,
    an update of a size, a transaction rolled back, a clear and a restore."""
    clock, store = views.clock, views.store

    async def scenario() -> list[tuple[int, int]]:
        seen = []

        async def look() -> None:
            seen.append((await store.count(SIZES), await store.total(SIZES)))

        await store.put(SIZES, "a", 7, expires_at=START + timedelta(seconds=5))
        await store.put_if_absent(SIZES, "b", 3)
        await store.put_if_absent(SIZES, "b", 100)  # held: nothing changes
        await look()  # a, b
        clock.advance(timedelta(seconds=5))
        await store.put_if_absent(SIZES, "a", 11)  # over the expired one
        await look()  # a (11), b
        await store.update(SIZES, "b", lambda n: n * 10)
        await look()  # a (11), b (30)
        async with store.transaction() as tx:
            await tx.put(SIZES, "c", 1000)
            assert await tx.total(SIZES) == 1041
        assert await store.take(SIZES, "c") == 1000
        await look()
        saved = await store.snapshot()
        await store.clear()
        await look()  # none
        await store.restore(saved)
        await look()
        await views.other.put(SIZES, "z", 500)  # another view's table is its own
        await look()
        return seen

    assert run(scenario()) == [(2, 10), (2, 14), (2, 41), (2, 41), (0, 0), (2, 41), (2, 41)]


def test_count_and_total_read_no_record(store_url: str) -> None:
    """On SQLite and Redis, ``count`` and ``total`` cost the same over 10 and 2,000 records:
    SQLite runs as many instructions, Redis reads no record."""
    if store_url == "memory":
        pytest.skip("test_memory_count_pops_only_what_expired covers the memory store")
    store = open_store(store_url)
    clock = ManualClock(START)
    view = store.scoped("test", now=clock.now)

    async def fill(n: int) -> None:
        async with view.transaction() as tx:
            for i in range(n):
                await tx.put(SIZES, str(i), i, expires_at=START + timedelta(hours=1))

    async def cost() -> tuple[int, int]:
        if isinstance(store, SqliteStore):
            steps = [0]

            def step() -> int:
                steps[0] += 1
                return 0

            connection = store._db.connection()
            connection.set_progress_handler(step, 1)
            try:
                counted = await view.count(SIZES), await view.total(SIZES)
            finally:
                connection.set_progress_handler(None, 1)
            assert counted[0] > 0
            return steps[0], counted[1]
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(store_url)
        try:
            await client.config_resetstat()
            total = await view.total(SIZES)
            stats = await client.info("commandstats")
        finally:
            await client.aclose()
            await store.aclose()  # type: ignore[attr-defined]
        return int(stats.get("cmdstat_get", {}).get("calls", 0)), total

    async def scenario() -> list[tuple[int, int]]:
        await fill(10)
        small = await cost()
        await fill(2000)
        return [small, await cost()]

    small, large = run(scenario())
    assert (small[1], large[1]) == (45, sum(range(2000)))
    assert large[0] == small[0], (small, large)
    if isinstance(store, SqliteStore):
        store.close()
    else:
        assert large[0] <= 1  # the running total itself


def test_memory_count_pops_only_what_expired() -> None:
    """The memory backend's count never walks the rows: a sweep pops the heap of expiries."""
    clock = ManualClock(START)
    store = open_store("memory").scoped("test", now=clock.now)

    async def scenario() -> int:
        for n in range(1000):
            await store.put(THINGS, str(n), thing(str(n)), expires_at=START + timedelta(hours=1))
        rows = store._rows(THINGS)  # type: ignore[attr-defined]
        entries = type(rows).__iter__

        def forbidden(self: object) -> object:
            raise AssertionError("count walked the rows")

        type(rows).__iter__ = forbidden
        type(rows).items = forbidden
        try:
            counted = await store.count(THINGS)
        finally:
            type(rows).__iter__ = entries
            del type(rows).items
        return counted

    assert run(scenario()) == 1000


def test_update_is_atomic_and_a_raising_change_writes_nothing(
    views: Views,
) -> None:
    store = views.store

    def grow(t: Thing) -> Thing:
        return Thing(t.name, t.size + 1, t.at, t.tags)

    def refuse(t: Thing) -> Thing:
        raise LookupError(t.name)

    async def scenario() -> None:
        assert await store.update(THINGS, "k", grow) is None
        await store.put(THINGS, "k", thing("k"))
        assert (await store.update(THINGS, "k", grow)) == thing("k", 2)
        with pytest.raises(LookupError):
            await store.update(THINGS, "k", refuse)
        assert await store.get(THINGS, "k") == thing("k", 2)

    run(scenario())


def test_take_gives_a_record_once(views: Views) -> None:
    store = views.store

    async def take() -> Thing | None:
        return await store.take(THINGS, "file")

    async def scenario() -> list[Thing | None]:
        await store.put(THINGS, "file", thing("file"))
        return list(await asyncio.gather(*(take() for _ in range(5))))

    taken = run(scenario())
    assert taken.count(thing("file")) == 1
    assert taken.count(None) == 4


def test_scan_pages_in_insertion_order(views: Views) -> None:
    store = views.store

    async def scenario() -> list[Page[Thing]]:
        for name in "dcbae":
            await store.put(THINGS, name, thing(name))
        await store.delete(THINGS, "b")
        first = await store.scan(THINGS, limit=2)
        second = await store.scan(THINGS, after=first.next, limit=2)
        return [first, second]

    pages = run(scenario())
    assert [[key for key, _ in page.items] for page in pages] == [["d", "c"], ["a", "e"]]
    assert [page.next for page in pages] == ["c", None]


def test_counters_rings_and_namespaces(views: Views) -> None:
    store = views.store
    other = views.other
    nested = store.scoped("nested")

    async def scenario() -> None:
        assert [await store.incr("ids") for _ in range(3)] == [1, 2, 3]
        assert await other.incr("ids") == 1
        for n in range(5):
            await store.push(RING, f"v{n}", size=3)
        assert await store.recent(RING) == [(3, "v2"), (4, "v3"), (5, "v4")]
        assert await store.recent(RING, after=4) == [(5, "v4")]
        await store.put(THINGS, "k", thing("k"))
        await other.put(THINGS, "k", thing("other"))
        await nested.put(THINGS, "k", thing("nested"))
        await store.clear()
        assert await nested.get(THINGS, "k") is None
        assert await store.get(THINGS, "k") is None
        assert await store.incr("ids") == 1
        assert await other.get(THINGS, "k") == thing("other")
        assert await other.incr("ids") == 2

    run(scenario())


def test_a_transaction_is_one_unit(views: Views) -> None:
    store = views.store

    async def transfer() -> None:
        async with store.transaction() as tx:
            seen = await tx.incr("balance", 0)
            await tx.put(THINGS, str(seen), thing(str(seen)))
            await tx.incr("balance")

    async def scenario() -> int:
        await asyncio.gather(*(transfer() for _ in range(20)))
        return await store.count(THINGS)

    assert run(scenario()) == 20


def test_records_round_trip_through_their_codec() -> None:
    value = Thing("x", 3, START, ("a",))
    data = THINGS.codec.dump(value)
    assert data == {"name": "x", "size": 3, "at": "2026-03-09T08:00:00Z", "tags": ["a"]}
    assert THINGS.codec.load(data) == value


def test_take_gives_a_record_once_across_threads(root: Store) -> None:
    """Each thread has its own connection (on SQLite): the database decides who gets it."""
    store = root.scoped("test")
    run(store.put(THINGS, "file", thing("file")))
    start = threading.Barrier(8)
    taken: list[Thing | None] = []

    async def take_once() -> Thing | None:
        return await store.take(THINGS, "file")

    def take() -> None:
        start.wait()
        taken.append(run(take_once()))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert taken.count(thing("file")) == 1
    assert taken.count(None) == 7


def test_counters_count_on_across_threads(root: Store) -> None:
    store = root.scoped("test")
    seen: list[int] = []

    def count() -> None:
        seen.extend(run(store.incr("ids")) for _ in range(50))

    threads = [threading.Thread(target=count) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 201))


COUNTS = Table("counts", int)


def test_add_counts_in_a_window_that_expires_on_the_clock(views: Views) -> None:
    """``add``: absent counts as 0; a live count keeps its expiry; an expired one starts
    again with the new expiry; ``count``, ``total`` and snapshots see it as a record."""
    clock, store = views.clock, views.store
    first_end, next_end = START + timedelta(seconds=60), START + timedelta(seconds=120)

    async def scenario() -> None:
        assert await store.add(COUNTS, "org", expires_at=first_end) == 1
        assert await store.add(COUNTS, "org", 2, expires_at=next_end) == 3  # expiry kept
        assert await store.add(COUNTS, "org", -1, expires_at=next_end) == 2
        assert await store.get(COUNTS, "org") == 2
        assert (await store.count(COUNTS), await store.total(COUNTS)) == (1, 2)
        assert (await store.snapshot())["records"] == [["counts", "org", 2, first_end.isoformat()]]
        clock.advance(timedelta(seconds=60))  # the first window is over
        assert await store.get(COUNTS, "org") is None
        assert await store.add(COUNTS, "org", 5, expires_at=next_end) == 5
        clock.advance(timedelta(seconds=59))
        assert await store.add(COUNTS, "org", expires_at=None) == 6  # still the second window
        assert (await store.count(COUNTS), await store.total(COUNTS)) == (1, 6)
        clock.advance(timedelta(seconds=1))
        assert (await store.count(COUNTS), await store.total(COUNTS)) == (0, 0)
        assert await store.add(COUNTS, "forever") == 1
        clock.advance(timedelta(days=365))
        assert await store.add(COUNTS, "forever") == 2
        assert await views.other.get(COUNTS, "forever") is None

    run(scenario())


def test_add_sweeps_expired_windows_as_new_ones_start(views: Views) -> None:
    clock, store = views.clock, views.store

    async def scenario() -> int:
        for minute in range(50):  # a key per minute, each window over a minute later
            end = clock.now() + timedelta(seconds=60)
            await store.add(COUNTS, f"org/{minute}", expires_at=end)
            clock.advance(timedelta(seconds=60))
        snapshot = await store.snapshot()  # live records only, on every backend
        assert snapshot["records"] == []
        # What the backend still holds, expired or not: swept as new windows started.
        return await _held(store, COUNTS)

    assert run(scenario()) <= 1


async def _held(store: Store, table: Table[Any]) -> int:
    """How many records, live or expired, the backend keeps for ``table``."""
    if isinstance(store, SqliteStore):
        row = (
            store._db.connection()
            .execute("SELECT count(*) FROM records WHERE tbl = ?", (store.prefix + table.name,))
            .fetchone()
        )
        return int(row[0])
    from simulator.store.memory import MemoryStore
    from simulator.store.redis import RedisStore

    if isinstance(store, MemoryStore):
        return len(store._rows(table))
    assert isinstance(store, RedisStore)
    client = await store._root.clients.get()
    held = 0
    async for _ in client.scan_iter(match=f"{store._base}{table.name}#r:*"):
        held += 1
    return held


def test_add_counts_every_call_once_across_threads(root: Store) -> None:
    """Concurrent adds on one record (a rate window every connection counts in) each get
    their own value: none lost, none repeated."""
    store = root.scoped("test", now=ManualClock(START).now)
    seen: list[int] = []
    end = START + timedelta(seconds=60)
    start = threading.Barrier(4)

    async def count() -> list[int]:
        got = [await store.add(COUNTS, "org", expires_at=end) for _ in range(10)]
        got += await asyncio.gather(*(store.add(COUNTS, "org", expires_at=end) for _ in range(40)))
        return got

    def counting() -> None:
        start.wait()
        seen.extend(run(count()))

    threads = [threading.Thread(target=counting) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 201))


@pytest.mark.parametrize("target", STORE_URLS, ids=lambda url: "into-" + url.partition(":")[0])
def test_a_snapshot_restores_into_any_backend(
    views: Views,
    target: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    clock, store = views.clock, views.store
    fresh = store_url_maker(target, request, tmp_path_factory)
    fresh()  # the first is the source's own (on Redis: database 1)
    restored_root = open_store(fresh())
    restored = restored_root.scoped("test", now=clock.now)

    async def scenario() -> None:
        for name in "dcbae":
            await store.put(THINGS, name, thing(name))
        await store.put(THINGS, "soon", thing("soon"), expires_at=START + timedelta(seconds=5))
        await store.put(THINGS, "gone", thing("gone"), expires_at=START)
        await store.delete(THINGS, "b")
        await store.incr("ids", 41)
        for n in range(4):
            await store.push(RING, f"v{n}", size=3)
        await restored.put(THINGS, "stale", thing("stale"))
        await restored.restore(await store.snapshot())
        page = await restored.scan(THINGS)
        assert [key for key, _ in page.items] == ["d", "c", "a", "e", "soon"]
        assert await restored.get(THINGS, "d") == thing("d")
        assert await restored.get(THINGS, "stale") is None
        assert await restored.incr("ids") == 42
        assert await restored.recent(RING) == [(2, "v1"), (3, "v2"), (4, "v3")]
        assert await restored.push(RING, "v4", size=3) == 5
        assert await restored.take(THINGS, "a") == thing("a")
        clock.advance(timedelta(seconds=5))
        assert await restored.get(THINGS, "soon") is None
        # What the snapshot holds is plain JSON.
        assert json.loads(json.dumps(await restored.snapshot()))["counters"] == {"ids": 42}

    run(scenario())


def test_a_record_read_again_unchanged_is_not_decoded_again(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared backend decodes a record it reads again unchanged (a polled batch, the
    shared state) once; a record changed by anyone, or expired on the clock, is read as it
    now is."""
    if store_url == "memory":
        pytest.skip("the memory store keeps values, not their text")
    clock = ManualClock(START)
    first = open_store(store_url)
    second = open_store(store_url)  # another connection, as another process has
    view = first.scoped("p", now=clock.now)
    elsewhere = second.scoped("p", now=clock.now)
    decoded: list[object] = []
    loads = Codec.loads

    def counting(self: Codec[Any], data: str | bytes) -> Any:
        value = loads(self, data)
        decoded.append(value)
        return value

    monkeypatch.setattr(Codec, "loads", counting)

    async def scenario() -> None:
        await view.put(THINGS, "a", thing("a"), expires_at=START + timedelta(seconds=10))
        for _ in range(5):
            assert await view.get(THINGS, "a") == thing("a")
        assert len(decoded) == 1
        await elsewhere.put(THINGS, "a", thing("a", 2), expires_at=START + timedelta(seconds=10))
        assert await view.get(THINGS, "a") == thing("a", 2)
        assert await view.get(THINGS, "a") == thing("a", 2)
        assert len(decoded) == 2
        clock.advance(timedelta(seconds=10))
        assert await view.get(THINGS, "a") is None

    run(scenario())
    for store in (first, second):
        if isinstance(store, SqliteStore):
            store.close()
