"""Five-field cron expressions in UTC: parsing, matching and enumerating minute ticks.

Vixie cron semantics: day-of-week 0 and 7 are both Sunday, and when day-of-month and
day-of-week are both restricted (neither field starts with `*`) a day matching either
one matches. Pure: every function takes the time it reasons about.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTH_NAMES = {name: i for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
DAY_NAMES = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# name, lowest, highest, accepted names
_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, MONTH_NAMES),
    ("day-of-week", 0, 7, DAY_NAMES),
)
_DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
_MINUTE = timedelta(minutes=1)
_SEARCH_DAYS = 366 * 28  # the weekday/leap-year pattern repeats every 28 years (until 2100)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression; weekdays are 0=Sunday .. 6=Saturday."""

    spec: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    def matches(self, dt: datetime) -> bool:
        """True when the minute of `dt` (UTC; naive means UTC) is a tick of this schedule."""
        dt = to_utc(dt)
        return dt.minute in self.minutes and dt.hour in self.hours and self.matches_day(dt.date())

    def matches_day(self, day: date) -> bool:
        """True when some minute of `day` may be a tick (month, day-of-month, day-of-week)."""
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = day.isoweekday() % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def ticks_between(self, after: datetime, until: datetime) -> list[datetime]:
        """Every tick t with after < t <= until, oldest first, as aware UTC datetimes."""
        start, end = _window(after, until)
        ticks: list[datetime] = []
        for day in _days(start, end):
            if self.matches_day(day):
                ticks.extend(t for t in self._day_ticks(day) if start <= t <= end)
        return ticks

    def count_between(self, after: datetime, until: datetime) -> int:
        """How many ticks t satisfy after < t <= until, without listing whole days."""
        start, end = _window(after, until)
        per_day = len(self.hours) * len(self.minutes)
        count = 0
        for day in _days(start, end):
            if not self.matches_day(day):
                continue
            if day in (start.date(), end.date()):
                count += sum(1 for t in self._day_ticks(day) if start <= t <= end)
            else:
                count += per_day
        return count

    def next_after(self, dt: datetime) -> datetime | None:
        """The first tick strictly after `dt`, or None when none comes within 28 years."""
        start = floor_minute(dt) + _MINUTE
        for offset in range(_SEARCH_DAYS):
            day = start.date() + timedelta(days=offset)
            if self.matches_day(day):
                for tick in self._day_ticks(day):
                    if tick >= start:
                        return tick
        return None

    def _day_ticks(self, day: date) -> list[datetime]:
        midnight = datetime.combine(day, time(), tzinfo=timezone.utc)
        return [midnight + timedelta(hours=h, minutes=m) for h in self.hours for m in self.minutes]


def parse(spec: str) -> CronSchedule:
    """Parse a 5-field cron expression or an @nickname; ValueError says what is wrong."""
    if not isinstance(spec, str):
        raise ValueError(f"cron spec must be a string, not {type(spec).__name__}")
    text = spec.strip()
    if text.startswith("@"):
        if text.lower() not in NICKNAMES:
            raise ValueError(f"cron spec {spec!r}: unknown nickname {text!r} (known: {', '.join(NICKNAMES)})")
        text = NICKNAMES[text.lower()]
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"cron spec {spec!r}: expected 5 fields (minute hour day-of-month month day-of-week), "
                         f"got {len(fields)}")
    try:
        values = [_parse_field(field, *rules) for field, rules in zip(fields, _FIELDS)]
    except ValueError as error:
        raise ValueError(f"cron spec {spec!r}: {error}") from None
    minutes, hours, days, months, weekdays = values
    weekdays = {d % 7 for d in weekdays}
    schedule = CronSchedule(
        spec=spec, minutes=tuple(sorted(minutes)), hours=tuple(sorted(hours)), days=frozenset(days),
        months=frozenset(months), weekdays=frozenset(weekdays),
        days_restricted=not fields[2].startswith("*"), weekdays_restricted=not fields[4].startswith("*"),
    )
    _check_possible(spec, schedule)
    return schedule


def _parse_field(field: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for part in field.split(","):
        if not part:
            raise ValueError(f"{name} field {field!r} has an empty list item")
        values |= _parse_part(part, name, low, high, names)
    return values


def _parse_part(part: str, name: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    body, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
            raise ValueError(f"{name} field: step in {part!r} must be a positive whole number")
        step = int(step_text)
    if body == "*":
        return set(range(low, high + 1, step))
    first_text, dash, last_text = body.partition("-")
    first = _value(first_text, part, name, low, high, names)
    if not dash:
        if slash:
            raise ValueError(f"{name} field: a step needs a range or '*' ({part!r}; "
                             f"write {first}-{high}/{step} for 'from {first}')")
        return {first}
    last = _value(last_text, part, name, low, high, names)
    if names is DAY_NAMES and last == 0 and first > 0:
        last = 7  # `fri-sun` reads as Friday to Sunday
    if last < first:
        raise ValueError(f"{name} field: range {part!r} runs backwards")
    return set(range(first, last + 1, step))


def _value(text: str, part: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{name} field: {text!r} in {part!r} is not a number" + (
            f" or one of {', '.join(names)}" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name} field: {value} in {part!r} is outside {low}-{high}")
    return value


def _check_possible(spec: str, schedule: CronSchedule) -> None:
    if schedule.days_restricted and schedule.weekdays_restricted:
        return  # every week has a matching weekday
    longest = max(_DAYS_IN_MONTH[m] for m in schedule.months)
    if min(schedule.days) > longest:
        raise ValueError(f"cron spec {spec!r} never fires: no listed month has day {min(schedule.days)}")


def to_utc(dt: datetime) -> datetime:
    """`dt` as an aware UTC datetime (a naive one is taken to be UTC already)."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def floor_minute(dt: datetime) -> datetime:
    """The start of the UTC minute holding `dt`."""
    return to_utc(dt).replace(second=0, microsecond=0)


def epoch_minute(dt: datetime) -> int:
    """Whole minutes since 1970-01-01 UTC (the key of a tick)."""
    return int(floor_minute(dt).timestamp()) // 60


def from_epoch_minute(minute: int) -> datetime:
    """The aware UTC datetime of an epoch minute."""
    return datetime.fromtimestamp(minute * 60, tz=timezone.utc)


def _window(after: datetime, until: datetime) -> tuple[datetime, datetime]:
    return floor_minute(after) + _MINUTE, floor_minute(until)


def _days(start: datetime, end: datetime) -> list[date]:
    if end < start:
        return []
    first = start.date()
    return [first + timedelta(days=i) for i in range((end.date() - first).days + 1)]


@dataclass(frozen=True)
class Due:
    """What a scheduler owes one schedule now: ticks to fire, and ticks too old to fire."""

    ticks: list[datetime]
    missed: int
    skip_to: datetime | None  # mark everything up to here handled (the missed ticks included)


def due_ticks(schedule: CronSchedule, last: datetime, now: datetime, catchup_minutes: int) -> Due:
    """Ticks after `last` up to `now`; those older than the catch-up window are only counted."""
    current = floor_minute(now)
    before_window = current - timedelta(minutes=catchup_minutes) - _MINUTE
    last = floor_minute(last)
    if last >= before_window:
        return Due(ticks=schedule.ticks_between(last, current), missed=0, skip_to=None)
    missed = schedule.count_between(last, before_window)
    return Due(ticks=schedule.ticks_between(before_window, current), missed=missed, skip_to=before_window)
