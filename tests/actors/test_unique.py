"""Unique jobs: one live job per key; the key frees itself when the job is over."""

from __future__ import annotations

import time

import dramatiq
import redis

import actors
from actors.ops import ping
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_status


def test_second_enqueue_returns_the_live_job_and_enqueues_nothing(redis_client: redis.Redis) -> None:
    first = ping.send_with_options(kwargs={"message": "a"}, unique_key="sync:items")
    second = ping.send_with_options(kwargs={"message": "b"}, unique_key="sync:items")
    assert second.message_id == first.message_id and second.options["deduplicated"] is True
    assert redis_client.llen(actors.broker.jobs.keys.queue("default")) == 1
    assert actors.broker.jobs.get(first.message_id).unique_key == "sync:items"
    other = ping.send_with_options(kwargs={"message": "c"}, unique_key="another")
    assert other.message_id != first.message_id


def test_delayed_and_running_jobs_hold_the_key(redis_client: redis.Redis, worker: dramatiq.Worker) -> None:
    delayed = ping.send_with_options(kwargs={"sleep_ms": 600}, unique_key="k", delay=200)
    assert ping.send_with_options(unique_key="k").message_id == delayed.message_id
    wait_for_status(delayed.message_id, JobStatus.RUNNING)
    assert ping.send_with_options(unique_key="k").message_id == delayed.message_id
    wait_for_status(delayed.message_id, JobStatus.SUCCEEDED)
    fresh = ping.send_with_options(unique_key="k")
    assert fresh.message_id != delayed.message_id and not fresh.options.get("deduplicated")


def test_a_retrying_job_keeps_its_key_and_a_dead_one_frees_it(
    redis_client: redis.Redis, worker: dramatiq.Worker
) -> None:
    # ping's own backoff (from 200 ms) can end a retry before a poll sees it: wait 2 s between tries
    failing = ping.send_with_options(kwargs={"fail": True}, unique_key="f", min_backoff=2_000, max_backoff=2_000)
    wait_for_status(failing.message_id, JobStatus.RETRYING)
    assert ping.send_with_options(unique_key="f").message_id == failing.message_id
    wait_for_status(failing.message_id, JobStatus.DEAD, timeout=30)
    assert ping.send_with_options(unique_key="f").message_id != failing.message_id


def test_a_cancelled_job_frees_its_key(redis_client: redis.Redis) -> None:
    first = ping.send_with_options(unique_key="c")
    actors.broker.jobs.cancel(first.message_id, now_ms=int(time.time() * 1000))
    assert ping.send_with_options(unique_key="c").message_id != first.message_id
