"""Per-provider rate limits shared by every worker: a token bucket in Redis, on Redis's clock.

A call either takes a token now or learns how long until one is free; it never sleeps
here. A provider's 429 with retry-after blocks the whole bucket for that long, so every
worker backs off, not just the one that was told.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import redis

_TAKE = """
redis.replicate_commands()
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local blocked = tonumber(redis.call('get', KEYS[2]) or '0')
if blocked > now then return blocked - now end
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('hmget', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('hset', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('pexpire', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
return wait
"""

_BLOCK = """
redis.replicate_commands()
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untill = now + tonumber(ARGV[1])
local current = tonumber(redis.call('get', KEYS[1]) or '0')
if untill > current then redis.call('set', KEYS[1], untill, 'px', tonumber(ARGV[1]) + 1000) end
return untill - now
"""


@dataclass(frozen=True)
class Limit:
    """`rate` calls per second on average, bursts of up to `burst`."""

    rate: float
    burst: int = 1


class RateLimiter:
    """Token buckets under `{namespace}:ratelimit:{provider}` in the broker's Redis."""

    def __init__(self, client: redis.Redis, namespace: str, limits: dict[str, Limit]) -> None:
        self.client = client
        self.namespace = namespace
        self.limits = limits
        self._take = client.register_script(_TAKE)
        self._block = client.register_script(_BLOCK)

    def _keys(self, provider: str) -> list[str]:
        base = f"{self.namespace}:ratelimit:{provider}"
        return [base, f"{base}:blocked"]

    def take(self, provider: str) -> int:
        """0 when a call may go now (a token was taken), else ms to wait (with jitter against herds)."""
        limit = self.limits.get(provider)
        if limit is None:
            return 0
        wait = int(self._take(keys=self._keys(provider), args=[limit.rate, max(1, limit.burst)]))
        return 0 if wait <= 0 else wait + random.randint(0, max(1, wait // 2))

    def block(self, provider: str, ms: int) -> None:
        """Hold every worker's calls to `provider` for `ms` (a 429's retry-after)."""
        if ms > 0:
            self._block(keys=[self._keys(provider)[1]], args=[int(ms)])
