"""Lost Printify webhooks: a released order nobody hears about is polled to `dispatched`."""

from __future__ import annotations

import actors
from actors.orders import handle_printify_event, handle_stripe_event
from actors.provider_poll import poll_printify_order, poll_stalled_printify_orders
from config.settings import get_settings
from domain.jobs import JobStatus
from providers.ratelimit import RateLimiter
from providers.registry import limits
from tests.actors.helpers import wait_for_status
from tests.orders_support import (  # noqa: F401
    connect,
    fake,
    fakes,
    hold,
    insert_item,
    order_of,
    pod_attributes,
)
from tests.waiting import eventually, wait_until


def sweep() -> int:
    """Run the 5-minute poll fan-out once; how many orders it sent a poll for."""
    return wait_for_status(poll_stalled_printify_orders.send().message_id, JobStatus.SUCCEEDED).result


async def test_every_webhook_dropped_the_order_still_reaches_dispatched_by_polling(
    fake, worker, database_url, hold
) -> None:
    hold(1 / 120)
    fake.printify.pending_s = 0
    fake.printify.drop_webhooks = 1.0
    conn = await connect(database_url)
    try:
        poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes())
        event = fake.stripe.checkout_completed(items=str(poster), amount_total=5000)
        wait_for_status(handle_stripe_event.send(event["id"]).message_id, JobStatus.SUCCEEDED)
        session = event["data"]["object"]["id"]
        order = await eventually(
            lambda: conn.fetchrow("SELECT * FROM orders WHERE stripe_session_id = $1 AND status = 'released'", session),
            timeout=30,
            what="the release",
        )
        printify_id = order["printify_order_id"]
        assert sweep() == 0  # released a moment ago: Printify's webhooks may still come
        fake.printify.advance(
            printify_id,
            "fulfilled",
            shipment={"carrier": "usps", "number": "9400111", "url": "https://tools.usps.com/t/9400111"},
        )
        assert await fake.printify.deliver("http://127.0.0.1:9/never", printify_id) == 0  # lost on the way
        await conn.execute("UPDATE orders SET released_at = now() - interval '31 minutes' WHERE id = $1", order["id"])
        assert sweep() == 1
        done = await eventually(
            lambda: conn.fetchrow("SELECT * FROM orders WHERE id = $1 AND status = 'dispatched'", order["id"]),
            what="dispatched by polling",
        )
        assert done["tracking"] is not None and "9400111" in done["tracking"]
        wait_until(lambda: [m for m in fake.resend.sent if "on its way" in m["subject"]], what="shipping email")
        assert sweep() == 0  # dispatched: nothing more to poll
        shipped = [m for m in fake.resend.sent if "on its way" in m["subject"]]
        assert len(shipped) == 1 and "9400111" in shipped[0]["text"]
    finally:
        await conn.close()


async def test_an_order_whose_webhooks_arrive_is_not_polled(fake, worker, database_url, hold) -> None:
    hold(1 / 120)
    fake.printify.pending_s = 0
    conn = await connect(database_url)
    try:
        poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes())
        event = fake.stripe.checkout_completed(items=str(poster), amount_total=5000)
        wait_for_status(handle_stripe_event.send(event["id"]).message_id, JobStatus.SUCCEEDED)
        order = await eventually(
            lambda: conn.fetchrow(
                "SELECT * FROM orders WHERE stripe_session_id = $1 AND status = 'released'",
                event["data"]["object"]["id"],
            ),
            timeout=30,
            what="the release",
        )
        await conn.execute("UPDATE orders SET released_at = now() - interval '2 hours' WHERE id = $1", order["id"])
        fake.printify.advance(order["printify_order_id"], "in-production")
        wait_for_status(
            handle_printify_event.send("wh_1", order["printify_order_id"], "order:updated").message_id,
            JobStatus.SUCCEEDED,
        )
        assert (await conn.fetchrow("SELECT status FROM orders WHERE id = $1", order["id"]))[
            "status"
        ] == "in_production"
        gets = fake.printify.calls["get"]
        assert sweep() == 0 and fake.printify.calls["get"] == gets  # heard from it just now
    finally:
        await conn.close()


async def released_quietly(conn, fake):  # type: ignore[no-untyped-def]
    """A print-on-demand order released to Printify whose webhooks are all lost, quiet for 31 minutes."""
    fake.printify.pending_s = 0
    fake.printify.drop_webhooks = 1.0
    poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes())
    event = fake.stripe.checkout_completed(items=str(poster), amount_total=5000)
    wait_for_status(handle_stripe_event.send(event["id"]).message_id, JobStatus.SUCCEEDED)
    order = await eventually(
        lambda: conn.fetchrow(
            "SELECT * FROM orders WHERE stripe_session_id = $1 AND status = 'released'", event["data"]["object"]["id"]
        ),
        timeout=30,
        what="the release",
    )
    await conn.execute("UPDATE orders SET released_at = now() - interval '31 minutes' WHERE id = $1", order["id"])
    return order


async def test_an_order_cancelled_at_printify_is_polled_once_then_left_alone(fake, worker, database_url, hold) -> None:
    hold(1 / 120)
    conn = await connect(database_url)
    try:
        order = await released_quietly(conn, fake)
        fake.printify.advance(order["printify_order_id"], "canceled")
        assert sweep() == 1
        await eventually(
            lambda: conn.fetchval("SELECT id FROM tickets WHERE key = $1", f"shipping_problem:{order['id']}:canceled"),
            what="the shipping problem ticket",
        )
        row = await conn.fetchrow("SELECT status, printify_status FROM orders WHERE id = $1", order["id"])
        assert (row["status"], row["printify_status"]) == ("released", "canceled")
        gets = fake.printify.calls["get"]
        assert [sweep() for _ in range(3)] == [0, 0, 0]  # final at Printify: never polled again
        assert fake.printify.calls["get"] == gets
    finally:
        await conn.close()


async def test_polling_waits_for_the_shared_printify_rate_limit(fake, worker, database_url, hold) -> None:
    hold(1 / 120)
    conn = await connect(database_url)
    try:
        order = await released_quietly(conn, fake)
        fake.printify.advance(order["printify_order_id"], "fulfilled", shipment={"carrier": "usps", "number": "94001"})
        limiter = RateLimiter(actors.broker.client, actors.broker.namespace, limits(get_settings()))
        limiter.block("printify", 1_500)  # as a 429's retry-after does: every worker holds back
        gets = fake.printify.calls["get"]
        job = poll_printify_order.send(order["id"]).message_id
        waited = wait_for_status(
            job, JobStatus.RETRYING, JobStatus.DELAYED, where=lambda r: "shared rate limit" in (r.last_error or "")
        )
        assert waited.last_error and fake.printify.calls["get"] == gets  # it asked nothing while blocked
        wait_for_status(job, JobStatus.SUCCEEDED)
        assert fake.printify.calls["get"] == gets + 1
        assert (await conn.fetchrow("SELECT status FROM orders WHERE id = $1", order["id"]))["status"] == "dispatched"
    finally:
        await conn.close()
