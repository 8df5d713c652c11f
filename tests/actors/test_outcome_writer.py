"""The record writer: outcomes and acks land even after Redis lost the ack script."""

from __future__ import annotations

import dramatiq
import redis

import actors
from actors.ops import ping
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_status


def test_acks_land_after_redis_flushed_its_scripts(redis_client: redis.Redis, worker: dramatiq.Worker) -> None:
    first = ping.send(message="before")
    wait_for_status(first.message_id, JobStatus.SUCCEEDED)
    redis_client.script_flush()  # as a Redis restart does: the writer's EVALSHA of the ack finds no script
    message = ping.send(message="after")
    done = wait_for_status(message.message_id, JobStatus.SUCCEEDED)
    assert done.attempts == 1
    worker.join()
    next(m for m in actors.broker.middleware if type(m).__name__ == "JobTracking").writer.flush()
    assert redis_client.hlen(actors.broker.jobs.keys.messages("default")) == 0
