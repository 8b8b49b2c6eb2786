"""The SQLite backend: one file, shared by every thread and process that opens it.

- **One connection per thread** (SQLite connections are not shared across threads), all on
  one file in WAL mode: readers never wait for the writer, and writers (threads or
  processes) take turns on SQLite's own lock, waiting up to ``BUSY_TIMEOUT_MS``. The writer
  thread waits its turn in pauses of its own, from 50 µs, doubling up to 1 ms (``_begin``):
  SQLite's wait sleeps a whole millisecond at first, some ten times as long as another
  process's commit holds the lock, which with two workers on one file cost each commit some
  100 µs on average (and the event loop too, which reads the writer's connection between
  its writes).
- **Each call is one statement, atomic by itself**: ``incr`` and ``put_if_absent`` are
  upserts with ``RETURNING``; ``take`` is ``DELETE ... RETURNING``, so of any number of
  processes taking one record exactly one gets it. Calls made of several statements
  (``update``, ``put_if_absent`` over an expired record, ``push``, ``clear``) run in a
  ``BEGIN IMMEDIATE`` transaction of their own.
- **One transaction per unit of work**: inside ``async with store.transaction() as tx`` every
  call joins one ``BEGIN IMMEDIATE`` transaction, committed on leaving (rolled back on an
  exception). A request's handler that writes several records puts them in one.
- **Reads on the loop, writes off it.** Reads run on the event loop's thread (a statement on
  a local file, microseconds). A write made outside a unit of work runs on the store's one
  writer thread (its own connection), awaited by the caller: served by uvloop, commits made
  on the loop's thread stretched the slowest answers under load (p99 10-20x the median)
  although each commit was short, and off it they do not. A unit of work (``transaction``)
  keeps every call on the thread that opened it, in its one transaction.
- **Group commit.** The writes waiting when the writer thread is free run together in one
  ``BEGIN IMMEDIATE ... COMMIT``, each in a ``SAVEPOINT`` of its own: one write's error rolls
  back that write alone and reaches its caller alone. Every caller of a group is answered
  after the group's COMMIT (so nothing answered is lost to a crash), all of one event loop
  woken by one ``call_soon_threadsafe``. The writes an event loop makes in one pass over
  its ready callbacks are handed to the writer together, at the end of the pass: one
  wake-up of the writer for them all, which would otherwise take each one as it comes (a
  statement on the loop's thread lets it run). Of those, the values pushed to one ring (the
  journal's entries) are one write, one statement for them all, and so are the additions
  to one counter (a provider's ids) or to one record (``add``: Check's requests counted in
  their rate window): each caller still gets its own number, as if each
  were made in turn. Under concurrent requests a commit, and a wake-up of each thread,
  serve many writes; a write alone runs as before, in a transaction of its own.
- **Expiry on the simulator's clock**: ``expires_at`` is stored as microseconds since the
  epoch and compared with the view's ``now``; never a wall-clock TTL.
- **Bounded**: an insert first deletes a batch of the table's expired records, so expired
  rows do not pile up; rings keep their newest ``size`` values (each value in a slot, its
  number modulo the size, rewritten in place); the caps a provider keeps
  (:class:`~simulator.kit.budget.Budget`: records and bytes) bound the rest. SQLite reuses
  freed pages, so the file stays at its high-water mark; the WAL is checkpointed
  automatically. ``count`` and ``total`` read one row of running aggregates, which triggers
  keep in the same transaction as each insert, update and delete (expired records are swept
  through the expiry index first, each once): their cost does not grow with the table.
- **Durable against a crash of the process** (``kill -9``): a transaction is in the WAL (handed
  to the operating system) when its call returns. Not fsynced (``synchronous=OFF``): the
  fsyncs of ``NORMAL``, at each checkpoint of the WAL, stalled the writer thread and cost a
  poll some 7-10 % of its throughput, for a guarantee a simulator's state does not need (an
  OS crash or a power loss may lose the file's last transactions, or the file).
  ``synchronous="normal"`` (``?synchronous=normal`` in the store's URL) asks for it.

- **Cheap when nothing changed**: :meth:`SqliteStore.mark` (SQLite's ``data_version`` of the
  writer's connection, which moves on any other connection's commit, and this process's own
  writes per table, counted when made and again once committed) tells whether a table may
  have changed since a record of it was read. ``get`` reads a record from the file again
  only then (a poll of an unchanged batch reads nothing), and the state reads the shared
  record only then; a record read again unchanged is not decoded again. The data_version is
  read once per turn of the event loop, for every request of the turn, under the writer's
  lock, which the writer holds for one write of a group at a time: a request waits for at
  most one write in progress, never for a whole group.

Records are stored as JSON through their table's codec; a codec that frames its values
(the journal's: bodies kept as bytes) stores a BLOB. A ring's value whose tail other values
share (:meth:`Codec.dumps_shared <simulator.store.base.Codec.dumps_shared>`: the journal's
entries of a page answered again as the very same bytes) is stored as its head, naming the
tail kept once for all of them: a poll of a settled page writes some 1 kB, not 3 to 5 kB,
and its entry shares a page of the file with three others instead of filling one or two
(Check's results page: some 15 % of a poll's throughput).
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import monotonic, sleep
from typing import Any, Protocol, TypeVar

from simulator.clock import parse_iso
from simulator.store.base import Decoded, Page, Shared, Snapshot, Store, Table, stored_data

__all__ = ["SqliteStore"]

R = TypeVar("R")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# Above every key under a prefix: U+10FFFF sorts after any other character in UTF-8.
TOP = "\U0010ffff"
# Expired records an insert deletes at most, first.
SWEEP = 64
BUSY_TIMEOUT_MS = 10_000
# The writer thread's pauses while another connection holds the write lock (see ``_begin``).
FIRST_PAUSE, LONGEST_PAUSE = 0.000_05, 0.001
# SQLite's ``synchronous`` settings a store may be opened with (see the module's docstring).
SYNCHRONOUS = ("off", "normal", "full")
# A ring's last number is a counter under the ring's name and this (cleared with it).
RING_HEAD = "\x00ring"
# The most writes one group commits (those waiting beyond wait for the next group).
GROUP = 256

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    tbl TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at INTEGER,
    UNIQUE (tbl, key)
);
CREATE INDEX IF NOT EXISTS records_expiry ON records (tbl, expires_at)
    WHERE expires_at IS NOT NULL;
-- Each table's live and expired-but-not-yet-swept records: how many, and the sum of their
-- values read as integers (a table of sizes' bytes), kept by the triggers below in the
-- same transaction as every write, so that count and total read one row.
CREATE TABLE IF NOT EXISTS aggregates (
    tbl TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    total INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS records_inserted AFTER INSERT ON records BEGIN
    INSERT OR IGNORE INTO aggregates (tbl, count, total) VALUES (new.tbl, 0, 0);
    UPDATE aggregates SET count = count + 1, total = total + CAST(new.value AS INTEGER)
        WHERE tbl = new.tbl;
END;
CREATE TRIGGER IF NOT EXISTS records_deleted AFTER DELETE ON records BEGIN
    UPDATE aggregates SET count = count - 1, total = total - CAST(old.value AS INTEGER)
        WHERE tbl = old.tbl;
END;
CREATE TRIGGER IF NOT EXISTS records_updated AFTER UPDATE OF value ON records BEGIN
    UPDATE aggregates
        SET total = total - CAST(old.value AS INTEGER) + CAST(new.value AS INTEGER)
        WHERE tbl = new.tbl;
END;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
-- A ring's values, each in the slot its number modulo the ring's size names: once the ring
-- is full, a push rewrites the oldest value's row in place (no row deleted, no page freed
-- and allocated again, which cost most of a push with large values).
-- A value's tail that values share (a response body answered again as the very same bytes)
-- is kept once, in ring_parts under its key, which the value's ``part`` names; its value is
-- its head then that tail. A part goes once no value in the ring names it: ``last``, the
-- newest number that named it, is older than the ring's newest ``size``.
CREATE TABLE IF NOT EXISTS ring_slots (
    name TEXT NOT NULL,
    slot INTEGER NOT NULL,
    number INTEGER NOT NULL,
    value TEXT NOT NULL,
    part BLOB,
    PRIMARY KEY (name, slot)
);
CREATE TABLE IF NOT EXISTS ring_parts (
    name TEXT NOT NULL,
    key BLOB NOT NULL,
    last INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (name, key)
);
"""


