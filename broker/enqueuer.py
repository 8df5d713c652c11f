"""Enqueueing from an asyncio process (the web): the broker's own enqueue, on an asyncio Redis client.

Opened once per process (the web's `before_serving`) and closed with it. Every message goes
through the same enqueue script, middleware and job record as `BackroomBroker.enqueue`;
concurrent callers' script calls share round trips (see `broker.batching`).
"""

from __future__ import annotations

from typing import Any

from dramatiq.message import Message

from broker.batching import BatchedScript
from broker.redis import BackroomBroker
from broker.setup import async_redis_client
from config.settings import EdgeSettings


class AsyncEnqueuer:
    """`await enqueuer.enqueue(message)`: enqueue on `broker` (or its edge twin) without a thread per call.

    Raises what the enqueue raises: a Redis connection error or timeout, or NotReplicated
    when REDIS_WAIT_REPLICAS replicas did not confirm in time.
    """

    def __init__(self, broker: BackroomBroker, client: Any) -> None:
        self.broker = broker
        self.client = client  # the process's asyncio Redis client: callers may use it for their own reads
        # one script for every broker of this Redis (a twin on another namespace passes its own keys)
        lua = broker.jobs.scripts["enqueue"].script  # registered from our Lua source text
        self._script = BatchedScript(
            client, lua if isinstance(lua, str) else bytes(lua).decode(), wait=broker.replica_wait
        )

    @classmethod
    def open(cls, broker: BackroomBroker, settings: EdgeSettings) -> AsyncEnqueuer:
        """An enqueuer on a new asyncio client to the broker's Redis (Sentinel-aware)."""
        return cls(broker, async_redis_client(settings))

    async def enqueue(self, message: Message, *, broker: BackroomBroker | None = None) -> Message:
        """Enqueue `message` now; returns it, or the live job holding its unique key (`deduplicated`)."""
        return await (broker or self.broker).enqueue_async(self._script, message)

    async def aclose(self) -> None:
        """Close the client (at the process's end)."""
        await self.client.aclose()
