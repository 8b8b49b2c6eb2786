"""The one source of time.

Everything time-dependent in the simulator (batch progress, token expiry, fileId expiry,
timestamps in bodies) reads a :class:`Clock`. Nothing else calls ``datetime.now``.

- :class:`SystemClock` follows the wall clock, shifted by an offset that the control plane
  can move forward (``POST /_sim/clock/advance``), so a served simulator can jump an hour.
- :class:`ManualClock` stands still until advanced: tests and ``--clock manual``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock", "format_iso", "parse_iso"]


class Clock(Protocol):
    """A source of the current instant that the control plane can move."""

    @property
    def kind(self) -> str: ...

    def now(self) -> datetime: ...

    def advance(self, delta: timedelta) -> None: ...

    def set(self, instant: datetime) -> None: ...


@dataclass
class SystemClock:
    """Wall-clock time plus an offset; ``advance`` and ``set`` move the offset."""

    offset: timedelta = field(default_factory=timedelta)

    @property
    def kind(self) -> str:
        return "system"

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta

    def set(self, instant: datetime) -> None:
        self.offset = instant - datetime.now(UTC)


@dataclass
class ManualClock:
    """Time that moves only when told to."""

    current: datetime

    @property
    def kind(self) -> str:
        return "manual"

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta

    def set(self, instant: datetime) -> None:
        self.current = instant


def wall_clock_now() -> datetime:
    """The real current time, for choosing a manual clock's starting instant."""
    return datetime.now(UTC).replace(microsecond=0)


def format_iso(instant: datetime) -> str:
    """ISO-8601 in UTC to the second with a ``Z`` suffix: ``2025-04-30T23:59:59Z``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 instant; a naive one is taken as UTC."""
    instant = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
