"""Small inline charts for the admin pages: a series of samples as SVG polyline points."""

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


def sparkline(
    samples: Sequence[tuple[datetime, float]], *, end: datetime, minutes: int = 60, width: int = 120, height: int = 28
) -> Spark:
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
    return Spark(
        points=" ".join(points), peak=max(value for _, value in samples), last=samples[-1][1], count=len(samples)
    )
