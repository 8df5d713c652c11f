"""Cron expressions (cronsim behind schedules.cron): parsing, matching, ticks and catch-up rules (UTC)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, UTC

import pytest

from domain.cron import due_ticks, epoch_minute, floor_minute, from_epoch_minute
from schedules.cron import parse

UTC = UTC
SUNDAY = datetime(2026, 4, 19, 9, 0, tzinfo=UTC)  # a Sunday
MONDAY, SATURDAY = SUNDAY + timedelta(days=1), SUNDAY - timedelta(days=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "weekdays"),
    [
        ("0 9 * * 0", {7}),
        ("0 9 * * 7", {7}),
        ("0 9 * * sun", {7}),
        ("0 9 * * SUN", {7}),
        ("0 9 * * Sun", {7}),
        ("0 9 * * 0-1", {7, 1}),
        ("0 9 * * 5-7", {5, 6, 7}),
        ("0 9 * * fri-7", {5, 6, 7}),
        ("0 9 * * sat,sun", {6, 7}),
        ("0 9 * * 0,3", {7, 3}),
        ("0 9 * * */7", {7}),
        ("0 9 * * 6-7", {6, 7}),
        ("0 9 * * 0,7", {7}),
    ],
)
def test_every_spelling_of_sunday_fires_on_sunday(spec: str, weekdays: set[int]) -> None:
    schedule = parse(spec)
    assert schedule.matches(SUNDAY)
    assert not schedule.matches(SUNDAY + timedelta(minutes=1))
    week = schedule.ticks_between(SUNDAY - timedelta(minutes=1), SUNDAY + timedelta(days=6, hours=23))
    assert [t.isoweekday() for t in week] == sorted(weekdays, key=lambda d: d % 7)  # Sunday once, not twice


@pytest.mark.parametrize("spec", ["0 9 * * 0", "0 9 * * 7", "0 9 * * sun", "@weekly"])
def test_sunday_schedules_fire_once_a_week_over_four_weeks(spec: str) -> None:
    start = datetime(2026, 4, 1, tzinfo=UTC)
    ticks = parse(spec).ticks_between(start, start + timedelta(days=28))
    assert len(ticks) == 4
    assert all(t.isoweekday() == 7 for t in ticks)


@pytest.mark.parametrize(
    ("spec", "sunday", "monday", "saturday"),
    [
        ("0 9 * * 1-5", False, True, False),
        ("0 9 * * mon-fri", False, True, False),
        ("0 9 * * 0", True, False, False),
        ("0 9 * * 6", False, False, True),
        ("0 9 * * 0-1", True, True, False),
        ("0 9 * * *", True, True, True),
    ],
)
def test_weekday_ranges(spec: str, sunday: bool, monday: bool, saturday: bool) -> None:
    schedule = parse(spec)
    found = (schedule.matches(SUNDAY), schedule.matches(MONDAY), schedule.matches(SATURDAY))
    assert found == (sunday, monday, saturday)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*/5", tuple(range(0, 60, 5))),
        ("1-10/2", (1, 3, 5, 7, 9)),
        ("10-59/25", (10, 35)),
        ("*/20", (0, 20, 40)),
        ("1,15,30-32", (1, 15, 30, 31, 32)),
        ("5,5,1-3", (1, 2, 3, 5)),
        ("59", (59,)),
        ("0-4/1,50-59/3", (0, 1, 2, 3, 4, 50, 53, 56, 59)),
        ("5/15", (5, 20, 35, 50)),  # cronsim reads `a/n` as `a-59/n`
    ],
)
def test_minute_lists_ranges_and_steps(field: str, expected: tuple[int, ...]) -> None:
    hour = parse(f"{field} * * * *").ticks_between(at("2026-04-19T09:59"), at("2026-04-19T10:59"))
    assert tuple(t.minute for t in hour) == expected


def test_hour_steps() -> None:
    schedule = parse("0 */6 * * *")
    day = schedule.ticks_between(at("2025-12-31T23:59"), at("2026-01-01T23:59"))
    assert [t.hour for t in day] == [0, 6, 12, 18]
    assert schedule.matches(at("2026-01-01T18:00")) and not schedule.matches(at("2026-01-01T19:00"))


@pytest.mark.parametrize(
    ("spec", "matching", "not_matching"),
    [
        ("0 0 1 jan,JUL *", ["2026-01-01T00:00", "2026-07-01T00:00"], ["2026-02-01T00:00", "2026-01-02T00:00"]),
        ("0 0 1 Mar-May *", ["2026-03-01T00:00", "2026-05-01T00:00"], ["2026-06-01T00:00"]),
        ("0 0 * dec sun", ["2026-12-06T00:00"], ["2026-12-07T00:00", "2026-11-01T00:00"]),
    ],
)
def test_month_names(spec: str, matching: list[str], not_matching: list[str]) -> None:
    schedule = parse(spec)
    assert all(schedule.matches(at(t)) for t in matching)
    assert not any(schedule.matches(at(t)) for t in not_matching)


@pytest.mark.parametrize(
    ("spec", "first_tick"),
    [
        ("@yearly", "2027-01-01T00:00"),
        ("@annually", "2027-01-01T00:00"),
        ("@monthly", "2026-05-01T00:00"),
        ("@weekly", "2026-04-26T00:00"),
        ("@daily", "2026-04-20T00:00"),
        ("@midnight", "2026-04-20T00:00"),
        ("@hourly", "2026-04-19T10:00"),
        ("@DAILY", "2026-04-20T00:00"),
        ("  @hourly ", "2026-04-19T10:00"),
    ],
)
def test_nicknames(spec: str, first_tick: str) -> None:
    assert parse(spec).next_after(SUNDAY) == at(first_tick)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2026-02-13T00:00", True),  # Friday the 13th
        ("2026-03-13T00:00", True),  # a 13th (Friday)... and any 13th
        ("2026-04-13T00:00", True),  # Monday the 13th: day-of-month matches
        ("2026-04-17T00:00", True),  # Friday the 17th: day-of-week matches
        ("2026-04-16T00:00", False),  # Thursday the 16th: neither
    ],
)
def test_day_of_month_or_day_of_week_when_both_restricted(when: str, expected: bool) -> None:
    assert parse("0 0 13 * fri").matches(at(when)) is expected


@pytest.mark.parametrize(
    ("spec", "when", "expected"),
    [
        ("0 0 * * mon", "2026-04-20T00:00", True),
        ("0 0 * * mon", "2026-04-21T00:00", False),  # day-of-month `*` does not widen day-of-week
        ("0 0 1 * *", "2026-04-01T00:00", True),
        ("0 0 1 * *", "2026-04-20T00:00", False),
        ("0 0 */2 * 1", "2026-04-21T00:00", False),  # Vixie: a field starting with `*` is unrestricted: AND
        ("0 0 */2 * 1", "2026-04-27T00:00", True),  # odd day and a Monday
        ("0 0 */2 * 1", "2026-04-20T00:00", False),  # Monday but an even day
    ],
)
def test_star_prefixed_field_means_and(spec: str, when: str, expected: bool) -> None:
    assert parse(spec).matches(at(when)) is expected


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "expected 5 fields"),
        ("* * * *", "got 4"),
        ("* * * * * *", "got 6"),
        ("60 * * * *", "minute field: 60"),
        ("-1 * * * *", "minute field: -1 is not valid"),
        ("* 24 * * *", "hour field: 24"),
        ("* * 0 * *", "day-of-month field: 0"),
        ("* * 32 * *", "day-of-month field: 32 is not valid (allowed: 1-31"),
        ("* * * 13 *", "month field: 13"),
        ("* * * * 8", "day-of-week field: 8"),
        ("*/0 * * * *", "minute field: */0"),
        ("*/x * * * *", "minute field: */x"),
        ("10-5 * * * *", "minute field: 10-5"),
        ("1-2-3 * * * *", "minute field: 1-2-3"),
        ("a * * * *", "minute field: a is not valid"),
        ("1,,2 * * * *", "minute field: 1,,2"),
        ("* * * * fri-sun", "day-of-week field: fri-sun is not valid (allowed: 0-7 (0 and 7 are Sunday)"),
        ("0 0 * * * 0", "got 6"),  # no seconds field: ticks are whole minutes
        ("* * * foo *", "jan"),
        ("* * * * funday", "sun"),
        ("* * * * jan", "day-of-week field"),
        ("@reboot", "unknown nickname"),
        ("@every 5m", "unknown nickname"),
        ("0 0 30 feb *", "never fires: no month in 'feb' has a day '30'"),
        ("0 0 31 2 *", "never fires: no month in '2' has a day '31'"),
        ("0 0 31 apr,jun *", "never fires"),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(spec: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse(spec)
    assert fragment in str(caught.value)
    assert repr(spec) in str(caught.value)


@pytest.mark.parametrize("spec", [None, 5, ["* * * * *"]])
def test_a_spec_that_is_not_text_is_refused(spec: object) -> None:
    with pytest.raises(ValueError, match="cron spec must be a string"):
        parse(spec)  # type: ignore[arg-type]  # what a bad stored setting or JSON body may hold


def test_a_leap_day_schedule_is_possible() -> None:
    assert parse("0 0 29 2 *").next_after(at("2026-03-01T00:00")) == at("2028-02-29T00:00")


def test_both_restricted_never_refused_as_impossible() -> None:
    assert parse("0 0 31 feb mon").next_after(at("2026-04-19T00:00")) == at("2027-02-01T00:00")


@pytest.mark.parametrize(
    ("after", "until", "expected"),
    [
        ("2026-04-19T10:07", "2026-04-19T11:00", ["10:15", "10:30", "10:45", "11:00"]),
        ("2026-04-19T10:15", "2026-04-19T10:45", ["10:30", "10:45"]),  # after excluded, until included
        ("2026-04-19T10:14:59", "2026-04-19T10:45:30", ["10:15", "10:30", "10:45"]),
        ("2026-04-19T10:45", "2026-04-19T10:45", []),
        ("2026-04-19T11:00", "2026-04-19T10:00", []),
    ],
)
def test_ticks_between_bounds(after: str, until: str, expected: list[str]) -> None:
    ticks = parse("*/15 * * * *").ticks_between(at(after), at(until))
    assert [t.strftime("%H:%M") for t in ticks] == expected
    assert all(t.tzinfo is UTC and t.second == 0 for t in ticks)


def test_count_between_a_year_of_minutes_counts_whole_days_at_once() -> None:
    start = at("2026-01-01T00:00:30")
    assert parse("* * * * *").count_between(start, start + timedelta(days=365)) == 365 * 1440
    assert parse("*/15 9-17 * * mon-fri").count_between(start, start + timedelta(days=365)) == 261 * 9 * 4


def test_ticks_between_a_whole_day_of_minutes() -> None:
    start = at("2026-04-19T00:00")
    ticks = parse("* * * * *").ticks_between(start, start + timedelta(days=1))
    assert len(ticks) == 1440 and ticks[0] == start + timedelta(minutes=1) and ticks[-1] == start + timedelta(days=1)
    assert ticks == sorted(set(ticks))


@pytest.mark.parametrize(
    "spec", ["* * * * *", "*/7 3-5 * * *", "0 9 * * sun", "0 0 13 * fri", "@monthly", "30 23 31 * *", "0,59 0,23 * * *"]
)
@pytest.mark.parametrize(
    ("after", "until"),
    [
        ("2026-04-19T10:07:30", "2026-04-19T11:00"),
        ("2026-01-30T22:00", "2026-03-02T04:10"),
        ("2025-12-31T23:30", "2026-01-01T00:30"),
        ("2026-04-19T10:00", "2026-04-19T10:00"),
    ],
)
def test_count_between_agrees_with_ticks_between(spec: str, after: str, until: str) -> None:
    schedule = parse(spec)
    assert schedule.count_between(at(after), at(until)) == len(schedule.ticks_between(at(after), at(until)))


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        ("0 9 * * 0", "2026-04-20T12:00", "2026-04-26T09:00"),
        ("0 9 * * 0", "2026-04-19T09:00", "2026-04-26T09:00"),  # strictly after
        ("0 9 * * 0", "2026-04-19T08:59:59", "2026-04-19T09:00"),
        ("@yearly", "2026-12-31T23:59", "2027-01-01T00:00"),
        ("*/5 * * * *", "2026-04-19T23:58", "2026-04-20T00:00"),
    ],
)
def test_next_after(spec: str, after: str, expected: str) -> None:
    assert parse(spec).next_after(at(after)) == at(expected)


def test_aware_times_are_converted_and_naive_ones_are_utc() -> None:
    schedule = parse("0 9 * * 0")
    paris = timezone(timedelta(hours=2))
    assert schedule.matches(datetime(2026, 4, 19, 11, 0, tzinfo=paris))
    assert not schedule.matches(datetime(2026, 4, 19, 9, 0, tzinfo=paris))
    assert schedule.matches(datetime(2026, 4, 19, 9, 0))


def test_epoch_minutes_round_trip() -> None:
    minute = epoch_minute(at("2026-04-19T09:00:42"))
    assert from_epoch_minute(minute) == floor_minute(at("2026-04-19T09:00:42")) == at("2026-04-19T09:00")


def test_due_inside_the_window_fires_everything_since_last() -> None:
    due = due_ticks(parse("*/15 * * * *"), at("2026-04-19T09:30"), at("2026-04-19T10:00:10"), catchup_minutes=60)
    assert [t.strftime("%H:%M") for t in due.ticks] == ["09:45", "10:00"]
    assert (due.missed, due.skip_to) == (0, None)


def test_due_counts_ticks_older_than_the_window_as_missed() -> None:
    due = due_ticks(parse("*/15 * * * *"), at("2026-04-19T07:00"), at("2026-04-19T10:07:30"), catchup_minutes=60)
    assert [t.strftime("%H:%M") for t in due.ticks] == ["09:15", "09:30", "09:45", "10:00"]
    assert due.missed == 8  # 07:15 .. 09:00
    assert due.skip_to == at("2026-04-19T09:06")


def test_due_window_edge_is_inclusive() -> None:
    due = due_ticks(parse("* * * * *"), at("2026-04-19T08:00"), at("2026-04-19T10:00"), catchup_minutes=60)
    assert due.ticks[0] == at("2026-04-19T09:00") and len(due.ticks) == 61 and due.missed == 59


def test_zero_catchup_fires_only_the_current_minute() -> None:
    due = due_ticks(parse("* * * * *"), at("2026-04-19T08:00"), at("2026-04-19T10:00:59"), catchup_minutes=0)
    assert due.ticks == [at("2026-04-19T10:00")] and due.missed == 119


def test_due_with_no_ticks_before_the_window_still_moves_on() -> None:
    due = due_ticks(parse("0 0 1 1 *"), at("2026-01-01T00:00"), at("2026-04-19T10:00"), catchup_minutes=60)
    assert due.ticks == [] and due.missed == 0 and due.skip_to == at("2026-04-19T08:59")
