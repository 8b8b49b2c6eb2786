"""The dashboard's plots, as plain numbers the templates draw as inline SVG."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from simulator.clock import format_iso
from simulator.journal import Entry

__all__ = [
    "Bar",
    "Chart",
    "Spark",
    "latency_by_operation",
    "progress_line",
    "requests_per_second",
]

WIDTH = 600
HEIGHT = 120
SECONDS = 60


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    width: int
    height: int
    peak: float
    caption: str


def requests_per_second(entries: Sequence[Entry], now: datetime) -> Chart:
    """Requests in each of the last 60 seconds of the simulator's clock, ending now."""
    start = now - timedelta(seconds=SECONDS - 1)
    counts: Counter[int] = Counter()
    for entry in entries:
        offset = int((entry.time - start).total_seconds() // 1)
        if 0 <= offset < SECONDS:
            counts[offset] += 1
    peak = max(counts.values(), default=0)
    step = WIDTH / SECONDS
    bars = []
    for offset, count in sorted(counts.items()):
        height = HEIGHT * count / peak
        second = format_iso(start + timedelta(seconds=offset))
        bars.append(Bar(offset * step, HEIGHT - height, step - 1, height, f"{second}: {count}"))
    caption = f"{sum(counts.values())} requests in the last {SECONDS} s of simulated time"
    return Chart(bars, WIDTH, HEIGHT, peak, caption)


def duration_ms(entry: Entry) -> float | None:
    """How long the simulator took to answer, when the journal records it."""
    value = getattr(entry, "duration_ms", None)
    return float(value) if isinstance(value, int | float) else None


def latency_by_operation(entries: Sequence[Entry]) -> Chart | None:
    """The median answer time of each operation; ``None`` when no entry records one."""
    times: defaultdict[str, list[float]] = defaultdict(list)
    for entry in entries:
        taken = duration_ms(entry)
        if taken is not None:
            times[f"{entry.provider}.{entry.operation}"].append(taken)
    if not times:
        return None
    medians = {name: statistics.median(values) for name, values in sorted(times.items())}
    peak = max(medians.values()) or 1.0
    row = 18
    bars = [
        Bar(0, i * row, WIDTH * value / peak, row - 4, f"{name}: {value:.2f} ms")
        for i, (name, value) in enumerate(medians.items())
    ]
    return Chart(bars, WIDTH, row * len(bars), peak, "median answer time by operation")


@dataclass(frozen=True)
class Spark:
    """A small step line of progress over simulated time, and where now falls on it."""

    points: str
    now_x: float | None


def progress_line(
    timeline: Sequence[tuple[datetime, int]], total: int | None, now: datetime
) -> Spark | None:
    """Items done over simulated time, from creation until the last is done, as the
    provider schedules them: an SVG polyline's points (a step at each instant)."""
    if not total or len(timeline) < 2:
        return None
    first, last = timeline[0][0], timeline[-1][0]
    span = (last - first).total_seconds() or 1.0
    width, height = 120, 24

    def x(time: datetime) -> float:
        return width * (time - first).total_seconds() / span

    points = []
    level = float(height)
    for time, current in timeline:
        points.append(f"{x(time):.1f},{level:.1f}")
        level = height - height * min(current, total) / total
        points.append(f"{x(time):.1f},{level:.1f}")
    now_x = x(now) if first <= now <= last else None
    return Spark(" ".join(points), now_x)
