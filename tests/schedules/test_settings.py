"""The admin's schedule settings in Postgres, read by a running scheduler: cadence and on/off without a restart."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, UTC

import pytest
import redis

import actors
from admin.schedules import UnknownSchedule, change_schedule
from db.audit import select_audit
from domain.schedules import ScheduleSetting
from schedules.runner import schedule_overview
from schedules.settings import CachedSettings, PostgresSettings
from tests.schedules.conftest import FakeClock, enqueued, make_runner, run_db

UTC = UTC
NS = actors.broker.jobs.keys.ns
EVERY, QUARTER = "sched_every_minute", "sched_quarter_hour"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def change(dsn: str, actor: str, **changes: object) -> ScheduleSetting:
    return run_db(dsn, lambda conn: change_schedule(conn, actors.broker, actor, by="test:admin", **changes))


@pytest.fixture()
def live_settings(schedule_tables: str) -> CachedSettings:
    """What `backroom scheduler` reads: Postgres through the cache (ttl 0: every pass reads again)."""
    loader = PostgresSettings(schedule_tables)
    yield CachedSettings(loader, ttl_s=0)
    loader.close()


def test_a_cadence_change_takes_effect_in_the_running_scheduler(
    redis_client: redis.Redis, schedule_tables: str, live_settings: CachedSettings
) -> None:
    clock = FakeClock(at("2026-04-19T10:07:30"))
    runner = make_runner(clock, QUARTER, owner="a", settings=live_settings)
    runner.step()
    assert enqueued(redis_client, QUARTER) == []  # declared */15: nothing due at 10:07
    change(schedule_tables, QUARTER, cron="* * * * *")
    clock.set(at("2026-04-19T10:08:00.5"))
    runner.step()  # the same runner, no restart: the new cadence, and no backlog for 10:01..10:07
    assert enqueued(redis_client, QUARTER) == ["2026-04-19T10:08:00+00:00"]
    clock.set(at("2026-04-19T10:09:00.5"))
    runner.step()
    assert enqueued(redis_client, QUARTER)[-1] == "2026-04-19T10:09:00+00:00"
    change(schedule_tables, QUARTER, cron=None)  # back to the declaration
    for minute in ("10:10:00.5", "10:14:00.5", "10:15:00.5"):
        clock.set(at(f"2026-04-19T{minute}"))
        runner.step()
    assert enqueued(redis_client, QUARTER) == [
        "2026-04-19T10:08:00+00:00",
        "2026-04-19T10:09:00+00:00",
        "2026-04-19T10:15:00+00:00",
    ]
    rows = run_db(schedule_tables, lambda conn: select_audit(conn, target=f"schedule:{QUARTER}"))
    assert [(r.before["cron"], r.after["cron"]) for r in reversed(rows)] == [
        ("*/15 * * * *", "* * * * *"),
        ("* * * * *", "*/15 * * * *"),
    ]
    assert rows[0].actor == "test:admin" and rows[0].action == "schedule.set"


def test_a_disabled_schedule_does_not_fire_and_re_enabling_fires_no_backlog(
    redis_client: redis.Redis, schedule_tables: str, live_settings: CachedSettings
) -> None:
    clock = FakeClock(at("2026-04-19T10:00:00.5"))
    runner = make_runner(clock, EVERY, owner="a", settings=live_settings)
    runner.step()
    change(schedule_tables, EVERY, enabled=False)
    for minute in range(1, 6):
        clock.set(at(f"2026-04-19T10:0{minute}:00.5"))
        runner.step()
    assert enqueued(redis_client, EVERY) == ["2026-04-19T10:00:00+00:00"]
    (row,) = [
        r
        for r in schedule_overview(redis_client, NS, actors.broker, now=clock(), settings=live_settings())
        if r.actor == EVERY
    ]
    assert not row.enabled and row.next_tick is None and row.default_spec == "* * * * *"
    change(schedule_tables, EVERY, enabled=True)
    clock.set(at("2026-04-19T10:06:00.5"))
    runner.step()
    assert enqueued(redis_client, EVERY) == ["2026-04-19T10:00:00+00:00", "2026-04-19T10:06:00+00:00"]


def test_a_bad_cron_or_unknown_schedule_is_refused_and_nothing_is_stored(schedule_tables: str) -> None:
    with pytest.raises(ValueError, match="minute field: 61"):
        change(schedule_tables, EVERY, cron="61 * * * *")
    with pytest.raises(UnknownSchedule, match="unknown schedule 'ping'"):
        change(schedule_tables, "ping", enabled=False)
    stored = run_db(schedule_tables, lambda conn: conn.fetchval("SELECT count(*) FROM schedule_settings"))
    assert stored == 0


def test_a_stored_cadence_that_does_not_parse_falls_back_to_the_declaration(
    redis_client: redis.Redis, schedule_tables: str, live_settings: CachedSettings
) -> None:
    run_db(
        schedule_tables,
        lambda conn: conn.execute(  # written past the CLI, which refuses it
            "INSERT INTO schedule_settings (actor, cron) VALUES ($1, 'not a cron')", EVERY
        ),
    )
    runner = make_runner(FakeClock(at("2026-04-19T10:00:00.5")), EVERY, owner="a", settings=live_settings)
    runner.step()
    assert enqueued(redis_client, EVERY) == ["2026-04-19T10:00:00+00:00"]


def test_the_cache_reads_once_per_ttl_and_keeps_the_last_settings_when_postgres_fails() -> None:
    now = [0.0]
    answers: list[Mapping[str, ScheduleSetting] | Exception] = [
        {EVERY: ScheduleSetting(actor=EVERY, enabled=False)},
        OSError("connection refused"),
    ]
    calls = []

    def load() -> Mapping[str, ScheduleSetting]:
        calls.append(now[0])
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    cache = CachedSettings(load, ttl_s=10, clock=lambda: now[0])
    assert not cache()[EVERY].enabled
    now[0] = 5
    assert not cache()[EVERY].enabled and calls == [0.0]
    now[0] = 11
    assert not cache()[EVERY].enabled and calls == [0.0, 11]  # failed: the last settings stay in force


def test_an_unreachable_database_leaves_every_schedule_as_declared() -> None:
    loader = PostgresSettings("postgresql://nobody@127.0.0.1:1/none", timeout_s=2)
    try:
        assert CachedSettings(loader, ttl_s=0)() == {}
    finally:
        loader.close()