SCHEMA_VERSION = 4
# The schema that brought the aggregates (4 brought ring_parts and the slots' ``part``).
AGGREGATES_SINCE = 3


def _statements(script: str) -> list[str]:
    """The schema's statements, one by one (``executescript`` would commit first)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


def _micros(instant: datetime) -> int:
    return (instant - EPOCH) // MICROSECOND


def _never() -> datetime:
    return datetime.min.replace(tzinfo=UTC)


class _Database:
    """The file and this process's connections to it, one per thread."""

    def __init__(self, path: Path, synchronous: str = "off") -> None:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        self.path = path
        self.synchronous = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Writes this process made, per table (by full name), and to whole views (``clear``,
        # ``restore``): with SQLite's data_version, which counts the commits of every other
        # connection, they tell a reader whether a record may have changed (``mark``).
        self.writes: dict[str, int] = {}
        self.wipes = 0
        # Units of work this thread or another of this process ended (each transaction it
        # opened itself, committed or rolled back): what another thread may have read while
        # one was open is not kept past it.
        self.units = 0
        # Held to count (writes and units may be counted from several threads: each event
        # loop's, and a unit of work's).
        self._counting = threading.Lock()
        # The size each ring was last pushed with here, and the rings that may hold values
        # in slots no push writes now (see ``SqliteStore.push``).
        self.ring_sizes: dict[str, int] = {}
        self.loose_rings: set[str] = set()
        self.decoded = Decoded()
        # The records read last, with the mark they were read under (see ``SqliteStore.get``).
        self.reads = _Reads()
        # The writer's data_version as an event loop read it in its current turn (see
        # ``writer_version``): the loop, and the version with the writer's generation.
        self._turn: tuple[asyncio.AbstractEventLoop, tuple[int, int]] | None = None
        # Writes made outside a unit of work wait here for the writer thread, off the event
        # loop, which commits those waiting together (see ``_write_groups``); started with
        # the first of them, and stopped by ``close`` (or when the database is collected).
        self._writes: queue.SimpleQueue[list[_Write] | None] = queue.SimpleQueue()
        # The writes an event loop made in its current pass, handed to the writer in one
        # put when the pass is over (one wake-up of the writer for them all).
        self._passes: dict[asyncio.AbstractEventLoop, list[_Write]] = {}
        # The values an event loop pushed to each ring, and the increments of each counter,
        # in its current pass: one write for each ring's, one for each counter's (``together``).
        self._together: dict[asyncio.AbstractEventLoop, dict[Hashable, _Together]] = {}
        self._writer: threading.Thread | None = None
        self._stop_writer: weakref.finalize[Any, _Database] | None = None
        self.writer_connection: sqlite3.Connection | None = None
        # Which writer (and connection) this is: two connections' data_version numbers do
        # not compare. And a lock the writer holds through each statement or write of a
        # group (never through a whole group), which ``mark`` takes to read its connection.
        self.generation = 0
        self.writer_lock = threading.Lock()
        self._starting = threading.Lock()
        # Fails here, at start, if the file cannot be used: not a database, or not writable
        # (SQLite opens a file it may not write read-only; the first write says so).
        connection = self.connection()
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("BEGIN IMMEDIATE")
        try:
            held = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'meta' AND type = 'table'"
            ).fetchone()
            version = (
                connection.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
                if held
                else None
            )
            for statement in _statements(SCHEMA):
                connection.execute(statement)
            slot_columns = {row[1] for row in connection.execute("PRAGMA table_info(ring_slots)")}
            if "part" not in slot_columns:  # a file from before the parts
                connection.execute("ALTER TABLE ring_slots ADD COLUMN part BLOB")
            if version is not None and int(version[0]) < AGGREGATES_SINCE:
                # A file from before the aggregates: count what it holds, once.
                connection.execute("DELETE FROM aggregates")
                connection.execute(
                    "INSERT INTO aggregates (tbl, count, total) SELECT tbl, count(*),"
                    " coalesce(sum(CAST(value AS INTEGER)), 0) FROM records GROUP BY tbl"
                )
            old_rings = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'rings' AND type = 'table'"
            ).fetchone()
            if old_rings is not None:
                # A file from before the slots: its values move, each in a slot of its own
                # (below zero, where no push writes) until newer ones push them out.
                connection.execute(
                    "INSERT INTO ring_slots (name, slot, number, value)"
                    " SELECT name, -number, number, value FROM rings"
                )
                connection.execute("DROP TABLE rings")
            connection.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        return connection

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: statements commit by themselves unless in BEGIN ... COMMIT.
        connection = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        connection.execute(f"PRAGMA synchronous={self.synchronous}")
        with self._lock:
            self._all.append(connection)
        return connection

    def submit(self, call: Callable[[], R], name: str) -> asyncio.Future[R]:
        """``call`` (one write to table ``name``, its full name) queued for the writer
        thread: its outcome, once committed. The write is counted now, and again when its
        outcome comes back, before its caller is woken (see ``mark``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self.wrote(name)
        self._queue(call, _Counted(future, self, name), loop)
        return future

    def _queue(
        self, call: Callable[[], Any], settled: _Settled, loop: asyncio.AbstractEventLoop
    ) -> None:
        if self._writer is None:
            self._start_writer()
        batch = self._passes.get(loop)
        if batch is None:
            batch = self._passes[loop] = []
            loop.call_soon(self._hand_over, loop)
        batch.append((call, settled, loop))

    def together(
        self,
        key: Hashable,
        item: Any,
        write: Callable[[list[Any]], list[Any]],
        table: str | None = None,
    ) -> asyncio.Future[Any]:
        """``item`` written with the others of this event loop's pass under ``key`` (values
        pushed to one ring, increments of one counter, additions to one record) in one
        write, ``write(items)``, queued with the first of them, which gives each item's
        result in order. This item's result, once committed. A write to a table (``table``,
        its full name) is counted as ``submit`` counts one."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        batches = self._together.get(loop)
        if batches is None:
            batches = self._together[loop] = {}
        batch = batches.get(key)
        if batch is None:
            batch = batches[key] = _Together(self, table)
            if table is not None:
                self.wrote(table)
            items = batch.items
            self._queue(lambda: write(items), batch, loop)
        batch.items.append(item)
        batch.futures.append(future)
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._together.pop(loop, None)  # handed over with the pass: no item joins them now
        batch = self._passes.pop(loop, None)
        if batch:
            self._writes.put(batch)

    def writer_version(self) -> tuple[int, int]:
        """The writer's connection's data_version, with which writer it is: it moves on each
        commit of any other connection (this process's other threads', other processes'),
        not on the writer's own. Read under the writer's lock, which the writer holds for
        one write of a group at a time (or its BEGIN, or its COMMIT), never for the whole
        group: this waits for at most one of them.

        Read once per turn of an event loop, for every request the turn serves: a request
        that reached this process because another process had answered (a client that
        polls here what it created there) was read from its socket in this turn or a later
        one, so that commit came before the turn and its first reading of the version.
        This process's own writes are counted apart (``mark``)."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        turn = self._turn
        if turn is not None and turn[0] is loop:
            return turn[1]
        connection = self.writer_connection
        if connection is None:
            self._start_writer()
            connection = self.writer_connection
            assert connection is not None
        with self.writer_lock:
            version = connection.execute("PRAGMA data_version").fetchone()[0]
        found = self.generation, int(version)
        if loop is not None:
            self._turn = (loop, found)
            loop.call_soon(self._turn_ended, loop)
        return found

    def _turn_ended(self, loop: asyncio.AbstractEventLoop) -> None:
        turn = self._turn
        if turn is not None and turn[0] is loop:
            self._turn = None

    def mark(self, name: str) -> Hashable:
        """What changes whenever table ``name`` (its full name) may have changed since: the
        writer's data_version (other connections' commits), this process's writes to it,
        counted when made and again once committed (a thread may read the record meanwhile),
        its views wiped, and its units of work ended."""
        return self.writer_version(), self.writes.get(name, 0), self.wipes, self.units

    def _start_writer(self) -> None:
        with self._starting:
            if self._writer is not None:
                return
            connection = self._connect()
            # The writer waits for the write lock in pauses of its own (see ``_begin``).
            connection.execute("PRAGMA busy_timeout = 0")
            self.generation += 1
            writer = threading.Thread(
                target=_write_groups,
                args=(self._writes, self._local, connection, self.writer_lock),
                name="sqlite-writer",
                daemon=True,
            )
            writer.start()
            # The thread holds no reference to the database: collected, or at the
            # interpreter's exit, its finalizer drains the queue and stops the thread.
            self._stop_writer = weakref.finalize(self, _stop, self._writes, writer)
            self.writer_connection = connection
            self._writer = writer

    def wrote(self, name: str) -> None:
        with self._counting:
            self.writes[name] = self.writes.get(name, 0) + 1

    def _ended(self, connection: sqlite3.Connection) -> None:
        """A transaction opened on ``connection`` ended. The writer thread's are not counted:
        its writes to tables are, each once committed (``submit``)."""
        if connection is not self.writer_connection:
            with self._counting:
                self.units += 1

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection inside a write transaction (joining one already open)."""
        connection = self.connection()
        if connection.in_transaction:
            yield connection
            return
        # Never the writer's (whose groups are in a transaction it began): SQLite's own wait.
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            self._ended(connection)
            raise
        connection.execute("COMMIT")
        self._ended(connection)

    def close(self) -> None:
        """Commit the writes waiting, stop the writer thread, close every connection (a
        later call opens them again)."""
        for loop in list(self._passes):
            self._hand_over(loop)
        if self._stop_writer is not None:
            self._stop_writer()
        self._writer = self._stop_writer = self.writer_connection = None
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()
        self._local = threading.local()


