"""Nothing lost, nothing doubled: kill -9, poison messages, SIGTERM, Redis restarts."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

import actors
from broker.setup import build_broker
from config.settings import get_settings
from domain.jobs import JobStatus
from tests.reliability.conftest import HEARTBEAT_MS, live_workers
from tests.reliability.effects import EFFECTS, kill_my_worker, slow_effect
from tests.waiting import wait_until

pytestmark = pytest.mark.reliability


def record(job_id: str, broker=None):  # type: ignore[no-untyped-def]
    return (broker or actors.broker).jobs.get(job_id)


def count(client: redis.Redis, tag: str) -> int:
    return int(client.hget(EFFECTS, tag) or 0)


def test_sigkilled_worker_job_reruns_on_a_live_worker_and_the_pool_survives(redis_client, pools) -> None:
    pools(os.environ["REDIS_URL"], processes=2, threads=2)
    wait_until(lambda: len(live_workers(redis_client)) == 2, 60, "two workers heartbeat")
    message = slow_effect.send("victim", 2.0)
    running = wait_until(
        lambda: (r := record(message.message_id)) and r.status is JobStatus.RUNNING and r, 30, "the job starts"
    )
    victim_pid = int(running.worker.rsplit(":", 1)[1])
    os.kill(victim_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    done = wait_until(
        lambda: (r := record(message.message_id)) and r.status is JobStatus.SUCCEEDED and r,
        90,
        "the job re-runs and succeeds",
    )
    assert time.monotonic() - killed_at < 60
    assert count(redis_client, "victim") == 1 and count(redis_client, "victim:started") == 2
    assert done.recoveries == 1 and done.recovered_at is not None and done.attempts == 2
    assert int(done.worker.rsplit(":", 1)[1]) != victim_pid
    # the pool replaced the killed process: two live workers again, none of them the victim
    workers = wait_until(lambda: (w := live_workers(redis_client)) and len(w) == 2 and w, 60, "pool back to two")
    assert victim_pid not in {int(info["pid"]) for info in workers.values()}


def test_a_busy_live_worker_is_never_robbed(redis_client, pools) -> None:
    pools(os.environ["REDIS_URL"], processes=2, threads=1)
    wait_until(lambda: len(live_workers(redis_client)) == 2, 60, "two workers heartbeat")
    message = slow_effect.send("long", HEARTBEAT_MS * 3 / 1000)  # outlives three heartbeat timeouts
    done = wait_until(
        lambda: (r := record(message.message_id)) and r.status is JobStatus.SUCCEEDED and r, 60, "the long job finishes"
    )
    assert done.recoveries == 0 and done.attempts == 1
    assert count(redis_client, "long:started") == 1 and count(redis_client, "long") == 1


def test_a_worker_killing_message_is_dead_lettered_after_three_deaths(redis_client, pools) -> None:
    pools(os.environ["REDIS_URL"], processes=2, threads=1)
    wait_until(lambda: len(live_workers(redis_client)) == 2, 60, "two workers heartbeat")
    message = kill_my_worker.send("poison")
    dead = wait_until(
        lambda: (r := record(message.message_id)) and r.status is JobStatus.DEAD and r,
        120,
        "the poison message is dead-lettered",
    )
    # three charged runs, plus at most one whose start its worker had no time to record
    runs = count(redis_client, "poison")
    assert 3 <= runs <= 4
    assert "worker died while running it 3 times" in (dead.last_error or "")
    assert redis_client.zcard("backroom:default.XQ") == 1
    assert redis_client.hlen("backroom:default.msgs") == 0
    # nothing can bring it back: every dead worker has been reaped and no worker holds the message any more
    keys = actors.broker.jobs.keys
    wait_until(
        lambda: redis_client.zcount(keys.heartbeats, 0, int(time.time() * 1000) - HEARTBEAT_MS) == 0,
        60,
        "every dead worker reaped",
    )
    rid = message.options["redis_message_id"]
    assert not [k for k in redis_client.scan_iter(keys.acks("*", "default")) if redis_client.sismember(k, rid)]
    assert redis_client.zscore(keys.dead("default"), rid) is not None
    assert count(redis_client, "poison") == runs


def test_sigterm_finishes_the_running_job_and_returns_prefetched_ones(redis_client, pools) -> None:
    pool = pools(os.environ["REDIS_URL"], processes=1, threads=1)
    wait_until(lambda: len(live_workers(redis_client)) == 1, 60, "the worker heartbeats")
    first = slow_effect.send("term-running", 1.5)
    rest = [slow_effect.send(f"term-{i}", 0.0) for i in range(5)]
    wait_until(lambda: record(first.message_id).status is JobStatus.RUNNING, 30, "the first job starts")
    assert pool.terminate() == 0
    assert count(redis_client, "term-running") == 1  # finished, not abandoned
    assert record(first.message_id).status is JobStatus.SUCCEEDED
    assert sum(count(redis_client, f"term-{i}") for i in range(5)) == 0
    assert redis_client.llen("backroom:default") == 5  # returned to the queue, not lost
    pools(os.environ["REDIS_URL"], processes=1, threads=2)
    for message in rest:
        wait_until(lambda m=message: record(m.message_id).status is JobStatus.SUCCEEDED, 60, "requeued jobs run")
    assert [count(redis_client, f"term-{i}") for i in range(5)] == [1] * 5


def test_redis_restart_keeps_queued_and_delayed_jobs_without_worker_restart(own_redis, pools) -> None:
    settings = get_settings().model_copy(update={"redis_url": own_redis.url})
    broker = build_broker(settings)
    client = redis.Redis.from_url(own_redis.url)
    pools(own_redis.url, processes=2, threads=2)
    wait_until(lambda: len(live_workers(client)) == 2, 60, "two workers heartbeat")
    pids_before = {info["pid"] for info in live_workers(client).values()}
    delayed = [broker.enqueue(slow_effect.message(f"delayed-{i}", 0.0), delay=4_000) for i in range(10)]
    # wait until workers pulled the delayed messages into memory (the DQ list is empty)
    wait_until(lambda: client.llen("backroom:default.DQ") == 0, 30, "delayed messages fetched")
    own_redis.stop()  # clean shutdown: the append-only file is flushed
    queued = []
    own_redis.start()
    queued = [broker.enqueue(slow_effect.message(f"queued-{i}", 0.0)) for i in range(10)]
    for message in delayed + queued:
        wait_until(
            lambda m=message: (r := broker.jobs.get(m.message_id)) and r.status is JobStatus.SUCCEEDED,
            90,
            f"{message.args[0]} runs after the restart",
        )
    broker.join("default", timeout=30_000)  # no copy of any of them is left to run again
    assert [count(client, f"delayed-{i}") for i in range(10)] == [1] * 10
    assert [count(client, f"queued-{i}") for i in range(10)] == [1] * 10
    assert {info["pid"] for info in live_workers(client).values()} == pids_before  # no worker restart
    broker.close()
