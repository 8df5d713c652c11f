"""Dead letters made the way Dramatiq's nack makes them, for the CLI tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from dramatiq.common import current_millis
from dramatiq.message import Message

import actors
from actors.ops import ping

Bury = Callable[..., tuple[str, str]]


@pytest.fixture()
def bury(redis_client: redis.Redis) -> Bury:
    """Enqueue a ping for real, then move it to its queue's DLQ; returns (redis id, job id)."""
    keys = actors.broker.jobs.keys

    def make(text: str, *, error: str = "PingFailed: boom", queue: str = "default", age_ms: int = 0) -> tuple[str, str]:
        message = actors.broker.enqueue(ping.message(message=text).copy(queue_name=queue))
        rid = message.options["redis_message_id"]
        payload = redis_client.hget(keys.messages(queue), rid)
        redis_client.lrem(keys.queue(queue), 1, rid)
        redis_client.hdel(keys.messages(queue), rid)
        redis_client.zadd(keys.dead(queue), {rid: current_millis() - age_ms})
        redis_client.hset(keys.dead_messages(queue), rid, Message.decode(payload).copy(options={"retries": 2}).encode())
        job = keys.job(message.message_id)
        redis_client.hset(job, mapping={"status": "dead", "attempts": 3, "last_error": error})
        redis_client.persist(job)
        return rid, message.message_id

    return make