class _Settled(Protocol):
    """Where a write's outcome goes, on its event loop's thread: a future, or ``_Together``."""

    def done(self) -> bool: ...

    def set_result(self, result: Any, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


class _Counted:
    """A write's future, its table counted once more when its outcome comes back: a record
    read while it was being committed is read again."""

    __slots__ = ("_db", "_future", "_name")

    def __init__(self, future: asyncio.Future[Any], db: _Database, name: str) -> None:
        self._future = future
        self._db = db
        self._name = name

    def done(self) -> bool:
        return False

    def set_result(self, result: Any) -> None:
        self._db.wrote(self._name)
        if not self._future.done():
            self._future.set_result(result)

    def set_exception(self, exception: BaseException) -> None:
        self._db.wrote(self._name)
        if not self._future.done():
            self._future.set_exception(exception)


class _Reads:
    """The records a process read last, each with the mark it was read under (see
    ``SqliteStore.get``): its value (the one :class:`Decoded` holds) and its expiry, or None
    for a record absent then. Keeps the last :attr:`SIZE`."""

    SIZE = 128

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], tuple[Hashable, Any, int | None]] = {}

    def get(self, name: str, key: str, mark: Hashable) -> tuple[Any, int | None] | None:
        held = self._held.get((name, key))
        if held is None or held[0] != mark:
            return None
        return held[1], held[2]

    def keep(self, name: str, key: str, mark: Hashable, value: Any, expires_at: int | None) -> None:
        if len(self._held) >= self.SIZE:
            self._held.pop(next(iter(self._held), (name, key)), None)  # the oldest
        self._held[(name, key)] = (mark, value, expires_at)


