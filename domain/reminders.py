"""Reminders: when a send tied to a subject (an occasion) is due, and what a recipient's preferences allow.

Pure functions over `zoneinfo`; every time is computed in the zone it is about and
returned as an aware UTC datetime. The rules, stated once:
- A yearly occasion on 29 February falls on 28 February in years without one.
- An all-day occasion's reminders go out at the policy's local `send_at` (09:00 by
  default) on the day `offset // 1440` days before; any remainder of minutes is ignored.
- A timed occasion's reminder is `offset` before it: whole days are taken off on the local
  calendar (same wall-clock time), the remaining minutes in absolute time.
- A local time that does not exist (the spring-forward gap) is read with the offset in
  force before the change, i.e. it moves forward by the gap; an ambiguous one (fall back)
  is the first of the two.
- Quiet hours [start, end) in the recipient's zone; start > end spans midnight; start ==
  end means none. A send inside them (or within 5 s of their start) is deferred to their
  end, never dropped.
- The daily cap counts sends handed to a provider on the recipient's local calendar day
  (a retried send counts once); a send over the cap is deferred to the next local midnight
  (and then judged again, quiet hours included), never dropped.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, UTC
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

Recurrence = Literal["none", "yearly"]
DAY_MINUTES = 1440
MAX_OFFSET_MINUTES = 366 * DAY_MINUTES
DEFAULT_SEND_AT = time(9, 0)
QUIET_GUARD = timedelta(seconds=5)


class ReminderError(ValueError):
    """An unknown time zone, an offset out of bounds, or an occasion that cannot be scheduled."""


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ReminderError when it is unknown."""
    if not name or len(name) > 64 or name not in _zones():
        raise ReminderError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReminderError(f"unknown time zone {name!r}") from None


_ZONES: set[str] = set()


def known_zones() -> list[str]:
    """Every IANA zone name `zone` takes, sorted."""
    return sorted(_zones())


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones() | {"UTC"})
    return _ZONES


@dataclass(frozen=True)
class Occasion:
    """A dated subject: its first date, local time (None = all day), zone and recurrence."""

    occurs_on: date
    time_zone: str
    at: time | None = None
    recurrence: Recurrence = "none"

    @property
    def all_day(self) -> bool:
        """True when the occasion has no time of day."""
        return self.at is None


def on_year(day: date, year: int) -> date:
    """`day`'s month and day in `year`; 29 February becomes 28 February in a non-leap year."""
    if day.month == 2 and day.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return day.replace(year=year)


def local_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock `at` on `day` in `tz` (a gap time moves forward, fold=0)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def due_at(occasion: Occasion, occurrence: date, offset_minutes: int, send_at: time = DEFAULT_SEND_AT) -> datetime:
    """When the reminder `offset_minutes` before `occurrence` of `occasion` goes out (UTC)."""
    if not 0 <= offset_minutes <= MAX_OFFSET_MINUTES:
        raise ReminderError(f"offset {offset_minutes} min is outside 0..{MAX_OFFSET_MINUTES}")
    tz = zone(occasion.time_zone)
    days, minutes = divmod(offset_minutes, DAY_MINUTES)
    day = occurrence - timedelta(days=days)
    if occasion.at is None:
        return local_to_utc(day, send_at, tz)
    return local_to_utc(day, occasion.at, tz) - timedelta(minutes=minutes)


def next_occurrence(
    occasion: Occasion, offset_minutes: int, after: datetime, send_at: time = DEFAULT_SEND_AT
) -> tuple[date, datetime] | None:
    """The first occurrence whose reminder is due strictly after `after`, with that due time; None if none."""
    if occasion.recurrence == "none":
        due = due_at(occasion, occasion.occurs_on, offset_minutes, send_at)
        return (occasion.occurs_on, due) if due > after else None
    year = max(occasion.occurs_on.year, after.year - 1)
    for candidate in range(year, year + 3):  # an offset is at most 366 days, so this finds it
        occurrence = on_year(occasion.occurs_on, candidate)
        if occurrence < occasion.occurs_on:
            continue
        due = due_at(occasion, occurrence, offset_minutes, send_at)
        if due > after:
            return occurrence, due
    raise ReminderError("no occurrence found")  # unreachable for offsets within bounds


def following(
    occasion: Occasion, occurrence: date, offset_minutes: int, send_at: time = DEFAULT_SEND_AT
) -> tuple[date, datetime] | None:
    """After a send for `occurrence`: the next yearly occurrence and its due time, or None (not recurring)."""
    if occasion.recurrence != "yearly":
        return None
    nxt = on_year(occasion.occurs_on, occurrence.year + 1)
    return nxt, due_at(occasion, nxt, offset_minutes, send_at)


