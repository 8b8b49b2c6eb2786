"""The one place simulated state lives: typed tables, counters, rings, behind one interface.

Every provider's records go through a :class:`Store`; the backend behind it is chosen once,
when the app is built (``create_app(..., store=...)``). Only :class:`MemoryStore` exists so
far; the interface is shaped so that a SQLite or Redis backend can answer each call with one
round trip (see :mod:`simulator.store.base`).
"""

from simulator.store.base import Codec, Page, Store, StoreUnavailable, Table
from simulator.store.memory import MemoryStore

__all__ = ["Codec", "MemoryStore", "Page", "Store", "StoreUnavailable", "Table"]
