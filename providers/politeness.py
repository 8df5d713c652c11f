"""Politeness per host, shared by every worker process: a gap between requests and a cap on those in flight.

Two Redis keys per host, on Redis's clock: the time the host is next free (each request
pushes it by 1/rate plus jitter, a 429 pushes it by its Retry-After) and a sorted set of
leases in flight (each expires on its own, so a crashed worker's slot comes back). An
acquire either takes a slot now or says how long to wait; it never sleeps here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import redis

_ACQUIRE = """
redis.replicate_commands()
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local concurrency, gap, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
local held = redis.call('zscore', KEYS[1], ARGV[4])
if not held and redis.call('zcard', KEYS[1]) >= concurrency then
  local first = redis.call('zrange', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, math.max(1, tonumber(first[2]) - now)}
end
local free = tonumber(redis.call('get', KEYS[2]) or '0')
if free > now then return {2, free - now} end
redis.call('set', KEYS[2], now + gap, 'px', gap + 60000)
redis.call('zadd', KEYS[1], now + lease, ARGV[4])
redis.call('pexpire', KEYS[1], lease + 60000)
return {0, 0}
"""

_BLOCK = """
redis.replicate_commands()
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untill = now + tonumber(ARGV[1])
if untill > tonumber(redis.call('get', KEYS[1]) or '0') then
  redis.call('set', KEYS[1], untill, 'px', tonumber(ARGV[1]) + 60000)
end
return untill - now
"""

BUSY, TOO_SOON = 1, 2


@dataclass(frozen=True)
class Slot:
    """An acquire's answer: `granted`, or wait `wait_ms` (`busy`: every slot in flight; else the gap)."""

    granted: bool
    wait_ms: int = 0
    busy: bool = False


class HostPoliteness:
    """At most `concurrency` requests in flight and `rate_per_s` a second (plus jitter) per host, across processes."""

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        *,
        rate_per_s: float,
        concurrency: int,
        jitter: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.rate_per_s = rate_per_s
        self.concurrency = concurrency
        self.jitter = jitter
        self.rng = rng or random.Random()
        self._acquire = client.register_script(_ACQUIRE)
        self._block = client.register_script(_BLOCK)

    @property
    def gap_ms(self) -> float:
        """The least time between two requests to one host."""
        return 1000.0 / self.rate_per_s

    def keys(self, host: str) -> list[str]:
        """The host's lease set and next-free key."""
        base = f"{self.namespace}:politeness:{host}"
        return [f"{base}:inflight", f"{base}:next"]

    def acquire(self, host: str, token: str, *, lease_ms: int) -> Slot:
        """Take a slot for `token` (held until release or `lease_ms`), or learn how long to wait."""
        gap = int(self.gap_ms * (1 + self.jitter * self.rng.random()))
        code, wait = self._acquire(keys=self.keys(host), args=[self.concurrency, max(1, gap), lease_ms, token])
        if int(code) == 0:
            return Slot(True)
        return Slot(False, int(wait), busy=int(code) == BUSY)

    def release(self, host: str, token: str) -> None:
        """Give `token`'s slot back (a no-op when it expired or was never taken)."""
        self.client.zrem(self.keys(host)[0], token)

    def block(self, host: str, ms: int) -> None:
        """Hold every worker's requests to `host` for `ms` (a 429's Retry-After)."""
        if ms > 0:
            self._block(keys=[self.keys(host)[1]], args=[int(ms)])
