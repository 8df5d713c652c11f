"""Prune throughput under politeness: listing checks per minute per host against the local marketplace.

Run from the repo root with no arguments: `python bench/prune.py` (about a minute).
It starts its own redis-server and embedded PostgreSQL in a temp dir (like the tests), the
local marketplace in this process, one `backroom worker -p 2 -t 8` pool and (BENCH_EDGE=1,
the default) one `backroom worker --edge -p 1 -t 2` with the system Chromium for Vinted,
which blocks datacenter IPs. BENCH_PER_HOST (default 60) listings per host (vinted, grailed,
shop) become available items; a tenth of each host's listings are sold and a tenth removed
on the marketplace. One `prune_listings` then fans out the checks.

Politeness is PRUNE_HOST_RATE_PER_S (BENCH_RATE, default 5) per host with PRUNE_JITTER
(BENCH_JITTER, default 0.3) and PRUNE_HOST_CONCURRENCY (default 2). The figures come from
the marketplace's own request log: per host, checks per minute from its first to its last
check request, the most requests it saw in any one-second window, and the smallest gap.
Ends with one line: `bench: prune checks_per_min=.. vinted=.. grailed=.. shop=.. max_per_s=.. limit_per_s=..`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from bisect import bisect_left
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402
import redis  # noqa: E402

from bench._services import BIN, Stack, say, wait_until  # noqa: E402
from fakes.marketplace import Marketplace  # noqa: E402

PER_HOST = int(os.environ.get("BENCH_PER_HOST", "60"))
RATE = float(os.environ.get("BENCH_RATE", "5"))
JITTER = float(os.environ.get("BENCH_JITTER", "0.3"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "2"))
EDGE = os.environ.get("BENCH_EDGE", "1") == "1"
SOURCES = ("vinted", "grailed", "shop")
CHECK_PATHS = {"vinted": "/items/", "grailed": "/api/listings/", "shop": "/products/"}
EXPECTED = {"available": "available", "sold": "sold", "removed": "archived"}
SCRUB = ("WORKER_PROCESSES", "WORKER_THREADS", "REDIS_NAMESPACE", "REDIS_SENTINELS", "SENTRY_DSN")


async def seed_items(dsn: str, market: Marketplace) -> dict[int, str]:
    """An available item per marketplace listing, a tenth sold and a tenth removed there; returns id -> state."""
    conn = await asyncpg.connect(dsn)
    states: dict[int, str] = {}
    try:
        for source in SOURCES:
            for i, listing in enumerate(market.listings(source)):
                state = "sold" if i % 10 == 3 else "removed" if i % 10 == 7 else "available"
                market.set_state(source, listing.id, state)
                item_id = await conn.fetchval(
                    "INSERT INTO items (source, source_listing_id, source_url, title, kind, status)"
                    " VALUES ($1, $2, $3, $4, 'one_of_one', 'available') RETURNING id",
                    source,
                    str(listing.id),
                    market.url_of(listing),
                    listing.title,
                )
                states[item_id] = state
    finally:
        await conn.close()
    return states


async def item_states(dsn: str) -> list[asyncpg.Record]:
    """Every item's status and last check outcome."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(
            "SELECT id, status, last_check_outcome, last_checked_at IS NOT NULL AS checked FROM items"
        )
    finally:
        await conn.close()


