"""Ops tickets opened by what goes wrong, once each; refund requests inside and outside the window."""

from __future__ import annotations

from typing import Any

from actors.orders import handle_printify_event, handle_stripe_event
from actors.refund_requests import approve_refund, request_refund
from actors.release import release_order
from actors.tickets import act_on_ticket
from domain.jobs import JobStatus
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


def run(message: Any) -> Any:
    """The result of a job once it succeeded."""
    return wait_for_status(message.message_id, JobStatus.SUCCEEDED, timeout=30).result


async def tickets_of(conn, order_id: int, kind: str) -> list[Any]:  # type: ignore[no-untyped-def]
    return await conn.fetch("SELECT * FROM tickets WHERE order_id = $1 AND kind = $2", order_id, kind)


async def thread(conn, ticket_id: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    rows = await conn.fetch("SELECT action, body FROM ticket_interactions WHERE ticket_id = $1 ORDER BY id", ticket_id)
    return [(r["action"], r["body"]) for r in rows]


async def test_a_failed_payment_and_a_dispute_each_open_one_ticket(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        item = await insert_item(conn, "stable", stock=5, price_cents=2000)
        unpaid = fake.stripe.checkout_completed(items=str(item), amount_total=2000, payment_status="unpaid")
        run(handle_stripe_event.send(unpaid["id"]))
        failed = fake.stripe.async_payment(unpaid, succeeded=False)
        for _ in range(2):
            run(handle_stripe_event.send(failed["id"]))
        order = await order_of(conn, unpaid["data"]["object"]["id"])
        (ticket,) = await eventually(lambda: tickets_of(conn, order["id"], "payment_failed"), what="a ticket")
        assert ticket["contact"] == "buyer@example.com" and ticket["status"] == "open"
        paid = fake.stripe.checkout_completed(items=str(item), amount_total=2000)
        run(handle_stripe_event.send(paid["id"]))
        disputed = await order_of(conn, paid["data"]["object"]["id"])
        intent = disputed["stripe_payment_intent"]
        for event in (
            fake.stripe.dispute(intent, dispute_id="dp_t1"),
            fake.stripe.dispute(intent, status="lost", dispute_id="dp_t1"),
        ):
            run(handle_stripe_event.send(event["id"]))
            run(handle_stripe_event.send(event["id"]))
        (ticket,) = await eventually(lambda: tickets_of(conn, disputed["id"], "dispute"), what="a dispute ticket")
        entries = await eventually(lambda: _two(conn, ticket["id"]), what="the outcome noted")
        assert entries[0][0] == "opened" and entries[1][0] == "comment"  # the two jobs may run in either order
        assert sum("closed with outcome lost" in body for _, body in entries) == 1
        assert sum("disputed the payment" in body for _, body in entries) == 1
        assert (
            await conn.fetchval("SELECT count(*) FROM tickets WHERE order_id = ANY($1)", [order["id"], disputed["id"]])
            == 2
        )
    finally:
        await conn.close()


async def _two(conn, ticket_id: int) -> list[tuple[str, str]] | None:  # type: ignore[no-untyped-def]
    entries = await thread(conn, ticket_id)
    return entries if len(entries) == 2 else None


async def test_a_provider_rejection_and_a_shipping_problem_open_tickets(fake, worker, database_url, hold) -> None:
    hold(1 / 120)
    fake.printify.pending_s = 0
    conn = await connect(database_url)
    try:
        poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes())
        fake.printify.fail_next("create", 400, body={"status": "error", "code": 10100, "message": "Validation failed."})
        refused = fake.stripe.checkout_completed(items=str(poster), amount_total=5000)
        run(handle_stripe_event.send(refused["id"]))
        order = await order_of(conn, refused["data"]["object"]["id"])
        (ticket,) = await eventually(
            lambda: tickets_of(conn, order["id"], "provider_rejected"), timeout=40, what="a rejection ticket"
        )
        assert "Validation failed" in (await thread(conn, ticket["id"]))[0][1]
        shipped = fake.stripe.checkout_completed(items=str(poster), amount_total=5000)
        run(handle_stripe_event.send(shipped["id"]))
        released = await eventually(
            lambda: conn.fetchrow(
                "SELECT * FROM orders WHERE stripe_session_id = $1 AND status = 'released'",
                shipped["data"]["object"]["id"],
            ),
            timeout=30,
            what="the release",
        )
        fake.printify.advance(released["printify_order_id"], "has-issues")
        for event_id in ("wh_issue_1", "wh_issue_2"):
            run(handle_printify_event.send(event_id, released["printify_order_id"], "order:updated"))
        (problem,) = await eventually(
            lambda: tickets_of(conn, released["id"], "shipping_problem"), what="a shipping ticket"
        )
        assert "has-issues" in problem["subject"]
        again = run(release_order.send(order["id"]))  # a failed release stays failed: no second ticket
        assert again["released"] is False
        assert len(await tickets_of(conn, order["id"], "provider_rejected")) == 1
    finally:
        await conn.close()


async def test_a_refund_request_inside_the_window_is_approved_outside_it_waits(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        item = await insert_item(conn, "stable", stock=5, price_cents=2000)
        orders = []
        for _ in range(2):
            event = fake.stripe.checkout_completed(items=str(item), amount_total=2000)
            run(handle_stripe_event.send(event["id"]))
            orders.append(await order_of(conn, event["data"]["object"]["id"]))
        recent, old = orders
        await conn.execute("UPDATE orders SET paid_at = now() - interval '40 days' WHERE id = $1", old["id"])
        for _ in range(2):
            assert run(request_refund.send(recent["id"], "wrong size"))["approved"] is True
            assert run(request_refund.send(old["id"], "changed my mind"))["approved"] is False
        await eventually(
            lambda: conn.fetchval("SELECT stripe_refund_id FROM orders WHERE id = $1", recent["id"]),
            what="the automatic refund",
        )
        (auto,) = await tickets_of(conn, recent["id"], "refund_request")
        (waiting,) = await tickets_of(conn, old["id"], "refund_request")
        assert auto["status"] == "closed" and waiting["status"] == "waiting"
        wait_until(lambda: any("waits for you" in p["title"] for p in fake.pushover.sent), what="the admin told")
        assert fake.stripe.refunded(old["stripe_payment_intent"]) == 0
        run(act_on_ticket.send(waiting["id"], "assigned", "ops-ana", assignee="ana", key="k-assign"))
        run(act_on_ticket.send(waiting["id"], "assigned", "ops-ana", assignee="ana", key="k-assign"))
        run(approve_refund.send(waiting["id"], "ops-ana"))
        run(approve_refund.send(waiting["id"], "ops-ana"))
        await eventually(
            lambda: conn.fetchval("SELECT stripe_refund_id FROM orders WHERE id = $1", old["id"]),
            what="the approved refund",
        )
        assert [a for a, _ in await thread(conn, waiting["id"])] == ["opened", "assigned", "approved"]
        row = await conn.fetchrow("SELECT status, assignee FROM tickets WHERE id = $1", waiting["id"])
        assert row["status"] == "closed" and row["assignee"] == "ana"
        assert len(fake.stripe.refunds) == 2
    finally:
        await conn.close()


async def test_next_steps_whose_send_fails_after_the_commit_still_run(
    fake, worker, database_url, hold, monkeypatch
) -> None:
    """A failed release's push and ticket, a refund request's refund or alert: written to the job outbox with
    the change, so an enqueue that fails once the change committed (a retry finds the work done) loses none."""
    import redis

    import actors.payment_events
    import actors.refund_requests
    import actors.release

    async def broken(*args: Any, **kwargs: Any) -> str:
        raise redis.ConnectionError("Redis went away right after the commit")

    for module in (actors.release, actors.refund_requests, actors.payment_events):
        monkeypatch.setattr(module, "enqueue", broken)
    hold(1 / 120)
    fake.printify.pending_s = 0
    conn = await connect(database_url)
    try:
        poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes())
        fake.printify.fail_next("create", 400, body={"status": "error", "code": 10100, "message": "Validation failed."})
        refused = fake.stripe.checkout_completed(items=str(poster), amount_total=5000)
        run(handle_stripe_event.send(refused["id"]))
        order = await order_of(conn, refused["data"]["object"]["id"])
        await eventually(lambda: tickets_of(conn, order["id"], "provider_rejected"), timeout=40, what="the ticket")
        wait_until(
            lambda: any("could not be released" in p.get("title", "") for p in fake.pushover.sent),
            what="the admin pushed",
        )
        item = await insert_item(conn, "stable", stock=5, price_cents=2000)
        orders = []
        for _ in range(2):
            event = fake.stripe.checkout_completed(items=str(item), amount_total=2000)
            run(handle_stripe_event.send(event["id"]))
            orders.append(await order_of(conn, event["data"]["object"]["id"]))
        recent, old = orders
        await conn.execute("UPDATE orders SET paid_at = now() - interval '40 days' WHERE id = $1", old["id"])
        assert run(request_refund.send(recent["id"], "wrong size"))["approved"] is True
        assert run(request_refund.send(old["id"], "changed my mind"))["approved"] is False
        await eventually(
            lambda: conn.fetchval("SELECT stripe_refund_id FROM orders WHERE id = $1", recent["id"]),
            what="the automatic refund",
        )
        wait_until(lambda: any("waits for you" in p["title"] for p in fake.pushover.sent), what="the admin told")
    finally:
        await conn.close()
