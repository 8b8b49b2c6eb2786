"""The one source of time.

Everything time-dependent in the simulator (batch progress, token expiry, fileId expiry,
timestamps in bodies) reads a :class:`Clock`. Nothing else calls ``datetime.now``.

- :class:`SystemClock` follows the wall clock, shifted by an offset that the control plane
  can move forward (``POST /_sim/clock/advance``), so a served simulator can jump an hour.
- :class:`ManualClock` stands still until advanced: tests and ``--clock manual``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = [
    "EARLIEST",
    "LATEST",
    "Clock",
    "ManualClock",
    "SystemClock",
    "check_instant",
    "format_iso",
    "parse_iso",
]

# The instants the clock may be set or advanced to. Every later instant the simulator works
# out (a batch's end, a retention, a token's expiry: at most a few centuries on the options'
# ranges and the largest time scale) must still be a datetime, whose years end at 9999; and
# Unix time, which bodies and tokens carry, starts at 1970.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 12, 31, 23, 59, 59, tzinfo=UTC)


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


def check_instant(instant: datetime) -> datetime:
    """``instant`` when the clock can stand there (from :data:`EARLIEST` to :data:`LATEST`);
    else :class:`ValueError` saying so."""
    if not EARLIEST <= instant <= LATEST:
        raise ValueError(
            f"the clock can show instants from {format_iso(EARLIEST)} to {format_iso(LATEST)}"
        )
    return instant


@functools.lru_cache(maxsize=4096)
def format_iso(instant: datetime) -> str:
    """ISO-8601 in UTC to the second with a ``Z`` suffix: ``2025-04-30T23:59:59Z`` (the year
    always in four digits). A pure function of the instant: cached."""
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 instant; a naive one is taken as UTC."""
    instant = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
