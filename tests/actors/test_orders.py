"""Orders with a real worker: replays, races for 1-of-1s and stock, the hold, cancel, release, Printify."""

from __future__ import annotations

import json

import actors
from actors.orders import cancel_order, dispatch_order, handle_printify_event, handle_stripe_event, refund_order
from actors.release import release_due_orders, release_order
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_quiet, wait_for_status
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

SOURCE_URL = "https://www.vinted.fr/items/123456-private-source"


def buy(fake, items: str, **kwargs):  # type: ignore[no-untyped-def]
    """A paid checkout event registered at the fake Stripe, handled by the worker."""
    event = fake.stripe.checkout_completed(items=items, **kwargs)
    message = handle_stripe_event.send(event["id"])
    return event, message


async def test_ten_replays_of_one_event_make_one_order(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        item = await insert_item(conn, "stable", stock=5)
        event = fake.stripe.checkout_completed(items=f"{item}x2", amount_total=10000)
        messages = [handle_stripe_event.send(event["id"]) for _ in range(10)]
        for message in messages:
            wait_for_status(message.message_id, JobStatus.SUCCEEDED)
        session = event["data"]["object"]["id"]
        assert await conn.fetchval("SELECT count(*) FROM orders WHERE stripe_session_id = $1", session) == 1
        assert await conn.fetchval("SELECT count(*) FROM webhook_events WHERE event_id = $1", event["id"]) == 1
        assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", item) == 3  # decremented once
        order = await order_of(conn, session)
        assert order["status"] == "on_hold" and order["amount_total_cents"] == 10000
        assert json.loads(order["shipping"])["address"]["city"] == "Paris"
        assert 14 * 60 < (order["hold_until"] - order["created_at"]).total_seconds() <= 15 * 60 + 1
        wait_until(lambda: len(fake.resend.sent) >= 1, what="the confirmation")
        assert len(fake.resend.sent) == 1 and "confirmed" in fake.resend.sent[0]["subject"]
    finally:
        await conn.close()


async def test_two_paid_sessions_racing_for_one_piece_one_keeps_it_the_other_is_refunded(
    fake, worker, database_url
) -> None:
    conn = await connect(database_url)
    try:
        item = await insert_item(conn, "one_of_one", source_url=SOURCE_URL, title="Margiela tabi", price_cents=42000)
        first = fake.stripe.checkout_completed(items=str(item), amount_total=42000, email="one@example.com")
        second = fake.stripe.checkout_completed(items=str(item), amount_total=42000, email="two@example.com")
        for message in [handle_stripe_event.send(first["id"]), handle_stripe_event.send(second["id"])]:
            wait_for_status(message.message_id, JobStatus.SUCCEEDED)
        orders = [await order_of(conn, e["data"]["object"]["id"]) for e in (first, second)]
        assert sorted(o["status"] for o in orders) == ["cancelled", "on_hold"]
        loser = next(o for o in orders if o["status"] == "cancelled")
        assert loser["cancel_reason"] == "sold_out"
        assert await conn.fetchval("SELECT status FROM items WHERE id = $1", item) == "sold"
        await eventually(
            lambda: conn.fetchval("SELECT stripe_refund_id FROM orders WHERE id = $1", loser["id"]),
            what="the loser's refund",
        )
        assert fake.stripe.refunded(loser["stripe_payment_intent"]) == 42000
        assert len(fake.stripe.refunds) == 1
        wait_until(lambda: any("Sold twice" in p["title"] for p in fake.pushover.sent), what="the admin told")
        wait_until(lambda: any("could not be fulfilled" in m["subject"] for m in fake.resend.sent), what="buyer told")
    finally:
        await conn.close()


async def test_a_hundred_buyers_of_stock_ten_make_exactly_ten_orders(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        item = await insert_item(conn, "stable", stock=10, price_cents=2500)
        events = [
            fake.stripe.checkout_completed(items=str(item), amount_total=2500, email=f"b{i}@example.com")
            for i in range(100)
        ]
        messages = [handle_stripe_event.send(e["id"]) for e in events]
        for message in messages:
            wait_for_status(message.message_id, JobStatus.SUCCEEDED, timeout=60)
        sessions = [e["data"]["object"]["id"] for e in events]
        counts = dict(
            await conn.fetch(
                "SELECT status, count(*) FROM orders WHERE stripe_session_id = ANY($1) GROUP BY status", sessions
            )
        )
        assert counts == {"on_hold": 10, "cancelled": 90}
        assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", item) == 0
        await eventually(
            lambda: conn.fetchval(
                "SELECT count(*) = 90 FROM orders WHERE stripe_session_id = ANY($1) AND stripe_refund_id IS NOT NULL",
                sessions,
            ),
            timeout=60,
            what="90 refunds",
        )
        assert len(fake.stripe.refunds) == 90
    finally:
        await conn.close()


async def test_cancel_during_the_hold_refunds_once_restores_and_tells_the_buyer(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        piece = await insert_item(conn, "one_of_one", source_url=SOURCE_URL, price_cents=3000)
        stable = await insert_item(conn, "stable", stock=4, price_cents=2000)
        event, message = buy(fake, f"{piece},{stable}x3", amount_total=9000)
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
        order = await order_of(conn, event["data"]["object"]["id"])
        assert order["status"] == "on_hold"
        assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", stable) == 1
        wait_for_status(cancel_order.send(order["id"]).message_id, JobStatus.SUCCEEDED)
        await eventually(
            lambda: conn.fetchval("SELECT stripe_refund_id FROM orders WHERE id = $1", order["id"]), what="the refund"
        )
        after = await conn.fetchrow("SELECT * FROM orders WHERE id = $1", order["id"])
        assert after["status"] == "cancelled" and after["cancel_reason"] == "cancelled_by_admin"
        assert await conn.fetchval("SELECT status FROM items WHERE id = $1", piece) == "available"
        assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", stable) == 4
        wait_until(lambda: any("was cancelled" in m["subject"] for m in fake.resend.sent), what="the buyer told")
        # cancelling again, refunding again, releasing: nothing more happens
        wait_for_status(cancel_order.send(order["id"]).message_id, JobStatus.SUCCEEDED)
        wait_for_status(refund_order.send(order["id"]).message_id, JobStatus.SUCCEEDED)
        released = wait_for_status(release_order.send(order["id"]).message_id, JobStatus.SUCCEEDED)
        assert released.result["released"] is False
        assert len(fake.stripe.refunds) == 1 and fake.stripe.refunded(order["stripe_payment_intent"]) == 9000
        assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", stable) == 4
        assert fake.printify.creates == {}
    finally:
        await conn.close()


async def test_release_after_the_hold_waits_for_printify_on_hold_then_sends_once(
    fake, worker, database_url, hold
) -> None:
    hold(1 / 60)  # a one-second hold
    fake.printify.pending_s = 1.5
    conn = await connect(database_url)
    try:
        poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes(), title="Poster")
        event, message = buy(fake, f"{poster}x2", amount_total=10000)
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
        order = await order_of(conn, event["data"]["object"]["id"])
        released = await eventually(
            lambda: conn.fetchrow("SELECT * FROM orders WHERE id = $1 AND status = 'released'", order["id"]),
            timeout=30,
            what="release",
        )
        assert released["release_started_at"] >= released["hold_until"]
        assert fake.printify.creates == {str(order["id"]): 1}
        printify_id = released["printify_order_id"]
        assert fake.printify.sends == {printify_id: 1}
        assert fake.printify.calls["get"] >= 2  # it looked while pending, then again once on hold
        sent = fake.printify.orders[printify_id]
        assert sent["line_items"] == [{"product_id": "5bfd0b66a342bcc9b5563216", "variant_id": 17887, "quantity": 2}]
        assert sent["address_to"]["city"] == "Paris" and sent["address_to"]["first_name"] == "Ada"
        # releasing twice changes nothing
        again = wait_for_status(release_order.send(order["id"]).message_id, JobStatus.SUCCEEDED)
        assert again.result["released"] is False
        assert fake.printify.creates == {str(order["id"]): 1} and fake.printify.sends == {printify_id: 1}
    finally:
        await conn.close()


async def test_printify_429_and_5xx_during_release_still_one_order_one_send(fake, worker, database_url, hold) -> None:
    hold(1 / 120)
    fake.printify.pending_s = 0
    fake.printify.fail_next("create", 503)
    fake.printify.fail_next("send", 429, retry_after=1)
    conn = await connect(database_url)
    try:
        poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes())
        event, message = buy(fake, str(poster))
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
        order = await order_of(conn, event["data"]["object"]["id"])
        released = await eventually(
            lambda: conn.fetchrow("SELECT * FROM orders WHERE id = $1 AND status = 'released'", order["id"]),
            timeout=40,
            what="release",
        )
        assert fake.printify.creates == {str(order["id"]): 1}
        assert fake.printify.sends == {released["printify_order_id"]: 1}
        assert fake.printify.calls["create"] == 2 and fake.printify.calls["send"] == 2
    finally:
        await conn.close()


async def test_a_crashed_create_is_found_by_external_id_not_made_again(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes())
        event, message = buy(fake, str(poster))
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
        order = await order_of(conn, event["data"]["object"]["id"])
        # an earlier attempt sent the create and died before recording Printify's answer
        fake.printify.pending_s = 0
        fake.printify.hang_next("create", 1.8)  # the client gives up at 1.5 s; Printify creates it at 1.8 s
        await conn.execute("UPDATE orders SET hold_until = now() WHERE id = $1", order["id"])
        released = wait_for_status(release_order.send(order["id"]).message_id, JobStatus.SUCCEEDED, timeout=40)
        assert released.result["released"] is True
        assert fake.printify.creates == {str(order["id"]): 1} and fake.printify.calls["create"] == 1
        assert len(fake.printify.sends) == 1
    finally:
        await conn.close()


async def test_a_printify_refusal_fails_the_release_and_tells_the_admin(fake, worker, database_url) -> None:
    fake.printify.fail_next("create", 400, body={"status": "error", "code": 10100, "message": "Validation failed."})
    conn = await connect(database_url)
    try:
        poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes())
        event, message = buy(fake, str(poster))
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
        order = await order_of(conn, event["data"]["object"]["id"])
        await conn.execute("UPDATE orders SET hold_until = now() WHERE id = $1", order["id"])
        dead = wait_for_status(release_order.send(order["id"]).message_id, JobStatus.DEAD)
        assert dead.attempts == 1 and "Validation failed" in dead.last_error
        row = await conn.fetchrow("SELECT status, release_error FROM orders WHERE id = $1", order["id"])
        assert row["status"] == "failed" and "Validation failed" in row["release_error"]
        wait_until(lambda: any("could not be released" in p["title"] for p in fake.pushover.sent), what="admin told")
        wait_for_status(release_due_orders.send().message_id, JobStatus.SUCCEEDED)
        wait_for_quiet()  # whatever the sweep started is done: it left the order to the admin
        assert await conn.fetchval("SELECT status FROM orders WHERE id = $1", order["id"]) == "failed"
        assert str(order["id"]) not in fake.printify.creates
    finally:
        await conn.close()