class _Together:
    """Items of one pass written in one write (see ``_Database.together``): its outcome
    (each item's result, in order, or its error) goes to each caller's own future (one whose
    caller went away is skipped; the others are answered all the same); a write to a table
    is counted once more first, as :class:`_Counted` counts one."""

    __slots__ = ("_db", "_table", "futures", "items")

    def __init__(self, db: _Database, table: str | None) -> None:
        self._db = db
        self._table = table
        self.items: list[Any] = []
        self.futures: list[asyncio.Future[Any]] = []

    def done(self) -> bool:
        return False

    def set_result(self, results: list[Any]) -> None:
        if self._table is not None:
            self._db.wrote(self._table)
        for future, result in zip(self.futures, results, strict=True):
            if not future.done():
                future.set_result(result)

    def set_exception(self, exception: BaseException) -> None:
        if self._table is not None:
            self._db.wrote(self._table)
        for future in self.futures:
            if not future.done():
                future.set_exception(exception)


# A write waiting for the writer thread: the call, where its outcome goes (a future) and the
# loop awaiting it.
_Write = tuple[Callable[[], Any], _Settled, asyncio.AbstractEventLoop]


def _stop(writes: queue.SimpleQueue[list[_Write] | None], writer: threading.Thread) -> None:
    writes.put(None)  # after every write queued before: those are committed first
    if writer is not threading.current_thread():
        writer.join()


