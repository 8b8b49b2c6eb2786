"""Progress on the clock: item ``i`` finishes at ``t_i`` seconds after the work started.

Nothing runs in the background: how far a batch has got is a pure function of its start,
the items' finishing offsets and the clock's now. A batch finished as a whole is one item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["Progress"]


@dataclass(frozen=True, slots=True)
class Progress:
    """``ends[i]``: seconds from ``started_at`` until item ``i`` is done."""

    started_at: datetime
    ends: tuple[float, ...]
    # When the last item is done: derived from the two above once, since every poll asks
    # (not stored, not compared; a copy read back from a store derives it again).
    finished_at: datetime = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        last = self.started_at + timedelta(seconds=max(self.ends, default=0.0))
        object.__setattr__(self, "finished_at", last)

    @classmethod
    def whole(cls, started_at: datetime, seconds: float) -> Progress:
        """Work that finishes at once, ``seconds`` after it starts."""
        return cls(started_at, (seconds,))

    def elapsed(self, now: datetime) -> float:
        return (now - self.started_at).total_seconds()

    def finishes_at(self, index: int) -> datetime:
        return self.started_at + timedelta(seconds=self.ends[index])

    def item_done(self, index: int, now: datetime) -> bool:
        return self.elapsed(now) >= self.ends[index]

    def done_count(self, now: datetime) -> int:
        """How many items are done at ``now``."""
        elapsed = self.elapsed(now)
        return sum(1 for end in self.ends if end <= elapsed)

    def done(self, now: datetime) -> bool:
        return now >= self.finished_at
