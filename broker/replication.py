"""Waiting for replicas (Redis `WAIT`) after enqueues and outcome writes (REDIS_WAIT_REPLICAS > 0).

Redis replicates asynchronously: a primary acknowledges a write before any replica has it,
so a failover can lose the last writes it acknowledged. `WAIT n timeout`, sent on the same
connection right after the write, returns how many replicas have everything that connection
wrote so far; Backroom sends one per enqueue (one per round trip in the web process) and one
per batch of job outcomes and acks.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from redis.sentinel import SentinelConnectionPool

log = logging.getLogger(__name__)
REPORT_EVERY_S = 60.0  # one log line per minute while replicas lag, not one per write


class NotReplicated(redis.RedisError):
    """The primary has the write but fewer replicas than REDIS_WAIT_REPLICAS confirmed it in time."""


class ReplicaWait:
    """`WAIT replicas timeout_ms` after writes, and what to do when too few replicas confirm."""

    def __init__(self, replicas: int, timeout_ms: int) -> None:
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self.lock = threading.Lock()
        self.unconfirmed = 0
        self.reported_at = 0.0

    @property
    def command(self) -> tuple[str, int, int]:
        """The WAIT command to send after the writes, on their connection."""
        return ("WAIT", self.replicas, self.timeout_ms)

    def confirmed(self, replicas: int) -> bool:
        """True when `replicas` (WAIT's answer) is enough; otherwise counted and reported once a minute."""
        if replicas >= self.replicas:
            return True
        with self.lock:
            self.unconfirmed += 1
            now = time.monotonic()
            if now - self.reported_at < REPORT_EVERY_S:
                return False
            count, self.unconfirmed, self.reported_at = self.unconfirmed, 0, now
        log.warning(
            "%d write(s) not confirmed by %d replica(s) within %d ms (last: %d confirmed); "
            "a failover now could lose them",
            count,
            self.replicas,
            self.timeout_ms,
            replicas,
        )
        return False


def replica_wait(replicas: int, timeout_ms: int) -> ReplicaWait | None:
    """A ReplicaWait, or None when REDIS_WAIT_REPLICAS is 0 (no WAIT is sent at all)."""
    return ReplicaWait(replicas, timeout_ms) if replicas > 0 else None


def private_client(client: redis.Redis) -> redis.Redis:
    """A client on the same server with a pool of its own, for one thread that WAITs after its writes.

    A pool hands a thread back the connection it released last, so a single thread's
    transaction and the WAIT after it share one connection, as WAIT needs.
    """
    pool = client.connection_pool
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if k != "connection_pool"}
    if isinstance(pool, SentinelConnectionPool):  # the primary, found again through the same sentinels
        return redis.Redis(connection_pool=SentinelConnectionPool(pool.service_name, pool.sentinel_manager, **kwargs))
    return redis.Redis(connection_pool=redis.ConnectionPool(**kwargs))
