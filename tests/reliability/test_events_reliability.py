"""Storefront events through real worker pools: a pool SIGKILLed mid-stream loses no event."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

import asyncpg
import redis

from actors.events import sweep_events
from cli.stack import stop_tree
from tests.events_support import FAST_RETRIES, add_endpoint, storefronts  # noqa: F401
from tests.reliability.conftest import live_workers, pools  # noqa: F401
from tests.waiting import wait_until

CHANGES = 300


async def _setup(database_url: str, front) -> list[int]:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(database_url)
    try:
        await add_endpoint(conn, front)
        rows = await conn.fetch(
            "INSERT INTO items (source, source_listing_id, title, kind, stock, status)"
            " SELECT 'killtest', md5(random()::text), 'Tee', 'stable', 1000, 'pending' FROM generate_series(1, 30)"
            " RETURNING id"
        )
        return [r["id"] for r in rows]
    finally:
        await conn.close()


async def _change(database_url: str, items: list[int], start: int, stop: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for n in range(start, stop):
            await conn.execute(
                "UPDATE items SET stock = $2, status = 'available' WHERE id = $1", items[n % len(items)], 1000 - n
            )
    finally:
        await conn.close()


async def _expected(database_url: str, items: list[int]) -> dict[str, tuple[str, int]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id, resource_id, seq FROM storefront_events WHERE resource = 'item'"
            " AND resource_id = ANY($1::text[])",
            [str(i) for i in items],
        )
        return {f"evt_{r['id']}": (r["resource_id"], r["seq"]) for r in rows}
    finally:
        await conn.close()


def test_a_pool_sigkilled_mid_stream_loses_no_event(
    pools,
    storefronts,
    redis_client: redis.Redis,  # noqa: F811
    database_url: str,
) -> None:
    front = storefronts[0]
    items = asyncio.run(_setup(database_url, front))
    env = {**FAST_RETRIES, "EVENTS_ALLOW_ADDRESSES": "loopback"}
    url = os.environ["REDIS_URL"]
    first = pools(url, processes=1, threads=4, **env)
    wait_until(lambda: len(live_workers(redis_client)) == 1, 60, "the first pool up")
    asyncio.run(_change(database_url, items, 0, CHANGES // 2))
    wait_until(lambda: len(front.received) > 0, 60, "deliveries under way")
    stop_tree(first.process)  # SIGKILL, mid-stream: commits, relays and deliveries cut wherever they were
    asyncio.run(_change(database_url, items, CHANGES // 2, CHANGES))  # committed while no worker runs
    pools(url, processes=1, threads=4, **env)
    expected = asyncio.run(_expected(database_url, items))
    assert len(expected) == CHANGES

    swept = [0.0]

    def all_delivered() -> bool:
        if len({r.headers["webhook-id"] for r in front.received} & expected.keys()) == len(expected):
            return True
        if time.monotonic() - swept[0] > 3:  # what the minute schedule does, sooner
            sweep_events.send(0)
            swept[0] = time.monotonic()
        return False

    wait_until(all_delivered, 180, "every event delivered after the kill")
    counts = Counter(r.headers["webhook-id"] for r in front.received)
    assert sum(c - 1 for c in counts.values()) <= 4  # only what was in flight at the kill may come twice
    last: dict[str, int] = {}
    for received in front.received:  # per resource, in order (a repeat of the last one aside)
        resource, seq = expected[received.headers["webhook-id"]]  # nothing but this test's events
        assert seq >= last.get(resource, 0), (resource, seq, last.get(resource))
        last[resource] = seq
