"""A fake clock, runners on the real broker, a real worker, and readers of what was enqueued."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
import redis
from dramatiq import Worker
from dramatiq.message import Message

import actors
from schedules.runner import SchedulerRunner, discover_schedules
from tests.schedules.periodic_actors import QUEUE


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make_runner(clock: Callable[[], datetime], *names: str, owner: str, **options: Any) -> SchedulerRunner:
    """A runner over the named test schedules of the real server broker."""
    return SchedulerRunner(
        actors.broker, schedules=discover_schedules(actors.broker, names), clock=clock, owner=owner, **options
    )


def enqueued(client: redis.Redis, actor_name: str) -> list[str]:
    """The schedule_tick of every message of `actor_name` waiting on the test queue, sorted."""
    ticks = []
    for payload in client.hvals(actors.broker.jobs.keys.messages(QUEUE)):
        message = Message.decode(payload)
        if message.actor_name == actor_name:
            ticks.append(message.options["schedule_tick"])
    return sorted(ticks)


@pytest.fixture()
def worker(redis_client: redis.Redis) -> Iterator[Worker]:
    """A started worker over every server queue (Redis emptied first)."""
    worker = Worker(actors.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()
    tracking = next(m for m in actors.broker.middleware if type(m).__name__ == "JobTracking")
    tracking.writer.flush()


def run_db(database_url: str, work: Callable[..., Any]) -> Any:
    """Run `work(conn)` on a fresh connection to the test database."""

    async def go() -> Any:
        conn = await asyncpg.connect(database_url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture()
def schedule_tables(database_url: str) -> str:
    """The admin's schedule settings and lists emptied (every schedule as declared, default lists)."""
    run_db(database_url, lambda conn: conn.execute("TRUNCATE schedule_settings, schedule_config"))
    return database_url
