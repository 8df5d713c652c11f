"""Ordinary operations lose nothing: Redis outages, deploys during long jobs, a full Redis, orphans."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from broker.setup import build_broker
from cli.stack import descendants, free_port
from config.settings import get_settings
from domain.jobs import JobStatus
from tests.reliability.conftest import live_workers
from tests.reliability.effects import EFFECTS, counted_effect, fail_first_attempt, slow_effect
from tests.waiting import wait_until

pytestmark = pytest.mark.reliability


def count(client: redis.Redis, tag: str) -> int:
    return int(client.hget(EFFECTS, tag) or 0)


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not yet reaped by its new parent, counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture()
def own_broker(own_redis) -> Iterator:  # type: ignore[no-untyped-def]
    """A broker on the test's own Redis (the one the pool under test uses)."""
    broker = build_broker(get_settings().model_copy(update={"redis_url": own_redis.url}))
    yield broker
    broker.close()


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_delayed_jobs_and_retry_backoffs_run_once_across_a_redis_restart(
    own_redis, own_broker, pools, redis_client, tmp_path: Path, kill: bool
) -> None:
    client = own_broker.client
    client.config_set("appendfsync", "always")  # a SIGKILL then loses no acknowledged write
    # effects counted in the suite's Redis, which stays up: a job running at the kill still counts once
    pools(own_redis.url, processes=2, threads=2, EFFECTS_REDIS_URL=os.environ["REDIS_URL"])
    wait_until(lambda: len(live_workers(client)) == 2, 60, "two workers heartbeat")
    # etas 40 ms apart: some come due while Redis is down, before the consumers notice the outage
    delayed = [own_broker.enqueue(counted_effect.message(f"delayed-{i}", 0.0), delay=3_000 + 40 * i) for i in range(60)]
    last_eta = max(m.options["eta"] for m in delayed)
    gate = tmp_path / "fail-now"
    failing = own_broker.enqueue(fail_first_attempt.message("retried", str(gate)))
    wait_until(
        lambda: client.llen("backroom:default.DQ") == 0 and count(redis_client, "retried:started") == 1,
        30,
        "delayed messages fetched into memory, the failing job started",
    )
    wait_until(lambda: time.time() * 1000 > delayed[30].options["eta"], 30, "half of the delayed jobs are due")
    own_redis.stop(kill=kill)
    gate.touch()  # the first attempt fails now, while Redis is down: its retry's enqueue must wait
    wait_until(lambda: Path(f"{gate}.failing").exists(), 30, "the first attempt fails during the outage")
    wait_until(lambda: time.time() * 1000 > last_eta + 1_000, 30, "every delayed job came due during the outage")
    own_redis.start()

    def unfinished() -> dict[str, str]:
        records = {m.args[0]: own_broker.jobs.get(m.message_id) for m in [failing, *delayed]}
        return {
            tag: f"{r.status.value if r else 'no record'} {count(redis_client, tag)}"
            for tag, r in records.items()
            if not r or r.status is not JobStatus.SUCCEEDED
        }

    try:
        wait_until(lambda: not unfinished(), 90, "every job runs after the restart")
    except AssertionError:
        raise AssertionError(
            f"not succeeded (status, effects): {unfinished()}; "
            f"queues { ({k.decode(): client.type(k).decode() for k in client.scan_iter('backroom:default*')}) }"
        ) from None
    assert [count(redis_client, f"delayed-{i}") for i in range(60)] == [1] * 60
    assert count(redis_client, "retried") == 1 and count(redis_client, "retried:started") == 2


def test_a_graceful_stop_hands_back_jobs_running_past_the_deadline(own_redis, own_broker, pools) -> None:
    client = own_broker.client
    pool = pools(own_redis.url, processes=1, threads=1, WORKER_SHUTDOWN_TIMEOUT_S="1")
    wait_until(lambda: len(live_workers(client)) == 1, 60, "the worker heartbeats")
    message = own_broker.enqueue(slow_effect.message("long", 8.0))
    wait_until(lambda: count(client, "long:started") == 1, 30, "the long job starts")
    assert pool.terminate() == 0
    handed = own_broker.jobs.get(message.message_id)
    assert handed.status is JobStatus.QUEUED and "handed back" in (handed.last_error or "")
    assert "handed back" in [event["event"] for event in own_broker.jobs.events(message.message_id)]
    assert count(client, "long") == 0  # stopped mid-job: no effect
    pools(own_redis.url, processes=1, threads=1)
    done = wait_until(
        lambda: (r := own_broker.jobs.get(message.message_id)) and r.status is JobStatus.SUCCEEDED and r,
        90,
        "the handed-back job runs again",
    )
    assert done.attempts == 2 and count(client, "long:started") == 2 and count(client, "long") == 1


REFUSING = {  # how to make Redis refuse writes, and how to undo it
    "full": (lambda c: c.config_set("maxmemory", "1"), lambda c: c.config_set("maxmemory", "0")),
    "read-only": (lambda c: c.replicaof("127.0.0.1", "1"), lambda c: c.replicaof("NO", "ONE")),
}


