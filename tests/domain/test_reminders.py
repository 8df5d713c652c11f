"""Reminder times in the recipient's zone: DST days, 29 February, quiet hours across midnight, the cap."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, UTC
from zoneinfo import ZoneInfo

import pytest

from domain.reminders import (
    Occasion,
    Preferences,
    ReminderError,
    Subject,
    due_at,
    following,
    judge,
    local_day_bounds,
    next_occurrence,
    on_year,
    plan,
    quiet_until,
)

UTC = UTC


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        ("Europe/London", date(2026, 3, 29), utc(2026, 3, 29, 8)),  # clocks go forward at 01:00 GMT
        ("Europe/London", date(2026, 10, 25), utc(2026, 10, 25, 9)),  # clocks go back at 02:00 BST
        ("America/New_York", date(2026, 3, 8), utc(2026, 3, 8, 13)),  # 02:00 EST -> 03:00 EDT
        ("America/New_York", date(2026, 11, 1), utc(2026, 11, 1, 14)),  # 02:00 EDT -> 01:00 EST
        ("Europe/London", date(2026, 3, 28), utc(2026, 3, 28, 9)),  # the day before: still GMT
        ("America/New_York", date(2026, 10, 31), utc(2026, 10, 31, 13)),
    ],
)
def test_a_0900_all_day_reminder_on_the_day_clocks_change(zone: str, day: date, expected: datetime) -> None:
    occasion = Occasion(day, zone)
    assert due_at(occasion, day, 0) == expected
    assert due_at(occasion, day, 0).astimezone(ZoneInfo(zone)).hour == 9


@pytest.mark.parametrize(
    ("zone", "occasion_day", "expected"),
    [
        # 1 day before a 09:00 meeting held the day after the change: the same wall clock, a 23 h / 25 h gap
        ("Europe/London", date(2026, 3, 30), utc(2026, 3, 29, 8)),
        ("America/New_York", date(2026, 11, 2), utc(2026, 11, 1, 14)),
    ],
)
def test_whole_days_before_a_timed_occasion_keep_the_wall_clock_time(
    zone: str, occasion_day: date, expected: datetime
) -> None:
    occasion = Occasion(occasion_day, zone, at=time(9, 0))
    assert due_at(occasion, occasion_day, 1440) == expected
    assert due_at(occasion, occasion_day, 1440 + 30) == expected - timedelta(minutes=30)  # minutes: absolute


def test_a_time_in_the_spring_forward_gap_moves_forward_by_the_gap() -> None:
    occasion = Occasion(date(2026, 3, 29), "Europe/London", at=time(1, 30))
    assert due_at(occasion, date(2026, 3, 29), 0) == utc(2026, 3, 29, 1, 30)  # = 02:30 BST


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        (2027, date(2027, 2, 28)),
        (2028, date(2028, 2, 29)),
        (2100, date(2100, 2, 28)),
        (2000, date(2000, 2, 29)),
    ],
)
def test_29_february_falls_on_28_february_in_years_without_it(year: int, expected: date) -> None:
    assert on_year(date(2024, 2, 29), year) == expected


def test_a_yearly_29_february_occasion_rolls_through_non_leap_years() -> None:
    occasion = Occasion(date(2024, 2, 29), "Europe/London", recurrence="yearly")
    first = next_occurrence(occasion, 3 * 1440, utc(2026, 1, 1))
    assert first == (date(2026, 2, 28), utc(2026, 2, 25, 9))
    seen = [first]
    for _ in range(3):
        seen.append(following(occasion, seen[-1][0], 3 * 1440))
    assert [s[0] for s in seen] == [date(2026, 2, 28), date(2027, 2, 28), date(2028, 2, 29), date(2029, 2, 28)]
    assert seen[2][1] == utc(2028, 2, 26, 9)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2026, 5, 1), (date(2026, 6, 10), utc(2026, 6, 10, 8))),  # due later this year (BST)
        (utc(2026, 6, 10, 8), (date(2027, 6, 10), utc(2027, 6, 10, 8))),  # exactly due: the next one
        (utc(2025, 1, 1), (date(2026, 6, 10), utc(2026, 6, 10, 8))),  # never before the first date
    ],
)
def test_next_occurrence_of_a_yearly_occasion(after: datetime, expected: tuple[date, datetime]) -> None:
    occasion = Occasion(date(2026, 6, 10), "Europe/London", recurrence="yearly")
    assert next_occurrence(occasion, 0, after) == expected


def test_a_one_off_occasion_in_the_past_has_nothing_left_and_does_not_recur() -> None:
    occasion = Occasion(date(2026, 6, 10), "UTC")
    assert next_occurrence(occasion, 0, utc(2026, 7, 1)) is None
    assert following(occasion, date(2026, 6, 10), 0) is None


def test_plan_needs_an_address_per_channel_and_rejects_unknown_zones() -> None:
    subject = Subject(
        "s", "u1", {"email": "a@example.com"}, Occasion(date(2026, 6, 10), "UTC"), (0, 1440), ("email",), "ops_message"
    )
    assert set(plan(subject, utc(2026, 1, 1))) == {("email", 0), ("email", 1440)}
    with pytest.raises(ReminderError, match="no address"):
        plan(Subject("s", "u1", {}, subject.occasion, (0,), ("push",), "t"), utc(2026, 1, 1))
    with pytest.raises(ReminderError, match="time zone"):
        due_at(Occasion(date(2026, 1, 1), "Mars/Olympus"), date(2026, 1, 1), 0)


NIGHT = Preferences("Europe/London", quiet_start=time(22, 0), quiet_end=time(7, 0))


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (utc(2026, 7, 1, 20, 59), None),  # 21:59 BST: not yet
        (utc(2026, 7, 1, 20, 59, 57), utc(2026, 7, 2, 6, 0)),  # 3 s before: it would land inside, so it waits
        (utc(2026, 7, 1, 21, 0), utc(2026, 7, 2, 6, 0)),  # 22:00 BST: until 07:00 BST tomorrow
        (utc(2026, 7, 1, 23, 30), utc(2026, 7, 2, 6, 0)),  # 00:30 BST, after midnight: until 07:00 today
        (utc(2026, 7, 2, 6, 0), None),  # 07:00 BST: over
        (utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 6, 0)),  # the night clocks go forward: 07:00 BST
        (utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 7, 0)),  # the night clocks go back: 07:00 GMT
    ],
)
def test_quiet_hours_across_midnight_defer_to_their_end(now: datetime, until: datetime | None) -> None:
    assert quiet_until(now, NIGHT) == (None if now.second else until)
    decision = judge("email", now, NIGHT, 0)
    assert decision.verdict == ("send" if until is None else "defer") and decision.until == until


def test_quiet_hours_within_a_day_and_empty_ones() -> None:
    lunch = Preferences("America/New_York", quiet_start=time(12, 0), quiet_end=time(13, 0))
    assert quiet_until(utc(2026, 7, 1, 16, 30), lunch) == utc(2026, 7, 1, 17)
    assert quiet_until(utc(2026, 7, 1, 17, 0), lunch) is None
    assert quiet_until(utc(2026, 7, 1, 16, 30), Preferences(quiet_start=time(9), quiet_end=time(9))) is None


def test_opt_out_and_channels_off_skip_and_the_cap_defers_to_the_next_local_midnight() -> None:
    now = utc(2026, 7, 1, 12)
    assert judge("email", now, Preferences(opted_out=True), 0).verdict == "skip"
    off = judge("push", now, Preferences(channels_off=frozenset({"push"})), 0)
    assert (off.verdict, off.reason) == ("skip", "channel push off")
    capped = Preferences("America/New_York", daily_cap=3)
    assert judge("email", now, capped, 2).verdict == "send"
    over = judge("email", now, capped, 3)
    assert over.verdict == "defer" and over.until == utc(2026, 7, 2, 4)  # midnight EDT
    assert local_day_bounds(now, "America/New_York") == (utc(2026, 7, 1, 4), utc(2026, 7, 2, 4))
