"""Paused queues: consumers stop fetching from them while enqueues are still accepted.

The paused set is one small Redis SET. A consumer that just found its queue empty asks
Redis directly before its next fetch (it is idle, so the round trip costs nothing), and a
busy consumer reads a per-process copy refreshed at most once a second, so a pause takes
effect at once on idle workers and within about a second on busy ones (messages a worker
already fetched, at most its prefetch, still run). A paused consumer ignores enqueue
wake-ups (a busy producer would otherwise make it poll) and re-checks once per backoff, at
most the worker timeout (1 s), so a resume takes effect within that.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

from broker.keys import Keys

log = logging.getLogger(__name__)
REFRESH_S = 1.0
_garbled: set[str] = set()


def _members(client: Any, key: str) -> frozenset[str]:
    """The paused set's members; a key of the wrong type (or garbage) reads as nothing paused, logged once."""
    try:
        return frozenset(m.decode(errors="replace") for m in client.smembers(key))
    except redis.ResponseError as error:
        if key not in _garbled:
            _garbled.add(key)
            log.error("%s is not a set (%s): read as no queue paused until it is fixed", key, error)
        return frozenset()


class Pauses:
    """This process's view of the paused queues."""

    def __init__(self, client: Any, keys: Keys, refresh_s: float = REFRESH_S) -> None:
        self.client = client
        self.keys = keys
        self.refresh_s = refresh_s
        self.names: frozenset[str] = frozenset()
        self.expires = 0.0
        self.lock = threading.Lock()

    def paused(self, queue_name: str, *, fresh: bool = False) -> bool:
        """True when `queue_name` is paused; `fresh` asks Redis instead of the cached copy."""
        now = time.monotonic()
        if fresh or now >= self.expires:
            names = _members(self.client, self.keys.paused)
            with self.lock:
                self.names, self.expires = names, now + self.refresh_s
            return queue_name in names  # this read's answer: another consumer may since have stored an older one
        return queue_name in self.names


def paused_queues(client: Any, keys: Keys) -> set[str]:
    """The names of the paused queues, read from Redis (`edge` from the edge namespace's set)."""
    return set(_members(client, keys.paused)) | ({"edge"} & _members(client, keys.edge.paused))


def pause_queue(client: Any, keys: Keys, queue_name: str) -> bool:
    """Stop consumers of `queue_name` from fetching; False when it was already paused."""
    if queue_name == "edge":  # edge workers read their own namespace's set (the server's is out of their reach)
        keys = keys.edge
    return bool(client.sadd(keys.paused, queue_name))


def resume_queue(client: Any, keys: Keys, queue_name: str) -> bool:
    """Let consumers of `queue_name` fetch again; False when it was not paused."""
    if queue_name == "edge":
        keys = keys.edge
    with client.pipeline(transaction=True) as pipe:
        pipe.srem(keys.paused, queue_name).publish(keys.wake(queue_name), "1")
        removed, _ = pipe.execute()
    return bool(removed)
