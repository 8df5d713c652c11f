"""Per-token rate limits shared by every web process: a token bucket in Redis, on Redis's clock.

The idea of providers.ratelimit (outbound calls), for inbound requests: each token may make
its `rate_limit_per_min` (else TOKEN_RATE_LIMIT_PER_MIN) requests a minute, in bursts of up
to a minute's worth; over it the request is answered 429 with Retry-After before any work.

A process takes a lease of up to half a second's worth of requests from the bucket at a time
(one for limits under 240 a minute) and spends it locally: a busy token costs one Redis call
per lease, not per request. A lease is never
dropped, so the limit holds to within one lease per process.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import redis

from broker.batching import BatchedScript
from db.tokens import ApiToken
from web.errors import problem

log = logging.getLogger("backroom.web")
MAX_LEASE = 100

# KEYS: the token's bucket   ARGV: requests a minute, requests wanted
# returns {requests granted (0..wanted), milliseconds until one would be (when none)}
_TAKE = """
redis.replicate_commands()
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local burst, want = tonumber(ARGV[1]), tonumber(ARGV[2])
local rate = burst / 60000
local state = redis.call('hmget', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local granted, wait = 0, 0
if tokens >= 1 then
  granted = math.min(want, math.floor(tokens))
  tokens = tokens - granted
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('hset', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('pexpire', KEYS[1], 61000)
return {granted, wait}
"""


class TokenRateLimiter:
    """Token buckets under `{namespace}:ratelimit:token:{id}` in the broker's Redis (asyncio client)."""

    def __init__(self, client: Any, namespace: str, default_per_min: int) -> None:
        self.script = BatchedScript(client, _TAKE)  # concurrent requests' calls share a round trip
        self.prefix = f"{namespace}:ratelimit:token:"
        self.default = default_per_min
        self.leases: dict[int, int] = {}  # token id -> requests taken from its bucket, not yet made

    async def wait_s(self, token: ApiToken) -> int:
        """0 when `token` may make this request now, else the whole seconds to wait."""
        limit = self.default if token.rate_limit_per_min is None else token.rate_limit_per_min
        if limit == 0:
            return 0
        if self.leases.get(token.id, 0) > 0:
            self.leases[token.id] -= 1
            return 0
        want = max(1, min(MAX_LEASE, limit // 120))
        try:
            granted, wait_ms = await self.script(keys=[f"{self.prefix}{token.id}"], args=[limit, want])
        except (redis.ConnectionError, redis.TimeoutError) as error:
            # no limit while Redis is away: an enqueue then answers 503 by itself, reads still work
            log.warning("rate limit not checked, Redis unreachable: %s", error)
            return 0
        if granted:
            if len(self.leases) >= 4096:  # tokens are few; a flood of ids must not grow this
                self.leases.clear()
            self.leases[token.id] = int(granted) - 1
            return 0
        return max(1, math.ceil(int(wait_ms) / 1000))


def too_many(token: ApiToken, wait_s: int) -> Any:
    """The 429 a token over its rate limit gets."""
    return problem(
        429,
        f"token {token.prefix}... is over its rate limit; retry in {wait_s} s",
        headers={"Retry-After": str(wait_s)},
    )
