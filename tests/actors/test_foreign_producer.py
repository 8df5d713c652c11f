"""A message enqueued the way Dramatiq documents for other languages gets a full job record when first run."""

from __future__ import annotations

import json
import time
import uuid

import dramatiq
import redis

import actors
from admin.jobsearch import JobSearch
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_status

KEYS = actors.broker.jobs.keys


def push_foreign(client: redis.Redis, actor: str, queue: str, *args: object, **kwargs: object) -> tuple[str, int]:
    """RPUSH the id and HSET the JSON payload into `<ns>:<queue>.msgs`: no Backroom script, no job record."""
    job_id, redis_id, sent_ms = str(uuid.uuid4()), str(uuid.uuid4()), int(time.time() * 1000) - 5_000
    payload = {
        "queue_name": queue,
        "actor_name": actor,
        "args": list(args),
        "kwargs": kwargs,
        "options": {"redis_message_id": redis_id},
        "message_id": job_id,
        "message_timestamp": sent_ms,
    }
    client.hset(KEYS.messages(queue), redis_id, json.dumps(payload))
    client.rpush(KEYS.queue(queue), redis_id)
    return job_id, sent_ms


def test_a_foreign_message_gets_a_full_record_and_is_listed(redis_client: redis.Redis, worker: dramatiq.Worker) -> None:
    job_id, sent_ms = push_foreign(redis_client, "ping", "default", "from-go", sleep_ms=1)
    record = wait_for_status(job_id, JobStatus.SUCCEEDED, where=lambda r: r.actor != "?")
    assert (record.actor, record.queue, record.attempts) == ("ping", "default", 1)
    assert (record.args, record.kwargs) == (["from-go"], {"sleep_ms": 1})
    assert record.enqueued_at is not None and int(record.enqueued_at.timestamp() * 1000) == sent_ms
    assert record.result == {"message": "from-go"}
    search = JobSearch(redis_client, KEYS)
    listed = search.search(limit=10)
    assert [row.job_id for row in listed.items] == [job_id]
    assert listed.items[0].actor == "ping" and listed.items[0].queue == "default"
    assert [row.job_id for row in search.search(text="from-go").items] == [job_id]
    detail = search.detail(job_id)
    assert detail is not None and [event.event for event in detail.timeline] == ["queued", "started", "succeeded"]


def test_a_backroom_message_is_not_adopted_again(redis_client: redis.Redis, worker: dramatiq.Worker) -> None:
    from actors.ops import ping

    message = ping.send(message="ours")
    wait_for_status(message.message_id, JobStatus.SUCCEEDED)
    events = [event for event in actors.broker.jobs.events(message.message_id) if event["event"] == "queued"]
    assert len(events) == 1 and "producer" not in events[0]
    assert redis_client.zcard(KEYS.job_index) == 1
