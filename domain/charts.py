"""Small inline charts: a series of samples as SVG polyline points, and readable quantities."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel


class Spark(BaseModel):
    """One sparkline: SVG polyline points in a `width` x `height` box, and the series' peak."""

    points: str
    peak: float
    last: float
    count: int


def sparkline(samples: Sequence[tuple[datetime, float]], *, end: datetime, minutes: int = 60,
              width: int = 120, height: int = 28) -> Spark:
    """Points placed by time over the `minutes` before `end` (x) and scaled to the peak (y, 0 at the bottom)."""
    if not samples:
        return Spark(points="", peak=0, last=0, count=0)
    peak = max(value for _, value in samples) or 1.0
    start = end - timedelta(minutes=minutes)
    span = (end - start).total_seconds()
    points = []
    for at, value in samples:
        x = max(0.0, min(1.0, (at - start).total_seconds() / span)) * width
        y = height - 1 - (value / peak) * (height - 2)
        points.append(f"{x:.1f},{y:.1f}")
    if len(points) == 1:  # a single sample draws as a short flat line
        first_x, first_y = points[0].split(",")
        points.insert(0, f"{max(0.0, float(first_x) - 2):.1f},{first_y}")
    return Spark(points=" ".join(points), peak=max(value for _, value in samples), last=samples[-1][1],
                 count=len(samples))


def human_seconds(seconds: float) -> str:
    """`850 ms`, `12.3 s`, `4 min`, `2.5 h` or `3.1 d`."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def human_bytes(count: int | None) -> str:
    """`512 KiB`, `87.5 MiB`, `1.2 GiB`, or `?` when unknown."""
    if not count:
        return "?"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count / 1024:.0f} KiB"
