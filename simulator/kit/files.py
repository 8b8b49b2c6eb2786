"""One-shot, expiring file references, consumed atomically.

A provider keeps an uploaded file's parsed payload under an id, with an expiry on the
injected clock; creating something from the file consumes it. Consumption is a synchronous
check-and-mark under a lock, with no ``await`` between the check and the mark, so of any
number of concurrent consumers exactly one receives the payload. Afterwards the id answers
"already used" (or, once past its expiry, "expired") until it is forgotten, after which it is
unknown. The provider supplies only its errors, as three callables::

    FileErrors(unknown=lambda file_id: ..., expired=lambda file_id, at: ...,
               consumed=lambda file_id, at: ...)

State is bounded: payloads are dropped as soon as a file is used or expired, tombstones are
forgotten ``forget_after`` past expiry, and at most ``max_files`` references are kept (the
oldest go first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from simulator.clock import Clock
from simulator.kit.errors import ProviderError

__all__ = ["FileErrors", "FileRef", "OneShotFiles"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FileErrors:
    """The provider's answers for an id that is unknown, expired or already used."""

    unknown: Callable[[str], ProviderError]
    expired: Callable[[str, datetime], ProviderError]
    consumed: Callable[[str, datetime], ProviderError]


@dataclass(slots=True)
class FileRef(Generic[T]):
    """One stored file. ``payload`` is None once the file is used or expired."""

    id: str
    owner: str | None
    created_at: datetime
    expires_at: datetime
    payload: T | None
    consumed_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


class OneShotFiles(Generic[T]):
    """File references that expire on the clock and can be consumed exactly once.

    ``owner`` scopes an id to a tenant: asked for by another owner, a file is unknown. A
    file stored with owner ``None`` may be used by anyone (seeded examples).
    """

    def __init__(
        self,
        clock: Clock,
        errors: FileErrors,
        *,
        max_files: int = 10_000,
        forget_after: timedelta = timedelta(days=1),
    ) -> None:
        self._clock = clock
        self._errors = errors
        self._max_files = max(1, max_files)
        self._forget_after = forget_after
        self._files: dict[str, FileRef[T]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, file_id: object) -> bool:
        return file_id in self._files

    def put(self, file_id: str, owner: str | None, payload: T, ttl: timedelta) -> FileRef[T]:
        """Store ``payload`` under ``file_id`` until ``ttl`` from now."""
        with self._lock:
            now = self._clock.now()
            self._evict(now, room_for=1)
            ref = FileRef(file_id, owner, now, now + ttl, payload)
            self._files[file_id] = ref
            return ref

    def peek(self, file_id: str, owner: str | None) -> FileRef[T]:
        """The usable file behind ``file_id``, or the provider's error; nothing is consumed."""
        with self._lock:
            return self._usable(file_id, owner, self._clock.now())

    def consume(
        self,
        file_id: str,
        owner: str | None,
        check: Callable[[T], None] | None = None,
    ) -> T:
        """Mark the file used and return its payload; every later call gets an error.

        ``check`` runs under the lock before the file is marked: if it raises, the file
        stays usable.
        """
        with self._lock:
            now = self._clock.now()
            ref = self._usable(file_id, owner, now)
            payload = ref.payload
            assert payload is not None  # _usable returns only files that still hold one
            if check is not None:
                check(payload)
            ref.consumed_at = now
            ref.payload = None
            return payload

    def evict(self) -> None:
        """Drop what has expired or been used, and forget old tombstones."""
        with self._lock:
            self._evict(self._clock.now(), room_for=0)

    def _usable(self, file_id: str, owner: str | None, now: datetime) -> FileRef[T]:
        ref = self._files.get(file_id)
        if ref is None or ref.owner not in (None, owner):
            raise self._errors.unknown(file_id)
        if ref.consumed_at is not None:
            raise self._errors.consumed(file_id, ref.consumed_at)
        if ref.expired(now):
            ref.payload = None
            raise self._errors.expired(file_id, ref.expires_at)
        return ref

    def _evict(self, now: datetime, room_for: int) -> None:
        forget_before = now - self._forget_after
        for file_id in [k for k, ref in self._files.items() if ref.expires_at < forget_before]:
            del self._files[file_id]
        for ref in self._files.values():
            if ref.expired(now):
                ref.payload = None
        excess = len(self._files) + room_for - self._max_files
        if excess > 0:
            # Tombstones go before live files, oldest first.
            ordered = sorted(self._files.values(), key=lambda r: (r.payload is not None,))
            for ref in ordered[:excess]:
                del self._files[ref.id]