@pytest.mark.parametrize("refusing", sorted(REFUSING))
def test_finished_jobs_keep_their_outcome_through_a_refusing_redis(
    own_redis, own_broker, pools, redis_client, refusing: str
) -> None:
    client = own_broker.client
    refuse, undo = REFUSING[refusing]
    # effects counted in the suite's Redis: the broker's refuses every write for a while
    pool = pools(own_redis.url, processes=1, threads=2, EFFECTS_REDIS_URL=os.environ["REDIS_URL"])
    wait_until(lambda: len(live_workers(client)) == 1, 60, "the worker heartbeats")
    jobs = [own_broker.enqueue(counted_effect.message(f"full-{i}", 1.0)) for i in range(2)]
    wait_until(
        lambda: all(own_broker.jobs.get(m.message_id).status is JobStatus.RUNNING for m in jobs),
        30,
        "both jobs start (their start records landed)",
    )
    refused_before = _refused_counters(client)
    refuse(client)
    try:
        wait_until(lambda: all(count(redis_client, f"full-{i}") for i in range(2)), 30, "both jobs finish")
        # the outcomes' batch adds to per-minute counters (HINCRBY), which nothing else here writes
        wait_until(lambda: _refused_counters(client) > refused_before, 30, "Redis refuses the outcomes")
    finally:
        undo(client)
    for message in jobs:
        wait_until(
            lambda m=message: own_broker.jobs.get(m.message_id).status is JobStatus.SUCCEEDED,
            30,
            "the outcome lands once Redis takes writes again",
        )
    wait_until(lambda: client.hlen("backroom:default.msgs") == 0, 30, "the acks land too")
    [(broker_id, worker)] = live_workers(client).items()
    os.kill(int(worker["pid"]), signal.SIGKILL)  # what the worker still held would now run again
    wait_until(lambda: client.zscore("backroom:__heartbeats__", broker_id) is None, 60, "the killed worker is reaped")
    wait_until(lambda: len(live_workers(client)) == 1, 60, "the pool replaced the killed worker")
    assert [count(redis_client, f"full-{i}:started") for i in range(2)] == [1, 1]
    assert client.hlen("backroom:default.msgs") == 0 and client.llen("backroom:default") == 0
    pool.kill()


def _refused_counters(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_hincrby", {}).get("rejected_calls", 0))


def test_a_killed_master_takes_its_worker_and_metrics_processes_down(redis_client, pools) -> None:
    # with metrics on, the master of the pool's first slot also forks Dramatiq's exposition server
    pool = pools(os.environ["REDIS_URL"], processes=1, threads=1, METRICS_PORT=str(free_port()), API_HOST="127.0.0.1")
    [worker] = wait_until(lambda: list(live_workers(redis_client).values()), 60, "the worker heartbeats")
    worker_pid = int(worker["pid"])
    master_pid = next(pid for pid in descendants(pool.process.pid) if worker_pid in descendants(pid))
    children = wait_until(
        lambda: (c := descendants(master_pid)) and len(c) == 2 and c,
        60,
        "the master runs its worker and its metrics server",
    )
    message = slow_effect.send("orphaned", 2.0)
    wait_until(lambda: count(redis_client, "orphaned:started") == 1, 30, "the job starts")
    os.kill(master_pid, signal.SIGKILL)
    try:
        wait_until(lambda: not any(alive(pid) for pid in children), 60, "the master's processes exit with it")
    finally:
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)  # an orphan outlives the pool's own stop
    from actors import broker

    wait_until(
        lambda: broker.jobs.get(message.message_id).status is JobStatus.SUCCEEDED,
        60,
        "the job finishes (or is reaped and re-run)",
    )
    assert count(redis_client, "orphaned") == 1


def test_a_worker_killed_while_booting_is_replaced_without_waiting_for_its_boot(
    redis_client, pools, tmp_path: Path
) -> None:
    gate = tmp_path / "boot-gate"
    pool = pools(os.environ["REDIS_URL"], processes=1, threads=1, BOOT_GATE=str(gate))
    [master] = wait_until(
        lambda: [pid for pid in descendants(pool.process.pid) if descendants(pid)],
        60,
        "the master forked its worker process",
    )
    booting = descendants(master)[0]  # held at the boot gate
    os.kill(booting, signal.SIGKILL)
    # Dramatiq's master waits 30 s for the boot signal of a dead child; the pool replaces it at once
    wait_until(lambda: master not in descendants(pool.process.pid), 20, "the stuck master is replaced")
    gate.touch()
    wait_until(lambda: len(live_workers(redis_client)) == 1, 60, "the replacement boots and heartbeats")
    slow_effect.send("after-boot", 0.0)
    wait_until(lambda: count(redis_client, "after-boot") == 1, 30, "the replacement runs jobs")