def host_figures(times: list[float]) -> tuple[float, int, float]:
    """(checks per minute first-to-last, most requests in any 1 s window, smallest gap in s)."""
    times = sorted(times)
    if len(times) < 2:
        return float("nan"), len(times), float("nan")
    per_min = (len(times) - 1) / (times[-1] - times[0]) * 60
    most = max(bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    return per_min, most, min(b - a for a, b in zip(times, times[1:]))


def main() -> int:
    """Start everything, prune once, print per-host figures from the marketplace's request log."""
    for name in SCRUB:
        os.environ.pop(name, None)
    stack, market = Stack(), Marketplace(seed=5, per_source=PER_HOST, slow_s=60.0)
    try:
        stack.start_redis()
        stack.start_postgres()
        market.start()
        env = stack.env(
            PRUNE_HOST_RATE_PER_S=str(RATE),
            PRUNE_JITTER=str(JITTER),
            PRUNE_HOST_CONCURRENCY=str(CONCURRENCY),
            PRUNE_EDGE_SOURCES="vinted" if EDGE else "",
            PRUNE_TIMEOUT_S="10",
            EDGE_NODE_ID="bench-pi",
            EDGE_HEARTBEAT_S="1",
            EDGE_OUTBOX_PATH=str(stack.root / "outbox.sqlite3"),
            EDGE_PAGES_IN_FLIGHT="2",
            PYTHONPATH=str(REPO),
        )
        os.environ.update(env)  # this process enqueues through the same settings
        states = asyncio.run(seed_items(stack.database_url, market))
        stack.spawn("worker", [str(BIN / "backroom"), "worker", "-p", "2", "-t", "8"], env)
        client = redis.Redis.from_url(stack.redis.url)  # type: ignore[union-attr]
        wait_until(lambda: len(list(client.scan_iter("backroom:worker:*"))) >= 2, timeout=90, what="two workers")
        if EDGE:
            from broker.edge_registry import live_edge_nodes
            from broker.keys import Keys

            from cli.edge import create_edge_credentials

            # the node on its own credential: its results reach record_listing_check through the pool's gateway
            creds = create_edge_credentials(client, "backroom", "bench-pi", host="127.0.0.1", port=stack.redis.port)  # type: ignore[union-attr]
            stack.spawn(
                "edge",
                [str(BIN / "backroom"), "worker", "--edge", "-p", "1", "-t", "2"],
                {**env, "REDIS_URL": creds.redis_url},
            )
            wait_until(lambda: live_edge_nodes(client, Keys("backroom"), ttl_s=30), timeout=90, what="an edge node")
        say(
            f"bench: {len(states)} items ({PER_HOST} per host), limit {RATE:g}/s per host (+ jitter {JITTER:g}), "
            f"{CONCURRENCY} in flight per host, vinted on the {'edge (Chromium)' if EDGE else 'server'}"
        )
        from actors.prune import prune_listings

        market.clear_requests()
        started = time.monotonic()
        prune_listings.send()
        budget = PER_HOST / RATE * (1 + JITTER) * 10 + 120  # the edge's browser is far slower than the limit

        progress = {"at": time.monotonic()}

        def all_checked() -> bool:
            rows = [r for r in asyncio.run(item_states(stack.database_url)) if r["id"] in states]
            if time.monotonic() - progress["at"] >= 10:
                progress["at"] = time.monotonic()
                seen = {s: sum(r.path.startswith(CHECK_PATHS[s]) for r in market.requests(s)) for s in SOURCES}
                say(f"  {time.monotonic() - started:5.1f}s: {sum(r['checked'] for r in rows)} checked; requests {seen}")
            return all(r["checked"] for r in rows)

        wait_until(all_checked, timeout=budget, interval=1.0, what="every item checked")
        elapsed = time.monotonic() - started
        rows = {r["id"]: r for r in asyncio.run(item_states(stack.database_url))}
        wrong = sum(rows[i]["status"] != EXPECTED[s] for i, s in states.items())
        say(f"  all {len(states)} checked in {elapsed:.1f}s; items in the wrong state: {wrong}")
        rates, over = {}, 0
        for source in SOURCES:
            times = [r.at for r in market.requests(source) if r.path.startswith(CHECK_PATHS[source])]
            per_min, most, gap = host_figures(times)
            rates[source] = per_min
            over += most > RATE  # a host saw more requests in one second than the limit allows
            say(
                f"  {source:8s} checks={len(times):4d} checks_per_min={per_min:7.1f} limit_per_s={RATE:g} "
                f"max_in_any_1s={most} min_gap_ms={gap * 1000:.0f} (limit gap {1000 / RATE:.0f})"
            )
        total = len(states) / elapsed * 60
        most_any = max(
            host_figures([r.at for r in market.requests(s) if r.path.startswith(CHECK_PATHS[s])])[1] for s in SOURCES
        )
        print(
            f"bench: prune checks_per_min={total:.1f} vinted={rates['vinted']:.1f} grailed={rates['grailed']:.1f} "
            f"shop={rates['shop']:.1f} max_per_s={most_any} limit_per_s={RATE:g}",
            flush=True,
        )
        return 0 if wrong == 0 and over == 0 else 1
    except TimeoutError:
        for child in stack.children:
            say(f"--- {child.name} log ---\n{child.tail(30)}")
        raise
    finally:
        market.stop()
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