async def test_sourced_pieces_push_tap_to_secure_with_the_private_url(fake, worker, database_url, hold) -> None:
    hold(1 / 120)
    conn = await connect(database_url)
    try:
        piece = await insert_item(conn, "one_of_one", source_url=SOURCE_URL, title="Raf parka", price_cents=80000)
        event, message = buy(fake, str(piece), amount_total=80000)
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
        order = await order_of(conn, event["data"]["object"]["id"])
        await eventually(
            lambda: conn.fetchval("SELECT status = 'released' FROM orders WHERE id = $1", order["id"]),
            timeout=20,
            what="release",
        )
        push = wait_until(lambda: [p for p in fake.pushover.sent if "Tap to secure" in p["title"]], what="the push")
        assert len(push) == 1 and SOURCE_URL in push[0]["message"] and push[0]["user"] == "pushover-admin-user"
        # the source URL travels in no message and no job record, only in the push itself
        for job_id in actors.broker.client.zrange(actors.broker.jobs.keys.job_index, 0, -1):
            assert (
                SOURCE_URL.encode()
                not in repr(actors.broker.client.hgetall(actors.broker.jobs.keys.job(job_id.decode()))).encode()
            )
        assert fake.printify.creates == {}
    finally:
        await conn.close()


async def test_printify_webhooks_move_the_order_on_and_tell_the_buyer_with_tracking(
    fake, worker, database_url, hold
) -> None:
    hold(1 / 120)
    fake.printify.pending_s = 0
    conn = await connect(database_url)
    try:
        poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes())
        event, message = buy(fake, str(poster))
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
        order = await order_of(conn, event["data"]["object"]["id"])
        printify_id = (
            await eventually(
                lambda: conn.fetchrow(
                    "SELECT printify_order_id FROM orders WHERE id = $1 AND status = 'released'", order["id"]
                ),
                timeout=20,
                what="release",
            )
        )["printify_order_id"]
        fake.printify.advance(printify_id, "in-production")
        wait_for_status(
            handle_printify_event.send("evt-1", printify_id, "order:updated").message_id, JobStatus.SUCCEEDED
        )
        assert await conn.fetchval("SELECT status FROM orders WHERE id = $1", order["id"]) == "in_production"
        fake.printify.advance(
            printify_id,
            "fulfilled",
            shipment={"carrier": "dhl", "number": "JD0001", "url": "https://track.example/JD0001"},
        )
        for _ in range(2):  # a replayed delivery changes nothing more
            wait_for_status(
                handle_printify_event.send("evt-2", printify_id, "order:updated").message_id, JobStatus.SUCCEEDED
            )
        row = await conn.fetchrow("SELECT status, tracking FROM orders WHERE id = $1", order["id"])
        assert row["status"] == "dispatched" and json.loads(row["tracking"])["number"] == "JD0001"
        mails = wait_until(lambda: [m for m in fake.resend.sent if "on its way" in m["subject"]], what="tracking")
        assert len(mails) == 1 and "JD0001" in mails[0]["text"]
        # a late in-production delivery never moves it back
        fake.printify.advance(printify_id, "in-production")
        wait_for_status(
            handle_printify_event.send("evt-3", printify_id, "order:updated").message_id, JobStatus.SUCCEEDED
        )
        assert await conn.fetchval("SELECT status FROM orders WHERE id = $1", order["id"]) == "dispatched"
    finally:
        await conn.close()