def _write_groups(
    writes: queue.SimpleQueue[list[_Write] | None],
    local: threading.local,
    connection: sqlite3.Connection,
    lock: threading.Lock,
) -> None:
    """The writer thread: each time it is free, the writes waiting (up to ``GROUP``) are
    committed together, and then their callers woken; ``None`` stops it."""
    local.connection = connection
    while True:
        first = writes.get()
        if first is None:
            return
        group = first
        stopping = False
        while len(group) < GROUP:
            try:
                more = writes.get_nowait()
            except queue.Empty:
                break
            if more is None:
                stopping = True
                break
            group = group + more
        _answer(group, _commit(connection, group, lock))
        if stopping:
            return


def _commit(
    connection: sqlite3.Connection, group: list[_Write], lock: threading.Lock
) -> list[tuple[bool, Any]]:
    """Run the group's writes in one transaction: each one's (succeeded, result or error).
    ``lock`` is held for one statement or write at a time (``mark`` reads the connection),
    never while the writer waits for the write lock."""
    alone = len(group) == 1  # a write alone: its error is the whole transaction's
    outcomes: list[tuple[bool, Any]] = []
    try:
        _begin(connection, lock)
        for call, _, _ in group:
            with lock:
                if alone:
                    outcomes.append((True, call()))
                    continue
                connection.execute("SAVEPOINT write")
                try:
                    outcomes.append((True, call()))
                except Exception as error:
                    if not connection.in_transaction:
                        raise  # SQLite rolled the whole transaction back: none of it holds
                    connection.execute("ROLLBACK TO write")
                    outcomes.append((False, error))
                connection.execute("RELEASE write")
        with lock:
            connection.execute("COMMIT")
    except BaseException as error:
        # Nothing of the group was committed, and no caller answered: each is told so.
        with lock:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        return [(False, error)] * len(group)
    return outcomes


def _begin(connection: sqlite3.Connection, lock: threading.Lock) -> None:
    """``BEGIN IMMEDIATE`` on the writer's connection (on which SQLite does not wait),
    holding ``lock`` while it runs: tried again while another connection holds the write
    lock, after a pause that doubles from ``FIRST_PAUSE`` to ``LONGEST_PAUSE`` (``lock``
    free meanwhile), for up to ``BUSY_TIMEOUT_MS``; then it fails as SQLite's own wait
    would."""
    pause, deadline = FIRST_PAUSE, None
    while True:
        try:
            with lock:
                connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            now = monotonic()
            if deadline is None:
                deadline = now + BUSY_TIMEOUT_MS / 1000
            elif now >= deadline:
                raise
        sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE)


def _answer(group: list[_Write], outcomes: list[tuple[bool, Any]]) -> None:
    """Wake the callers of a committed group: one call into each event loop awaiting any."""
    loops: dict[asyncio.AbstractEventLoop, list[tuple[_Settled, bool, Any]]] = {}
    for (_, future, loop), (succeeded, outcome) in zip(group, outcomes, strict=True):
        loops.setdefault(loop, []).append((future, succeeded, outcome))
    for loop, settled in loops.items():
        with suppress(RuntimeError):  # a closed loop: nobody awaits these any more
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[_Settled, bool, Any]]) -> None:
    for future, succeeded, outcome in settled:
        if future.done():  # cancelled: the caller went away (the write holds all the same)
            continue
        if succeeded:
            future.set_result(outcome)
        else:
            future.set_exception(outcome)


def _in_turn(last: int, bys: list[int]) -> list[int]:
    """The values a count ending at ``last`` after adding ``bys`` in one go went through, as
    if each had been added in turn."""
    seen, value = [], last - sum(bys)
    for by in bys:
        value += by
        seen.append(value)
    return seen


