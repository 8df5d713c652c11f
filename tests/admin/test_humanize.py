"""Readable durations and sizes, as the admin pages and the CLI print them."""

from __future__ import annotations

from admin.humanize import human_bytes, human_seconds


def test_human_units() -> None:
    assert [human_seconds(s) for s in (0.25, 12.34, 240, 9000, 200000)] == [
        "250 ms",
        "12.3 s",
        "4 min",
        "2.5 h",
        "2.3 d",
    ]
    assert human_bytes(None) == "?" and human_bytes(3 << 20) == "3.0 MiB" and human_bytes(2048) == "2 KiB"
