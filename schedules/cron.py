"""Five-field cron expressions in UTC, parsed and evaluated by cronsim.

cronsim follows Debian (Vixie) cron: day-of-week 0 and 7 are both Sunday, names are
case-insensitive, and when day-of-month and day-of-week are both restricted (neither
field starts with `*`) a day matching either one matches. This module adds what cronsim
leaves to its caller: the @nicknames, messages naming the bad field, and the tick windows
the scheduler's catch-up rule (domain.cron.due_ticks) asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, UTC

from cronsim import CronSim, CronSimError

from domain.cron import MINUTE, floor_minute, minute_window

NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# each field's name and what it accepts, for the error messages
FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day-of-week", "0-7 (0 and 7 are Sunday) or sun-sat"),
)
_FORMS = "a value, a list a,b, a range a-b (low to high) or a step */n, a-b/n"
_SAMPLE_DAY = datetime(2000, 1, 1, tzinfo=UTC)  # where parse() lets cronsim check a spec


@dataclass(frozen=True)
class CronSchedule:
    """A checked cron expression: `spec` as written, `fields` the five fields cronsim reads."""

    spec: str
    fields: str

    def matches(self, dt: datetime) -> bool:
        """True when the minute of `dt` (UTC; naive means UTC) is a tick of this schedule."""
        minute = floor_minute(dt)
        return self.next_after(minute - MINUTE) == minute

    def next_after(self, dt: datetime) -> datetime | None:
        """The first tick strictly after the minute of `dt`, or None when none comes within 50 years."""
        return next(CronSim(self.fields, floor_minute(dt)), None)

    def ticks_between(self, after: datetime, until: datetime) -> list[datetime]:
        """Every tick t with after < t <= until, oldest first, as aware UTC datetimes."""
        start, end = minute_window(after, until)
        ticks: list[datetime] = []
        for tick in CronSim(self.fields, start - MINUTE):
            if tick > end:
                break
            ticks.append(tick)
        return ticks

    def count_between(self, after: datetime, until: datetime) -> int:
        """How many ticks t satisfy after < t <= until; whole days count at once (a long outage stays cheap)."""
        start, end = minute_window(after, until)
        count, tick = 0, self.next_after(start - MINUTE)
        per_day = self._day_ticks(tick) if tick is not None else ()
        while tick is not None and tick <= end:
            day_end = datetime.combine(tick.date(), time(23, 59), tzinfo=UTC)
            if tick.time() == per_day[0] and day_end <= end:
                count, tick = count + len(per_day), self.next_after(day_end)
            else:
                count, tick = count + 1, self.next_after(tick)
        return count

    def _day_ticks(self, tick: datetime) -> tuple[time, ...]:
        """The times of the ticks on the day of `tick` (every matching day has the same: day fields pick days)."""
        midnight = datetime.combine(tick.date(), time(), tzinfo=UTC)
        times = []
        for each in CronSim(self.fields, midnight - MINUTE):
            if each.date() != midnight.date():
                break
            times.append(each.time())
        return tuple(times)


def parse(spec: str) -> CronSchedule:
    """Check a 5-field cron expression or an @nickname; ValueError says what is wrong."""
    if not isinstance(spec, str):
        raise ValueError(f"cron spec must be a string, not {type(spec).__name__}")
    text = spec.strip()
    if text.startswith("@"):
        if text.lower() not in NICKNAMES:
            raise ValueError(f"cron spec {spec!r}: unknown nickname {text!r} (known: {', '.join(NICKNAMES)})")
        text = NICKNAMES[text.lower()]
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron spec {spec!r}: expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    try:
        CronSim(" ".join(fields), _SAMPLE_DAY)
    except CronSimError:
        raise ValueError(f"cron spec {spec!r}: {_what_is_wrong(fields)}") from None
    return CronSchedule(spec=spec, fields=" ".join(fields))


def _what_is_wrong(fields: list[str]) -> str:
    """The first field cronsim refuses on its own, else the day-of-month no listed month has."""
    for index, (name, allowed) in enumerate(FIELDS):
        alone = ["*"] * 5
        alone[index] = fields[index]
        try:
            CronSim(" ".join(alone), _SAMPLE_DAY)
        except CronSimError:
            return f"{name} field: {fields[index]} is not valid (allowed: {allowed}; as {_FORMS})"
    return f"never fires: no month in {fields[3]!r} has a day {fields[2]!r}"
