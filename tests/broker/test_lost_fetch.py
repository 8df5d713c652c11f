"""A fetch whose reply is lost (Redis killed after running the script) strands nothing in this process's ack set."""

from __future__ import annotations

import uuid

import pytest
import redis
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message

import actors


def _enqueue(queue: str, n: int) -> list[str]:
    return [
        actors.broker.enqueue(Message(queue_name=queue, actor_name="ping", args=(), kwargs={}, options={})).message_id
        for _ in range(n)
    ]


def _drain(consumer) -> list[str]:  # type: ignore[no-untyped-def]
    got = []
    while (message := next(consumer)) is not None:
        got.append(message.message_id)
    return got


def test_messages_fetched_by_a_lost_reply_go_back_and_held_ones_stay(monkeypatch) -> None:
    broker, queue = actors.broker, f"lost-{uuid.uuid4().hex[:8]}"
    # acks land at once here (a worker started by an earlier test may have left its batched writer as the sink)
    monkeypatch.setattr(broker, "ack_sink", None)
    first = broker.consume(queue, prefetch=1, timeout=10)
    held = _enqueue(queue, 1)
    got = next(first)
    assert got is not None and got.message_id == held[0]  # handed to the worker: held until acked
    stranded = _enqueue(queue, 2)
    real_fetch = broker.do_fetch

    def fetch_then_lose_the_reply(queue_name: str, prefetch: int) -> list[bytes]:
        real_fetch(queue_name, prefetch)  # Redis ran the script (ids now in this process's ack set) ...
        raise redis.ConnectionError("Connection reset by peer")  # ... and died before its reply came back

    with monkeypatch.context() as patched:
        patched.setattr(broker, "do_fetch", fetch_then_lose_the_reply)
        first.prefetch = 3
        with pytest.raises(ConnectionClosed):  # the lost reply surfaces as a lost connection
            next(first)
    # Dramatiq restarts the consumer: what the lost fetch took goes back, what the worker holds stays held
    second = broker.consume(queue, prefetch=5, timeout=10)
    assert sorted(_drain(second)) == sorted(stranded)
    first.ack(got)
    assert broker.client.scard(broker.jobs.keys.acks(broker.broker_id, queue)) == len(stranded)
    assert len(broker.holding[queue]) == len(stranded)  # the acked one is released; the two handed out again held
    second.close()
    first.close()
