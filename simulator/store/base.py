"""The store interface: what every backend (memory now; SQLite and Redis next) provides.

State is kept as records: plain frozen values (dataclasses) in named, typed :class:`Table`\\ s,
each under a string key. Next to the tables: counters, which hand out 1, 2, 3, ... atomically
(ids are derived from them), and bounded rings (the newest ``size`` values of a kind).

Rules every backend keeps:

- **Awaitable at the seam.** Every call that a shared backend sends over the wire is a
  coroutine; the rules that decide what to write (a provider's ``models``) stay synchronous
  and pure. A handler reads (``get``), decides, then writes (``put``/``update``).
- **One round trip per call.** Each method is one statement or one script: ``get`` is a
  ``SELECT``/``GET``, ``put_if_absent`` an ``INSERT ... ON CONFLICT DO NOTHING``/``SET NX``,
  ``incr`` an ``UPDATE ... RETURNING``/``INCRBY``, ``add`` (a counting record that expires)
  an upsert ``... RETURNING``/a script, ``take`` a ``DELETE ... RETURNING``/``GETDEL``,
  ``update`` a read-modify-write under the backend's lock (SQLite ``BEGIN IMMEDIATE``; Redis
  a compare-and-set script on what was read).
- **Expiry on the simulator's clock.** A record may carry ``expires_at``, an instant of
  simulated time; from that instant on it is absent to every call. No backend uses wall-clock
  TTLs: a manual clock may stand days away from the wall clock.
- **Namespaces.** :meth:`Store.scoped` gives a view whose keys live under a prefix (one per
  provider, and later one per sandbox), read on its own clock. :meth:`Store.clear` empties
  one view's prefix and nothing else.
- **Records, not services.** Values are immutable and round-trip through their table's
  :class:`Codec` (JSON-able dicts), so that another process can read them. The memory backend
  keeps the values themselves, which is why they must be frozen. A codec may store a value
  *framed* (:func:`framed`: its fields of bytes kept raw after a JSON head, not escaped into
  JSON text); :func:`stored_data` reads either stored form back as the JSON-able data a
  snapshot holds, without the codec.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is installed wherever it can be
    _orjson = None

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = [
    "Codec",
    "Decoded",
    "Page",
    "Snapshot",
    "Store",
    "StoreUnavailable",
    "Table",
    "framed",
    "stored_data",
    "unframed",
]

R = TypeVar("R")
# A store's whole content, backend-neutral: {"records": [[table, key, value, expires_at or
# None], ...] in insertion order, "counters": {name: n}, "rings": {name: {"last": n,
# "values": [[number, value], ...]}}}; values as their codec dumps them, instants ISO-8601.
Snapshot = dict[str, Any]


class StoreUnavailable(Exception):
    """The backend cannot be reached (at start, or lost while serving); the message says why.

    Raised by a store call instead of the client library's own error, so that the app can
    answer it with the provider's 503 while the backend is away.
    """


class Codec(Generic[R]):
    """A record type to and from a JSON-able dict (through pydantic, which knows dataclasses)."""

    def __init__(self, kind: type[R]) -> None:
        # pydantic is imported with the first codec: the memory backend never builds one.
        from pydantic import TypeAdapter

        self.kind = kind
        self._adapter: TypeAdapter[R] = TypeAdapter(kind)

    def dump(self, value: R) -> Any:
        return self._adapter.dump_python(value, mode="json")

    def load(self, data: Any) -> R:
        return self._adapter.validate_python(data)

    def dumps(self, value: R) -> str:
        """The value as JSON text: ``json.dumps(dump(value))``, compact, encoded in one step."""
        return self._adapter.dump_json(value).decode()

    def loads(self, text: str | bytes) -> R:
        """The value of JSON text: ``load(json.loads(text))``, parsed and checked in one step."""
        return self._adapter.validate_json(text)

    def dumps_shared(self, value: R) -> Shared:
        """``dumps(value)`` as a head and a tail that other values may end with too, which a
        store may keep once for all of them (under the tail's key). None here."""
        return Shared(self.dumps(value))


class Shared(NamedTuple):
    """A value's text (``dumps``) as ``head + tail``: ``tail``, when ``key`` is not empty,
    is bytes that other values may end with too (a response body answered again as the
    very same bytes), named by ``key`` (a digest of them), which a store may keep once for
    every value that names it."""

    head: str | bytes
    tail: bytes = b""
    key: bytes = b""


# A framed value starts with this byte, which no JSON text starts with: then its head (a
# JSON object of the other fields and ``RAW``, the raw fields' names and lengths, in order),
# this byte again (never inside JSON text, which escapes it), and the raw fields' bytes. A
# raw field kept deflated (zlib) names ``DEFLATED`` after its length (that of its bytes as
# kept); reading it inflates it.
FRAME = b"\x00"
RAW = "\x00raw"
DEFLATED = "zlib"


def json_bytes(value: Any) -> bytes:
    """``value`` as compact JSON, UTF-8 (orjson's, where it is installed)."""
    if _orjson is not None:
        found: bytes = _orjson.dumps(value)
        return found
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _json_value(data: bytes) -> Any:
    return _orjson.loads(data) if _orjson is not None else json.loads(data)


def framed(head: dict[str, Any], raw: dict[str, bytes]) -> bytes:
    """A value stored framed: ``head`` (JSON-able fields) and the ``raw`` fields (bytes) kept
    as they are. Its data (:func:`stored_data`) is ``head`` with each raw field as latin-1
    text, the form a codec of a dataclass with such fields as latin-1 text dumps."""
    head[RAW] = [[name, len(value)] for name, value in raw.items()]
    return b"".join((FRAME, json_bytes(head), FRAME, *raw.values()))


def unframed(stored: bytes) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    """A framed value's head and raw fields, or None when ``stored`` is JSON text."""
    if not stored.startswith(FRAME):
        return None
    end = stored.index(FRAME, 1)
    head: dict[str, Any] = _json_value(stored[1:end])
    raw: dict[str, bytes] = {}
    at = end + 1
    for name, size, *packing in head.pop(RAW):
        value = stored[at : at + size]
        if packing:
            if packing != [DEFLATED]:
                raise ValueError(f"a raw field packed as {packing!r}")
            value = zlib.decompress(value)
        raw[name] = value
        at += size
    return head, raw


def stored_data(stored: str | bytes) -> Any:
    """A stored value as the JSON-able data its codec dumps (what a snapshot holds), read
    without the codec: JSON text as it is, a framed value with its raw fields as latin-1."""
    if isinstance(stored, bytes):
        parts = unframed(stored)
        if parts is not None:
            head, raw = parts
            for name, value in raw.items():
                head[name] = value.decode("latin-1")
            return head
    return json.loads(stored)


@dataclass(frozen=True, eq=False)
class Table(Generic[R]):
    """A named kind of record, e.g. ``Table("batches", Batch)``; keys are strings."""

    name: str
    kind: type[R]
    codec_of: Callable[[type[R]], Codec[R]] = field(default=Codec, repr=False)

    @cached_property
    def codec(self) -> Codec[R]:
        """Built on first use: the memory backend never needs it."""
        return self.codec_of(self.kind)


class Decoded:
    """The values of the records a backend read last, by their stored form: a record read
    again unchanged (a polled batch, the shared state) is not decoded again. Values are
    frozen, so handing out one value twice is what the memory backend does anyway."""

    def __init__(self, size: int = 128) -> None:
        self._held: dict[tuple[Table[Any], str], tuple[str | bytes, Any]] = {}
        self._size = size

    def value(self, table: Table[R], name: str, stored: str | bytes, data: str | bytes) -> R:
        """``table``'s record under ``name`` (its full key), stored as ``stored``, whose
        codec's text is ``data`` (``stored`` or a part of it)."""
        slot = (table, name)
        held = self._held.get(slot)
        if held is not None and held[0] == stored:
            found: R = held[1]
            return found
        value = table.codec.loads(data)
        if len(self._held) >= self._size:
            self._held.pop(next(iter(self._held), slot), None)  # the oldest
        self._held[slot] = (stored, value)
        return value


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    """Up to ``limit`` records in insertion order; ``next`` continues after them (or None)."""

    items: list[tuple[str, R]]
    next: str | None


class Store(Protocol):
    """Typed tables, counters, consume-once, bounded rings and transactions."""

    @property
    def prefix(self) -> str: ...

    def scoped(self, prefix: str, *, now: Callable[[], datetime] | None = None) -> Store:
        """A view under ``prefix`` (appended to this one's), judging expiry with ``now``."""
        ...

    # -- tables ----------------------------------------------------------------------------

    async def get(self, table: Table[R], key: str) -> R | None:
        """The record under ``key``, or None when absent or expired."""
        ...

    async def put(
        self, table: Table[R], key: str, value: R, *, expires_at: datetime | None = None
    ) -> None:
        """Store ``value`` under ``key``, replacing what was there."""
        ...

    async def put_if_absent(
        self, table: Table[R], key: str, value: R, *, expires_at: datetime | None = None
    ) -> tuple[R, bool]:
        """Store ``value`` unless a live record holds ``key``: (the record now held, stored?)."""
        ...

    async def update(self, table: Table[R], key: str, change: Callable[[R], R]) -> R | None:
        """Replace the record with ``change(record)`` atomically; None (and no call) if absent.

        ``change`` is pure and may raise (a provider's error): then nothing is written. A
        backend that retries on conflict may call it more than once. The expiry stays.
        """
        ...

    async def take(self, table: Table[R], key: str) -> R | None:
        """Consume once: remove the record and return it; of concurrent takers one gets it."""
        ...

    async def delete(self, table: Table[R], key: str) -> bool:
        """Remove the record; whether there was a live one."""
        ...

    async def scan(self, table: Table[R], *, after: str | None = None, limit: int = 100) -> Page[R]:
        """Live records in insertion order (oldest first), starting after the key ``after``."""
        ...

    async def count(self, table: Table[R]) -> int:
        """How many live records the table holds."""
        ...

    async def total(self, table: Table[int]) -> int:
        """The sum of a table of ints' live values (a byte budget's sizes, say)."""
        ...

    async def add(
        self, table: Table[int], key: str, by: int = 1, *, expires_at: datetime | None = None
    ) -> int:
        """Add ``by`` to the int record under ``key`` atomically and return its new value.

        A counter that expires, in one round trip (a rate limit's window, say): an absent or
        expired record counts as 0 and is stored anew with ``expires_at``; a live one keeps
        its expiry. Of any number of concurrent callers, each sees its own value.
        """
        ...

    # -- counters and rings ----------------------------------------------------------------

    async def incr(self, counter: str, by: int = 1) -> int:
        """Add ``by`` to a counter (absent counts as 0) and return the new value."""
        ...

    async def push(self, ring: Table[R], value: R, *, size: int) -> int:
        """Append to a ring that keeps the newest ``size`` values; the value's number (from 1)."""
        ...

    async def recent(self, ring: Table[R], *, after: int = 0) -> list[tuple[int, R]]:
        """The ring's values numbered above ``after``, oldest first."""
        ...

    # -- reading less on a shared store ----------------------------------------------------

    def mark(self, table: Table[Any]) -> Hashable | None:
        """What changes whenever ``table`` may have changed since, if the backend can tell
        without a round trip (SQLite: ``data_version`` and this process's writes); None when
        it cannot, and a reader must read again."""
        ...

    async def read_ahead(self, table: Table[R], key: str, request: str) -> R | None:
        """``get``, and, where it saves a round trip (Redis), in the same one the records the
        last answer to ``request`` (its method, path and query) read, for this request's own
        reads to take once each; :meth:`read_behind` ends the request."""
        ...

    def read_behind(self) -> None:
        """The request :meth:`read_ahead` was for is answered (a no-op where nothing was
        read ahead)."""
        ...

    # -- the whole view --------------------------------------------------------------------

    def transaction(self) -> AbstractAsyncContextManager[Store]:
        """``async with store.transaction() as tx:`` the calls on ``tx`` are one atomic unit.

        Between entering and leaving, await only the store: a backend may hold a lock
        (memory, SQLite) for the duration.
        """
        ...

    async def clear(self) -> None:
        """Forget everything under this view's prefix (tables, counters and rings)."""
        ...

    async def snapshot(self) -> Snapshot:
        """Everything under this view's prefix as JSON-able data (names relative to it)."""
        ...

    async def restore(self, data: Snapshot) -> None:
        """Replace everything under this view's prefix with a :meth:`snapshot` (of any backend)."""
        ...
