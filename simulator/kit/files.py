"""One-shot, expiring file references in the store, consumed atomically.

A provider keeps an uploaded file's parsed payload under an id until an expiry on the
simulator's clock; creating something from the file consumes it. Two tables hold a file:

- its payload, which the store drops at the file's expiry, or as soon as the file is used;
- its reference (:class:`FileRef`: owner, expiry, size, when used), kept ``forget_after``
  past the expiry, so that the id answers "already used" (or "expired") before it becomes
  unknown.

Consuming is one ``update`` of the reference with a pure change that either refuses (the
provider's error, nothing written) or marks it used: one ``UPDATE ... RETURNING`` in SQL, one
script in Redis. Of any number of concurrent consumers exactly one gets past it, and only
that one then ``take``\\ s the payload. Call :meth:`OneShotFiles.consume` inside the caller's
transaction, so that what is made from the payload is saved in the same unit.

The provider supplies only its errors, as three callables::

    FileErrors(unknown=lambda file_id: ..., expired=lambda file_id, at: ...,
               consumed=lambda file_id, at: ...)

Seeded files (a documentation page's example fileId) are fixed when the provider starts and
never stored: consuming one first copies its reference into the store (put-if-absent), and
its payload is read from the seed. Both tables hold at most ``max_files`` records, and the
payloads at most ``max_bytes`` between them (each sized by :func:`~simulator.kit.budget.size_of`):
the oldest go first (:meth:`~simulator.kit.budget.Budget.evict`); a payload larger than
``max_bytes`` by itself is refused with the provider's ``too_large()``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Generic, TypeVar

from simulator.kit.budget import Budget, size_of
from simulator.kit.errors import ProviderError
from simulator.kit.retention import Retention
from simulator.store import Store, Table

__all__ = ["FileErrors", "FileRef", "OneShotFiles"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FileErrors:
    """The provider's answers for an id that is unknown, expired or already used."""

    unknown: Callable[[str], ProviderError]
    expired: Callable[[str, datetime], ProviderError]
    consumed: Callable[[str, datetime], ProviderError]


@dataclass(frozen=True, slots=True)
class FileRef:
    """What is known of one file id. ``size`` is the payload's size in the provider's unit
    (Check: items), so that a file can be judged before it is used."""

    owner: str | None
    expires_at: datetime
    size: int = 0
    used_at: datetime | None = None

    def status(self, now: datetime) -> str:
        """``used``, ``expired`` or ``live``: what using the file now would find."""
        if self.used_at is not None:
            return "used"
        return "expired" if now >= self.expires_at else "live"

    def use(
        self,
        file_id: str,
        owner: str | None,
        now: datetime,
        errors: FileErrors,
        check: Callable[[FileRef], None] | None = None,
    ) -> FileRef:
        """This reference marked used at ``now``, or the provider's error (pure).

        A file stored with owner ``None`` may be used by anyone; to another owner it is
        unknown. ``check`` may refuse a usable file; it then stays usable.
        """
        if self.owner not in (None, owner):
            raise errors.unknown(file_id)
        if self.used_at is not None:
            raise errors.consumed(file_id, self.used_at)
        if now >= self.expires_at:
            raise errors.expired(file_id, self.expires_at)
        if check is not None:
            check(self)
        return dataclasses.replace(self, used_at=now)


def _refused() -> ProviderError:
    raise ValueError("a payload larger than max_bytes by itself, and no too_large error given")


@dataclass(frozen=True)
class OneShotFiles(Generic[T]):
    """The tables of one kind of file (``name``, payloads of type ``payload``), and its seeds."""

    name: str
    payload: type[T]
    errors: FileErrors
    forget_after: timedelta = timedelta(days=1)
    seeds: Mapping[str, tuple[FileRef, T]] = field(default_factory=dict)

    @cached_property
    def refs(self) -> Table[FileRef]:
        return Table(self.name, FileRef)

    @cached_property
    def payloads(self) -> Table[T]:
        return Table(f"{self.name}.payloads", self.payload)

    async def put(
        self,
        store: Store,
        file_id: str,
        ref: FileRef,
        payload: T,
        *,
        max_files: int,
        max_bytes: int | None = None,
        too_large: Callable[[], ProviderError] | None = None,
    ) -> None:
        """Keep ``payload`` under ``file_id`` until ``ref.expires_at``."""
        room = Retention(self.forget_after, max(1, max_files))
        await room.make_room(store, self.refs)
        budget = Budget(max(1, max_files), sys.maxsize if max_bytes is None else max_bytes)
        size = size_of(payload)
        await budget.evict(store, self.payloads, size, full=too_large or _refused)
        await store.put(self.refs, file_id, ref, expires_at=ref.expires_at + self.forget_after)
        await budget.put(store, self.payloads, file_id, payload, size, expires_at=ref.expires_at)

    async def peek(self, store: Store, file_id: str) -> T | None:
        """The payload of a file that may still be used, without using it (None if none)."""
        payload = await store.get(self.payloads, file_id)
        seed = self.seeds.get(file_id)
        if payload is None and seed is not None:
            return seed[1]
        return payload

    async def consume(
        self,
        store: Store,
        file_id: str,
        owner: str | None,
        now: datetime,
        check: Callable[[FileRef], None] | None = None,
    ) -> T:
        """Mark the file used and return its payload; every later call gets an error.

        If ``check`` refuses the file, nothing is written and the file stays usable.
        """
        seed = self.seeds.get(file_id)
        if seed is not None:
            ref, _ = seed
            expiry = ref.expires_at + self.forget_after
            await store.put_if_absent(self.refs, file_id, ref, expires_at=expiry)

        def use(ref: FileRef) -> FileRef:
            return ref.use(file_id, owner, now, self.errors, check)

        if await store.update(self.refs, file_id, use) is None:
            raise self.errors.unknown(file_id)
        payload = await store.take(self.payloads, file_id)
        if payload is None and seed is not None:
            payload = seed[1]
        if payload is None:  # pragma: no cover - a usable reference always has its payload
            raise self.errors.unknown(file_id)
        return payload
