"""What Stripe events after the checkout do to an order: failed and expired payments, refunds
made in Stripe's dashboard, disputes.

Every change is a guarded update (db/orders.py), so an event replayed, or arriving before or
after any other, changes an order once; the follow-ups (emails, admin alerts) carry
notification keys. An event about an order Backroom does not know yet is kept with the
session or payment intent it names and applied when that order is created.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from actors.chain import enqueue
from actors.notify import notify
from actors.tickets import open_ticket
from config.settings import get_settings
from db.orders import (
    lock_order_refs,
    restock_order,
    select_order,
    select_order_id_by_ref,
    update_order_disputed,
    update_order_refunded_in_stripe,
    update_order_unpaid_cancelled,
)
from db.outbox import insert_job
from db.pool import get_process_pool
from db.webhooks import insert_webhook_event, update_webhook_processed, update_webhook_unmatched
from domain.orders import Order
from domain.payments import PaymentEvent, dispute_text

log = logging.getLogger("backroom.orders")


async def apply_payment_event(event: dict[str, Any], change: PaymentEvent) -> dict[str, Any]:
    """Store the event once and apply it to its order, or keep it until that order exists."""
    order: Order | None = None
    effect: Any = None
    async with get_process_pool().acquire() as conn, conn.transaction():
        fresh = await insert_webhook_event(
            conn, provider="stripe", event_id=change.event_id, event_type=str(event.get("type")), payload=event
        )
        await lock_order_refs(conn, change.order_ref)
        order_id = await select_order_id_by_ref(conn, change.order_ref)
        if order_id is None:
            await update_webhook_unmatched(
                conn, provider="stripe", event_id=change.event_id, order_ref=change.order_ref
            )
        else:
            effect = await _change(conn, order_id, change)
            await update_webhook_processed(conn, provider="stripe", event_id=change.event_id)
            order = await select_order(conn, order_id)
            await _alert_refund_after_release(conn, order, change, effect)
    if order is None:
        if fresh:  # one line per event, not per replay
            log.warning(
                "stripe event %s (%s) names no known order (%s); kept until it exists",
                change.event_id,
                event.get("type"),
                change.order_ref,
            )
        return {"event": change.event_id, "type": event.get("type"), "order_id": None, "kept": True}
    await _follow_up(order, change)
    return {"event": change.event_id, "type": event.get("type"), "order_id": order_id, "status": order.status}


async def _change(conn: asyncpg.Connection, order_id: int, change: PaymentEvent) -> Any:
    """The guarded database change of one event; what it did, for the follow-ups."""
    if change.change in ("payment_failed", "expired"):
        cancelled = await update_order_unpaid_cancelled(conn, order_id, change.change)
        return cancelled and await restock_order(conn, order_id)
    if change.change == "refunded":
        before = await update_order_refunded_in_stripe(
            conn,
            order_id,
            refund_id=str(change.refund_id),
            refunded_cents=change.amount_refunded,
            full=change.full_refund,
        )
        if before is not None and before != "dispatched":  # a shipped piece does not come back by itself
            await restock_order(conn, order_id)
        return before
    return await update_order_disputed(
        conn,
        order_id,
        dispute_id=str(change.dispute_id),
        status=str(change.dispute_status),
        reason=str(change.dispute_reason or ""),
        closed=change.change == "dispute_closed",
    )


async def _alert_refund_after_release(
    conn: asyncpg.Connection, order: Order | None, change: PaymentEvent, effect: Any
) -> None:
    """Tell the admin, in the refund's transaction (the job outbox): a replay no longer knows the status it had."""
    if (
        order is not None
        and change.change == "refunded"
        and change.full_refund
        and effect in ("releasing", "released", "in_production")
    ):
        await insert_ops_alert(
            conn,
            f"Order #{order.id} refunded in Stripe after its release",
            f"Order #{order.id} ({order.summary()}) was refunded in Stripe while it was {effect};"
            " cancel it at the provider if it is not made yet.",
            f"refunded_after_release:{order.id}",
        )


async def _follow_up(order: Order, change: PaymentEvent) -> None:
    """Tell the buyer or the admin (again on a replay: every message is keyed)."""
    if change.change == "payment_failed" and order.cancel_reason == "payment_failed":
        reason = change.failure or "the payment was declined"
        await enqueue(
            open_ticket,
            "payment_failed",
            f"payment_failed:{order.id}",
            f"Payment failed for order #{order.id}",
            f"{reason} ({order.summary()})",
            order.id,
            order.customer_email,
            unique_key=f"ticket:payment_failed:{order.id}",
        )
        if order.customer_email:
            await enqueue(
                notify,
                "email",
                order.customer_email,
                "order_payment_failed",
                {**order.template_data(), "reason": reason},
                f"order_payment_failed:{order.id}",
            )
    elif change.change == "refunded" and change.full_refund:
        if order.customer_email:
            await enqueue(
                notify,
                "email",
                order.customer_email,
                "order_refunded",
                order.template_data(),
                f"order_refunded:{order.id}",
            )
    elif change.change in ("dispute_created", "dispute_closed"):
        text = dispute_text(change, order.id, order.summary())
        await alert_ops(text["title"], text["text"], f"{change.change}:{change.dispute_id}")
        await enqueue(
            open_ticket,
            "dispute",
            f"dispute:{change.dispute_id}",
            text["title"],
            text["text"],
            order.id,
            order.customer_email,
            note_key=change.change,
            unique_key=f"ticket:{change.change}:{change.dispute_id}",
        )


async def alert_ops(title: str, text: str, key: str) -> None:
    """One admin alert on OPS_ALERT_CHANNEL, once per key."""
    log.warning("%s", title)
    await enqueue(notify, *ops_alert_args(title, text, key))


async def insert_ops_alert(conn: asyncpg.Connection, title: str, text: str, key: str) -> None:
    """The same alert written to the job outbox in the caller's transaction (sent after its commit)."""
    log.warning("%s", title)
    await insert_job(conn, notify.actor_name, list(ops_alert_args(title, text, key)))


def ops_alert_args(title: str, text: str, key: str) -> tuple[Any, ...]:
    """`notify`'s arguments for an admin alert on OPS_ALERT_CHANNEL."""
    channel = get_settings().ops_alert_channel
    return channel, "ops" if channel == "chat" else "admin", "ops_message", {"title": title, "text": text}, key
