"""The scheduler's Redis primitives: the leader lock, tick claims and forward-only progress."""

from __future__ import annotations

import logging
from datetime import datetime, UTC
from typing import Any

import pytest
import redis
from dramatiq.message import Message

import actors
from schedules.cron import parse
from schedules.lock import LeaderLock
from schedules.runner import Schedule, discover_schedules
from schedules.store import ScheduleStore
from tests.schedules.conftest import FakeClock, enqueued, make_runner

UTC = UTC
NS = actors.broker.jobs.keys.ns


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_lock_is_held_renewed_and_released_only_by_its_owner(redis_client: redis.Redis) -> None:
    key = f"{NS}:scheduler:leader"
    a, b = (LeaderLock(redis_client, key, owner, ttl_ms=10_000) for owner in ("a", "b"))
    assert a.hold() and not b.hold()
    assert redis_client.get(key) == b"a" and 9_000 < redis_client.pttl(key) <= 10_000
    redis_client.pexpire(key, 500)
    assert not b.renew() and redis_client.pttl(key) <= 500  # b cannot extend a's lock
    assert a.renew() and redis_client.pttl(key) > 9_000
    assert not b.release() and redis_client.get(key) == b"a"
    assert a.release() and redis_client.get(key) is None
    assert b.hold() and not a.hold()


def test_progress_only_moves_forward_and_a_miss_is_counted_once(redis_client: redis.Redis) -> None:
    store = ScheduleStore(redis_client, NS)
    assert store.advance("x", at("2026-04-19T10:05"), missed=3, last_tick="t1")
    # an overlapping leader that read the same `last` reports the same backlog, or an older tick
    assert not store.advance("x", at("2026-04-19T10:05"), missed=3, last_tick="t0")
    assert not store.advance("x", at("2026-04-19T10:03"), last_tick="t0")
    assert store.last("x") == at("2026-04-19T10:05")
    assert store.state("x") == {"missed": "3", "last_tick": "t1"}


def test_a_claim_is_taken_once_and_can_be_given_back(redis_client: redis.Redis) -> None:
    store = ScheduleStore(redis_client, NS)
    tick = at("2026-04-19T10:05")
    assert store.keys.fired("x", tick) == f"{NS}:scheduler:fired:x:{int(tick.timestamp()) // 60}"
    assert store.claim("x", tick, "a") and not store.claim("x", tick, "b")
    store.unclaim("x", tick)
    assert store.claim("x", tick, "b")


class FlakyActor:
    """Stands in for an actor whose first enqueue fails (Redis hiccup, encoding bug)."""

    actor_name = "flaky"
    queue_name = "default"

    def __init__(self) -> None:
        self.calls = 0

    def send_with_options(self, **options: Any) -> Message:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("enqueue failed")
        return Message(queue_name="default", actor_name="flaky", args=(), kwargs={}, options=options)


def test_a_failed_enqueue_gives_the_tick_back_and_spares_the_other_schedules(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyActor()
    clock = FakeClock(at("2026-04-19T10:00:01"))
    runner = make_runner(clock, owner="a")
    runner.schedules = [Schedule(flaky, parse("* * * * *")), *discover_schedules(actors.broker, ["sched_every_minute"])]
    with caplog.at_level(logging.ERROR, logger="backroom.scheduler"):
        assert runner.fire_due(clock()) == 1
    assert "schedule flaky failed" in caplog.text
    assert enqueued(redis_client, "sched_every_minute") == ["2026-04-19T10:00:00+00:00"]
    clock.advance(seconds=5)
    assert runner.fire_due(clock()) == 1 and flaky.calls == 2
    assert runner.store.state("flaky")["last_tick"] == "2026-04-19T10:00:00+00:00"
