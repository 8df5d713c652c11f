"""BatchedScript: concurrent script calls share round trips, each caller gets its own answer."""

from __future__ import annotations

import asyncio
import os
import socket

import redis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from broker.batching import BatchedScript
from broker.setup import async_redis_client
from config.settings import EdgeSettings

# returns its argument doubled, after appending it to a list; ARGV[1] == 'boom' raises a script error
SCRIPT = """
if ARGV[1] == 'boom' then return redis.error_reply('ERR boom asked') end
redis.call('rpush', KEYS[1], ARGV[1])
return tonumber(ARGV[1]) * 2
"""


def client(url: str = "") -> aioredis.Redis:
    """The web process's client (broker.setup), on `url` or the suite's Redis."""
    return async_redis_client(EdgeSettings(redis_url=url or os.environ["REDIS_URL"]))


async def test_concurrent_calls_share_round_trips_and_each_gets_its_result(redis_client: redis.Redis) -> None:
    async with client() as r:
        script = BatchedScript(r, SCRIPT)
        results = await asyncio.gather(*(script(keys=["seen"], args=[n]) for n in range(200)))
        assert results == [2 * n for n in range(200)]
        assert sorted(int(x) for x in redis_client.lrange("seen", 0, -1)) == list(range(200))
        assert script.round_trips < 20  # 200 calls, batched (at most 128 a round trip)
        assert await script(keys=["seen"], args=[7]) == 14  # a lone call is sent at once


async def test_a_script_error_fails_only_its_own_caller(redis_client: redis.Redis) -> None:
    async with client() as r:
        script = BatchedScript(r, SCRIPT)
        results = await asyncio.gather(
            script(keys=["seen"], args=[1]),
            script(keys=["seen"], args=["boom"]),
            script(keys=["seen"], args=[3]),
            return_exceptions=True,
        )
        assert results[0] == 2 and results[2] == 6
        assert isinstance(results[1], ResponseError) and "boom asked" in str(results[1])
        assert redis_client.lrange("seen", 0, -1) == [b"1", b"3"]


async def test_a_flushed_script_cache_is_reloaded_once(redis_client: redis.Redis) -> None:
    async with client() as r:
        script = BatchedScript(r, SCRIPT)
        assert await script(keys=["seen"], args=[1]) == 2
        redis_client.script_flush()
        results = await asyncio.gather(*(script(keys=["seen"], args=[n]) for n in range(10)))
        assert results == [2 * n for n in range(10)]
        assert redis_client.llen("seen") == 11  # every call ran exactly once


async def test_an_unreachable_redis_fails_every_caller_of_the_round_trip() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    async with client(url) as r:
        script = BatchedScript(r, SCRIPT)
        results = await asyncio.gather(*(script(keys=["k"], args=[n]) for n in range(5)), return_exceptions=True)
    assert all(isinstance(result, RedisConnectionError) for result in results), results
    assert not script._sending  # the next call starts a new round trip


async def test_a_cancelled_caller_leaves_the_others_their_answers(redis_client: redis.Redis) -> None:
    async with client() as r:
        script = BatchedScript(r, SCRIPT)
        first = asyncio.ensure_future(script(keys=["seen"], args=[1]))
        second = asyncio.ensure_future(script(keys=["seen"], args=[2]))
        await asyncio.sleep(0)
        first.cancel()
        assert await second == 4
        assert not script._sending


async def test_a_connection_the_server_closed_is_replaced_not_reused(redis_client: redis.Redis) -> None:
    async with client() as r:
        script = BatchedScript(r, SCRIPT)
        assert await script(keys=["seen"], args=[1]) == 2
        assert redis_client.client_kill_filter(_type="normal", skipme=True) >= 1  # drops the pooled connection
        await asyncio.sleep(0.05)  # (between two round trips)
        results = await asyncio.gather(*(script(keys=["seen"], args=[n]) for n in range(2, 6)))
        assert results == [4, 6, 8, 10]
        assert redis_client.lrange("seen", 0, -1) == [b"1", b"2", b"3", b"4", b"5"]  # each ran once


async def test_a_lost_reply_fails_the_round_trip_and_nothing_is_sent_twice() -> None:
    evalshas: list[int] = []  # per connection: EVALSHAs received before it was dropped

    async def answer_then_drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # refuses the connection's set-up commands (as a Redis older than HELLO does), then loses the scripts' replies
        while data := await reader.read(65536):
            if b"EVALSHA" in data:
                evalshas.append(data.count(b"EVALSHA"))
                break
            writer.write(b"-ERR unknown command\r\n" * data.count(b"*"))  # one reply per command
        writer.close()

    server = await asyncio.start_server(answer_then_drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with client(f"redis://127.0.0.1:{port}/0") as r:
            script = BatchedScript(r, SCRIPT)
            results = await asyncio.gather(*(script(keys=["k"], args=[n]) for n in range(3)), return_exceptions=True)
    finally:
        server.close()
    assert all(isinstance(result, RedisConnectionError) for result in results), results
    assert evalshas == [3]  # one round trip for the three, never sent again
