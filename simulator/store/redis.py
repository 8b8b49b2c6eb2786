"""The Redis backend: state shared by any number of processes and hosts on one Redis.

Built on redis-py's asyncio client with a :class:`~redis.asyncio.BlockingConnectionPool`.

- **One round trip per call.** ``get`` is a ``GET``, ``incr`` an ``INCRBY``, ``push`` an
  ``XADD``, ``recent`` an ``XRANGE``; ``put``, ``put_if_absent``, ``take``, ``delete``,
  ``scan``, ``count`` and ``total`` are each one Lua script (``EVALSHA``), so each is atomic: of any
  number of processes taking one record exactly one gets it. ``update`` is a read, the pure
  ``change``, then a compare-and-set script (written only if the record's SHA-1 is still the
  one read): two round trips, tried again (calling ``change`` again) when another client
  wrote the record in between.
- **Calls made together share their round trip.** A call made while no exchange of its
  event loop is in flight goes at once; the calls made while one is in flight wait for it to
  end, then go to Redis together: one write, one pipeline (no MULTI) whose replies are read
  in order, each caller handed its own as soon as they are read (and its own error reply,
  raised to it alone). A caller's commands stay together and in order, and each script is
  atomic by itself as before; under load a round trip serves many requests, and a call
  alone costs what it did. A call that waits awaits the future its reply goes to, and no
  coroutine of the store's.
- **Read ahead.** Before each request the app reads the shared state (clock, options);
  that read also fetches, in the same pipeline, the records the last answer to the same
  request (method, path, query) read, and the request's ``get`` takes each from there once
  (a write of the request to one drops it; a transaction drops them all). Read after the
  request came, they are as fresh as a read of their own: a poll makes one round trip less.
- **Decoded once.** A record read again unchanged (compared by its stored bytes) is not
  decoded again: its frozen value is handed out again, as the memory backend does.
- **Keys.** Every key starts with the store's namespace (``bulksim:`` by default) and the
  view's prefix (``deepvue/``, ...). A table ``T`` is the records ``T#r:<key>`` (strings),
  its insertion order ``T#o`` and its expiry instants ``T#x`` (sorted sets), and ``T#n``, the
  insertion counter, and ``T#t``, the running sum of its values that are integers (kept by
  every script that writes or deletes a record, so that ``total`` reads one key); a counter
  is ``<name>#c``; a ring is the stream ``<name>#s``, capped at its size (``MAXLEN``), whose
  entry ids ``0-1``, ``0-2``, ... are the values' numbers.
- **Expiry on the simulator's clock.** A record is stored as ``<expires_at>|<json>``
  (``expires_at`` in microseconds since the epoch, empty for never) and judged against the
  view's ``now``, which the scripts are handed; Redis's own expiry (wall time) is never used,
  since a manual clock may stand days away from the wall clock. Expired records are deleted
  by the sweep that ``count``, ``total`` and ``scan`` run first (a provider's caps count before
  each insert), which keeps memory bounded by those caps. ``count`` is the order set's
  size and ``total`` the running sum: neither reads the records.
- **Transactions** (``async with store.transaction() as tx``) hold a lock in Redis (redis-py's
  :class:`~redis.asyncio.lock.Lock`, one for the whole namespace, released after
  ``LOCK_SECONDS`` if its holder dies) for their duration: transactions exclude one another
  across every process, and each call inside one is still atomic by itself. Calls made
  outside a transaction do not wait for the lock, as with the memory backend, and a process
  that dies inside a transaction leaves the writes it made so far.
- **Failures.** A lost or unreachable Redis raises :class:`~simulator.store.StoreUnavailable`
  from the call, to every caller of the round trip that found it lost and to those waiting
  behind it (the app answers it with the provider's 503); the connections kept idle are
  closed with it and the next call opens a new one, so the simulator recovers on its own
  when Redis returns.
- **Event loops.** Connections belong to the event loop that opened them, so each loop gets
  its own client, closed when that loop shuts down (or by :meth:`RedisStore.aclose`).

Records are stored as JSON through their table's codec, or as the bytes a codec that frames
its values gives (the journal's: bodies kept as bytes).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, ParamSpec, TypeVar, cast

import redis
import redis.asyncio as aioredis
from hiredis import pack_command
from redis.asyncio.lock import Lock
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from simulator.clock import parse_iso
from simulator.store.base import (
    Decoded,
    Page,
    Snapshot,
    Store,
    StoreUnavailable,
    Table,
    stored_data,
)

__all__ = ["RedisStore", "open_redis"]

R = TypeVar("R")
P = ParamSpec("P")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
NAMESPACE = "bulksim:"
# A transaction's lock is released by Redis this long after its holder stopped extending it.
LOCK_SECONDS = 30.0
MINIMUM_VERSION = (7, 0)  # XADD with an explicit 0-* id
# Connections each event loop keeps between calls, out of the pool's (see _Clients._exchange).
KEPT = 8
# How long a command (or a pipeline) may wait for Redis's reply.
SOCKET_TIMEOUT = 5.0

UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)

# Shared by the scripts: a record "<expires_at>|<json>" is expired at ``now``.
_EXPIRED = """
local function expired(record, now)
  local bar = string.find(record, '|', 1, true)
  local at = string.sub(record, 1, bar - 1)
  return at ~= '' and tonumber(at) <= tonumber(now)
