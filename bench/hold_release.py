"""Hold-release lateness: 1,000 paid orders with staggered holds, released by real worker pools.

Run from the repo root with no arguments: `python bench/hold_release.py` (about 4 minutes).
It starts its own redis-server and embedded PostgreSQL in a temp dir (like the tests),
the five fake providers in this process, `backroom scheduler` (the minute sweep) and one
`backroom worker -p 2 -t 8` pool, with BENCH_HOLD_S (default 15) as the hold.

Each of two runs sends BENCH_ORDERS (default 1000) `checkout.session.completed` events
through `handle_stripe_event`, evenly over BENCH_CREATE_S (default 60) seconds, so holds
end spread over a minute while new orders keep arriving. A third of the items are
print-on-demand (the release goes to the fake Printify, which keeps each order `pending`
for 0.3 s), the rest stable stock. Lateness of an order = when its release started
(`release_started_at`, on the database clock) - `hold_until`. An order is missed when
its release has not started 60 s after its hold ended.

The second run SIGKILLs one of the two worker processes halfway through: the delayed
release messages it held in memory come back through the reaper after the heartbeat
timeout (WORKER_HEARTBEAT_TIMEOUT_MS, here BENCH_HEARTBEAT_MS default 2000; the
production default is 20000, so a killed worker's holds can be that much late).
Ends with one line:
`bench: hold_release p50_s=.. p99_s=.. missed=.. killed_p99_s=.. killed_missed=..`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402
import redis  # noqa: E402

from bench._services import BIN, Stack, percentile, say, wait_until  # noqa: E402
from fakes import Fakes  # noqa: E402

ORDERS = int(os.environ.get("BENCH_ORDERS", "1000"))
CREATE_S = float(os.environ.get("BENCH_CREATE_S", "60"))
HOLD_S = float(os.environ.get("BENCH_HOLD_S", "15"))
HEARTBEAT_MS = int(os.environ.get("BENCH_HEARTBEAT_MS", "2000"))
MISSED_AFTER_S = 60.0
SCRUB = ("WORKER_PROCESSES", "WORKER_THREADS", "REDIS_NAMESPACE", "REDIS_SENTINELS", "SENTRY_DSN", "NOTIFY_FALLBACK")


async def insert_items(dsn: str) -> tuple[int, int]:
    """One stable item with ample stock and one print-on-demand item; returns their ids."""
    conn = await asyncpg.connect(dsn)
    try:
        stable = await conn.fetchval(
            "INSERT INTO items (source, source_listing_id, title, kind, stock, status, price_cents, currency)"
            " VALUES ('bench', 'stable', 'Bench tee', 'stable', 1000000, 'available', 2500, 'EUR') RETURNING id"
        )
        pod = await conn.fetchval(
            "INSERT INTO items (source, source_listing_id, title, kind, status, price_cents, currency, attributes)"
            " VALUES ('bench', 'pod', 'Bench poster', 'print_on_demand', 'available', 3000, 'EUR',"
            ' \'{"printify_product_id": "p1", "printify_variant_id": 17887}\') RETURNING id'
        )
        return stable, pod
    finally:
        await conn.close()


async def run_figures(dsn: str, run: str) -> tuple[list[float], int, int]:
    """(lateness of every started release in s, orders of the run, orders released)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM release_started_at - hold_until)::float8 AS late, status"
            " FROM orders WHERE metadata->>'bench_run' = $1",
            run,
        )
    finally:
        await conn.close()
    late = [r["late"] for r in rows if r["late"] is not None]
    return late, len(rows), sum(r["status"] == "released" for r in rows)


async def last_hold_end(dsn: str, run: str) -> float:
    """Seconds from now until the last hold of the run ends."""
    conn = await asyncpg.connect(dsn)
    try:
        return float(
            await conn.fetchval(
                "SELECT coalesce(extract(epoch FROM max(hold_until) - now()), 0) FROM orders"
                " WHERE metadata->>'bench_run' = $1",
                run,
            )
        )
    finally:
        await conn.close()


def kill_one_worker(client: redis.Redis) -> int:
    """SIGKILL one live worker process (its supervisor starts a new one); returns its pid."""
    pids = sorted(
        int(client.hget(key, "pid")) for key in client.scan_iter("backroom:worker:*") if client.hget(key, "pid")
    )
    os.kill(pids[0], signal.SIGKILL)
    return pids[0]


