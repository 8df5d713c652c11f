"""The queue guard on a real server worker: a message runs only when its actor is declared on its arrival queue."""

from __future__ import annotations

import asyncpg
import redis
from dramatiq import Worker
from dramatiq.message import Message

import actors
from actors.refusals import audit_refused_messages
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_status

KEYS = actors.broker.jobs.keys


def forged(queue: str, actor: str, **kwargs: object) -> Message:
    """A hand-written message naming `actor`, put on `queue` (as anyone who can write that queue could)."""
    message = Message(queue_name=queue, actor_name=actor, args=(), kwargs=kwargs, options={})
    return actors.broker.enqueue(message)


async def test_actors_on_the_wrong_queue_are_dead_lettered_and_audited(
    worker: Worker, redis_client: redis.Redis, database_url: str
) -> None:
    attacks = [
        forged("ingest", "ping", message="owned"),
        forged("default", "approve_item", item_id=1),
        forged("ingest", "refund_order", order_id=1),
        forged("ingest", "no_such_actor"),
    ]
    # a payload on `ingest` that claims another queue (the worker would otherwise ack it on the wrong one)
    lying = Message(queue_name="default", actor_name="ping", args=(), kwargs={}, options={"redis_message_id": "r1"})
    with redis_client.pipeline(transaction=True) as pipe:
        pipe.hset(KEYS.messages("ingest"), "r1", lying.encode()).rpush(KEYS.queue("ingest"), "r1").execute()
    records = [wait_for_status(m.message_id, JobStatus.DEAD) for m in [*attacks, lying]]
    assert "declared on queue 'default', not 'ingest'" in records[0].last_error and records[0].result is None
    assert "declared on queue 'ingest', not 'default'" in records[1].last_error
    assert "declared on queue 'orders', not 'ingest'" in records[2].last_error
    assert "'no_such_actor' is not declared" in records[3].last_error
    assert "names queue 'default' but arrived on 'ingest'" in records[4].last_error
    assert all(r.attempts == 0 and r.started_at is None for r in records)  # none of them ever started
    assert redis_client.zcard(KEYS.dead("ingest")) == 4 and redis_client.zcard(KEYS.dead("default")) == 1
    assert redis_client.llen(KEYS.queue("orders")) == 0

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM audit_log WHERE action = 'message.refused'")
        assert wait_for_status(audit_refused_messages.send().message_id, JobStatus.SUCCEEDED).result == {"recorded": 5}
        rows = await conn.fetch("SELECT actor, target, after FROM audit_log WHERE action = 'message.refused'")
    finally:
        await conn.close()
    assert {r["actor"] for r in rows} == {"broker"} and len(rows) == 5
    assert sorted(r["target"] for r in rows) == ["queue:default"] + ["queue:ingest"] * 4
    assert redis_client.llen(KEYS.refused) == 0  # drained once written


async def test_declared_actors_still_run(worker: Worker) -> None:
    from actors.ops import ping

    assert wait_for_status(ping.send("hi").message_id, JobStatus.SUCCEEDED).result == {"message": "hi"}
