"""The one place simulated state lives: typed tables, counters, rings, behind one interface.

Every provider's records go through a :class:`Store`; the backend behind it is chosen once,
when the app is built (``create_app(..., store=...)``, or the ``store`` setting, a URL read by
:func:`open_store`): :class:`MemoryStore` in this process, or :class:`SqliteStore` in a file
that several processes share and that outlives them (see :mod:`simulator.store.base`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from simulator.store.base import Codec, Page, Snapshot, Store, StoreUnavailable, Table
from simulator.store.memory import MemoryStore

if TYPE_CHECKING:
    from simulator.store.sqlite import SqliteStore

__all__ = [
    "STORE_URLS",
    "Codec",
    "MemoryStore",
    "Page",
    "Snapshot",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Table",
    "open_store",
    "shared",
]

STORE_URLS = (
    "memory, sqlite:///relative/path.db, sqlite:////absolute/path.db or redis://host:port/db"
)


def __getattr__(name: str) -> Any:
    # The SQLite backend (and sqlite3) loads when it is first asked for: a process on the
    # memory store (the default) never needs it.
    if name == "SqliteStore":
        from simulator.store.sqlite import SqliteStore

        return SqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class StoreError(ValueError):
    """A store URL that cannot be used; the message says why, in one line."""


def open_store(url: str) -> Store:
    """The store a URL names: ``memory``, ``sqlite:///path`` or ``redis://host:port/db``.

    For SQLite, as in SQLAlchemy's URLs, ``sqlite:///state.db`` is relative to the working
    directory and ``sqlite:////var/lib/bulksim/state.db`` (four slashes) absolute. The file
    is created (with its schema) when missing; its directory must exist. ``?synchronous=normal``
    (or ``full``) makes SQLite fsync its WAL at checkpoints (or at each commit), for a file
    that must also survive an OS crash; the default, ``off``, survives the process's crash.
    """
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if text == "memory":
        return MemoryStore()
    if sep and scheme == "sqlite":
        return _open_sqlite(text, rest)
    if sep and scheme in ("redis", "rediss", "unix"):
        return _open_redis(text)
    raise StoreError(f"store {url!r} is not a store URL: use {STORE_URLS}")


def shared(store: Store) -> bool:
    """Whether other processes can share ``store`` (several workers need one that is)."""
    return not isinstance(store, MemoryStore)


def _open_sqlite(url: str, rest: str) -> Store:
    location, _, query = rest.partition("?")
    if not location.startswith("/") or location == "/":
        raise StoreError(
            f"store {url!r}: give a file, as sqlite:///state.db or sqlite:////abs/path.db"
        )
    import sqlite3

    from simulator.store.sqlite import SYNCHRONOUS, SqliteStore

    options = dict(parse_qsl(query, keep_blank_values=True))
    synchronous = options.pop("synchronous", "off").lower()
    if options or synchronous not in SYNCHRONOUS:
        raise StoreError(
            f"store {url!r}: the one option a SQLite store takes is "
            "?synchronous=off (the default), normal or full"
        )
    path = Path(location[1:])
    if path.is_dir():
        raise StoreError(f"store {url!r}: {path} is a directory, not a database file")
    folder = path.parent
    if not folder.is_dir():
        raise StoreError(f"store {url!r}: the directory {folder} does not exist")
    try:
        return SqliteStore(path, synchronous=synchronous)
    except sqlite3.Error as exc:
        raise StoreError(
            f"store {url!r}: cannot use {path} as a SQLite database, read and written: {exc}"
        ) from None


def _open_redis(url: str) -> Store:
    from simulator.store.redis import open_redis

    try:
        return open_redis(url)
    except StoreUnavailable as exc:  # at start: a URL that cannot be used, said in one line
        raise StoreError(str(exc)) from None
