"""Every job status transition, through a real worker on the real Redis broker."""

from __future__ import annotations

import time

import dramatiq
import pytest
import redis

import actors
from actors.ops import ping
from domain.jobs import REDACTED, JobStatus
from tests.actors.helpers import wait_for_status
from tests.waiting import wait_until

RUNS_KEY = "test:runs"


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=10_000)
def count_run(tag: str, password: str = "", api_key: str = "") -> int:
    """Count each execution in Redis so tests can assert exact effects."""
    return int(actors.broker.client.hincrby(RUNS_KEY, tag, 1))


def runs(client: redis.Redis, tag: str) -> int:
    return int(client.hget(RUNS_KEY, tag) or 0)


def test_enqueued_job_is_queued_with_redacted_arguments(redis_client: redis.Redis) -> None:
    message = count_run.send("a", password="hunter2", api_key="k")
    record = actors.broker.jobs.get(message.message_id)
    assert record is not None
    assert record.status is JobStatus.QUEUED
    assert (record.actor, record.queue, record.attempts) == ("count_run", "default", 0)
    assert record.args == ["a"]
    assert record.kwargs == {"password": REDACTED, "api_key": REDACTED}
    assert record.enqueued_at is not None and record.started_at is None
    ttl = redis_client.ttl(actors.broker.jobs.keys.job(message.message_id))
    assert 6 * 86400 < ttl <= 7 * 86400


def test_delayed_job_is_delayed_then_runs(redis_client: redis.Redis, worker: dramatiq.Worker) -> None:
    message = count_run.send_with_options(args=("d",), delay=300)
    record = actors.broker.jobs.get(message.message_id)
    assert record is not None and record.status is JobStatus.DELAYED and record.eta is not None
    done = wait_for_status(message.message_id, JobStatus.SUCCEEDED)
    assert done.started_at is not None and done.started_at >= record.eta
    assert runs(redis_client, "d") == 1


def test_running_then_succeeded_with_result(redis_client: redis.Redis, worker: dramatiq.Worker) -> None:
    message = ping.send(message="hello", sleep_ms=400)
    running = wait_for_status(message.message_id, JobStatus.RUNNING)
    assert running.worker and running.attempts == 1 and running.started_at is not None
    done = wait_for_status(message.message_id, JobStatus.SUCCEEDED)
    assert done.result == {"message": "hello"}
    assert done.finished_at is not None and done.finished_at >= done.started_at


def test_failing_job_retries_then_lands_dead_in_the_dlq(redis_client: redis.Redis, worker: dramatiq.Worker) -> None:
    message = ping.send(message="boom", fail=True)
    retrying = wait_for_status(message.message_id, JobStatus.RETRYING, where=lambda r: r.last_error is not None)
    assert retrying.last_error == "PingFailed: ping asked to fail: boom"
    dead = wait_for_status(message.message_id, JobStatus.DEAD, timeout=30, where=lambda r: r.traceback is not None)
    assert dead.attempts == 3  # the first run and max_retries=2 retries
    assert "PingFailed" in (dead.traceback or "")
    keys = actors.broker.jobs.keys
    assert redis_client.zcard(keys.dead("default")) == 1
    payload = next(iter(redis_client.hvals(keys.dead_messages("default"))))
    assert message.message_id.encode() in payload and b"traceback" in payload
    assert redis_client.ttl(keys.job(message.message_id)) == -1  # kept until discarded