@dataclass(frozen=True)
class Preferences:
    """What a recipient allows: channels off, quiet hours, a daily cap, a global opt-out."""

    time_zone: str = "UTC"
    channels_off: frozenset[str] = field(default_factory=frozenset)
    quiet_start: time | None = None
    quiet_end: time | None = None
    daily_cap: int | None = None
    opted_out: bool = False
    locale: str = "en"
    default_policy_id: str | None = None


def quiet_until(now: datetime, prefs: Preferences) -> datetime | None:
    """The UTC end of the quiet hours `now` falls in (recipient's zone), or None when outside them."""
    start, end = prefs.quiet_start, prefs.quiet_end
    if start is None or end is None or start == end:
        return None
    tz = zone(prefs.time_zone)
    local = now.astimezone(tz)
    t, today = local.time().replace(tzinfo=None), local.date()
    if start < end:
        inside, end_day = start <= t < end, today
    else:  # across midnight: [start, 24:00) today or [00:00, end) of the next day
        inside, end_day = t >= start or t < end, today + timedelta(days=1) if t >= start else today
    if not inside:
        return None
    return max(local_to_utc(end_day, end, tz), now + timedelta(seconds=1))


def local_day_bounds(now: datetime, time_zone: str) -> tuple[datetime, datetime]:
    """The UTC start and end of the recipient's local calendar day containing `now`."""
    tz = zone(time_zone)
    today = now.astimezone(tz).date()
    return local_to_utc(today, time(0), tz), local_to_utc(today + timedelta(days=1), time(0), tz)


Verdict = Literal["send", "skip", "defer", "fail"]


@dataclass(frozen=True)
class Decision:
    """What dispatch does with a due reminder now: send it, skip it (why), or defer it (until, why)."""

    verdict: Verdict
    reason: str = ""
    until: datetime | None = None


def judge(channel: str, now: datetime, prefs: Preferences, sent_today: int) -> Decision:
    """Apply a recipient's preferences to a reminder due `now` on `channel`."""
    if prefs.opted_out:
        return Decision("skip", "opted out")
    if channel in prefs.channels_off:
        return Decision("skip", f"channel {channel} off")
    # a send judged just before quiet hours begin would reach the provider inside them
    quiet_end = quiet_until(now, prefs) or quiet_until(now + QUIET_GUARD, prefs)
    if quiet_end is not None:
        return Decision("defer", "quiet hours", quiet_end)
    if prefs.daily_cap is not None and sent_today >= prefs.daily_cap:
        return Decision("defer", f"daily cap {prefs.daily_cap} reached", local_day_bounds(now, prefs.time_zone)[1])
    return Decision("send")


@dataclass(frozen=True)
class Policy:
    """Reminder offsets (minutes before) and channels, under a caller-defined id."""

    id: str
    owner: str | None
    name: str
    offsets_minutes: tuple[int, ...]
    channels: tuple[str, ...]
    send_at: time = DEFAULT_SEND_AT


@dataclass(frozen=True)
class Subject:
    """What reminders hang off: an occasion for a recipient, with its offsets, channels and message."""

    subject: str
    recipient: str
    addresses: dict[str, str]
    occasion: Occasion
    offsets_minutes: tuple[int, ...]
    channels: tuple[str, ...]
    template: str
    data: dict[str, object] = field(default_factory=dict)
    send_at: time = DEFAULT_SEND_AT


def plan(subject: Subject, now: datetime) -> dict[tuple[str, int], tuple[date, datetime] | None]:
    """Each (channel, offset)'s next occurrence and due time after `now` (None: nothing left to send)."""
    missing = [c for c in subject.channels if c not in subject.addresses]
    if missing:
        raise ReminderError(f"no address for channel(s) {', '.join(missing)}")
    out: dict[tuple[str, int], tuple[date, datetime] | None] = {}
    for offset in subject.offsets_minutes:
        nxt = next_occurrence(subject.occasion, offset, now, subject.send_at)
        for channel in subject.channels:
            out[(channel, offset)] = nxt
    return out


def message_data(subject_data: dict[str, object], occurrence: date, offset_minutes: int) -> dict[str, object]:
    """The fields a reminder's template sees: the subject's data, its occurrence and days before."""
    return {**subject_data, "occurrence": occurrence.isoformat(), "days_before": offset_minutes // DAY_MINUTES}
