"""Paused queues: consumers stop fetching from them while enqueues are still accepted.

The paused set is one small Redis SET. A consumer that just found its queue empty asks
Redis directly before its next fetch (it is idle, so the round trip costs nothing), and a
busy consumer reads a per-process copy refreshed at most once a second, so a pause takes
effect at once on idle workers and within about a second on busy ones (messages a worker
already fetched, at most its prefetch, still run). A paused consumer ignores enqueue
wake-ups (a busy producer would otherwise make it poll) and re-checks once per backoff, at
most the worker timeout (1 s), so a resume takes effect within that.

Each process also records, per queue, the run of checks in which its consumer found the
queue paused and fetched nothing (`Pauses.seen`: when the first and the latest began), and
its heartbeat publishes it (field `pauses_seen` of its worker description). Once a check of
the run began after the pause, that process fetches nothing from the queue until the resume
(see WakingConsumer.__next__): such a record from every live process proves the pause holds.
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
        # queue -> (since_ms, last_ms): this process's consumer of the queue found it paused in checks it began
        # at since_ms and every check after, the latest begun at last_ms, and has fetched nothing since since_ms
        self.seen: dict[str, tuple[int, int]] = {}

    def paused(self, queue_name: str, *, fresh: bool = False) -> bool:
        """True when `queue_name` is paused; `fresh` asks Redis instead of the cached copy."""
        now = time.monotonic()
        if fresh or now >= self.expires:
            names = _members(self.client, self.keys.paused)
            with self.lock:
                self.names, self.expires = names, now + self.refresh_s
            return queue_name in names  # this read's answer: another consumer may since have stored an older one
        return queue_name in self.names

    def held(self, queue_name: str, checked_ms: int) -> None:
        """The consumer of `queue_name` found it paused in a check it began at `checked_ms`, and fetches nothing."""
        with self.lock:
            since, _ = self.seen.get(queue_name, (checked_ms, 0))
            self.seen[queue_name] = (since, checked_ms)

    def fetching(self, queue_name: str) -> None:
        """The consumer of `queue_name` is about to fetch (or starts afresh): what it saw of a pause no longer holds."""
        with self.lock:
            self.seen.pop(queue_name, None)

    def observed(self) -> dict[str, tuple[int, int]]:
        """A copy of `seen`, for the heartbeat."""
        with self.lock:
            return dict(self.seen)


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