def one_run(run: str, fakes: Fakes, stack: Stack, items: tuple[int, int], *, kill: bool) -> tuple[list[float], int]:
    """Create the run's orders at a steady pace, optionally kill a worker halfway; returns (lateness, missed)."""
    from actors.orders import handle_stripe_event

    client = redis.Redis.from_url(stack.redis.url)  # type: ignore[union-attr]
    interval, started, killed = CREATE_S / ORDERS, time.monotonic(), None
    for i in range(ORDERS):
        item = items[1] if i % 3 == 0 else items[0]
        event = fakes.stripe.checkout_completed(
            items=str(item),
            amount_total=3000 if item == items[1] else 2500,
            email=f"b{i}@example.com",
            metadata={"bench_run": run},
        )
        handle_stripe_event.send(event["id"])
        if kill and killed is None and i >= ORDERS // 2:
            killed = kill_one_worker(client)
            say(f"  [{run}] SIGKILLed worker pid {killed} after {i} orders")
        time.sleep(max(0.0, started + (i + 1) * interval - time.monotonic()))
    say(f"  [{run}] {ORDERS} orders sent in {time.monotonic() - started:.1f}s")
    tail = asyncio.run(last_hold_end(stack.database_url, run)) + MISSED_AFTER_S

    def all_released() -> bool:
        late, total, released = asyncio.run(run_figures(stack.database_url, run))
        return total == ORDERS and released == ORDERS

    try:
        wait_until(all_released, timeout=max(5.0, tail), interval=1.0, what="every release")
    except TimeoutError:
        say(f"  [{run}] not every order was released within {MISSED_AFTER_S:.0f}s of its hold")
    late, total, released = asyncio.run(run_figures(stack.database_url, run))
    missed = (ORDERS - total) + sum(1 for value in late if value > MISSED_AFTER_S) + (total - len(late))
    say(
        f"  [{run}] orders={total} released={released} p50={percentile(late, 50):.3f}s "
        f"p99={percentile(late, 99):.3f}s max={max(late, default=float('nan')):.3f}s missed={missed}"
    )
    return late, missed


def main() -> int:
    """Start everything, run twice (the second with a worker killed), print the figures."""
    for name in SCRUB:
        os.environ.pop(name, None)
    stack, fakes = Stack(), Fakes()
    try:
        stack.start_redis()
        stack.start_postgres()
        fakes.start()
        fakes.printify.pending_s = 0.3
        env = stack.env(
            **fakes.env(),
            HOLD_MINUTES=f"{HOLD_S / 60}",
            WORKER_HEARTBEAT_TIMEOUT_MS=str(HEARTBEAT_MS),
            RESEND_RATE_PER_S="2000",
            PUSHOVER_RATE_PER_S="2000",
            TELEGRAM_RATE_PER_S="2000",
            STRIPE_RATE_PER_S="2000",
            PRINTIFY_RATE_PER_MIN="600000",
            ADMIN_EMAIL="admin@example.com",
        )
        os.environ.update(env)  # this process enqueues through the same settings
        items = asyncio.run(insert_items(stack.database_url))
        stack.spawn("scheduler", [str(BIN / "backroom"), "scheduler"], env)
        stack.spawn("worker", [str(BIN / "backroom"), "worker", "-p", "2", "-t", "8"], env)
        client = redis.Redis.from_url(stack.redis.url)  # type: ignore[union-attr]
        wait_until(lambda: len(list(client.scan_iter("backroom:worker:*"))) == 2, timeout=90, what="two workers")
        say(
            f"bench: {ORDERS} orders over {CREATE_S:.0f}s per run, hold {HOLD_S:.0f}s, "
            f"heartbeat timeout {HEARTBEAT_MS} ms"
        )
        late, missed = one_run("calm", fakes, stack, items, kill=False)
        killed_late, killed_missed = one_run("killed", fakes, stack, items, kill=True)
        duplicates = sum(count - 1 for count in fakes.printify.creates.values() if count > 1)
        double_sends = sum(count - 1 for count in fakes.printify.sends.values() if count > 1)
        say(
            f"printify: {len(fakes.printify.creates)} orders created, duplicates={duplicates}, "
            f"double sends={double_sends}"
        )
        print(
            f"bench: hold_release p50_s={percentile(late, 50):.3f} p99_s={percentile(late, 99):.3f} "
            f"missed={missed} killed_p99_s={percentile(killed_late, 99):.3f} killed_missed={killed_missed}",
            flush=True,
        )
        return 0 if missed == 0 and killed_missed == 0 and duplicates == 0 and double_sends == 0 else 1
    finally:
        fakes.stop()
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
