"""The scheduler against the real Redis broker, driven by a fake clock."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, UTC

import dramatiq
import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from dramatiq.message import Message
from periodiq import PeriodiqMiddleware, cron

import actors
from domain.cron import epoch_minute
from domain.jobs import JobStatus
from schedules.runner import SchedulerRunner, current_leader, discover_schedules, schedule_overview, spec_of
from tests.actors.helpers import wait_for_status
from tests.schedules.conftest import FakeClock, enqueued, make_runner
from tests.schedules.periodic_actors import QUEUE, RUNS_KEY
from tests.waiting import wait_until

UTC = UTC
NS = actors.broker.jobs.keys.ns
EVERY, QUARTER = "sched_every_minute", "sched_quarter_hour"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def minutes(start: str, count: int, step: int = 1) -> list[str]:
    return [(at(start) + timedelta(minutes=i * step)).isoformat() for i in range(count)]


def test_specs_are_read_from_periodiq_cron_objects_and_plain_strings() -> None:
    assert spec_of(cron("0 9 * * sun")) == "0 9 * * sun"
    assert spec_of(cron("@weekly")) == "@weekly"
    assert spec_of(cron("0 9 * * sun").replace(h=[10])) == "0 10 * * Sun"  # rebuilt text still parses
    found = {s.name: s.cron.spec for s in discover_schedules(actors.broker)}
    assert found["schedule_purge_expired"] == "17 3 * * *"
    assert found["sched_new_year"] == "0 0 1 jan *" and found[EVERY] == "* * * * *"
    assert "count_run" not in found and "ping" not in found
    rebuilt = discover_schedules(actors.broker, ["sched_sunday_name"])[0].cron
    sunday = at("2026-04-19T09:00")
    assert rebuilt.matches(sunday) and rebuilt.next_after(sunday) == at("2026-04-26T09:00")


def test_a_bad_spec_or_unknown_name_is_refused_naming_the_actor() -> None:
    broker = StubBroker()
    broker.add_middleware(PeriodiqMiddleware())

    def job() -> None:
        """Nothing."""

    dramatiq.actor(job, broker=broker, actor_name="bad_minute", periodic="61 * * * *")
    with pytest.raises(ValueError, match=r"periodic actor bad_minute: cron spec '61 \* \* \* \*'"):
        discover_schedules(broker)
    with pytest.raises(ValueError, match="not periodic actors of this broker: ping"):
        discover_schedules(actors.broker, ["ping"])


def test_a_tick_is_sent_without_scheduled_at_and_with_its_tick(redis_client: redis.Redis) -> None:
    runner = make_runner(FakeClock(at("2026-04-19T10:00:00.5")), EVERY, owner="a")
    runner.step()
    (payload,) = redis_client.hvals(actors.broker.jobs.keys.messages(QUEUE))
    message = Message.decode(payload)
    assert message.actor_name == EVERY
    assert message.options["schedule_tick"] == "2026-04-19T10:00:00+00:00"
    assert "scheduled_at" not in message.options  # PeriodiqMiddleware would skip it once old
    record = actors.broker.jobs.get(message.message_id)
    assert record is not None and record.status is JobStatus.QUEUED and record.actor == EVERY


def test_two_runners_fire_each_tick_exactly_once(redis_client: redis.Redis) -> None:
    clock = FakeClock(at("2026-04-19T10:00:00.5"))
    a, b = (make_runner(clock, EVERY, QUARTER, owner=name) for name in ("a", "b"))
    for minute in range(20):
        for second in (0.5, 20, 40):
            clock.set(at("2026-04-19T10:00") + timedelta(minutes=minute, seconds=second))
            first, second_runner = (a, b) if minute % 2 else (b, a)
            first.step()
            second_runner.step()
            assert a.leading != b.leading
    assert enqueued(redis_client, EVERY) == minutes("2026-04-19T10:00", 20)
    assert enqueued(redis_client, QUARTER) == minutes("2026-04-19T10:00", 2, step=15)
    assert current_leader(redis_client, NS) in ("a", "b")


def test_overlapping_leaders_never_fire_a_tick_twice(redis_client: redis.Redis) -> None:
    clock = FakeClock(at("2026-04-19T10:00:01"))
    a, b = (make_runner(clock, EVERY, owner=name) for name in ("a", "b"))
    for _ in range(5):  # both believe they lead (a lock hand-over while one was paused)
        a.fire_due(clock())
        b.fire_due(clock())
        clock.advance(minutes=1)
    redis_client.set(a.store.keys.last(EVERY), epoch_minute(at("2026-04-19T10:00")))  # a late, stale writer
    clock.advance(minutes=2)
    assert b.fire_due(clock()) + a.fire_due(clock()) == 3
    assert enqueued(redis_client, EVERY) == minutes("2026-04-19T10:00", 8)


def test_a_dead_leader_is_replaced_and_its_missed_ticks_caught_up(redis_client: redis.Redis) -> None:
    clock = FakeClock(at("2026-04-19T10:00:01"))
    a, b = (make_runner(clock, EVERY, owner=name, leader_ttl_ms=300) for name in ("a", "b"))
    a.step()
    b.step()
    assert a.leading and not b.leading
    clock.set(at("2026-04-19T10:03:10"))  # a stops renewing (killed), nothing fires meanwhile
    b.step()
    assert not b.leading and enqueued(redis_client, EVERY) == minutes("2026-04-19T10:00", 1)
    wait_until(lambda: b.step() is not None and b.leading, timeout=5, what="b to take the lead")
    assert current_leader(redis_client, NS) == "b"
    assert enqueued(redis_client, EVERY) == minutes("2026-04-19T10:00", 4)
    a.step()  # the old leader comes back: it follows and fires nothing
    assert not a.leading and enqueued(redis_client, EVERY) == minutes("2026-04-19T10:00", 4)


def test_a_leader_dying_after_enqueue_before_recording_causes_no_duplicate(redis_client: redis.Redis) -> None:
    clock = FakeClock(at("2026-04-19T10:00:01"))
    a, b = (make_runner(clock, EVERY, owner=name) for name in ("a", "b"))
    for _ in range(3):
        a.step()
        clock.advance(minutes=1)
    # a enqueued 10:01 and 10:02 but died before recording them
    redis_client.set(a.store.keys.last(EVERY), epoch_minute(at("2026-04-19T10:00")))
    redis_client.delete(a.store.keys.leader)
    b.step()
    assert b.leading
    assert enqueued(redis_client, EVERY) == minutes("2026-04-19T10:00", 4)


def test_a_restart_inside_a_due_minute_does_not_fire_it_again(redis_client: redis.Redis) -> None:
    clock = FakeClock(at("2026-04-19T10:05:01"))
    first = make_runner(clock, EVERY, owner="first")
    first.step()
    first.resign()  # SIGTERM: the lock is handed back at once
    assert current_leader(redis_client, NS) is None
    clock.set(at("2026-04-19T10:05:30"))
    restarted = make_runner(clock, EVERY, owner="restarted")
    restarted.step()
    assert restarted.leading and enqueued(redis_client, EVERY) == minutes("2026-04-19T10:05", 1)
    clock.set(at("2026-04-19T10:06:00.05"))
    restarted.step()
    assert enqueued(redis_client, EVERY) == minutes("2026-04-19T10:05", 2)


def test_the_first_start_has_no_backlog(redis_client: redis.Redis) -> None:
    runner = make_runner(FakeClock(at("2026-04-19T10:07:30")), EVERY, QUARTER, owner="a")
    runner.step()
    assert enqueued(redis_client, EVERY) == minutes("2026-04-19T10:07", 1)
    assert enqueued(redis_client, QUARTER) == []


def test_catch_up_is_bounded_by_the_window_and_older_ticks_are_counted_missed(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(at("2026-04-19T10:07:30"))
    runner = make_runner(clock, QUARTER, owner="a", catchup_minutes=60)
    runner.store.advance(QUARTER, at("2026-04-19T07:00"))  # the previous run handled up to 07:00
    with caplog.at_level(logging.WARNING, logger="backroom.scheduler"):
        runner.step()
    assert enqueued(redis_client, QUARTER) == minutes("2026-04-19T09:15", 4, step=15)
    assert "sched_quarter_hour: 8 tick(s) older than 60 minute(s) were missed" in caplog.text
    clock.advance(seconds=15)
    runner.step()
    clock.set(at("2026-04-19T10:15:00.1"))
    runner.step()
    assert enqueued(redis_client, QUARTER) == minutes("2026-04-19T09:15", 5, step=15)
    (row,) = [r for r in schedule_overview(redis_client, NS, actors.broker, now=clock()) if r.actor == QUARTER]
    assert row.missed == 8  # counted once, not on every pass
    assert row.last_tick == at("2026-04-19T10:15") and row.next_tick == at("2026-04-19T10:30")


@pytest.mark.parametrize("actor_name", ["sched_sunday_zero", "sched_sunday_name"])
def test_a_sunday_schedule_fires_on_sunday_only(redis_client: redis.Redis, actor_name: str) -> None:
    clock = FakeClock(at("2026-04-18T09:00:01"))  # Saturday
    runner = make_runner(clock, actor_name, owner="a")
    sent = []
    for when in (
        "2026-04-18T09:00:01",
        "2026-04-19T08:30",
        "2026-04-19T09:00:01",
        "2026-04-19T09:00:40",
        "2026-04-20T09:00:01",
    ):
        clock.set(at(when))
        runner.step()
        sent.append(len(enqueued(redis_client, actor_name)))
    assert sent == [0, 0, 1, 1, 1]
    assert enqueued(redis_client, actor_name) == ["2026-04-19T09:00:00+00:00"]
    (row,) = [r for r in schedule_overview(redis_client, NS, actors.broker, now=clock()) if r.actor == actor_name]
    assert row.last_tick == at("2026-04-19T09:00") and row.next_tick == at("2026-04-26T09:00")
    assert row.last_job_id is not None and actors.broker.jobs.get(row.last_job_id) is not None
    assert (row.missed, row.queue) == (0, QUEUE)


def test_a_failing_periodic_job_is_retried_until_dead(redis_client: redis.Redis, worker: dramatiq.Worker) -> None:
    clock = FakeClock(at("2020-01-05T09:00:30"))  # a tick six years old: no age limit may skip it
    runner = make_runner(clock, "sched_failing", owner="a")
    assert runner.fire_due(clock()) == 1
    job_id = runner.store.state("sched_failing")["last_job_id"]
    dead = wait_for_status(job_id, JobStatus.DEAD, timeout=30, where=lambda r: r.traceback is not None)
    assert dead.attempts == 3  # the first run and max_retries=2 retries
    assert "ScheduledFailure" in (dead.traceback or "")
    assert int(redis_client.hget(RUNS_KEY, "sched_failing") or 0) == 3
    # the dead-letter nack follows the record write: poll for it
    wait_until(lambda: redis_client.zcard(actors.broker.jobs.keys.dead(QUEUE)) == 1, what="one dead letter")


def test_run_leads_with_the_real_clock_and_stops_cleanly(redis_client: redis.Redis) -> None:
    runner = SchedulerRunner(actors.broker, schedules=discover_schedules(actors.broker, [EVERY]), owner="live")
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        wait_until(
            lambda: current_leader(redis_client, NS) == "live" and len(enqueued(redis_client, EVERY)) == 1,
            what="the live runner leading and one tick enqueued",
        )
    finally:
        runner.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert current_leader(redis_client, NS) is None
    (tick,) = enqueued(redis_client, EVERY)
    assert 3 * 86400 - 60 < redis_client.ttl(runner.store.keys.fired(EVERY, datetime.fromisoformat(tick))) <= 3 * 86400