async def test_stripe_429_and_5xx_on_refund_still_refund_once(fake, worker, database_url) -> None:
    fake.stripe.fail_next("refund", 429, retry_after=1)
    fake.stripe.fail_next("refund", 500)
    conn = await connect(database_url)
    try:
        item = await insert_item(conn, "stable", stock=2)
        event, message = buy(fake, str(item), amount_total=3000)
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
        order = await order_of(conn, event["data"]["object"]["id"])
        done = wait_for_status(refund_order.send(order["id"]).message_id, JobStatus.SUCCEEDED, timeout=40)
        assert done.attempts == 3 and len(fake.stripe.refunds) == 1
        assert fake.stripe.refunded(order["stripe_payment_intent"]) == 3000
        assert await conn.fetchval("SELECT status FROM orders WHERE id = $1", order["id"]) == "cancelled"
        assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", item) == 2
    finally:
        await conn.close()


async def test_admin_dispatch_tells_the_buyer(fake, worker, database_url, hold) -> None:
    hold(1 / 120)
    conn = await connect(database_url)
    try:
        item = await insert_item(conn, "stable", stock=1)
        event, message = buy(fake, str(item))
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
        order = await order_of(conn, event["data"]["object"]["id"])
        early = wait_for_status(dispatch_order.send(order["id"], "ups", "1Z999").message_id, JobStatus.DEAD)
        assert "only a released order" in early.last_error
        await eventually(
            lambda: conn.fetchval("SELECT status = 'released' FROM orders WHERE id = $1", order["id"]), what="release"
        )
        wait_for_status(dispatch_order.send(order["id"], "ups", "1Z999").message_id, JobStatus.SUCCEEDED)
        assert await conn.fetchval("SELECT status FROM orders WHERE id = $1", order["id"]) == "dispatched"
        wait_until(lambda: any("1Z999" in m["text"] for m in fake.resend.sent), what="the tracking email")
    finally:
        await conn.close()


