"""A leader lock in Redis: one key, taken with SET NX PX and renewed only by its owner."""

from __future__ import annotations

import redis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaderLock:
    """Held by at most one owner at a time; an owner that stops renewing loses it after `ttl_ms`."""

    def __init__(self, client: redis.Redis, key: str, owner: str, ttl_ms: int) -> None:
        self.client = client
        self.key = key
        self.owner = owner
        self.ttl_ms = ttl_ms
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def hold(self) -> bool:
        """Renew the lock if we own it, else try to take it; True while we are the leader."""
        return self.renew() or self.acquire()

    def acquire(self) -> bool:
        """Take the lock if nobody holds it."""
        return bool(self.client.set(self.key, self.owner, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        """Push the expiry back by `ttl_ms`, only if the lock is still ours (compare and pexpire)."""
        return bool(self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))

    def release(self) -> bool:
        """Give the lock up if it is ours, so another process takes over without waiting."""
        return bool(self._release(keys=[self.key], args=[self.owner]))
