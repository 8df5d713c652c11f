"""Stripe events after the checkout, with a real worker: asynchronous payments, failures, expiry,
dashboard refunds and disputes, each replayed and in every order of arrival."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from actors.orders import cancel_order, handle_printify_event, handle_stripe_event
from actors.release import release_order
from db.webhooks import select_unmatched_event_page
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_status
from tests.orders_support import (  # noqa: F401
    connect,
    fake,
    fakes,
    insert_item,
    order_of,
    pod_attributes,
)
from tests.waiting import eventually, wait_until


def handle(event: dict[str, Any], times: int = 1) -> dict[str, Any]:
    """Handle `event` `times` times (a replay after the first) and return the last result."""
    result: dict[str, Any] = {}
    for _ in range(times):
        result = wait_for_status(
            handle_stripe_event.send(event["id"]).message_id, JobStatus.SUCCEEDED, timeout=30
        ).result
    return result


async def settled(conn, session: str, status: str) -> Any:  # type: ignore[no-untyped-def]
    """The order of `session` once it has `status` (kept events are applied by a job of their own)."""
    return await eventually(
        lambda: conn.fetchrow("SELECT * FROM orders WHERE stripe_session_id = $1 AND status = $2", session, status),
        timeout=30,
        what=f"order {session} {status}",
    )


async def test_an_asynchronous_payment_holds_the_items_until_it_succeeds_in_any_order(
    fake, worker, database_url
) -> None:
    conn = await connect(database_url)
    try:
        item = await insert_item(conn, "stable", stock=10, price_cents=2000)
        for order in ([0, 1], [1, 0]):
            completed = fake.stripe.checkout_completed(items=str(item), amount_total=2000, payment_status="unpaid")
            events = [completed, fake.stripe.async_payment(completed, succeeded=True)]
            session = completed["data"]["object"]["id"]
            handle(events[order[0]], times=2)
            first = await order_of(conn, session)
            assert first["status"] == ("awaiting_payment" if order[0] == 0 else "on_hold")
            handle(events[order[1]], times=2)
            row = await settled(conn, session, "on_hold")
            assert row["paid_at"] is not None and row["hold_until"] is not None
        assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", item) == 8  # one unit each, once
        wait_until(lambda: sum("confirmed" in m["subject"] for m in fake.resend.sent) == 2, what="two confirmations")
        assert len(fake.stripe.refunds) == 0
    finally:
        await conn.close()


async def test_a_failed_or_expired_payment_gives_the_items_back_once_in_any_order(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        piece = await insert_item(conn, "one_of_one", price_cents=3000)
        stable = await insert_item(conn, "stable", stock=5, price_cents=1000)
        for kind, order in itertools.product(("failed", "intent_failed", "expired"), ([0, 1], [1, 0])):
            completed = fake.stripe.checkout_completed(
                items=f"{piece},{stable}x2", amount_total=5000, payment_status="unpaid"
            )
            intent = completed["data"]["object"]["payment_intent"]
            ending = {
                "failed": lambda: fake.stripe.async_payment(completed, succeeded=False),
                "intent_failed": lambda: fake.stripe.payment_failed(intent),
                "expired": lambda: fake.stripe.session_expired(completed),
            }[kind]()
            events = [completed, ending]
            handle(events[order[0]], times=2)
            handle(events[order[1]], times=2)
            row = await settled(conn, completed["data"]["object"]["id"], "cancelled")
            assert row["cancel_reason"] == ("expired" if kind == "expired" else "payment_failed"), (kind, order)
            assert row["paid_at"] is None and row["restocked_at"] is not None
            assert await conn.fetchval("SELECT status FROM items WHERE id = $1", piece) == "available", (kind, order)
            assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", stable) == 5, (kind, order)
        assert len(fake.stripe.refunds) == 0  # nothing was paid, nothing goes back
        wait_until(
            lambda: sum("did not go through" in m["subject"] for m in fake.resend.sent) == 4,
            what="the buyers told of their failed payments",
        )
        assert not any("confirmed" in m["subject"] for m in fake.resend.sent)
    finally:
        await conn.close()


async def test_a_dashboard_refund_restores_stock_once_before_or_after_its_order(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        piece = await insert_item(conn, "one_of_one", price_cents=3000)
        stable = await insert_item(conn, "stable", stock=4, price_cents=1000)
        refund_ids: list[str] = []
        for refund_first in (False, True):
            completed = fake.stripe.checkout_completed(items=f"{piece},{stable}", amount_total=4000)
            intent = completed["data"]["object"]["payment_intent"]
            refunded = fake.stripe.dashboard_refund(intent)
            refund_ids.append(refunded["id"])
            if refund_first:  # Stripe does not promise the order of deliveries
                assert handle(refunded, times=2)["kept"] is True
            handle(completed, times=2)
            handle(refunded, times=2)
            row = await settled(conn, completed["data"]["object"]["id"], "refunded")
            assert row["refunded_cents"] == 4000 and row["stripe_refund_id"].startswith("re_")
            assert await conn.fetchval("SELECT status FROM items WHERE id = $1", piece) == "available"
            assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", stable) == 4
            # the hold ends: a refunded order is never released
            await conn.execute("UPDATE orders SET hold_until = now() WHERE id = $1", row["id"])
            released = wait_for_status(release_order.send(row["id"]).message_id, JobStatus.SUCCEEDED)
            assert released.result["released"] is False
        assert len(fake.stripe.refunds) == 2 and fake.printify.creates == {}
        wait_until(lambda: sum("Your refund" in m["subject"] for m in fake.resend.sent) == 2, what="buyers told")
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM webhook_events WHERE unmatched_at IS NOT NULL"
                " AND processed_at IS NULL AND event_id = ANY($1)",
                refund_ids,
            )
            == 0
        )
    finally:
        await conn.close()


async def test_a_refund_of_a_dispatched_piece_leaves_it_sold_and_ours_restocks_once(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        shipped = await insert_item(conn, "one_of_one", price_cents=3000)
        stable = await insert_item(conn, "stable", stock=3, price_cents=1000)
        completed = fake.stripe.checkout_completed(items=str(shipped), amount_total=3000)
        handle(completed)
        order = await order_of(conn, completed["data"]["object"]["id"])
        await conn.execute("UPDATE orders SET status = 'dispatched' WHERE id = $1", order["id"])
        handle(fake.stripe.dashboard_refund(order["stripe_payment_intent"]), times=2)
        assert (await order_of(conn, order["stripe_session_id"]))["status"] == "refunded"
        assert await conn.fetchval("SELECT status FROM items WHERE id = $1", shipped) == "sold"
        # our own cancel refunds through the API; Stripe's charge.refunded about it changes nothing more
        ours = fake.stripe.checkout_completed(items=f"{stable}x2", amount_total=2000)
        handle(ours)
        mine = await order_of(conn, ours["data"]["object"]["id"])
        wait_for_status(cancel_order.send(mine["id"]).message_id, JobStatus.SUCCEEDED)
        await eventually(
            lambda: conn.fetchval("SELECT stripe_refund_id FROM orders WHERE id = $1", mine["id"]), what="our refund"
        )
        handle(fake.stripe.emitted[-1], times=2)
        row = await order_of(conn, mine["stripe_session_id"])
        assert row["status"] == "cancelled" and row["refunded_cents"] == 2000
        assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", stable) == 3
        assert len(fake.stripe.refunds) == 2
    finally:
        await conn.close()


async def test_a_dispute_on_a_held_order_stops_its_release_and_records_the_outcome(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes(), price_cents=2500)
        for closed_first in (False, True):
            completed = fake.stripe.checkout_completed(items=str(poster), amount_total=2500)
            handle(completed)
            intent = completed["data"]["object"]["payment_intent"]
            opened = fake.stripe.dispute(intent, dispute_id=f"dp_{closed_first}")
            closed = fake.stripe.dispute(intent, status="won", dispute_id=f"dp_{closed_first}")
            for event in [closed, opened] if closed_first else [opened, closed]:
                handle(event, times=2)
            row = await order_of(conn, completed["data"]["object"]["id"])
            assert row["status"] == "needs_review" and "disputed (fraudulent)" in row["review_reason"]
            assert row["dispute_status"] == "won" and row["dispute_closed_at"] is not None
            await conn.execute("UPDATE orders SET hold_until = now() WHERE id = $1", row["id"])
            released = wait_for_status(release_order.send(row["id"]).message_id, JobStatus.SUCCEEDED)
            assert released.result["released"] is False
        assert fake.printify.creates == {}
        wait_until(lambda: sum("payment disputed" in p["title"] for p in fake.pushover.sent) == 2, what="disputes")
        wait_until(lambda: sum("dispute closed, won" in p["title"] for p in fake.pushover.sent) == 2, what="outcomes")
        assert not any("payment mismatch" in p["title"] for p in fake.pushover.sent)
    finally:
        await conn.close()


async def test_a_dispute_before_its_checkout_still_stops_the_release_in_every_order(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes(), price_cents=2500)
        for n, order in enumerate(itertools.permutations(range(3))):
            completed = fake.stripe.checkout_completed(items=str(poster), amount_total=2500)
            intent = completed["data"]["object"]["payment_intent"]
            events = [
                completed,
                fake.stripe.dispute(intent, dispute_id=f"dp_early_{n}"),
                fake.stripe.dispute(intent, status="lost", dispute_id=f"dp_early_{n}"),
            ]
            for i in order:
                handle(events[i], times=2)
            row = await eventually(
                lambda: conn.fetchrow(
                    "SELECT * FROM orders WHERE stripe_session_id = $1 AND dispute_closed_at IS NOT NULL"
                    " AND status = 'needs_review'",
                    completed["data"]["object"]["id"],
                ),
                timeout=30,
                what=str(order),
            )
            assert row["dispute_status"] == "lost", order
            await conn.execute("UPDATE orders SET hold_until = now() WHERE id = $1", row["id"])
            released = wait_for_status(release_order.send(row["id"]).message_id, JobStatus.SUCCEEDED)
            assert released.result["released"] is False, order
        assert fake.printify.creates == {}
        wait_until(
            lambda: sum("dispute closed, lost" in p["title"] for p in fake.pushover.sent) == 6,
            what="each outcome told once",
        )
        wait_until(lambda: sum("payment disputed" in p["title"] for p in fake.pushover.sent) == 6, what="disputes")
    finally:
        await conn.close()


async def test_events_for_unknown_orders_are_kept_and_listed_never_crash(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        events = [
            fake.stripe.payment_failed("pi_unknown_1"),
            fake.stripe.session_expired(),
            fake.stripe.dispute("pi_unknown_2"),
        ]
        for event in events:
            assert handle(event, times=2)["kept"] is True
        kept = await conn.fetch(
            "SELECT event_id, order_ref FROM webhook_events WHERE unmatched_at IS NOT NULL"
            " AND processed_at IS NULL AND event_id = ANY($1)",
            [e["id"] for e in events],
        )
        assert {r["event_id"] for r in kept} == {e["id"] for e in events}
        assert {r["order_ref"] for r in kept} >= {"pi_unknown_1", "pi_unknown_2"}
        stranger = secrets.token_hex(12)  # a Printify order nobody here released
        for _ in range(2):
            done = wait_for_status(
                handle_printify_event.send(f"pfy_{stranger}", stranger, "order:updated").message_id, JobStatus.SUCCEEDED
            )
            assert done.result["kept"] is True
        report = {e.event_id: e for e in await select_unmatched_event_page(conn, limit=200)}
        assert {e["id"] for e in events} | {f"pfy_{stranger}"} <= set(report)
        assert (
            report[f"pfy_{stranger}"].source,
            report[f"pfy_{stranger}"].order_ref,
            report[f"pfy_{stranger}"].refers_to,
        ) == ("printify", stranger, "printify_order")
        assert report[events[0]["id"]].refers_to == "payment_intent"
    finally:
        await conn.close()


async def test_a_refund_after_release_alerts_the_admin_even_when_a_send_fails_after_the_commit(
    fake, worker, database_url, monkeypatch
) -> None:
    """The alert depends on the status the refund found; a retry finds it refunded, so the alert is written to the
    job outbox with the refund: the first send after the commit failing (the buyer's email, retried) loses nothing."""
    import redis

    import actors.payment_events
    from actors.chain import enqueue

    failures = [redis.ConnectionError("Redis went away right after the commit")]

    async def fails_once(*args: Any, **kwargs: Any) -> str:
        if failures:
            raise failures.pop()
        return await enqueue(*args, **kwargs)

    conn = await connect(database_url)
    try:
        piece = await insert_item(conn, "one_of_one", price_cents=3000)
        completed = fake.stripe.checkout_completed(items=str(piece), amount_total=3000)
        handle(completed)
        order = await order_of(conn, completed["data"]["object"]["id"])
        await conn.execute("UPDATE orders SET status = 'released' WHERE id = $1", order["id"])
        monkeypatch.setattr(actors.payment_events, "enqueue", fails_once)
        handle(fake.stripe.dashboard_refund(order["stripe_payment_intent"]))
        assert not failures  # the first attempt's send failed; its retry finished the job
        wait_until(
            lambda: any("refunded in Stripe after its release" in p["title"] for p in fake.pushover.sent),
            what="the admin told",
        )
        wait_until(lambda: any("Your refund" in m["subject"] for m in fake.resend.sent), what="the buyer told")
    finally:
        await conn.close()