end
"""

# A record's value as an integer (a table of sizes' bytes), as text for INCRBY; nil when it
# is not one.
_AMOUNT = """
local function amount(record)
  local bar = string.find(record, '|', 1, true)
  local text = string.sub(record, bar + 1)
  if string.match(text, '^%-?%d+$') then return text end
  return nil
end
local function adjust(total, record, sign)
  local found = amount(record)
  if found then redis.call(sign > 0 and 'INCRBY' or 'DECRBY', total, found) end
end
"""

# KEYS: record, order, expiry, sequence, total. ARGV: key, record.
_WRITE = """
local function write(keys, key, record)
  local old = redis.call('GET', keys[1])
  if old then adjust(keys[5], old, -1) end
  redis.call('SET', keys[1], record)
  adjust(keys[5], record, 1)
  if not redis.call('ZSCORE', keys[2], key) then
    redis.call('ZADD', keys[2], redis.call('INCR', keys[4]), key)
  end
  local bar = string.find(record, '|', 1, true)
  local at = string.sub(record, 1, bar - 1)
  if at == '' then
    redis.call('ZREM', keys[3], key)
  else
    redis.call('ZADD', keys[3], at, key)
  end
end
"""

PUT = (
    _AMOUNT
    + _WRITE
    + """
write(KEYS, ARGV[1], ARGV[2])
return 1
"""
)

# KEYS: record, order, expiry, sequence, total. ARGV: key, record, now. The live record held,
# or nil.
PUT_IF_ABSENT = (
    _EXPIRED
    + _AMOUNT
    + _WRITE
    + """
local held = redis.call('GET', KEYS[1])
if held then
  if not expired(held, ARGV[3]) then return held end
  redis.call('ZREM', KEYS[2], ARGV[1])
end
write(KEYS, ARGV[1], ARGV[2])
return false
"""
)

# KEYS: record. ARGV: the SHA-1 of the record as it was read, the record to write in its
# place. Written (1) only if the record is still the one read, else 0 (read it again).
SWAP = (
    _AMOUNT
    + """
local held = redis.call('GET', KEYS[1])
if not held or redis.sha1hex(held) ~= ARGV[1] then return 0 end
adjust(KEYS[2], held, -1)
redis.call('SET', KEYS[1], ARGV[2])
adjust(KEYS[2], ARGV[2], 1)
return 1
"""
)

# KEYS: record, order, expiry, total. ARGV: key, now. The live record removed, or nil.
TAKE = (
    _EXPIRED
    + _AMOUNT
    + """
local held = redis.call('GET', KEYS[1])
if not held then return false end
adjust(KEYS[4], held, -1)
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if expired(held, ARGV[2]) then return false end
return held
"""
)

# KEYS: order, expiry, total. ARGV: the records' key prefix, now. Deletes the expired records
# (each once: found through the expiry set) and takes them off the total.
_SWEEP = (
    _AMOUNT
    + """
local function sweep(order, expiry, records, now, total)
  local gone = redis.call('ZRANGEBYSCORE', expiry, '-inf', now)
  for _, key in ipairs(gone) do
    local held = redis.call('GET', records .. key)
    if held then adjust(total, held, -1) end
    redis.call('DEL', records .. key)
    redis.call('ZREM', order, key)
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', expiry, '-inf', now) end
end
"""
)

# KEYS: record, order, expiry, sequence, total. ARGV: key, by, expires_at ('' for never),
# now, the records' key prefix. Adds ``by`` to a live int record (which keeps its expiry);
# an absent or expired one starts again from ``by``, after the table's expired records are
# swept. The new value.
ADD = (
    _EXPIRED
    + _SWEEP
    + _WRITE
    + """
