"""A consumer's record of a pause (Pauses.seen): kept while it fetches nothing, cleared when it fetches."""

from __future__ import annotations

import time
import uuid

from dramatiq.message import Message

import actors
from broker.pauses import pause_queue, resume_queue


def test_a_paused_consumer_records_the_pause_and_a_fetch_clears_it(monkeypatch) -> None:
    broker, queue = actors.broker, f"paused-{uuid.uuid4().hex[:8]}"
    keys = broker.jobs.keys
    monkeypatch.setattr(broker, "ack_sink", None)  # acks land at once (not through a batched writer)
    consumer = broker.consume(queue, prefetch=1, timeout=10)
    try:
        assert next(consumer) is None and queue not in broker.pauses.observed()  # it fetched (nothing)
        assert pause_queue(broker.client, keys, queue)
        paused_at = int(time.time() * 1000)
        assert next(consumer) is None
        since, last = broker.pauses.observed()[queue]
        assert paused_at <= since == last  # the check that found it paused
        message = Message(queue_name=queue, actor_name="ping", args=(), kwargs={}, options={})
        broker.enqueue(message)
        assert next(consumer) is None and next(consumer) is None  # it checks again and fetches nothing
        assert broker.pauses.observed()[queue][0] == since and broker.pauses.observed()[queue][1] >= last
        assert broker.client.llen(keys.queue(queue)) == 1
        assert resume_queue(broker.client, keys, queue)
        got = next(consumer)
        assert got is not None and got.message_id == message.message_id
        assert queue not in broker.pauses.observed()  # it fetched: the record is gone
        consumer.ack(got)
    finally:
        resume_queue(broker.client, keys, queue)
        consumer.close()
