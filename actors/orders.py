"""Orders from Stripe checkouts, and what admins and Printify do to them afterwards.

Every actor commits its database change first and enqueues the next step after; each
step is idempotent (guarded SQL, unique keys, notification keys), so a retry or a replay
repeats nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, UTC
from typing import Any

import dramatiq

from actors.chain import enqueue
from actors.clients import call, get_providers
from actors.notify import notify
from actors.payment_events import alert_ops, apply_payment_event
from actors.release import release_order
from actors.tickets import open_ticket
from broker.waits import retry_policy
from config.settings import get_settings
from db.orders import (
    Placed,
    create_order,
    restock_order,
    select_order,
    select_order_id_by_printify,
    update_order_cancelled,
    update_order_paid,
    update_order_progress,
    update_order_refunded,
    update_printify,
    update_printify_webhook_seen,
)
from db.pool import get_process_pool
from db.profiles import upsert_membership
from db.webhooks import (
    insert_webhook_event,
    select_unmatched_event_ids,
    update_webhook_processed,
    update_webhook_unmatched,
)
from domain.orders import (
    Checkout,
    InvalidCheckout,
    Order,
    delay_ms,
    parse_checkout,
    status_from_printify,
    tracking_from_printify,
)
from domain.payments import parse_payment_event
from providers.errors import NotConfigured, Permanent

log = logging.getLogger("backroom.orders")
PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
# money that arrived for an order Backroom had already dropped goes back
REFUNDED_WHEN_PAID = ("sold_out", "payment_failed", "expired")
# Printify statuses of a released order that need a person (production or shipping went wrong)
PRINTIFY_TROUBLE = ("has-issues", "had-issues", "canceled", "cancelled")
RETRIES: dict[str, Any] = {
    "retry_when": retry_policy(max_failures=8, max_waits=200),
    "min_backoff": 1_000,
    "max_backoff": 300_000,
}


class OrderError(Exception):
    """The order does not exist or is in a status that forbids the request."""


@dramatiq.actor(queue_name="orders", time_limit=60_000, throws=(NotConfigured, Permanent), **RETRIES)
async def handle_stripe_event(event_id: str) -> dict[str, Any]:
    """Store a Stripe event once and act on it: a paid checkout becomes an order on hold, a later
    event (failed or expired payment, refund, dispute) changes its order."""
    providers = get_providers()
    event = await call("stripe", lambda: providers.stripe.retrieve_event(event_id))
    change = parse_payment_event(event)
    if change is not None:
        return await apply_payment_event(event, change)
    checkout, placed = await _store_event(event)
    if placed is not None and checkout is not None:
        await _after_placed(placed.order_id, checkout)
        await _replay_kept(checkout)
    elif checkout is not None and checkout.type == "membership" and checkout.profile_email:
        await enqueue(
            notify,
            "email",
            checkout.profile_email,
            "membership_welcome",
            {},
            f"membership_welcome:{checkout.session_id}",
        )
    return {
        "event": event_id,
        "type": event.get("type"),
        "order_id": placed.order_id if placed else None,
        "created": placed.created if placed else False,
    }


async def _store_event(event: dict[str, Any]) -> tuple[Checkout | None, Placed | None]:
    """In one transaction: the event stored once, and its order (or membership) created once."""
    checkout = placed = None
    async with get_process_pool().acquire() as conn, conn.transaction():
        await insert_webhook_event(
            conn, provider="stripe", event_id=event["id"], event_type=event.get("type", "?"), payload=event
        )
        if event.get("type") in PAID_EVENTS:
            try:
                checkout = parse_checkout(
                    event["data"]["object"], allow_unpaid=event.get("type") == "checkout.session.completed"
                )
            except InvalidCheckout:
                checkout = None
        if checkout is not None and checkout.type == "membership" and not checkout.paid:
            checkout = None  # a membership starts when its payment arrives
        if checkout is not None and checkout.type == "membership" and checkout.profile_email:
            await upsert_membership(conn, checkout.profile_email, stripe_customer=None)
        elif checkout is not None and checkout.type == "goods":
            hold_seconds = get_settings().hold_minutes * 60
            placed = await create_order(conn, checkout, event_id=event["id"], hold_seconds=hold_seconds)
            if checkout.paid and not placed.created:  # an asynchronous payment arrived for a waiting order
                await update_order_paid(conn, placed.order_id, hold_seconds)
        await update_webhook_processed(conn, provider="stripe", event_id=event["id"])
    return checkout, placed


async def _after_placed(order_id: int, checkout: Checkout) -> None:
    """Follow-ups of a placed order (again on a replay: each is deduplicated)."""
    async with get_process_pool().acquire() as conn:
        order = await select_order(conn, order_id)
    assert order is not None
    if order.status == "on_hold" and order.hold_until is not None:
        wait = delay_ms(datetime.now(UTC), order.hold_until)
        await enqueue(release_order, order_id, delay_ms=wait, unique_key=f"release_order:{order_id}")
    if order.status == "needs_review" and order.dispute_id is None:
        await _alert_mismatch(order)
    elif order.status == "cancelled" and order.cancel_reason in REFUNDED_WHEN_PAID:
        if order.paid_at is not None:
            await enqueue(refund_order, order_id, unique_key=f"refund_order:{order_id}")
        if order.cancel_reason == "sold_out":
            await enqueue(notify, "push", "admin", "race_lost", order.template_data(), f"race_lost:{order_id}")
    elif order.paid_at is not None and order.status != "needs_review" and checkout.email:
        await enqueue(
            notify,
            "email",
            checkout.email,
            "order_confirmation",
            order.template_data(get_settings().hold_minutes),
            f"order_confirmation:{order_id}",
        )


async def _alert_mismatch(order: Order) -> None:
    """Tell the admin (OPS_ALERT_CHANNEL) once that a paid order waits for review."""
    text = (
        f"Order #{order.id} ({order.summary()}) was paid, but {order.review_reason}. It is held as needs_review"
        " and is not released; cancel it (refund) or settle it by hand."
    )
    await alert_ops(f"Order #{order.id} needs review: payment mismatch", text, f"payment_mismatch:{order.id}")


async def _replay_kept(checkout: Checkout) -> None:
    """Send again the kept events that arrived before this order (applied now that it exists)."""
    refs = [ref for ref in (checkout.session_id, checkout.payment_intent) if ref]
    async with get_process_pool().acquire() as conn:
        kept = await select_unmatched_event_ids(conn, provider="stripe", refs=refs)
    for event_id in kept:
        await enqueue(handle_stripe_event, event_id, unique_key=f"stripe_replay:{event_id}")


@dramatiq.actor(queue_name="orders", time_limit=30_000, throws=(OrderError,), **RETRIES)
async def cancel_order(order_id: int, reason: str = "cancelled_by_admin") -> dict[str, Any]:
    """Cancel an order during its hold: items and stock go back, then it is refunded."""
    async with get_process_pool().acquire() as conn, conn.transaction():
        if await update_order_cancelled(conn, order_id, reason):
            await restock_order(conn, order_id)
        else:
            order = await select_order(conn, order_id)
            if order is None or order.status != "cancelled":
                raise OrderError(
                    f"order {order_id} is {order.status if order else 'unknown'}; only a held order can be cancelled"
                )
    await enqueue(refund_order, order_id, unique_key=f"refund_order:{order_id}")
    return {"order_id": order_id, "status": "cancelled"}


@dramatiq.actor(queue_name="orders", time_limit=60_000, throws=(OrderError, NotConfigured, Permanent), **RETRIES)
async def refund_order(order_id: int) -> dict[str, Any]:
    """Refund an order in full with an idempotency key, give its items back, and tell the buyer."""
    order = await _held_cancelled_or_current(order_id)
    refund_id = order.stripe_refund_id
    if refund_id is None:
        stripe = get_providers().stripe
        refund_id = (
            "no_payment"
            if not order.stripe_payment_intent
            else await call(
                "stripe",
                lambda: stripe.refund(
                    str(order.stripe_payment_intent),
                    amount=None,
                    idempotency_key=f"refund:order:{order_id}",
                    metadata={"order_id": str(order_id)},
                ),
            )
        )
        async with get_process_pool().acquire() as conn, conn.transaction():
            await update_order_refunded(conn, order_id, refund_id)
            await restock_order(conn, order_id)
    if order.customer_email:
        template = {"sold_out": "order_sold_out", None: "order_refunded"}.get(order.cancel_reason, "order_cancelled")
        await enqueue(
            notify, "email", order.customer_email, template, order.template_data(), f"order_refunded:{order_id}"
        )
    return {"order_id": order_id, "refund": refund_id}


async def _held_cancelled_or_current(order_id: int) -> Order:
    """The order; a refund asked for during the hold cancels it first (one guarded update)."""
    async with get_process_pool().acquire() as conn, conn.transaction():
        if await update_order_cancelled(conn, order_id, "refunded_by_admin"):
            await restock_order(conn, order_id)
        order = await select_order(conn, order_id)
    if order is None:
        raise OrderError(f"order {order_id} does not exist")
    return order


@dramatiq.actor(queue_name="orders", time_limit=30_000, throws=(OrderError,), **RETRIES)
async def dispatch_order(
    order_id: int, carrier: str = "", tracking_number: str = "", tracking_url: str = ""
) -> dict[str, Any]:
    """Mark a released order dispatched (admin) and tell the buyer with tracking."""
    tracking = {"carrier": carrier, "number": tracking_number, "url": tracking_url}
    async with get_process_pool().acquire() as conn, conn.transaction():
        moved = await update_order_progress(conn, order_id, "dispatched", tracking)
        order = await select_order(conn, order_id)
    if order is None or (not moved and order.status != "dispatched"):
        raise OrderError(
            f"order {order_id} is {order.status if order else 'unknown'}; only a released order can be dispatched"
        )
    await _tell_progress(order, "dispatched")
    return {"order_id": order_id, "status": order.status}


@dramatiq.actor(queue_name="orders", time_limit=60_000, throws=(NotConfigured, Permanent), **RETRIES)
async def handle_printify_event(event_id: str, printify_order_id: str, event_type: str) -> dict[str, Any]:
    """Store a Printify webhook once, re-read the order from Printify, move ours forward, tell the buyer."""
    async with get_process_pool().acquire() as conn, conn.transaction():
        fresh = await insert_webhook_event(
            conn,
            provider="printify",
            event_id=event_id,
            event_type=event_type,
            payload={"type": event_type, "printify_order_id": printify_order_id},
        )
        order_id = await select_order_id_by_printify(conn, printify_order_id)
        if order_id is not None:
            await update_printify_webhook_seen(conn, order_id)
        else:  # kept and reported (`backroom tickets unmatched`), like Stripe's
            await update_webhook_unmatched(conn, provider="printify", event_id=event_id, order_ref=printify_order_id)
    if order_id is None:
        if fresh:  # one line per event, not per replay
            log.warning(
                "printify event %s (%s) names no known order (%s); kept", event_id, event_type, printify_order_id
            )
        return {"event": event_id, "order_id": None, "kept": True}
    followed = await follow_printify(order_id, printify_order_id)
    async with get_process_pool().acquire() as conn:
        await update_webhook_processed(conn, provider="printify", event_id=event_id)
    return {"event": event_id, **followed}


async def follow_printify(order_id: int, printify_order_id: str) -> dict[str, Any]:
    """Read the Printify order (the truth; a webhook is only a hint), move ours forward, tell the buyer."""
    printify = get_providers().printify
    remote = await call("printify", lambda: printify.get_order(printify_order_id))
    target = status_from_printify(str(remote.get("status")), remote.get("shipments") or [])
    async with get_process_pool().acquire() as conn, conn.transaction():
        await update_printify(conn, order_id, printify_status=str(remote.get("status")))
        moved = target is not None and await update_order_progress(
            conn, order_id, target, tracking_from_printify(remote)
        )
        order = await select_order(conn, order_id)
    if order is not None and target is not None and order.status == target:
        await _tell_progress(order, target)  # also on a replay: the notification key dedupes
    status = str(remote.get("status"))
    if order is not None and status in PRINTIFY_TROUBLE and order.status in ("released", "in_production"):
        await enqueue(
            open_ticket,
            "shipping_problem",
            f"shipping_problem:{order_id}:{status}",
            f"Order #{order_id} is {status} at Printify",
            f"Printify order {printify_order_id} is {status}; look at it in Printify and tell the buyer.",
            order_id,
            order.customer_email,
            unique_key=f"ticket:shipping_problem:{order_id}:{status}",
        )
    return {"order_id": order_id, "status": target, "moved": bool(moved)}


async def _tell_progress(order: Order, status: str) -> None:
    if not order.customer_email:
        return
    tracking = order.tracking or {}
    data = {
        **order.template_data(),
        "carrier": tracking.get("carrier") or "our carrier",
        "tracking_number": tracking.get("number") or "-",
        "tracking_url": tracking.get("url") or "",
    }
    await enqueue(notify, "email", order.customer_email, f"order_{status}", data, f"order_{status}:{order.id}")
