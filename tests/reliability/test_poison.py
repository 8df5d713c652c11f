"""The poison guard blames the job that kills its worker, not its neighbours or what was only prefetched."""

from __future__ import annotations

import os

import pytest
import redis

import actors
from domain.jobs import JobRecord, JobStatus
from tests.reliability.conftest import live_workers
from tests.reliability.effects import EFFECTS, kill_my_worker, slow_effect
from tests.waiting import wait_until

pytestmark = pytest.mark.reliability
THRESHOLD = 3  # POISON_THRESHOLD's default


def record(job_id: str) -> JobRecord | None:
    return actors.broker.jobs.get(job_id)


def count(client: redis.Redis, tag: str) -> int:
    return int(client.hget(EFFECTS, tag) or 0)


def status(job_id: str) -> JobStatus | None:
    found = record(job_id)
    return found.status if found else None


def test_bystanders_of_a_worker_killing_job_are_rerun_and_never_dead_lettered(redis_client, pools) -> None:
    pools(os.environ["REDIS_URL"], processes=1, threads=4)
    wait_until(lambda: len(live_workers(redis_client)) == 1, 60, "the worker heartbeats")
    bystanders = [slow_effect.send(f"bystander-{i}", 4.0) for i in range(3)]
    wait_until(
        lambda: all(status(m.message_id) is JobStatus.RUNNING for m in bystanders), 30, "the three ordinary jobs run"
    )
    killer = kill_my_worker.send("killer")
    dead = wait_until(
        lambda: (r := record(killer.message_id)) and r.status is JobStatus.DEAD and r,
        600,
        "the worker-killing job is dead-lettered",
    )
    assert f"worker died while running it {THRESHOLD} times" in (dead.last_error or "")
    # at most one run whose start its worker had no time to record, then THRESHOLD charged ones
    assert THRESHOLD <= count(redis_client, "killer") <= THRESHOLD + 1
    for message in bystanders:
        done = wait_until(
            lambda m=message: (r := record(m.message_id)) and r.status in (JobStatus.SUCCEEDED, JobStatus.DEAD) and r,
            120,
            "each ordinary job finishes",
        )
        assert done.status is JobStatus.SUCCEEDED, done.last_error
        assert count(redis_client, message.args[0]) == 1
    assert redis_client.zcard("backroom:default.XQ") == 1  # the killer alone


def test_a_job_only_prefetched_by_a_killed_worker_is_not_charged_a_crash(redis_client, pools) -> None:
    # queued before the pool starts: the single thread runs the killer while the consumer prefetches the next
    killer = kill_my_worker.send("prefetch-killer")
    waiting = [slow_effect.send(f"prefetched-{i}", 0.0) for i in range(3)]
    pools(os.environ["REDIS_URL"], processes=1, threads=1)
    wait_until(lambda: status(killer.message_id) is JobStatus.DEAD, 600, "the worker-killing job is dead-lettered")
    for message in waiting:
        done = wait_until(
            lambda m=message: (r := record(m.message_id)) and r.status is JobStatus.SUCCEEDED and r,
            120,
            "each prefetched job runs",
        )
        assert done.crashes == 0 and done.recoveries >= 0
        assert count(redis_client, message.args[0]) == 1
    assert sum(record(m.message_id).recoveries for m in waiting) >= 1  # some were held by a killed worker
