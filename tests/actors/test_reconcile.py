"""The nightly reconciliation finds each planted mismatch and opens exactly one ticket for it."""

from __future__ import annotations

import secrets

from actors.catalog import mirror_product
from actors.orders import handle_stripe_event
from actors.reconcile import reconcile_orders
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_status
from tests.actors.test_catalog import product_event
from tests.orders_support import (  # noqa: F401
    connect,
    fake,
    fakes,
    hold,
    insert_item,
    order_of,
    pod_attributes,
)
from tests.waiting import eventually


def reconcile() -> dict[str, int]:
    return wait_for_status(reconcile_orders.send().message_id, JobStatus.SUCCEEDED, timeout=60).result


async def released(conn, fake, item: int):  # type: ignore[no-untyped-def]
    event = fake.stripe.checkout_completed(items=str(item), amount_total=5000)
    wait_for_status(handle_stripe_event.send(event["id"]).message_id, JobStatus.SUCCEEDED)
    return await eventually(
        lambda: conn.fetchrow(
            "SELECT * FROM orders WHERE stripe_session_id = $1 AND status = 'released'", event["data"]["object"]["id"]
        ),
        timeout=30,
        what="the release",
    )


async def test_each_planted_mismatch_gets_one_ticket_across_runs(fake, worker, database_url, hold) -> None:
    hold(1 / 120)
    fake.printify.pending_s = 0
    conn = await connect(database_url)
    try:
        poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes())
        gone, cancelled, fine = [await released(conn, fake, poster) for _ in range(3)]
        with fake.printify.lock:
            del fake.printify.orders[gone["printify_order_id"]]
        fake.printify.advance(cancelled["printify_order_id"], "canceled")
        lost = fake.stripe.checkout_completed(items=str(poster), amount_total=5000)  # its webhook never came
        fake.stripe.checkout_completed(items=str(poster), amount_total=5000, payment_status="unpaid")  # not paid
        sold, freed = await insert_item(conn, "one_of_one"), await insert_item(conn, "one_of_one")
        for piece in (sold, freed):
            event = fake.stripe.checkout_completed(items=str(piece), amount_total=5000)
            wait_for_status(handle_stripe_event.send(event["id"]).message_id, JobStatus.SUCCEEDED)
            order = await order_of(conn, event["data"]["object"]["id"])
            if piece == sold:  # its order let go of it, but the piece stayed sold
                await conn.execute("UPDATE orders SET restocked_at = now() WHERE id = $1", order["id"])
            else:  # its order still holds it, but the piece is for sale again
                await conn.execute("UPDATE items SET status = 'available' WHERE id = $1", piece)
        orphan = fake.stripe.dashboard_refund(lost["data"]["object"]["payment_intent"])  # its order never came
        wait_for_status(handle_stripe_event.send(orphan["id"]).message_id, JobStatus.SUCCEEDED)
        await conn.execute(
            "UPDATE webhook_events SET unmatched_at = now() - interval '2 hours' WHERE event_id = $1", orphan["id"]
        )
        fake.printify.calls.clear()
        first = reconcile()
        assert first["stripe"] >= 1 and first["printify"] >= 2 and first["stock"] >= 2
        planted = {
            f"reconcile:printify_missing:{gone['id']}",
            f"reconcile:printify_cancelled:{cancelled['id']}",
            f"reconcile:stripe_paid_no_order:{lost['data']['object']['id']}",
            f"reconcile:stock:{sold}:sold_without_order",
            f"reconcile:stock:{freed}:available_but_ordered",
            f"reconcile:kept_event:{orphan['id']}",
        }
        count = "SELECT count(*) FROM tickets WHERE key LIKE 'reconcile:%'"
        total = await conn.fetchval(count)
        assert unique_keys(await conn.fetch("SELECT key FROM tickets WHERE key = ANY($1)", list(planted))) == planted
        assert await conn.fetchval("SELECT count(*) FROM tickets WHERE key LIKE $1", f"reconcile:%:{fine['id']}") == 0
        assert reconcile() == first
        assert await conn.fetchval(count) == total  # nothing opened twice
        assert fake.printify.calls["get"] == 0  # listed page by page, never one order at a time
    finally:
        await conn.close()


def unique_keys(rows) -> set[str]:  # type: ignore[no-untyped-def]
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys))
    return set(keys)


async def test_stock_that_disagrees_with_its_orders_gets_one_ticket_across_runs(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        fine, unrestocked, by_hand = [await insert_item(conn, "stable", stock=5, price_cents=1000) for _ in range(3)]
        pid = f"p-recount-{secrets.token_hex(4)}"  # a catalog product: 10 in stock
        wait_for_status(
            mirror_product.send(f"{pid}:1", product_event(pid, minutes=1, title="Candle", stock=10)).message_id,
            JobStatus.SUCCEEDED,
        )
        recounted = await conn.fetchval("SELECT id FROM items WHERE attributes ->> 'payload_product_id' = $1", pid)
        for item in (fine, unrestocked, recounted):
            event = fake.stripe.checkout_completed(items=f"{item}x2", amount_total=2000)
            wait_for_status(handle_stripe_event.send(event["id"]).message_id, JobStatus.SUCCEEDED)
            order = await order_of(conn, event["data"]["object"]["id"])
            if item == unrestocked:  # refunded without its restock: the two units never came back
                await conn.execute(
                    "UPDATE orders SET status = 'refunded', refunded_at = now() WHERE id = $1", order["id"]
                )
        assert [await conn.fetchval("SELECT stock FROM items WHERE id = $1", i) for i in (fine, recounted)] == [3, 8]
        piece = await insert_item(conn, "one_of_one")  # refunded without its restock too: still sold
        event = fake.stripe.checkout_completed(items=str(piece), amount_total=5000)
        wait_for_status(handle_stripe_event.send(event["id"]).message_id, JobStatus.SUCCEEDED)
        await conn.execute(
            "UPDATE orders SET status = 'refunded', refunded_at = now() WHERE stripe_session_id = $1",
            event["data"]["object"]["id"],
        )
        await conn.execute("UPDATE items SET stock = 9 WHERE id = $1", by_hand)  # nobody said why
        # the CMS counts 10 again while an order holds 2: that is the truth now, not a mismatch
        wait_for_status(
            mirror_product.send(f"{pid}:2", product_event(pid, minutes=2, title="Candle", stock=10)).message_id,
            JobStatus.SUCCEEDED,
        )
        assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", recounted) == 10
        mine = [fine, unrestocked, by_hand, recounted]
        stock_tickets = (
            "SELECT key FROM tickets WHERE key LIKE 'reconcile:stock:%' AND split_part(key, ':', 3)::bigint = ANY($1)"
        )
        assert reconcile()["stock"] >= 3
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM tickets WHERE key = $1", f"reconcile:stock:{piece}:sold_without_order"
            )
            == 1
        )
        assert unique_keys(await conn.fetch(stock_tickets, mine)) == {
            f"reconcile:stock:{unrestocked}:count:-2",
            f"reconcile:stock:{by_hand}:count:+4",
        }
        # a sale since moves both numbers: the same gap, no second ticket
        event = fake.stripe.checkout_completed(items=f"{by_hand}x1", amount_total=1000)
        wait_for_status(handle_stripe_event.send(event["id"]).message_id, JobStatus.SUCCEEDED)
        assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", by_hand) == 8
        reconcile()
        assert len(await conn.fetch(stock_tickets, mine)) == 2
    finally:
        await conn.close()
