"""The web process's enqueue path to Redis: batched script calls, C-packed commands.

The web process enqueues from many concurrent requests. Each EVALSHA of its own costs a
connection checkout, a socket write, a wake-up for the reply and a read on the Redis server;
`BatchedScript` queues the calls made while a round trip is in flight and sends them all in
the next one (a pipeline without MULTI: each call is still its own atomic script run). A lone
call goes out at once, so an idle process adds no latency.

redis-py packs commands with hiredis on its blocking connections only; its asyncio connections
pack them in Python (about a fifth of the web's enqueue cost). `connection_class` gives the
asyncio client connections that pack with hiredis.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.connection import HiredisRespSerializer
from redis.exceptions import NoScriptError, ResponseError
from redis.utils import HIREDIS_AVAILABLE

from broker.replication import NotReplicated, ReplicaWait

Call = tuple[Sequence[Any], Sequence[Any], asyncio.Future]


class BatchedScript:
    """`await script(keys=..., args=...)` like redis-py's AsyncScript, batched per event loop.

    Each caller gets its own result, or its own exception: a script error fails only that
    call; a connection error fails every call of the round trip (whether one ran is then
    unknown, as with a single EVALSHA whose reply is lost). At most `max_batch` calls share
    a round trip. With `wait` (REDIS_WAIT_REPLICAS), each round trip ends with one WAIT, and
    when too few replicas confirm it in time every call of it fails with NotReplicated.
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
                batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
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
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)
                   or (isinstance(result, ResponseError) and str(result).startswith("NOSCRIPT"))]
        if missing:  # a restarted or flushed Redis: load the script once and run those calls again
            await self.client.script_load(self.script)
            for i, result in zip(missing, await self._round_trip([batch[i] for i in missing])):
                results[i] = result
        return results

    async def _round_trip(self, batch: list[Call]) -> list[Any]:
        """EVALSHA each call over one pooled connection: one write, then the replies in order.

        redis-py's `Pipeline` would do the same with more bookkeeping per command (about a
        sixth of this path's CPU), and it retries the whole batch after a connection error,
        which can run a script twice; here that error fails the batch's callers (503). A
        pooled connection the server closed while it sat idle (a restart, a `timeout` setting)
        is replaced before anything is sent: redis-py's pool skips that check while its
        maintenance notifications are on "auto", their default.
        """
        self.round_trips += 1
        pool = self.client.connection_pool
        connection = await pool.get_connection()
        try:
            if await connection.can_read():  # closed by the server (or holding stray replies)
                await connection.disconnect()
                await connection.connect()
            commands = [("EVALSHA", self.sha, len(keys), *keys, *args) for keys, args, _ in batch]
            await connection.send_packed_command(connection.pack_commands(
                commands + ([self.wait.command] if self.wait else [])))
            results: list[Any] = []
            for _ in batch:
                try:
                    results.append(await connection.read_response())
                except ResponseError as error:  # this call's script failed; the connection is fine
                    results.append(error)
            if self.wait is not None and not self.wait.confirmed(await connection.read_response()):
                unconfirmed = NotReplicated(f"not confirmed by {self.wait.replicas} replica(s) "
                                            f"within {self.wait.timeout_ms} ms")
                results = [r if isinstance(r, Exception) else unconfirmed for r in results]
            return results
        except BaseException:
            await connection.disconnect()  # replies may be left unread: never reuse the connection
            raise
        finally:
            await pool.release(connection)


class _HiredisPacking:
    """`pack_command` by redis-py's own hiredis serializer (the one its blocking connections use)."""

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        return self._serializer.pack(*args)


class HiredisConnection(_HiredisPacking, aioredis.Connection):
    """A TCP asyncio connection packing with hiredis."""


class HiredisSSLConnection(_HiredisPacking, aioredis.SSLConnection):
    """A TLS (rediss://) asyncio connection packing with hiredis."""


def connection_class(url: str) -> type | None:
    """The hiredis-packing connection class for a redis:// or rediss:// URL (None: keep redis-py's)."""
    if not HIREDIS_AVAILABLE:  # hiredis is a dependency; without it redis-py packs in Python
        return None
    scheme = url.partition("://")[0].lower()
    return {"redis": HiredisConnection, "rediss": HiredisSSLConnection}.get(scheme)
