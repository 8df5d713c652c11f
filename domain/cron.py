"""Minute ticks in UTC and the scheduler's catch-up rule (pure: every function takes its time).

Parsing and matching cron expressions is cronsim's job (schedules/cron.py); what stays here
is the arithmetic of whole UTC minutes and which ticks a scheduler still owes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, UTC
from typing import Protocol

MINUTE = timedelta(minutes=1)


class Ticks(Protocol):
    """What the catch-up rule needs of a schedule (schedules.cron.CronSchedule)."""

    def ticks_between(self, after: datetime, until: datetime) -> list[datetime]:
        """Every tick t with after < t <= until, oldest first."""

    def count_between(self, after: datetime, until: datetime) -> int:
        """How many ticks t satisfy after < t <= until."""


def to_utc(dt: datetime) -> datetime:
    """`dt` as an aware UTC datetime (a naive one is taken to be UTC already)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def floor_minute(dt: datetime) -> datetime:
    """The start of the UTC minute holding `dt`."""
    return to_utc(dt).replace(second=0, microsecond=0)


def epoch_minute(dt: datetime) -> int:
    """Whole minutes since 1970-01-01 UTC (the key of a tick)."""
    return int(floor_minute(dt).timestamp()) // 60


def from_epoch_minute(minute: int) -> datetime:
    """The aware UTC datetime of an epoch minute."""
    return datetime.fromtimestamp(minute * 60, tz=UTC)


def minute_window(after: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The first and last minute a tick t with after < t <= until may fall on (empty when first > last)."""
    return floor_minute(after) + MINUTE, floor_minute(until)


@dataclass(frozen=True)
class Due:
    """What a scheduler owes one schedule now: ticks to fire, and ticks too old to fire."""

    ticks: list[datetime]
    missed: int
    skip_to: datetime | None  # mark everything up to here handled (the missed ticks included)


def due_ticks(schedule: Ticks, last: datetime, now: datetime, catchup_minutes: int) -> Due:
    """Ticks after `last` up to `now`; those older than the catch-up window are only counted."""
    current = floor_minute(now)
    before_window = current - timedelta(minutes=catchup_minutes) - MINUTE
    last = floor_minute(last)
    if last >= before_window:
        return Due(ticks=schedule.ticks_between(last, current), missed=0, skip_to=None)
    missed = schedule.count_between(last, before_window)
    return Due(ticks=schedule.ticks_between(before_window, current), missed=missed, skip_to=before_window)
