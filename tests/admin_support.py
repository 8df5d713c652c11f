"""Shared by the admin tests: an actor that fails on demand, a real in-process worker, waits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq

import actors
from broker.deadletters import DeadLetters
from domain.jobs import JobRecord, JobStatus
from tests.waiting import wait_until

FAIL_FLAG = "test:admin:fail"
RUNS = "test:admin:runs"


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=10_000)
def admin_flaky(tag: str, fail: bool = False, api_key: str = "") -> dict:
    """Count each run; fail when asked to or while the test's flag is set in Redis."""
    actors.broker.client.hincrby(RUNS, tag, 1)
    if fail or actors.broker.client.exists(FAIL_FLAG):
        raise RuntimeError(f"admin flaky failure: {tag} #{int(actors.broker.client.hget(RUNS, tag) or 0)}")
    return {"tag": tag, "klen": len(api_key)}


def runs(tag: str) -> int:
    """How many times `admin_flaky(tag)` ran."""
    return int(actors.broker.client.hget(RUNS, tag) or 0)


@contextmanager
def running_worker(queues: set[str] | None = None) -> Iterator[dramatiq.Worker]:
    """A real Dramatiq worker on the test broker, stopped (and its record writes flushed) at the end."""
    middleware = list(actors.broker.middleware)
    worker = dramatiq.Worker(actors.broker, worker_threads=2, worker_timeout=100, queues=queues)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        actors.broker.middleware[:] = middleware  # the worker's own, which Dramatiq leaves behind, goes
        tracking = next(m for m in actors.broker.middleware if type(m).__name__ == "JobTracking")
        tracking.writer.flush()


def record(job_id: str) -> JobRecord | None:
    """The job's record now."""
    return actors.broker.jobs.get(job_id)


def reaches(job_id: str, *statuses: JobStatus, timeout: float = 15.0) -> JobRecord:
    """Wait until the job's record is in one of `statuses`."""
    return wait_until(
        lambda: (r := record(job_id)) is not None and r.status in statuses and r,
        timeout,
        f"job {job_id} to reach {[s.value for s in statuses]}",
    )


def make_dead(tag: str, **kwargs: Any) -> str:
    """Run `admin_flaky` through a real worker until it is dead-lettered; returns its job id."""
    actors.broker.client.set(FAIL_FLAG, "1")
    try:
        with running_worker({"default"}):
            message = admin_flaky.send(tag, **kwargs)
            reaches(message.message_id, JobStatus.DEAD)
            dead = DeadLetters.for_broker(actors.broker)
            wait_until(lambda: dead.resolve("default", [message.message_id])[0], what="the dead letter")
    finally:
        actors.broker.client.delete(FAIL_FLAG)
    return message.message_id