class SqliteStore:
    """A :class:`~simulator.store.Store` in a SQLite file (see the module's docstring)."""

    def __init__(
        self,
        path: str | Path,
        prefix: str = "",
        *,
        now: Callable[[], datetime] = _never,
        synchronous: str = "off",
        _database: _Database | None = None,
    ) -> None:
        self._db = _database or _Database(Path(path), synchronous)
        self._prefix = prefix
        self._now = now

    @property
    def path(self) -> Path:
        return self._db.path

    @property
    def prefix(self) -> str:
        return self._prefix

    def scoped(self, prefix: str, *, now: Callable[[], datetime] | None = None) -> SqliteStore:
        return SqliteStore(
            self._db.path, f"{self._prefix}{prefix}/", now=now or self._now, _database=self._db
        )

    def close(self) -> None:
        """Close this process's connections to the file (every view's)."""
        self._db.close()

    async def _written(self, call: Callable[[], R], name: str) -> R:
        """``call`` (one write to table ``name``, its full name) on the writer thread; in
        place inside a unit of work, which holds this thread's connection in its
        transaction (and is counted when it ends)."""
        if self._db.connection().in_transaction:
            self._db.wrote(name)
            return call()
        return await self._db.submit(call, name)

    def _live(self, expires_at: int | None) -> bool:
        return expires_at is None or expires_at > _micros(self._now())

    def _sweep(self, connection: sqlite3.Connection, name: str) -> None:
        connection.execute(
            "DELETE FROM records WHERE seq IN (SELECT seq FROM records"
            " WHERE tbl = ? AND expires_at <= ? LIMIT ?)",
            (name, _micros(self._now()), SWEEP),
        )

    def mark(self, table: Table[Any]) -> Hashable:
        """What changes whenever the table may have changed since: SQLite's ``data_version``
        of the writer thread's connection (it moves on each commit of any other connection,
        of this process or another), and the writes this process made (counted when made)
        through its own ones. Waits for at most one write of a group in progress."""
        return self._db.mark(self._prefix + table.name)

    async def read_ahead(self, table: Table[R], key: str, request: str) -> R | None:
        return await self.get(table, key)  # a read costs no round trip: nothing to save

    def read_behind(self) -> None:
        pass

    # -- tables ----------------------------------------------------------------------------

    async def get(self, table: Table[R], key: str) -> R | None:
        """The record, read again only if the table may have changed since it was read last
        (its ``mark`` moved: read before the record, so that a write committed after the
        mark was read moves it again); its expiry judged on the clock at each call. A unit
        of work reads through its transaction, what it wrote included, and keeps nothing."""
        name = self._prefix + table.name
        db = self._db
        connection = db.connection()
        mark = None if connection.in_transaction else db.mark(name)
        if mark is not None:
            held = db.reads.get(name, key, mark)
            if held is not None:
                value, expires_at = held
                return value if value is not None and self._live(expires_at) else None
        row = connection.execute(
            "SELECT value, expires_at FROM records WHERE tbl = ? AND key = ?", (name, key)
        ).fetchone()
        if row is None:
            if mark is not None:
                db.reads.keep(name, key, mark, None, None)
            return None
        text: str = row[0]
        found: R = db.decoded.value(table, f"{name}\x00{key}", text, text)
        if mark is not None:
            db.reads.keep(name, key, mark, found, row[1])
        return found if self._live(row[1]) else None

    async def put(
        self, table: Table[R], key: str, value: R, *, expires_at: datetime | None = None
    ) -> None:
        name = self._prefix + table.name
        data = table.codec.dumps(value)
        at = None if expires_at is None else _micros(expires_at)

        def write() -> None:
            with self._db.writing() as connection:
                self._sweep(connection, name)
                connection.execute(
                    "INSERT INTO records (tbl, key, value, expires_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (tbl, key) DO UPDATE"
                    " SET value = excluded.value, expires_at = excluded.expires_at",
                    (name, key, data, at),
                )

        await self._written(write, name)

    async def put_if_absent(
        self, table: Table[R], key: str, value: R, *, expires_at: datetime | None = None
    ) -> tuple[R, bool]:
        name = self._prefix + table.name
        data = table.codec.dumps(value)
        at = None if expires_at is None else _micros(expires_at)

        def write() -> tuple[R, bool]:
            with self._db.writing() as connection:
                self._sweep(connection, name)
                row = connection.execute(
                    "SELECT value, expires_at FROM records WHERE tbl = ? AND key = ?", (name, key)
                ).fetchone()
                if row is not None and self._live(row[1]):
                    return table.codec.loads(row[0]), False
                if row is not None:  # expired: it goes, and the new record is the newest
                    connection.execute("DELETE FROM records WHERE tbl = ? AND key = ?", (name, key))
                connection.execute(
                    "INSERT INTO records (tbl, key, value, expires_at) VALUES (?, ?, ?, ?)",
                    (name, key, data, at),
                )
                return value, True

        return await self._written(write, name)

    async def update(self, table: Table[R], key: str, change: Callable[[R], R]) -> R | None:
        name = self._prefix + table.name

        def write() -> R | None:
            with self._db.writing() as connection:
                row = connection.execute(
                    "SELECT value, expires_at FROM records WHERE tbl = ? AND key = ?", (name, key)
                ).fetchone()
                if row is None or not self._live(row[1]):
                    return None
                value = change(table.codec.loads(row[0]))
                connection.execute(
                    "UPDATE records SET value = ? WHERE tbl = ? AND key = ?",
                    (table.codec.dumps(value), name, key),
                )
                return value

        return await self._written(write, name)

    async def take(self, table: Table[R], key: str) -> R | None:
        row = await self._removed(table, key)
        if row is None or not self._live(row[1]):
            return None
        return table.codec.loads(row[0])

    async def delete(self, table: Table[R], key: str) -> bool:
        row = await self._removed(table, key)
        return row is not None and self._live(row[1])

    async def _removed(self, table: Table[Any], key: str) -> tuple[str, int | None] | None:
        """Remove the record under ``key`` in one statement: its value and expiry, if any."""
        name = self._prefix + table.name

        def write() -> tuple[str, int | None] | None:
            row: tuple[str, int | None] | None = (
                self._db.connection()
                .execute(
                    "DELETE FROM records WHERE tbl = ? AND key = ? RETURNING value, expires_at",
                    (name, key),
                )
                .fetchone()
            )
            return row

        return await self._written(write, name)

    async def scan(self, table: Table[R], *, after: str | None = None, limit: int = 100) -> Page[R]:
        name = self._prefix + table.name
        start = (
            "-1" if after is None else "(SELECT seq FROM records WHERE tbl = :tbl AND key = :after)"
        )
        rows = (
            self._db.connection()
            .execute(
                "SELECT key, value FROM records WHERE tbl = :tbl"
                " AND (expires_at IS NULL OR expires_at > :now)"
                f" AND seq > {start} ORDER BY seq LIMIT :limit",
                {"tbl": name, "after": after, "now": _micros(self._now()), "limit": limit + 1},
            )
            .fetchall()
        )
        loads = table.codec.loads
        items = [(key, loads(data)) for key, data in rows[:limit]]
        return Page(items, items[-1][0] if len(rows) > limit else None)

    def _aggregate(self, table: Table[Any]) -> tuple[int, int]:
        """(count, total) of the table's live records: its expired ones are swept first,
        found through the expiry index (each once, so the cost is amortised), and then
        the aggregates the triggers keep are one row."""
        name, now = self._prefix + table.name, _micros(self._now())
        connection = self._db.connection()
        expired = connection.execute(
            "SELECT 1 FROM records WHERE tbl = ? AND expires_at <= ? LIMIT 1", (name, now)
        ).fetchone()
        if expired is not None:
            self._db.wrote(name)
            with self._db.writing() as writing:
                writing.execute(
                    "DELETE FROM records WHERE tbl = ? AND expires_at <= ?", (name, now)
                )
        row = connection.execute(
            "SELECT count, total FROM aggregates WHERE tbl = ?", (name,)
        ).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    async def count(self, table: Table[R]) -> int:
        return self._aggregate(table)[0]

    async def total(self, table: Table[int]) -> int:
        return self._aggregate(table)[1]

    async def add(
        self, table: Table[int], key: str, by: int = 1, *, expires_at: datetime | None = None
    ) -> int:
        name = self._prefix + table.name
        if self._db.connection().in_transaction:  # in a unit of work: in its transaction
            self._db.wrote(name)
            return self._add(table, key, by, expires_at)
        # The additions of one pass to one record (requests counted in one rate window):
        # one statement for them all.
        value: int = await self._db.together(
            ("add", name, key, expires_at),
            by,
            lambda bys: self._adds(table, key, bys, expires_at),
            table=name,
        )
        return value

    def _adds(
        self, table: Table[int], key: str, bys: list[int], expires_at: datetime | None
    ) -> list[int]:
        """The additions of one pass, in one statement: the value each caller sees, as if
        each were added in turn (an expired record starts again from the first)."""
        return _in_turn(self._add(table, key, sum(bys), expires_at), bys)

    def _add(self, table: Table[int], key: str, by: int, expires_at: datetime | None) -> int:
        name = self._prefix + table.name
        now = _micros(self._now())
        at = None if expires_at is None else _micros(expires_at)
        connection = self._db.connection()
        # One statement: a live record is added to and keeps its expiry; an expired one
        # starts again from ``by`` with the new expiry (SET reads the row as it was).
        row = connection.execute(
            "INSERT INTO records (tbl, key, value, expires_at) VALUES (:tbl, :key, :by, :at)"
            " ON CONFLICT (tbl, key) DO UPDATE SET"
            " value = CASE WHEN records.expires_at <= :now THEN :by"
            " ELSE CAST(records.value AS INTEGER) + :by END,"
            " expires_at = CASE WHEN records.expires_at <= :now THEN :at"
            " ELSE records.expires_at END"
            " RETURNING value",
            {"tbl": name, "key": key, "by": by, "at": at, "now": now},
        ).fetchone()
        value = int(row[0])
        if value == by and at is not None:  # most likely a new window: sweep the old ones
            self._sweep(connection, name)
        return value

    # -- counters and rings ----------------------------------------------------------------

    def _incr(self, connection: sqlite3.Connection, name: str, by: int) -> int:
        row = connection.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value RETURNING value",
            (name, by),
        ).fetchone()
        return int(row[0])

    async def incr(self, counter: str, by: int = 1) -> int:
        name = self._prefix + counter
        if self._db.connection().in_transaction:  # in a unit of work: in its transaction
            return self._incr(self._db.connection(), name, by)
        value: int = await self._db.together(name, by, lambda bys: self._incrs(name, bys))
        return value

    def _incrs(self, name: str, bys: list[int]) -> list[int]:
        """The increments of one pass, in one statement: the value each caller sees, as if
        each were added in turn."""
        return _in_turn(self._incr(self._db.connection(), name, sum(bys)), bys)

    async def push(self, ring: Table[R], value: R, *, size: int) -> int:
        name = self._prefix + ring.name
        data = ring.codec.dumps_shared(value)
        width = max(1, size)
        if self._db.connection().in_transaction:  # in a unit of work: in its transaction
            return self._push(name, width, [data])[0]
        number: int = await self._db.together(
            (RING_HEAD, name, width), data, lambda values: self._push(name, width, values)
        )
        return number

    def _push(self, name: str, width: int, values: list[Shared]) -> list[int]:
        """Append ``values`` to the ring ``name`` (in one statement, and one for the tails
        they share): their numbers."""
        with self._db.writing() as connection:
            # The ring's last number is a counter under the ring's own name (cleared with it).
            last = self._incr(connection, name + RING_HEAD, len(values))
            first = last - len(values) + 1
            # Only the newest ``width`` of them are kept: the others would be rewritten.
            kept = [
                (number, data)
                for number, data in zip(range(first, last + 1), values, strict=True)
                if number > last - width
            ]
            parts = {data.key: (number, data.tail) for number, data in kept if data.key}
            if parts:
                connection.executemany(
                    "INSERT INTO ring_parts (name, key, last, value) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (name, key) DO UPDATE SET last = excluded.last",
                    ((name, key, number, tail) for key, (number, tail) in parts.items()),
                )
            connection.executemany(
                "INSERT INTO ring_slots (name, slot, number, value, part) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (name, slot) DO UPDATE"
                " SET number = excluded.number, value = excluded.value, part = excluded.part",
                (
                    (name, number % width, number, *_apart(data.head, data.tail, data.key))
                    for number, data in kept
                ),
            )
            db = self._db
            if db.ring_sizes.get(name) != width:
                db.ring_sizes[name] = width
                db.loose_rings.add(name)
            if last // width != (first - 1) // width or name in db.loose_rings:
                # Values in slots no push writes now (pushed with another size, or restored)
                # go once older than the newest ``size``: at each push while this process
                # knows of such, and once a turn for those another process left.
                connection.execute(
                    "DELETE FROM ring_slots WHERE name = ? AND number <= ?",
                    (name, last - width),
                )
                connection.execute(
                    "DELETE FROM ring_parts WHERE name = ? AND last <= ?", (name, last - width)
                )
                if name in db.loose_rings:
                    left = connection.execute(
                        "SELECT 1 FROM ring_slots WHERE name = ? AND (slot < 0 OR slot >= ?)"
                        " LIMIT 1",
                        (name, width),
                    ).fetchone()
                    if left is None:
                        db.loose_rings.discard(name)
            return list(range(first, last + 1))

    async def recent(self, ring: Table[R], *, after: int = 0) -> list[tuple[int, R]]:
        rows = (
            self._db.connection()
            .execute(
                f"SELECT s.number, s.value, p.value FROM {RING_VALUES}"
                " WHERE s.name = ? AND s.number > ? ORDER BY s.number",
                (self._prefix + ring.name, after),
            )
            .fetchall()
        )
        loads = ring.codec.loads
        return [(int(number), loads(_whole(head, tail))) for number, head, tail in rows]

    # -- the whole view --------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Store]:
        with self._db.writing():
            yield self

    async def clear(self) -> None:
        low, high = self._prefix, self._prefix + TOP
        self._db.wipes += 1
        with self._db.writing() as connection:
            tables = (
                ("records", "tbl"),
                ("aggregates", "tbl"),
                ("counters", "name"),
                ("ring_slots", "name"),
                ("ring_parts", "name"),
            )
            for table, column in tables:
                connection.execute(
                    f"DELETE FROM {table} WHERE {column} >= ? AND {column} < ?", (low, high)
                )

    async def snapshot(self) -> Snapshot:
        prefix, cut = self._prefix, len(self._prefix)
        low, high = prefix, prefix + TOP
        connection = self._db.connection()
        with self._db.writing():  # one consistent reading of the whole view
            rows = connection.execute(
                "SELECT tbl, key, value, expires_at FROM records WHERE tbl >= ? AND tbl < ?"
                " AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq",
                (low, high, _micros(self._now())),
            ).fetchall()
            counters = connection.execute(
                "SELECT name, value FROM counters WHERE name >= ? AND name < ?", (low, high)
            ).fetchall()
            rings = connection.execute(
                f"SELECT s.name, s.number, s.value, p.value FROM {RING_VALUES}"
                " WHERE s.name >= ? AND s.name < ? ORDER BY s.name, s.number",
                (low, high),
            ).fetchall()
        heads = {name: value for name, value in counters if name.endswith(RING_HEAD)}
        ring_data: dict[str, Any] = {
            name.removesuffix(RING_HEAD)[cut:]: {"last": last, "values": []}
            for name, last in heads.items()
        }
        for name, number, head, tail in rings:
            ring_data[name[cut:]]["values"].append([number, stored_data(_whole(head, tail))])
        return {
            "records": [
                [tbl[cut:], key, stored_data(value), None if at is None else _instant(at)]
                for tbl, key, value, at in rows
            ],
            "counters": {n[cut:]: v for n, v in counters if not n.endswith(RING_HEAD)},
            "rings": ring_data,
        }

    async def restore(self, data: Snapshot) -> None:
        prefix = self._prefix
        self._db.wipes += 1
        with self._db.writing() as connection:
            await self.clear()
            connection.executemany(
                "INSERT INTO records (tbl, key, value, expires_at) VALUES (?, ?, ?, ?)",
                (
                    (prefix + t, k, json.dumps(v), None if at is None else _micros(parse_iso(at)))
                    for t, k, v, at in data.get("records", [])
                ),
            )
            counters = dict(data.get("counters", {}))
            for name, ring in data.get("rings", {}).items():
                counters[name + RING_HEAD] = ring["last"]
                self._db.loose_rings.add(prefix + name)
                connection.executemany(
                    # Below zero, where no push writes, until newer values push them out.
                    "INSERT INTO ring_slots (name, slot, number, value) VALUES (?, ?, ?, ?)",
                    ((prefix + name, -int(n), int(n), json.dumps(v)) for n, v in ring["values"]),
                )
            connection.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?)",
                ((prefix + name, int(value)) for name, value in counters.items()),
            )


# A ring's values (``s``) with the tails they share (``p``).
RING_VALUES = "ring_slots AS s LEFT JOIN ring_parts AS p ON p.name = s.name AND p.key = s.part"


def _apart(head: str | bytes, tail: bytes, key: bytes) -> tuple[str | bytes, bytes | None]:
    """What a ring's slot holds of a value (see :class:`Shared`): its head and the key of
    the tail it shares; or all of it, and no key, when it shares none."""
    if key:
        return head, key
    return _whole(head, tail or None), None


def _whole(head: str | bytes, tail: bytes | None) -> str | bytes:
    """A ring's value: its head, then the tail it shares with others (kept apart), if any."""
    if tail is None:
        return head
    assert isinstance(head, bytes)  # only framed values (bytes) share tails
    return head + tail


def _instant(micros: int) -> str:
    return (EPOCH + micros * MICROSECOND).isoformat()