async def test_the_sweep_releases_a_hold_whose_message_slipped(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        item = await insert_item(conn, "stable", stock=1)
        event, message = buy(fake, str(item))  # a 15-minute hold: its delayed release is far away
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
        order = await order_of(conn, event["data"]["object"]["id"])
        await conn.execute("UPDATE orders SET hold_until = now() - interval '1 second' WHERE id = $1", order["id"])
        actors.broker.client.delete(f"backroom:unique:release_order:{order['id']}")  # as if the message was lost
        swept = wait_for_status(release_due_orders.send().message_id, JobStatus.SUCCEEDED)
        assert swept.result >= 1
        await eventually(
            lambda: conn.fetchval("SELECT status = 'released' FROM orders WHERE id = $1", order["id"]),
            what="the sweep's release",
        )
    finally:
        await conn.close()


async def test_a_membership_upgrades_the_profile(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        email = "Member@Example.com"
        event = fake.stripe.checkout_completed(items="", kind="membership", email=email)
        for _ in range(2):
            wait_for_status(handle_stripe_event.send(event["id"]).message_id, JobStatus.SUCCEEDED)
        assert await conn.fetchval("SELECT membership_tier FROM profiles WHERE email = $1", email.lower()) == "society"
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM orders WHERE stripe_session_id = $1", event["data"]["object"]["id"]
            )
            == 0
        )
        wait_until(lambda: any("Society" in m["subject"] for m in fake.resend.sent), what="the welcome")
        wait_for_quiet()  # every job the two events started is done: a second welcome would have been sent
        assert sum("Society" in m["subject"] for m in fake.resend.sent) == 1
    finally:
        await conn.close()


