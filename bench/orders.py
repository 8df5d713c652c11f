"""Orders when things go wrong: many orders through the fakes, lost webhooks, failed and disputed
payments, a worker killed mid-run; how many reach the right final state, and nothing twice.

Run from the repo root with no arguments: `python bench/orders.py` (about 4 minutes on 2 cores). It starts
its own redis-server and embedded PostgreSQL in a temp dir (like the tests), the five fake
providers in this process, and one `backroom worker -p 2 -t 8` pool; the hold is BENCH_HOLD_S
(default 5 s).

BENCH_ORDERS (default 2000) orders arrive evenly over BENCH_CREATE_S (default 120) seconds:
- 5% pay asynchronously and fail (`checkout.session.completed` unpaid, then
  `async_payment_failed`, in either order): right = `cancelled` / `payment_failed`, stock back,
  no refund, no Printify order;
- 2% are disputed during their hold (`charge.dispute.created`, before or after the checkout
  event): right = `needs_review`, never released;
- the rest are paid: half print-on-demand (right = `dispatched`, one shipping email, one
  Printify order sent once), half stable stock (right = `released`).
The fake Printify makes and ships each order by itself (`production_s`); this script plays its
webhooks (`order:updated` per status change, straight to `handle_printify_event` as the API
would enqueue it) and drops BENCH_DROP (default 20%) of them. The poll fan-out and the hold
sweep are fired every 5 s (their schedules' 5-minute / 1-minute cadence compressed), with
PRINTIFY_POLL_AFTER_MINUTES at 10 s. Halfway, one of the two worker processes is SIGKILLed.

An order is stuck when it is not in its right final state 120 s after the last order was sent.
Doubled effects: a second Printify order or send for one order, a second refund of a payment,
an email sent twice (same recipient and subject). p99_final_s: from the order's creation to its
final state (released_at, dispatched_at, or its last update), on the database clock.
Ends with: `bench: orders n=.. correct=.. stuck=.. doubled=.. p99_final_s=..`.
"""

from __future__ import annotations

import asyncio
import os
import random
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
from bench.hold_release import SCRUB, kill_one_worker  # noqa: E402
from fakes import Fakes  # noqa: E402

ORDERS = int(os.environ.get("BENCH_ORDERS", "2000"))
CREATE_S = float(os.environ.get("BENCH_CREATE_S", "120"))
HOLD_S = float(os.environ.get("BENCH_HOLD_S", "5"))
DROP = float(os.environ.get("BENCH_DROP", "0.2"))
SETTLE_S = 120.0
RIGHT = {"failed_payment": "cancelled", "disputed": "needs_review", "pod": "dispatched", "stable": "released"}


def kind_of(i: int) -> str:
    """The bench's mix, spread evenly: 5% failed payments, 2% disputes, the rest half and half."""
    slot = i % 100
    if slot < 5:
        return "failed_payment"
    if slot < 7:
        return "disputed"
    return "pod" if slot % 2 else "stable"


async def insert_items(dsn: str) -> tuple[int, int]:
    """A stable item with ample stock and a print-on-demand item; their ids."""
    conn = await asyncpg.connect(dsn)
    try:
        stable = await conn.fetchval(
            "INSERT INTO items (source, source_listing_id, title, kind, stock, status, price_cents, currency)"
            " VALUES ('bench', 'stable', 'Bench tee', 'stable', 1000000, 'available', 2500, 'EUR') RETURNING id"
        )
        pod = await conn.fetchval(
            "INSERT INTO items (source, source_listing_id, title, kind, status, price_cents, currency, attributes)"
            " VALUES ('bench', 'pod', 'Bench poster', 'print_on_demand', 'available', 2500, 'EUR',"
            ' \'{"printify_product_id": "p1", "printify_variant_id": 17887}\') RETURNING id'
        )
        return stable, pod
    finally:
        await conn.close()


def place(i: int, fakes: Fakes, items: tuple[int, int]) -> list[dict]:
    """The Stripe events of order `i`, in the order they are delivered."""
    kind = kind_of(i)
    item = items[1] if kind in ("pod", "disputed") else items[0]
    paid = kind != "failed_payment"
    completed = fakes.stripe.checkout_completed(
        items=str(item),
        amount_total=2500,
        email=f"b{i}@example.com",
        metadata={"bench": kind},
        payment_status="paid" if paid else "unpaid",
    )
    if kind == "failed_payment":
        events = [completed, fakes.stripe.async_payment(completed, succeeded=False)]
    elif kind == "disputed":
        events = [completed, fakes.stripe.dispute(completed["data"]["object"]["payment_intent"])]
    else:
        return [completed]
    return events if i % 2 else events[::-1]  # Stripe promises no order of delivery


class Driver:
    """Plays Printify's webhooks (dropping some) and fires the compressed schedules."""

    def __init__(self, fakes: Fakes) -> None:
        self.fakes, self.sent, self.dropped, self.next_fire = fakes, 0, 0, 0.0

    def tick(self) -> None:
        from actors.orders import handle_printify_event
        from actors.provider_poll import poll_stalled_printify_orders
        from actors.release import release_due_orders

        for order_id, status in self.fakes.printify.changes():
            if status in ("pending", "on-hold"):
                continue  # Printify sends no order:updated for these in the bench
            if random.random() < DROP:
                self.dropped += 1
                continue
            handle_printify_event.send(secrets.token_hex(16), order_id, "order:updated")
            self.sent += 1
        if time.monotonic() >= self.next_fire:
            poll_stalled_printify_orders.send()
            release_due_orders.send()
            self.next_fire = time.monotonic() + 5.0


