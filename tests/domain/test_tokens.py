"""Token rate limits as written on the command line."""

from __future__ import annotations

import pytest

from domain.tokens import parse_rate


@pytest.mark.parametrize(
    ("text", "per_min"),
    [
        ("120/min", 120),
        ("120", 120),
        ("5/s", 300),
        ("600/h", 10),
        ("0", 0),
        (" 30 / minute ", 30),
    ],
)
def test_rates(text: str, per_min: int) -> None:
    assert parse_rate(text) == per_min


@pytest.mark.parametrize("text", ["", "fast", "-1/min", "10/day", "1/h", "2.5/s", "99999999"])
def test_unreadable_or_too_slow_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)