local held = redis.call('GET', KEYS[1])
if held and not expired(held, ARGV[4]) then
  local bar = string.find(held, '|', 1, true)
  local value = tonumber(string.sub(held, bar + 1)) + tonumber(ARGV[2])
  redis.call('SET', KEYS[1], string.sub(held, 1, bar) .. string.format('%d', value))
  redis.call('INCRBY', KEYS[5], ARGV[2])
  return value
end
sweep(KEYS[2], KEYS[3], ARGV[5], ARGV[4], KEYS[5])
if held then redis.call('ZREM', KEYS[2], ARGV[1]) end
write(KEYS, ARGV[1], ARGV[3] .. '|' .. ARGV[2])
return tonumber(ARGV[2])
"""
)

COUNT = (
    _SWEEP
    + """
sweep(KEYS[1], KEYS[2], ARGV[1], ARGV[2], KEYS[3])
return redis.call('ZCARD', KEYS[1])
"""
)

# The sum of the live values of a table of ints (each record "<expires_at>|<int>"): the
# running total the writes keep, read once the expired records are swept.
TOTAL = (
    _SWEEP
    + """
sweep(KEYS[1], KEYS[2], ARGV[1], ARGV[2], KEYS[3])
return tonumber(redis.call('GET', KEYS[3]) or '0')
"""
)

# ARGV: records' key prefix, now, after ('' for the start), limit. Flat key, record pairs.
SCAN = (
    _SWEEP
    + """
sweep(KEYS[1], KEYS[2], ARGV[1], ARGV[2], KEYS[3])
local start = '-inf'
if ARGV[3] ~= '' then
  local score = redis.call('ZSCORE', KEYS[1], ARGV[3])
  if not score then return {} end
  start = '(' .. score
