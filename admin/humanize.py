"""Readable quantities for the admin pages and the CLI: durations and sizes."""

from __future__ import annotations


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
