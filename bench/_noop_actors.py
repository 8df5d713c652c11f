"""The bench actors, declared identically on whichever broker a bench module builds."""

from __future__ import annotations

import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench"
PICKUP_KEY = "bench:pickup_s"  # outside every namespace, so both brokers report to one list


def declare(broker: RedisBroker) -> tuple[dramatiq.Actor, dramatiq.Actor]:
    """Declare `noop` and `pickup` on `broker` (plain `def`s, the actors' own options left default)."""

    @dramatiq.actor(queue_name=QUEUE, broker=broker)
    def noop() -> None:
        """Do nothing: the drain rate measures the queue and the middleware, not the work."""

    @dramatiq.actor(queue_name=QUEUE, broker=broker)
    def pickup(sent: float) -> None:
        """Record how long the message waited between `send()` and the actor starting."""
        waited = time.time() - sent
        broker.client.rpush(PICKUP_KEY, repr(waited))

    return noop, pickup
