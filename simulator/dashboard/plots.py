"""The dashboard's plots, as plain numbers the templates draw as inline SVG."""

from __future__ import annotations

import math
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
    "percentile",
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
    kind: str = ""


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
    """How long the simulator took to answer (``None`` while it is answering)."""
    return entry.duration_ms


def percentile(ordered: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of sorted values: the least value that ``share`` of them
    are at or under."""
    return ordered[max(math.ceil(share * len(ordered)), 1) - 1]


def latency_by_operation(entries: Sequence[Entry]) -> Chart | None:
    """Each operation's median (p50) and 99th percentile (p99) answer time, as two bars on one
    row (the p99 behind); ``None`` when no entry has an answer time yet."""
    times: defaultdict[str, list[float]] = defaultdict(list)
    for entry in entries:
        taken = entry.duration_ms
        if taken is not None:
            times[f"{entry.provider}.{entry.operation}"].append(taken)
    if not times:
        return None
    rows = []
    for name, values in sorted(times.items()):
        values.sort()
        rows.append((name, percentile(values, 0.5), percentile(values, 0.99), len(values)))
    peak = max(p99 for _, _, p99, _ in rows) or 1.0
    row = 18
    bars = []
    for i, (name, p50, p99, count) in enumerate(rows):
        counted = f"{count} request{'s' if count != 1 else ''}"
        title = f"{name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms ({counted})"
        bars.append(Bar(0, i * row, WIDTH * p99 / peak, row - 4, title, "p99"))
        bars.append(Bar(0, i * row, WIDTH * p50 / peak, row - 4, title, "p50"))
    caption = "answer time by operation, p50 (dark) and p99 (light), over the journal's entries"
    return Chart(bars, WIDTH, row * len(rows), peak, caption)


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