end
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], start, '+inf', 'LIMIT', 0, ARGV[4])
local out = {}
for _, key in ipairs(keys) do
  local record = redis.call('GET', ARGV[1] .. key)
  if record then
    out[#out + 1] = key
    out[#out + 1] = record
  end
end
return out
"""
)


def _micros(instant: datetime) -> int:
    return (instant - EPOCH) // MICROSECOND


def _never() -> datetime:
    return datetime.min.replace(tzinfo=UTC)


def _guarded(call: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """A lost or unreachable Redis becomes :class:`StoreUnavailable`."""

    @wraps(call)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await call(*args, **kwargs)
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    return guarded


# A caller's commands, where their replies go, and whether the caller wants the one reply
# of its one command (``call``) rather than the list of them (``call_many``).
_Queued = tuple[list[tuple[Any, ...]], "asyncio.Future[Any]", bool]


@dataclass
class _Line:
    """One event loop's way to Redis (see ``_Clients.call_many``)."""

    busy: bool = False  # an exchange is in flight
    waiting: list[_Queued] = field(default_factory=list)  # the calls that go next, together
    # The loop's clients (see ``_Clients._held``), once built.
    clients: tuple[aioredis.Redis, aioredis.Redis] | None = None
    idle: list[Any] = field(default_factory=list)  # connections kept between calls


@dataclass
class _Clients:
    """One client per event loop (redis-py's connections belong to the loop that opened them),
    each closed when its loop shuts down its async generators (as ``asyncio.run`` does)."""

    url: str
    max_connections: int
    pool_timeout: float
    # Per loop, what closes its clients when the loop shuts down.
    by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    # Per loop, its clients, the connections kept between calls (see ``_exchange``), whether
    # an exchange is in flight and the calls waiting for it to end.
    lines_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Line] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    senders: set[asyncio.Task[None]] = field(default_factory=set)
    # The loop that called last and its line: found again without a weak mapping's lookup
    # (three a call, before), which cost about as much as packing the command.
    _last: tuple[weakref.ref[asyncio.AbstractEventLoop], _Line] | None = None

    def _line(self) -> _Line:
        """The running loop's line."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0]() is loop:
            return last[1]
        line = self.lines_by_loop.get(loop)
        if line is None:
            line = self.lines_by_loop[loop] = _Line()
        self._last = (weakref.ref(loop), line)
        return line

    def build(self, socket_timeout: float | None = SOCKET_TIMEOUT) -> aioredis.Redis:
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=self.max_connections,
            timeout=self.pool_timeout,
            socket_connect_timeout=2.0,
            socket_timeout=socket_timeout,
            # A connection Redis dropped (it restarted) is opened again, once, at once.
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 2),
        )
        return aioredis.Redis.from_pool(pool)  # closing the client closes the pool

    async def get(self) -> aioredis.Redis:
        found: aioredis.Redis = (await self._held())[0]
        return found

    async def _held(self) -> tuple[aioredis.Redis, aioredis.Redis]:
        """This loop's client, and the one ``call_many`` takes its connections from: without
        redis-py's own socket timeout (which costs a task per command sent), since
        ``call_many`` puts one deadline on its whole exchange."""
        line = self._line()
        return line.clients or await self._build(line)

    async def _build(self, line: _Line) -> tuple[aioredis.Redis, aioredis.Redis]:
        holder = self._hold(self.build(), self.build(socket_timeout=None))
        clients = await anext(holder)
        if line.clients is not None:  # built meanwhile by another call of the loop
            await holder.aclose()
            return line.clients
        self.by_loop[asyncio.get_running_loop()] = holder
        line.clients = clients
        return clients

    def call(self, *args: Any) -> Awaitable[Any]:
        """One command and its reply (see :meth:`call_many`)."""
        return self._send([args], True)

    def call_many(self, commands: list[tuple[Any, ...]]) -> Awaitable[list[Any]]:
        """Several commands and their replies, in order; an error reply among them is raised
        (to this caller alone) once all of its replies were read. A lost or unreachable
        Redis raises :class:`StoreUnavailable`.

        When no exchange of this event loop is in flight, the commands go at once, sent by
        the caller itself. Otherwise they wait for it to end; then all the commands that
        waited go together: one write, one pipeline without MULTI, whose replies are read
        in order and handed to each caller as soon as its own are read (see :meth:`_drain`).
        A caller's commands stay together and in their order; each script stays atomic by
        itself, as with a round trip of its own.

        A call that waits is handed the future its reply goes to, to await, and no coroutine
        of its own: most calls wait, under load.
        """
        return self._send(commands, False)

    def _send(self, commands: list[tuple[Any, ...]], one: bool) -> Awaitable[Any]:
        line = self._line()
        if line.busy:
            answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            line.waiting.append((commands, answer, one))
            return answer
        return self._alone(line, commands, one)

    async def _alone(self, line: _Line, commands: list[tuple[Any, ...]], one: bool) -> Any:
        """The commands sent at once (no exchange of the loop in flight)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        line.busy = True
        try:
            await self._exchange([(commands, answer, one)])
        except UNAVAILABLE as exc:
            self._fail(line.waiting, exc)  # sent after it, they would find Redis lost too
            line.waiting = []
            raise StoreUnavailable(f"redis: {exc}") from exc
        finally:
            self._next(loop, line)
        return answer.result()

    def _next(self, loop: asyncio.AbstractEventLoop, line: _Line) -> None:
        """The exchange in flight ended: the calls that waited for it go next."""
        if not line.waiting:
            line.busy = False
            return
        sender = loop.create_task(self._drain(line))
        self.senders.add(sender)
        sender.add_done_callback(self.senders.discard)

    async def _drain(self, line: _Line) -> None:
        """Send the calls waiting, all in one exchange, then those that waited meanwhile, and
        so on until none wait; a lost Redis fails each of them with
        :class:`StoreUnavailable`, every other error only the calls of its exchange."""
        calls: list[_Queued] = []
        try:
            while line.waiting:
                calls = [call for call in line.waiting if not call[1].done()]
                line.waiting = []
                try:
                    await self._exchange(calls)
                except Exception as exc:
                    if isinstance(exc, UNAVAILABLE):
                        calls += line.waiting
                        line.waiting = []
                    self._fail(calls, exc)
        except BaseException:  # cancelled: the loop is closing
            for _, answer, _ in calls + line.waiting:
                answer.cancel()
            line.waiting = []
            raise
        finally:
            line.busy = False

    @staticmethod
    def _fail(calls: list[_Queued], exc: Exception) -> None:
        """Each call not answered yet fails with ``exc`` (a lost Redis: with a
        :class:`StoreUnavailable` of its own)."""
        for _, answer, _ in calls:
            if answer.done():
                continue
            if isinstance(exc, UNAVAILABLE):
                failed = StoreUnavailable(f"redis: {exc}")
                failed.__cause__ = exc
                answer.set_exception(failed)
            else:
                answer.set_exception(exc)

    async def _exchange(self, calls: list[_Queued], *, fresh: bool = False) -> None:
        """One round trip for all ``calls``, on a connection kept between exchanges: one
        deadline for the whole of it (redis-py would start one per read).

        Taking a connection from the pool and giving it back costs about as much CPU as a
        command itself (the pool's lock, its timeout, and a check that nothing is left to
        read on the socket). A connection kept here has nothing left to read by
        construction: it is kept only once every reply was read, and closed on any other way
        out (cancelled, lost). At most ``KEPT`` wait here; the others go back to the pool.
        """
        line = self._line()
        client = (line.clients or await self._build(line))[1]
        idle = line.idle
        pool: Any = client.connection_pool
        reused = bool(idle) and not fresh
        if reused:
            connection = idle.pop()
        else:
            async with asyncio.timeout(SOCKET_TIMEOUT):  # the handshake of a new one too
                connection = await pool.get_connection()
        answered = 0
        try:
            async with asyncio.timeout(SOCKET_TIMEOUT):
                packed = [pack_command(command) for commands, _, _ in calls for command in commands]
                await connection.send_packed_command(packed, check_health=False)  # one write
                for commands, answer, one in calls:
                    replies = []
                    failed: ResponseError | None = None
                    for _ in commands:
                        try:
                            replies.append(await connection.read_response(timeout=math.inf))
                        except ResponseError as exc:  # an error reply, read whole
                            failed = failed or exc
                            replies.append(None)
                    answered += 1
                    if answer.done():  # its caller was cancelled meanwhile
                        continue
                    if failed is not None:
                        answer.set_exception(failed)
                    else:
                        answer.set_result(replies[0] if one else replies)
        except BaseException as exc:
            await connection.disconnect(nowait=True)
            await pool.release(connection)
            if isinstance(exc, UNAVAILABLE):
                await self._lost(idle, pool)
            if reused and isinstance(exc, UNAVAILABLE) and answered < len(calls):
                # Kept while Redis went away: once more on a new one, as redis-py retries.
                await self._exchange(calls[answered:], fresh=True)
                return
            raise
        if len(idle) < KEPT:
            idle.append(connection)
        else:
            await pool.release(connection)

    async def _lost(self, idle: list[Any], pool: Any) -> None:
        """Redis was lost: the connections this loop keeps idle (here and in the other
        client's pool) were lost with it. Closed, so that the next call opens new ones
        instead of failing once on each."""
        while idle:
            connection = idle.pop()
            await connection.disconnect(nowait=True)
            await pool.release(connection)
        other: Any = (await self._held())[0].connection_pool
        await other.disconnect(inuse_connections=False)

    @staticmethod
    async def _hold(
        client: aioredis.Redis, hot: aioredis.Redis
    ) -> AsyncGenerator[tuple[aioredis.Redis, aioredis.Redis]]:
        try:
            yield client, hot
        finally:
            await hot.aclose()
            await client.aclose()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        line = self.lines_by_loop.get(loop)
        if line is not None:
            line.idle = []  # closed with the pool
            line.clients = None
        held = self.by_loop.pop(loop, None)
        if held is not None:
            await held.aclose()


@dataclass
class _Root:
    clients: _Clients
    namespace: str
    scripts: dict[str, str] = field(default_factory=dict)  # by name, its SHA-1
    # Per request (method, path and query), the records its last answer read (see
    # ``read_ahead``), the newest ``PREDICTED`` requests' kept.
    predicted: dict[str, tuple[str, ...]] = field(default_factory=dict)
    decoded: Decoded = field(default_factory=Decoded)


@dataclass
class _Ahead:
    """One request's records read ahead, with the shared state, before it was answered."""

    task: asyncio.Task[Any] | None
    request: str
    fetched: dict[str, bytes | None] = field(default_factory=dict)
    # The records the request read (ahead or not), in order: what to read ahead next time.
    read: list[str] = field(default_factory=list)


# The request being answered in this task, if its records were read ahead.
_AHEAD: ContextVar[_Ahead | None] = ContextVar("bulksim_redis_ahead", default=None)
PREDICTED = 4096


class RedisStore:
    """A :class:`~simulator.store.Store` on a Redis server (``redis://host:port/db``)."""

    def __init__(
        self,
        url: str,
        prefix: str = "",
        *,
        now: Callable[[], datetime] = _never,
        namespace: str = NAMESPACE,
        max_connections: int = 64,
        pool_timeout: float = 5.0,
        _root: _Root | None = None,
        _locked: bool = False,
    ) -> None:
        self._root = _root or _Root(_Clients(url, max_connections, pool_timeout), namespace)
        self._url = url
        self._prefix = prefix
        self._now = now
        self._base = self._root.namespace + prefix
        self._locked = _locked

    @classmethod
    def from_url(cls, url: str, *, namespace: str = NAMESPACE) -> RedisStore:
        """The store on the Redis ``url`` names, checked now: one clear error if unreachable."""
        try:
            probe = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=5.0)
        except ValueError as exc:
            raise StoreUnavailable(f"store {url!r} is not a Redis URL: {exc}") from None
        try:
            version = str(probe.info("server")["redis_version"])
        except redis.RedisError as exc:
            raise StoreUnavailable(f"store {url!r}: cannot reach Redis: {exc}") from None
        finally:
            probe.close()
        found = tuple(int(part) for part in version.split(".")[:2])
        if found < MINIMUM_VERSION:
            wanted = ".".join(map(str, MINIMUM_VERSION))
            raise StoreUnavailable(f"store {url!r}: Redis {version} is too old; {wanted} or later")
        return cls(url, namespace=namespace)

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def url(self) -> str:
        return self._url

    def scoped(self, prefix: str, *, now: Callable[[], datetime] | None = None) -> RedisStore:
        return RedisStore(
            self._url,
            f"{self._prefix}{prefix}/",
            now=now or self._now,
            _root=self._root,
            _locked=self._locked,
        )

    async def aclose(self) -> None:
        """Close the connections this event loop opened (others close with their loop)."""
        await self._root.clients.aclose()

    # -- helpers ---------------------------------------------------------------------------

    def _at_now(self) -> int:
        return _micros(self._now())

    def _keys(self, table: Table[Any], key: str) -> list[str]:
        base = self._base + table.name
        return [f"{base}#r:{key}", f"{base}#o", f"{base}#x", f"{base}#n", f"{base}#t"]

    @staticmethod
    def _encode(table: Table[R], value: R, expires_at: datetime | None) -> str:
        at = "" if expires_at is None else str(_micros(expires_at))
        return at + "|" + table.codec.dumps(value)

    def _decode(self, table: Table[R], record: bytes, name: str | None = None) -> R | None:
        """The record's value, or None when it has expired on the clock; with ``name`` (its
        key), not decoded again when read unchanged."""
        at, _, data = record.partition(b"|")
        if at and int(at) <= self._at_now():
            return None
        if name is None:
            return table.codec.loads(data)
        return self._root.decoded.value(table, name, record, data)

    async def _script(self, name: str, source: str, keys: list[str], args: list[Any]) -> Any:
        clients = self._root.clients
        sha = self._root.scripts.get(name)
        if sha is None:
            sha = self._root.scripts[name] = hashlib.sha1(source.encode()).hexdigest()
        try:
            return await clients.call("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:  # not loaded on this server yet (or since it restarted)
            load = ("SCRIPT", "LOAD", source)
            return (await clients.call_many([load, ("EVALSHA", sha, len(keys), *keys, *args)]))[1]

    # -- tables ----------------------------------------------------------------------------

    async def get(self, table: Table[R], key: str) -> R | None:
        name = f"{self._base}{table.name}#r:{key}"
        ahead = _AHEAD.get()
        record: bytes | None
        if ahead is not None and ahead.task is asyncio.current_task():
            ahead.read.append(name)
            if name in ahead.fetched:  # read after the request came, with the shared state
                record = ahead.fetched.pop(name)
                return None if record is None else self._decode(table, record, name)
        record = await self._root.clients.call("GET", name)
        return None if record is None else self._decode(table, record, name)

    def mark(self, table: Table[Any]) -> None:
        return None  # another process's write is seen only by reading

    async def read_ahead(self, table: Table[R], key: str, request: str) -> R | None:
        """``get``, and in the same round trip the records the last answer to ``request``
        read (a poll reads the same ones each time), which this request's ``get`` then
        takes from there, once each: read after the request came, they are as fresh as
        the shared state read with them. A write of this request to one of them drops it
        (see ``_wrote``). :meth:`read_behind` ends the request and learns what it read."""
        name = f"{self._base}{table.name}#r:{key}"
        names = self._root.predicted.get(request, ())
        ahead = _Ahead(asyncio.current_task(), request)
        _AHEAD.set(ahead)
        if not names:
            record: bytes | None = await self._root.clients.call("GET", name)
        else:
            replies = await self._root.clients.call_many(
                [("GET", name), *(("GET", other) for other in names)]
            )
            record = replies[0]
            ahead.fetched = dict(zip(names, replies[1:], strict=True))
        return None if record is None else self._decode(table, record, name)

    def read_behind(self) -> None:
        """The request is answered: what it read is what to read ahead for it next time."""
        ahead = _AHEAD.get()
        if ahead is None or ahead.task is not asyncio.current_task():
            return
        _AHEAD.set(None)
        predicted = self._root.predicted
        read = tuple(dict.fromkeys(ahead.read))
        if predicted.get(ahead.request) != read:
            predicted.pop(ahead.request, None)
            if read:
                predicted[ahead.request] = read
                if len(predicted) > PREDICTED:
                    del predicted[next(iter(predicted))]

    @staticmethod
    def _wrote(name: str | None = None) -> None:
        """This request wrote the record ``name`` (None: maybe any): not read ahead now."""
        ahead = _AHEAD.get()
        if ahead is not None and ahead.fetched:
            if name is None:
                ahead.fetched.clear()
            else:
                ahead.fetched.pop(name, None)

    async def put(
        self, table: Table[R], key: str, value: R, *, expires_at: datetime | None = None
    ) -> None:
        record = self._encode(table, value, expires_at)
        keys = self._keys(table, key)
        self._wrote(keys[0])
        await self._script("put", PUT, keys, [key, record])

    async def put_if_absent(
        self, table: Table[R], key: str, value: R, *, expires_at: datetime | None = None
    ) -> tuple[R, bool]:
        record = self._encode(table, value, expires_at)
        args = [key, record, self._at_now()]
        self._wrote(self._keys(table, key)[0])
        held = await self._script("put_if_absent", PUT_IF_ABSENT, self._keys(table, key), args)
        if held is None:
            return value, True
        return table.codec.loads(held.partition(b"|")[2]), False

    @_guarded
    async def update(self, table: Table[R], key: str, change: Callable[[R], R]) -> R | None:
        client = await self._root.clients.get()
        name = self._keys(table, key)[0]
        self._wrote(name)
        while True:
            record = cast(bytes | None, await client.get(name))
            value = None if record is None else self._decode(table, record)
            if value is None or record is None:
                return None
            changed = change(value)
            at = record.partition(b"|")[0].decode()
            expires_at = EPOCH + int(at) * MICROSECOND if at else None
            args = [hashlib.sha1(record).hexdigest(), self._encode(table, changed, expires_at)]
            total = self._keys(table, "")[4]
            if await self._script("swap", SWAP, [name, total], args):
                return changed

    async def take(self, table: Table[R], key: str) -> R | None:
        args = [key, self._at_now()]
        name, order, expiry, _, total = self._keys(table, key)
        self._wrote(name)
        record = await self._script("take", TAKE, [name, order, expiry, total], args)
        if record is None:
            return None
        return table.codec.loads(record.partition(b"|")[2])

    async def delete(self, table: Table[R], key: str) -> bool:
        args = [key, self._at_now()]
        name, order, expiry, _, total = self._keys(table, key)
        self._wrote(name)
        return await self._script("take", TAKE, [name, order, expiry, total], args) is not None

    async def scan(self, table: Table[R], *, after: str | None = None, limit: int = 100) -> Page[R]:
        records, order, expiry, _, total = self._keys(table, "")
        args = [records, self._at_now(), "" if after is None else after, max(0, limit) + 1]
        flat = await self._script("scan", SCAN, [order, expiry, total], args)
        found = [
            (flat[i].decode(), table.codec.loads(flat[i + 1].partition(b"|")[2]))
            for i in range(0, len(flat), 2)
        ]
        items = found[:limit]
        return Page(items, items[-1][0] if len(found) > limit and items else None)

    async def count(self, table: Table[R]) -> int:
        records, order, expiry, _, total = self._keys(table, "")
        counted: int = await self._script(
            "count", COUNT, [order, expiry, total], [records, self._at_now()]
        )
        return counted

    async def total(self, table: Table[int]) -> int:
        records, order, expiry, _, total = self._keys(table, "")
        summed: int = await self._script(
            "total", TOTAL, [order, expiry, total], [records, self._at_now()]
        )
        return summed

    async def add(
        self, table: Table[int], key: str, by: int = 1, *, expires_at: datetime | None = None
    ) -> int:
        keys = self._keys(table, key)
        self._wrote(keys[0])
        at = "" if expires_at is None else str(_micros(expires_at))
        args = [key, int(by), at, self._at_now(), self._keys(table, "")[0]]
        value: int = await self._script("add", ADD, keys, args)
        return value

    # -- counters and rings ----------------------------------------------------------------

    async def incr(self, counter: str, by: int = 1) -> int:
        value: int = await self._root.clients.call("INCRBY", f"{self._base}{counter}#c", by)
        return value

    async def push(self, ring: Table[R], value: R, *, size: int) -> int:
        data = ring.codec.dumps(value)
        name = f"{self._base}{ring.name}#s"
        number: bytes = await self._root.clients.call(
            "XADD", name, "MAXLEN", max(1, size), "0-*", "v", data
        )
        return int(number.partition(b"-")[2])

    @_guarded
    async def recent(self, ring: Table[R], *, after: int = 0) -> list[tuple[int, R]]:
        client = await self._root.clients.get()
        name = f"{self._base}{ring.name}#s"
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(  # type: ignore[assignment]
            name, min=f"0-{max(0, after) + 1}"
        )
        return [
            (int(number.partition(b"-")[2]), ring.codec.loads(fields[b"v"]))
            for number, fields in entries
        ]

    # -- the whole view --------------------------------------------------------------------

    def _lock_name(self) -> str:
        return self._root.namespace.rstrip(":") + "#transaction"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Store]:
        if self._locked:
            yield self
            return
        self._wrote()
        lock = await self._lock()
        try:
            yield RedisStore(self._url, self._prefix, now=self._now, _root=self._root, _locked=True)
        finally:
            await self._release(lock)

    @_guarded
    async def _lock(self) -> Lock:
        client = await self._root.clients.get()
        lock = Lock(
            client,
            self._lock_name(),
            timeout=LOCK_SECONDS,
            sleep=0.002,
            blocking_timeout=LOCK_SECONDS,
            thread_local=False,
        )
        if not await lock.acquire():
            raise StoreUnavailable("redis: a transaction's lock stayed taken")
        return lock

    @_guarded
    async def _release(self, lock: Lock) -> None:
        try:
            await lock.release()
        except LockError as exc:
            raise StoreUnavailable(f"redis: a transaction outlived its lock: {exc}") from exc

    @_guarded
    async def snapshot(self) -> Snapshot:
        client = await self._root.clients.get()
        base, now = self._base, self._at_now()
        names = [
            bytes(name).decode() async for name in client.scan_iter(match=_glob_escape(base) + "*")
        ]
        records: list[list[Any]] = []
        counters: dict[str, int] = {}
        rings: dict[str, dict[str, Any]] = {}
        for name in sorted(names):
            relative = name[len(base) :]
            if relative.endswith("#o"):
                table = relative[: -len("#o")]
                keys: list[bytes] = cast(list[bytes], await client.zrange(name, 0, -1))
                for key in keys:
                    record = cast(bytes | None, await client.get(f"{base}{table}#r:{key.decode()}"))
                    if record is None:
                        continue
                    at, _, data = record.partition(b"|")
                    if at and int(at) <= now:
                        continue
                    expires = (EPOCH + int(at) * MICROSECOND).isoformat() if at else None
                    records.append([table, key.decode(), stored_data(data), expires])
            elif relative.endswith("#c"):
                counters[relative[: -len("#c")]] = int(await client.get(name) or 0)
            elif relative.endswith("#s"):
                entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(name))
                values = [
                    [int(number.partition(b"-")[2]), stored_data(fields[b"v"])]
                    for number, fields in entries
                ]
                last = values[-1][0] if values else 0
                rings[relative[: -len("#s")]] = {"last": last, "values": values}
        return {"records": records, "counters": counters, "rings": rings}

    async def restore(self, data: Snapshot) -> None:
        self._wrote()
        await self.clear()
        await self._restore(data)

    @_guarded
    async def _restore(self, data: Snapshot) -> None:
        client = await self._root.clients.get()
        for table, key, value, at in data.get("records", []):
            base = self._base + table
            keys = [f"{base}#r:{key}", f"{base}#o", f"{base}#x", f"{base}#n", f"{base}#t"]
            stamp = "" if at is None else str(_micros(parse_iso(at)))
            record = stamp + "|" + json.dumps(value, separators=(",", ":"))
            await self._script("put", PUT, keys, [key, record])
        for name, value in data.get("counters", {}).items():
            await client.set(f"{self._base}{name}#c", int(value))
        for name, ring in data.get("rings", {}).items():
            for number, value in ring["values"]:
                await client.xadd(
                    f"{self._base}{name}#s",
                    {"v": json.dumps(value, separators=(",", ":"))},
                    id=f"0-{int(number)}",
                )

    @_guarded
    async def clear(self) -> None:
        self._wrote()
        client = await self._root.clients.get()
        pattern = _glob_escape(self._base) + "*"
        batch: list[bytes] = []
        async for name in client.scan_iter(match=pattern, count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def open_redis(url: str) -> RedisStore:
    """``open_store``'s hook for ``redis://host:port/db``: the store, checked reachable."""
    return RedisStore.from_url(url)