async def test_a_payment_below_the_price_waits_for_review_is_never_released_and_alerts(
    fake, worker, database_url
) -> None:
    conn = await connect(database_url)
    try:
        piece = await insert_item(conn, "one_of_one", price_cents=62200, title="Margiela tabi")
        event, message = buy(fake, str(piece), amount_total=5000)
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
        order = await order_of(conn, event["data"]["object"]["id"])
        assert order["status"] == "needs_review"
        assert order["review_reason"] == "paid 50.00 EUR for items priced 622.00 EUR"
        assert await conn.fetchval("SELECT status FROM items WHERE id = $1", piece) == "sold"  # kept while reviewed
        wait_until(lambda: any("needs review" in p["title"] for p in fake.pushover.sent), what="the admin told")
        assert not actors.broker.client.exists(f"backroom:unique:release_order:{order['id']}")
        await conn.execute("UPDATE orders SET hold_until = now() - interval '1 second' WHERE id = $1", order["id"])
        wait_for_status(release_due_orders.send().message_id, JobStatus.SUCCEEDED)
        released = wait_for_status(release_order.send(order["id"]).message_id, JobStatus.SUCCEEDED)
        assert released.result["released"] is False
        assert await conn.fetchval("SELECT status FROM orders WHERE id = $1", order["id"]) == "needs_review"
        assert fake.resend.sent == [] and fake.printify.creates == {}
        wait_for_status(cancel_order.send(order["id"]).message_id, JobStatus.SUCCEEDED)  # the admin's way out
        await eventually(
            lambda: conn.fetchval("SELECT stripe_refund_id FROM orders WHERE id = $1", order["id"]), what="the refund"
        )
        assert fake.stripe.refunded(order["stripe_payment_intent"]) == 5000
        assert await conn.fetchval("SELECT status FROM items WHERE id = $1", piece) == "available"
    finally:
        await conn.close()


async def test_a_payment_in_another_currency_waits_for_review(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        item = await insert_item(conn, "stable", stock=2, price_cents=5000)
        event = fake.stripe.checkout_completed(items=str(item), amount_total=5000)
        event["data"]["object"]["currency"] = "usd"
        wait_for_status(handle_stripe_event.send(event["id"]).message_id, JobStatus.SUCCEEDED)
        order = await order_of(conn, event["data"]["object"]["id"])
        assert (order["status"], order["review_reason"]) == ("needs_review", "paid in USD, the items are priced in EUR")
    finally:
        await conn.close()
