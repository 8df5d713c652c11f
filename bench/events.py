"""Storefront events: 10,000 item changes delivered to 3 local endpoints by a real worker pool.

Run from the repo root with no arguments: `python bench/events.py` (about four minutes). It
starts its own redis-server and embedded PostgreSQL in a temp dir (like the tests), three
fake storefronts in this process (each verifies every signature) and one
`backroom worker -p 2 -t 8` pool.

BENCH_ITEMS (default 2500) pending stable items are inserted (pending: no event), then
BENCH_CHANGES (default 10000) changes are committed one per transaction at BENCH_RATE
(default 50) per second, round-robin over the items: each item is approved, then its stock
changes, so every resource has several events that must arrive in order. Every change is
one event for each of the 3 endpoints.

Commit-to-delivery of a delivery = when the storefront got it - the event's `created_at`
(written by the trigger inside the change's transaction, on the same machine's clock).
Lost = deliveries never received BENCH_DRAIN_S (default 60) seconds after the last change;
doubled = deliveries received more than once (same endpoint, same webhook-id); also counted:
deliveries whose signature did not verify and per-resource order violations.
Ends with one line: `bench: events deliveries_s=.. p50_ms=.. p99_ms=.. lost=.. doubled=..`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402
import redis  # noqa: E402

from bench._services import BIN, Stack, percentile, say, wait_until  # noqa: E402
from domain.events import new_secret  # noqa: E402
from fakes.base import FakeRunner  # noqa: E402
from fakes.storefront import FakeStorefront  # noqa: E402

ITEMS = int(os.environ.get("BENCH_ITEMS", "2500"))
CHANGES = int(os.environ.get("BENCH_CHANGES", "10000"))
RATE = float(os.environ.get("BENCH_RATE", "50"))
DRAIN_S = float(os.environ.get("BENCH_DRAIN_S", "60"))
SCRUB = ("WORKER_PROCESSES", "WORKER_THREADS", "REDIS_NAMESPACE", "REDIS_SENTINELS", "SENTRY_DSN")


async def prepare(dsn: str, fronts: list[FakeStorefront]) -> list[int]:
    """Three endpoints and ITEMS pending items; returns the item ids."""
    conn = await asyncpg.connect(dsn)
    try:
        for n, front in enumerate(fronts):
            await conn.execute(
                "INSERT INTO storefront_endpoints (name, url, secret, event_types) VALUES ($1, $2, $3, '{}')",
                f"bench-{n}",
                front.url,
                front.secret,
            )
        rows = await conn.fetch(
            "INSERT INTO items (source, source_listing_id, title, kind, stock, status, price_cents, currency)"
            " SELECT 'bench', 'b' || g, 'Bench tee ' || g, 'stable', 1000, 'pending', 2500, 'EUR'"
            " FROM generate_series(1, $1) g RETURNING id",
            ITEMS,
        )
        return [r["id"] for r in rows]
    finally:
        await conn.close()


async def change_all(dsn: str, items: list[int]) -> float:
    """Commit CHANGES changes at RATE per second (approve first, then stock); returns the seconds taken."""
    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=4)
    started = time.monotonic()
    pending: set[asyncio.Task] = set()
    try:
        for n in range(CHANGES):
            item, round_ = items[n % len(items)], n // len(items)
            sql = (
                "UPDATE items SET status = 'available' WHERE id = $1"
                if round_ == 0
                else f"UPDATE items SET stock = {1000 - round_} WHERE id = $1"
            )
            pending.add(asyncio.create_task(pool.execute(sql, item)))
            if len(pending) >= 16:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            delay = started + (n + 1) / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*pending)
        return time.monotonic() - started
    finally:
        await pool.close()


async def event_times(dsn: str) -> dict[str, tuple[float, str, int]]:
    """webhook-id -> (created_at as epoch seconds, resource id, seq) for every event."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id, extract(epoch FROM created_at)::float8 AS t, resource_id, seq FROM storefront_events"
        )
        return {f"evt_{r['id']}": (r["t"], r["resource_id"], r["seq"]) for r in rows}
    finally:
        await conn.close()


def figures(fronts: list[FakeStorefront], events: dict[str, tuple[float, str, int]]) -> dict[str, float]:
    """Throughput, latency percentiles, lost, doubled, unverified and out-of-order counts."""
    latencies, doubled, unverified, disorder, received_at = [], 0, 0, 0, []
    for front in fronts:
        counts = Counter(r.headers["webhook-id"] for r in front.received)
        doubled += sum(c - 1 for c in counts.values())
        last_seq: dict[str, int] = {}
        for r in front.received:
            created, resource, seq = events[r.headers["webhook-id"]]
            latencies.append((r.at - created) * 1000)
            received_at.append(r.at)
            unverified += not r.verified
            disorder += seq < last_seq.get(resource, 0)
            last_seq[resource] = max(seq, last_seq.get(resource, 0))
    distinct = sum(len({r.headers["webhook-id"] for r in f.received}) for f in fronts)
    if not received_at:
        return {
            "deliveries_s": 0.0,
            "p50_ms": float("nan"),
            "p99_ms": float("nan"),
            "lost": len(events) * len(fronts),
            "doubled": 0,
            "unverified": 0,
            "out_of_order": 0,
        }
    first = min(t for t, _, _ in events.values())
    return {
        "deliveries_s": len(received_at) / max(1e-9, max(received_at) - first),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "lost": len(events) * len(fronts) - distinct,
        "doubled": doubled,
        "unverified": unverified,
        "out_of_order": disorder,
    }


def main() -> None:
    """Start everything, make the changes, wait for the deliveries, print the figures."""
    for name in SCRUB:
        os.environ.pop(name, None)
    stack = Stack()
    fronts = [FakeStorefront(new_secret(secrets.token_bytes(32))) for _ in range(3)]
    runner = FakeRunner(*fronts).start()
    try:
        stack.start_redis()
        dsn = stack.start_postgres()
        items = asyncio.run(prepare(dsn, fronts))
        env = stack.env(EVENTS_ALLOW_ADDRESSES="loopback")
        worker = stack.spawn("worker", [str(BIN / "backroom"), "worker", "-p", "2", "-t", "8"], env)
        client = redis.Redis.from_url(stack.redis.url)  # type: ignore[union-attr]
        wait_until(lambda: len(list(client.scan_iter("backroom:worker:*"))) == 2, timeout=90, what="two workers")
        say(f"events: {CHANGES} changes of {ITEMS} items at {RATE:g}/s to {len(fronts)} endpoints")
        took = asyncio.run(change_all(dsn, items))
        say(f"  changes committed in {took:.1f} s")
        expected = CHANGES * len(fronts)
        try:
            wait_until(lambda: sum(len(f.received) for f in fronts) >= expected, timeout=DRAIN_S, what="every delivery")
        except TimeoutError as error:
            say(f"  {error}; the worker's log ends:\n{worker.tail()}")
        result = figures(fronts, asyncio.run(event_times(dsn)))
        say(f"  unverified={result['unverified']} out_of_order={result['out_of_order']}")
        print(
            f"bench: events deliveries_s={result['deliveries_s']:.0f} p50_ms={result['p50_ms']:.0f} "
            f"p99_ms={result['p99_ms']:.0f} lost={result['lost']} doubled={result['doubled']}",
            flush=True,
        )
    finally:
        runner.stop()
        stack.stop()


if __name__ == "__main__":
    main()
