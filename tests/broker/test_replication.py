"""REDIS_WAIT_REPLICAS: enqueues and outcome batches wait for a replica (Redis WAIT) and say when none confirmed."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
import redis.asyncio as aioredis

import actors  # noqa: F401  (the global broker the test actor binds to)
from broker.batching import BatchedScript
from broker.replication import NotReplicated
from broker.setup import build_broker
from cli.stack import RedisProcess
from config.settings import get_settings
from tests.waiting import wait_until


class Pair:
    """A primary and its replica (`--replicaof`), both ours."""

    def __init__(self, root: Path) -> None:
        self.primary = RedisProcess(root / "primary").start()
        self.replica = RedisProcess(
            root / "replica", extra_args=("--replicaof", "127.0.0.1", str(self.primary.port))
        ).start()
        self.client = redis.Redis.from_url(self.primary.url)
        self.replica_client = redis.Redis.from_url(self.replica.url)
        wait_until(
            lambda: self.replica_client.info("replication")["master_link_status"] == "up", 30, "the replica is in sync"
        )

    def pause_replica(self) -> None:
        """Stop the replica process: it acknowledges nothing until resumed (a lagging replica)."""
        assert self.replica.process is not None
        os.kill(self.replica.process.pid, signal.SIGSTOP)

    def resume_replica(self) -> None:
        assert self.replica.process is not None
        os.kill(self.replica.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.resume_replica()
        self.client.close()
        self.replica_client.close()
        self.replica.stop(kill=True)
        self.primary.stop(kill=True)


@pytest.fixture()
def pair(tmp_path: Path) -> Iterator[Pair]:
    servers = Pair(tmp_path)
    yield servers
    servers.stop()


def broker_on(pair: Pair, replicas: int):  # type: ignore[no-untyped-def]
    settings = get_settings().model_copy(
        update={"redis_url": pair.primary.url, "redis_wait_replicas": replicas, "redis_wait_timeout_ms": 300}
    )
    return build_broker(settings)


@dramatiq.actor(queue_name="default", actor_name="replicated_noop")
def replicated_noop() -> None:
    """Never run: the tests only enqueue it."""


def test_an_enqueue_returns_once_the_replica_has_the_job(pair: Pair) -> None:
    broker = broker_on(pair, replicas=1)
    try:
        message = broker.enqueue(replicated_noop.message())
        # WAIT returned: the replica already has the record, no polling needed
        assert pair.replica_client.hget(f"backroom:job:{message.message_id}", "status") == b"queued"
        assert broker.replica_wait.unconfirmed == 0
    finally:
        broker.close()


def test_an_unconfirmed_enqueue_is_reported_not_raised_by_workers_and_the_cli(pair: Pair, caplog) -> None:
    broker = broker_on(pair, replicas=1)
    pair.pause_replica()
    try:
        with caplog.at_level(logging.WARNING, logger="broker.replication"):
            message = broker.enqueue(replicated_noop.message())
            broker.enqueue(replicated_noop.message())
        assert pair.client.hget(f"backroom:job:{message.message_id}", "status") == b"queued"  # the primary has it
        warnings = [r for r in caplog.records if "not confirmed by 1 replica" in r.getMessage()]
        assert len(warnings) == 1  # one line per minute, not one per write
        assert broker.replica_wait.unconfirmed == 1  # the second one, waiting for the next report
    finally:
        broker.close()


async def test_the_web_enqueue_fails_when_no_replica_confirms_and_succeeds_when_one_does(pair: Pair) -> None:
    broker = broker_on(pair, replicas=1)
    async with aioredis.Redis.from_url(pair.primary.url) as client:
        script = BatchedScript(client, broker.jobs.scripts["enqueue"].script, wait=broker.replica_wait)
        pair.pause_replica()
        with pytest.raises(NotReplicated):
            await broker.enqueue_async(script, replicated_noop.message())
        pair.resume_replica()
        message = await broker.enqueue_async(script, replicated_noop.message())
        assert pair.replica_client.hget(f"backroom:job:{message.message_id}", "status") == b"queued"
    broker.close()


def test_an_outcome_batch_ends_with_one_wait(pair: Pair, caplog) -> None:
    broker = broker_on(pair, replicas=1)
    tracking = next(m for m in broker.middleware if type(m).__name__ == "JobTracking")
    writer = tracking.writer
    writer.replica_wait = broker.replica_wait  # what after_worker_boot sets in a worker
    try:
        writer.put("job-1", {"status": "succeeded"}, keep=False)
        writer.flush()
        assert pair.replica_client.hget("backroom:job:job-1", "status") == b"succeeded"
        pair.pause_replica()
        with caplog.at_level(logging.WARNING, logger="broker.replication"):
            writer.put("job-2", {"status": "succeeded"}, keep=False)
            writer.flush()
        assert pair.client.hget("backroom:job:job-2", "status") == b"succeeded"
        assert any("not confirmed by 1 replica" in r.getMessage() for r in caplog.records)
    finally:
        writer.close()
        broker.close()