def test_cancelled_job_never_runs(redis_client: redis.Redis) -> None:
    message = count_run.send("c")
    assert actors.broker.jobs.cancel(message.message_id, now_ms=int(time.time() * 1000)) is JobStatus.CANCELLED
    assert redis_client.llen(actors.broker.jobs.keys.queue("default")) == 0
    worker = dramatiq.Worker(actors.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        after = count_run.send("after")
        wait_for_status(after.message_id, JobStatus.SUCCEEDED)
    finally:
        worker.stop()
    record = actors.broker.jobs.get(message.message_id)
    assert record is not None and record.status is JobStatus.CANCELLED and record.attempts == 0
    assert runs(redis_client, "c") == 0


def test_cancelled_delayed_job_is_not_put_back_by_the_delay_hop(
    redis_client: redis.Redis, worker: dramatiq.Worker
) -> None:
    message = count_run.send_with_options(args=("dc",), delay=500)
    wait_until(
        lambda: redis_client.llen(actors.broker.jobs.keys.queue("default.DQ")) == 0,
        10,
        "the worker to pull it into its in-memory delay queue",
    )
    assert actors.broker.jobs.cancel(message.message_id, now_ms=int(time.time() * 1000)) is JobStatus.CANCELLED
    probe = count_run.send_with_options(args=("probe",), delay=900)
    wait_for_status(probe.message_id, JobStatus.SUCCEEDED)
    assert runs(redis_client, "dc") == 0
    assert actors.broker.jobs.get(message.message_id).status is JobStatus.CANCELLED


def test_a_fetched_job_is_cancelled_by_its_worker_unless_it_started(
    redis_client: redis.Redis, worker: dramatiq.Worker
) -> None:
    store = actors.broker.jobs
    busy = [ping.send(message="busy", sleep_ms=1500) for _ in range(4)]  # the fixture's 4 threads
    for message in busy:
        wait_for_status(message.message_id, JobStatus.RUNNING)
    held = count_run.send("held")
    wait_until(
        lambda: redis_client.llen(store.keys.queue("default")) == 0,
        10,
        "the job prefetched: out of the list, into the worker's memory (and ack set)",
        interval=0.005,
    )
    assert store.cancel(held.message_id, now_ms=int(time.time() * 1000)) is JobStatus.CANCELLED
    assert store.cancel(busy[0].message_id, now_ms=int(time.time() * 1000)) is JobStatus.RUNNING
    # as if its start were still on the way to Redis: the worker is asked, and refuses
    redis_client.hset(store.keys.job(busy[1].message_id), "status", "queued")
    assert store.cancel(busy[1].message_id, now_ms=int(time.time() * 1000)) is not JobStatus.CANCELLED
    for message in busy:
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
    probe = count_run.send("probe")
    wait_for_status(probe.message_id, JobStatus.SUCCEEDED)
    assert runs(redis_client, "held") == 0
    record = store.get(held.message_id)
    assert record.status is JobStatus.CANCELLED and record.attempts == 0
    assert "cancel refused: already started" in [e["event"] for e in store.events(busy[1].message_id)]
    assert not redis_client.hexists(store.keys.job(held.message_id), "cancel_requested")


def test_a_cancel_for_a_message_in_transit_is_refused(redis_client: redis.Redis) -> None:
    message = count_run.send("transit")
    store = actors.broker.jobs
    redis_client.lpop(store.keys.queue("default"))  # neither in the list nor held by a live worker
    assert store.cancel(message.message_id, now_ms=1) is JobStatus.QUEUED


def test_a_recovered_message_is_claimed_and_a_cancelled_one_refused(redis_client: redis.Redis) -> None:
    message = count_run.send("claim")
    store = actors.broker.jobs
    assert store.claim(message.message_id, worker="w", actor="count_run", queue="default", now_ms=2) is True
    assert store.get(message.message_id).status is JobStatus.RUNNING
    other = count_run.send("claim2")
    redis_client.hset(store.keys.job(other.message_id), "status", "cancelled")
    assert store.claim(other.message_id, worker="w", actor="count_run", queue="default", now_ms=2) is False


@pytest.mark.parametrize("status", ["running", "succeeded", "dead"])
def test_started_or_finished_jobs_cannot_be_cancelled(redis_client: redis.Redis, status: str) -> None:
    message = count_run.send("x")
    redis_client.hset(actors.broker.jobs.keys.job(message.message_id), "status", status)
    assert actors.broker.jobs.cancel(message.message_id, now_ms=1) is JobStatus(status)


def test_unknown_job_cancel_and_get() -> None:
    assert actors.broker.jobs.cancel("00000000-0000-0000-0000-000000000000", now_ms=1) is None
    assert actors.broker.jobs.get("00000000-0000-0000-0000-000000000000") is None


def test_a_start_and_its_outcomes_in_one_batch_are_one_write_with_every_event() -> None:
    from broker.tracking import Outcome, coalesce

    start = Outcome("j", {"status": "running", "worker": "w"}, False, {"event": "started"}, incr=("attempts",))
    failed = Outcome(
        "j",
        {"status": "retrying", "last_error": "E"},
        False,
        {"event": "failed"},
        queue="q",
        counters=("processed", "failed"),
    )
    again = Outcome("j", {"status": "running"}, False, {"event": "started"}, incr=("attempts",))
    dead = Outcome("j", {"status": "dead"}, True, {"event": "dead"}, queue="q", counters=("processed", "dead"))
    other = Outcome("k", {"status": "succeeded"}, False, {"event": "succeeded"})
    merged = coalesce([start, other, failed, again, dead])
    assert [m.job_id for m in merged] == ["j", "k"]
    job = merged[0]
    assert job.fields == {"status": "dead", "worker": "w", "last_error": "E"} and job.keep is True
    assert [e["event"] for e in job.event] == ["started", "failed", "started", "dead"]
    assert job.incr == ("attempts", "attempts") and job.counters == ("processed", "failed", "processed", "dead")
    assert merged[1] == other


def test_a_batched_write_applies_every_start(redis_client: redis.Redis) -> None:
    from broker.tracking import Outcome, coalesce

    store = actors.broker.jobs
    message = count_run.send("batched")
    batch = coalesce(
        [
            Outcome(message.message_id, {"status": "running"}, False, {"event": "started"}, incr=("attempts",)),
            Outcome(message.message_id, {"status": "running"}, False, {"event": "started"}, incr=("attempts",)),
            Outcome(message.message_id, {"status": "succeeded"}, False, {"event": "succeeded"}),
        ]
    )
    with redis_client.pipeline(transaction=False) as pipe:
        for item in batch:
            store.write_final(pipe, item.job_id, item.fields, keep=item.keep, event=item.event, incr=item.incr)
        pipe.execute()
    record = store.get(message.message_id)
    assert record.status is JobStatus.SUCCEEDED and record.attempts == 2
    assert [e["event"] for e in store.events(message.message_id)] == ["queued", "started", "started", "succeeded"]
