"""Every use Backroom makes of Dramatiq's internals: its Redis consumer, subclassed.

Dramatiq has no public hook for how a consumer waits for work or what it does with a
fetched message: `RedisBroker.consumer_class` returns the private `_RedisConsumer`, and
`__next__` below is a rewritten copy of its loop. It relies on that class's private
attributes and on the broker's dispatch-script arguments, so it was written against one
Dramatiq release (DRAMATIQ_VERSION, pinned exactly in pyproject.toml);
tests/broker/test_dramatiq_consumer.py fails on any other, and lists what is relied on.
To upgrade Dramatiq: diff `dramatiq/brokers/redis.py` between the two releases, port what
changed here, then bump DRAMATIQ_VERSION and the pin together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import _RedisConsumer
from dramatiq.common import compute_backoff, current_millis
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message

from broker.guard import CLAIMED_QUEUE
from broker.outage import refusal, transient

if TYPE_CHECKING:
    from broker.redis import BackroomBroker

DRAMATIQ_VERSION = "2.2.1"
# what this module relies on beyond Dramatiq's public API (checked by the canary test)
CONSUMER_ATTRIBUTES = (
    "broker",
    "queue_name",
    "prefetch",
    "timeout",
    "message_cache",
    "queued_message_ids",
    "misses",
    "outstanding_message_count",
)
BROKER_ATTRIBUTES = (
    "_max_unpack_size",
    "scripts",
    "heartbeat_timeout",
    "dead_message_ttl",
    "broker_id",
    "do_fetch",
    "do_ack",
    "do_nack",
    "do_requeue",
)


def ack_args(broker: Any, queue_name: str, redis_message_id: str) -> list[Any]:
    """ARGV of Dramatiq's dispatch script acking one message of this process (for pipelines).

    The layout is RedisBroker's own dispatch call's, so acks can ride in Backroom's batched writes.
    """
    return [
        "ack",
        current_millis(),
        queue_name,
        broker.broker_id,
        broker.heartbeat_timeout,
        broker.dead_message_ttl,
        0,
        broker._max_unpack_size(),
        redis_message_id,
    ]


class WakingConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, waiting on a wake-up event instead of sleeping when idle."""

    broker: BackroomBroker

    def ack(self, message: MessageProxy) -> None:
        """Ack through the batched writer when there is one (delay-queue hops stay synchronous).

        Acking is then one pipelined command instead of one round trip per message, written
        with the job's outcome; a crash before the batch lands re-runs the message
        (at-least-once, as with any crash before an ack).
        """
        if message.options.get("backroom_fenced"):  # handed back by a fenced worker (broker.gate): not done
            self.queued_message_ids.discard(message.message_id)
            self.broker.release([(self.queue_name, message.options["redis_message_id"])])
            return
        sink = self.broker.ack_sink
        if sink is None or self.queue_name.endswith(".DQ"):
            self._unless_refused(super().ack, message)
            self.broker.release([(self.queue_name, message.options["redis_message_id"])])
            return
        self.queued_message_ids.discard(message.message_id)
        sink(self.queue_name, message.options["redis_message_id"], message.message_id)  # released once written

    def nack(self, message: MessageProxy) -> None:
        """Dramatiq's nack, retried like a lost connection while Redis is full or read-only."""
        self._unless_refused(super().nack, message)
        self.broker.release([(self.queue_name, message.options["redis_message_id"])])

    @staticmethod
    def _unless_refused(call: Callable[[MessageProxy], None], message: MessageProxy) -> None:
        # Dramatiq retries an ack or nack every second on a connection error, but drops it on
        # any other (the message then stays held and re-runs after a crash)
        try:
            call(message)
        except redis.ResponseError as error:
            if not refusal(error):
                raise
            raise ConnectionClosed(error) from None

    def __init__(self, broker: BackroomBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self.wake = broker.wakeups.event(queue_name)
        self.idle = True
        broker.pauses.fetching(queue_name)  # a fresh consumer has seen no pause yet
        if queue_name in broker.lost:
            try:
                broker.requeue_lost(queue_name)
            except redis.RedisError as e:
                if not transient(e):
                    raise
                raise ConnectionClosed(e) from None

    def __next__(self) -> MessageProxy | None:
        try:
            while True:
                if self.message_cache:
                    data = self.message_cache.pop(0)
                    if data is None:
                        continue
                    self.misses = 0
                    message = Message.decode(data)
                    if message.queue_name != self.queue_name:  # a forged payload: the guard refuses it
                        message = message.copy(
                            queue_name=self.queue_name, options={CLAIMED_QUEUE: str(message.queue_name)}
                        )
                    self.queued_message_ids.add(message.message_id)
                    self.broker.hold(self.queue_name, message.options["redis_message_id"])
                    return MessageProxy(message)
                messages, paused = [], False
                if self.outstanding_message_count < self.prefetch:
                    # clear before fetching: a wake-up published after the fetch is not missed
                    self.wake.clear()
                    # an idle consumer asks Redis itself (see broker.pauses); a busy one the cached copy
                    checked_ms = int(time.time() * 1000)
                    paused = self.broker.pauses.paused(self.queue_name, fresh=self.idle)
                    if not paused:
                        self.broker.pauses.fetching(self.queue_name)
                        self.message_cache = messages = self.broker.do_fetch(
                            self.queue_name, self.prefetch - self.outstanding_message_count
                        )
                        self.idle = not messages  # not set by a full prefetch: only an empty fetch is idle
                    else:
                        self.idle = True  # re-check Redis itself next time, so a resume is seen at once
                        # Why the record (Pauses.seen) is sound: Dramatiq's worker runs one consumer thread per
                        # queue, replacing its consumer only after the old one stopped (a new one clears the
                        # record), and only the branch above fetches, clearing the record first. Once paused,
                        # every check is a fresh read (idle): so when a check of the record's run began after
                        # the pause, no fetch follows it until a check reads the resume, and none came since
                        # the run's first check (since_ms).
                        self.broker.pauses.held(self.queue_name, checked_ms)
                if not messages:
                    self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
                    # while paused, enqueues' wake-ups are ignored: it re-checks once per backoff instead
                    if self.outstanding_message_count < self.prefetch and not paused:
                        self.wake.wait(backoff_ms / 1000)
                    else:
                        time.sleep(backoff_ms / 1000)
                    return None
        except redis.RedisError as e:
            if not transient(e):
                raise
            # a full or read-only Redis refuses the fetch script as a lost connection fails it: the
            # consumer restarts, and what it fetched but its worker never got goes back (see requeue_lost)
            self.broker.lost.add(self.queue_name)
            self.message_cache = []
            raise ConnectionClosed(e) from None