async def outcome(dsn: str) -> list[dict]:
    """Each bench order: its kind, status, cancel reason, and seconds to its final state."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT metadata->>'bench' AS kind, status, cancel_reason, stripe_payment_intent,
                   extract(epoch FROM coalesce(CASE status WHEN 'dispatched' THEN dispatched_at
                                                           WHEN 'released' THEN released_at END, updated_at)
                                      - created_at)::float8 AS final_s
            FROM orders WHERE metadata ? 'bench'
            """
        )
        return [dict(r) for r in rows]
    finally:
        await conn.close()


def right(row: dict) -> bool:
    """True when the order is in its kind's right final state."""
    if row["status"] != RIGHT[row["kind"]]:
        return False
    return row["kind"] != "failed_payment" or row["cancel_reason"] == "payment_failed"


def doubled(fakes: Fakes) -> dict[str, int]:
    """Effects that happened more than once."""
    emails = Counter(
        (m.get("to") if isinstance(m.get("to"), str) else str(m.get("to")), m.get("subject")) for m in fakes.resend.sent
    )
    refunds = Counter(r["payment_intent"] for r in fakes.stripe.refunds.values())
    return {
        "printify_creates": sum(c - 1 for c in fakes.printify.creates.values() if c > 1),
        "printify_sends": sum(c - 1 for c in fakes.printify.sends.values() if c > 1),
        "refunds": sum(c - 1 for c in refunds.values() if c > 1),
        "emails": sum(c - 1 for c in emails.values() if c > 1),
    }


def run(fakes: Fakes, stack: Stack, items: tuple[int, int]) -> None:
    """Send every order's events at a steady pace, kill a worker halfway, drive Printify throughout."""
    from actors.orders import handle_stripe_event

    client = redis.Redis.from_url(stack.redis.url)  # type: ignore[union-attr]
    driver, interval, started, killed = Driver(fakes), CREATE_S / ORDERS, time.monotonic(), None
    for i in range(ORDERS):
        for event in place(i, fakes, items):
            handle_stripe_event.send(event["id"])
        if killed is None and i >= ORDERS // 2:
            killed = kill_one_worker(client)
            say(f"  SIGKILLed worker pid {killed} after {i} orders")
        driver.tick()
        time.sleep(max(0.0, started + (i + 1) * interval - time.monotonic()))
    say(f"  {ORDERS} orders sent in {time.monotonic() - started:.1f}s")

    def settled() -> bool:
        driver.tick()
        rows = asyncio.run(outcome(stack.database_url))
        return len(rows) == ORDERS and all(right(r) for r in rows)

    try:
        wait_until(settled, timeout=SETTLE_S, interval=1.0, what="every order in its final state")
    except TimeoutError:
        say(f"  not every order reached its final state within {SETTLE_S:.0f}s")
    say(f"  printify webhooks: {driver.sent} delivered, {driver.dropped} dropped")


def main() -> int:
    """Start everything, run the mix, print the figures."""
    for name in SCRUB:
        os.environ.pop(name, None)
    random.seed(19)
    stack, fakes = Stack(), Fakes()
    try:
        stack.start_redis()
        stack.start_postgres()
        fakes.start()
        fakes.printify.pending_s, fakes.printify.production_s = 0.3, 3.0
        env = stack.env(
            **fakes.env(),
            HOLD_MINUTES=f"{HOLD_S / 60}",
            WORKER_HEARTBEAT_TIMEOUT_MS="2000",
            PRINTIFY_POLL_AFTER_MINUTES=f"{10 / 60}",
            RESEND_RATE_PER_S="2000",
            PUSHOVER_RATE_PER_S="2000",
            TELEGRAM_RATE_PER_S="2000",
            STRIPE_RATE_PER_S="2000",
            PRINTIFY_RATE_PER_MIN="600000",
            ADMIN_EMAIL="admin@example.com",
        )
        os.environ.update(env)  # this process enqueues through the same settings
        items = asyncio.run(insert_items(stack.database_url))
        stack.spawn("worker", [str(BIN / "backroom"), "worker", "-p", "2", "-t", "8"], env)
        client = redis.Redis.from_url(stack.redis.url)  # type: ignore[union-attr]
        wait_until(lambda: len(list(client.scan_iter("backroom:worker:*"))) == 2, timeout=90, what="two workers")
        say(
            f"bench: {ORDERS} orders over {CREATE_S:.0f}s, hold {HOLD_S:.0f}s, {DROP:.0%} of Printify webhooks"
            " dropped, 5% failed payments, 2% disputes, one worker killed halfway"
        )
        run(fakes, stack, items)
        rows = asyncio.run(outcome(stack.database_url))
        correct = [r for r in rows if right(r)]
        wrong = Counter((r["kind"], r["status"]) for r in rows if not right(r))
        twice = doubled(fakes)
        say(f"  by kind: {dict(Counter(r['kind'] for r in correct))} right; wrong: {dict(wrong)}; doubled: {twice}")
        stuck = ORDERS - len(correct)
        p99 = percentile([r["final_s"] for r in correct if r["final_s"] is not None], 99)
        print(
            f"bench: orders n={ORDERS} correct={len(correct)} stuck={stuck} doubled={sum(twice.values())} "
            f"p99_final_s={p99:.1f}",
            flush=True,
        )
        return 0 if stuck == 0 and not any(twice.values()) else 1
    finally:
        fakes.stop()
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
