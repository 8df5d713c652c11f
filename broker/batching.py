"""The web process's batched script calls: many callers' EVALSHAs share one round trip.

The web process enqueues from many concurrent requests. Each EVALSHA of its own costs a
connection checkout, a socket write, a wake-up for the reply and a read on the Redis server;
`BatchedScript` queues the calls made while a round trip is in flight and sends them all in
the next one, as one redis-py pipeline without MULTI (each call is still its own atomic
script run). A lone call goes out at once, so an idle process adds no latency.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from broker.replication import NotReplicated, ReplicaWait

Call = tuple[Sequence[Any], Sequence[Any], asyncio.Future]


class BatchedScript:
    """`await script(keys=..., args=...)` like redis-py's AsyncScript, batched per event loop.

    Each caller gets its own result, or its own exception: a script error fails only that
    call; a connection error fails every call of the round trip (whether one ran is then
    unknown, as with a single EVALSHA whose reply is lost). At most `max_batch` calls share
    a round trip. With `wait` (REDIS_WAIT_REPLICAS), each round trip ends with one WAIT, and
    when too few replicas confirm it in time every call of it fails with NotReplicated.

    `client` should have no retry policy (redis-py's default, and broker.setup's web client):
    a pipeline retried after a connection error could run a script twice.
    """

    def __init__(self, client: Any, script: str, *, max_batch: int = 128, wait: ReplicaWait | None = None) -> None:
        self.client = client
        self.script = script
        self.sha = hashlib.sha1(script.encode()).hexdigest()
        self.max_batch = max_batch
        self.wait = wait
        self._pending: list[Call] = []
        self._sending = False
        self._sender: asyncio.Task | None = None  # held: the loop keeps only weak references to tasks
        self.round_trips = 0  # for tests and curiosity: how many round trips were made

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((keys, args, future))
        if not self._sending:
            self._sending = True
            self._sender = asyncio.get_running_loop().create_task(self._send_all())
        return await future

    async def _send_all(self) -> None:
        """Send what is pending, round trip after round trip, until nothing is."""
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                try:
                    results = await self._run(batch)
                except BaseException as error:  # noqa: BLE001 - every caller of the batch gets it
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    if not isinstance(error, Exception):
                        raise
                    continue
                for (_, _, future), result in zip(batch, results):
                    if future.done():  # its caller went away (cancelled request)
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._sending = False

    async def _run(self, batch: list[Call]) -> list[Any]:
        results = await self._round_trip(batch)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:  # a restarted or flushed Redis: load the script once and run those calls again
            await self.client.script_load(self.script)
            for i, result in zip(missing, await self._round_trip([batch[i] for i in missing])):
                results[i] = result
        return results

    async def _round_trip(self, batch: list[Call]) -> list[Any]:
        """EVALSHA each call in one pipeline (no MULTI), then WAIT when asked; a result or error per call.

        The pipeline is not registered with redis-py's `Script`: that would send SCRIPT EXISTS
        before every round trip; a NOSCRIPT answer is handled by the caller instead.
        """
        self.round_trips += 1
        async with self.client.pipeline(transaction=False) as pipe:
            for keys, args, _ in batch:
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            if self.wait is not None:
                pipe.execute_command(*self.wait.command)
            results = await pipe.execute(raise_on_error=False)
        if self.wait is None:
            return results
        results, replicas = results[:-1], results[-1]
        if isinstance(replicas, Exception):
            raise replicas
        if not self.wait.confirmed(replicas):
            unconfirmed = NotReplicated(
                f"not confirmed by {self.wait.replicas} replica(s) within {self.wait.timeout_ms} ms"
            )
            results = [r if isinstance(r, Exception) else unconfirmed for r in results]
        return results
