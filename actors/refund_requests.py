"""A customer's refund request: a ticket always; inside the refund window the refund at once,
outside it the ticket waits for an admin to approve."""

from __future__ import annotations

from datetime import datetime, UTC
from typing import Any

import dramatiq

from actors.chain import enqueue
from actors.orders import refund_order
from actors.payment_events import insert_ops_alert
from actors.tickets import RETRIES, TicketError
from config.settings import get_settings
from db.orders import select_order
from db.outbox import insert_job
from db.pool import get_process_pool
from db.tickets import insert_interaction, insert_ticket, select_ticket, update_ticket
from domain.tickets import within_refund_window


@dramatiq.actor(queue_name="orders", time_limit=30_000, throws=(TicketError,), **RETRIES)
async def request_refund(order_id: int, reason: str = "") -> dict[str, Any]:
    """Open the order's refund-request ticket; approve it at once inside REFUND_WINDOW_DAYS of payment."""
    window = get_settings().refund_window_days
    async with get_process_pool().acquire() as conn, conn.transaction():
        order = await select_order(conn, order_id)
        if order is None:
            raise TicketError(f"order {order_id} does not exist")
        inside = within_refund_window(order.paid_at, datetime.now(UTC), window)
        ticket_id, opened = await insert_ticket(
            conn,
            kind="refund_request",
            key=f"refund_request:{order_id}",
            order_id=order_id,
            subject=f"Refund request for order #{order_id}",
            contact=order.customer_email,
            body=reason or "(no reason given)",
            status="closed" if inside else "waiting",
        )
        if inside and opened:
            await insert_interaction(
                conn,
                ticket_id,
                author="system",
                action="approved",
                body=f"inside the {window:g}-day refund window: refunded automatically",
                key=f"approved:{ticket_id}",
            )
            await update_ticket(conn, ticket_id, status="closed")
            # in the ticket's transaction: a retry finds the ticket already opened and sends nothing
            await insert_job(conn, refund_order.actor_name, [order_id], unique_key=f"refund_order:{order_id}")
        elif opened:
            await insert_ops_alert(
                conn,
                f"Refund request for order #{order_id} waits for you",
                f"Order #{order_id} was paid more than {window:g} days ago; approve or refuse ticket #{ticket_id}.",
                f"refund_request:{order_id}",
            )
    return {"ticket_id": ticket_id, "approved": inside}


@dramatiq.actor(queue_name="orders", time_limit=30_000, throws=(TicketError,), **RETRIES)
async def approve_refund(ticket_id: int, author: str) -> dict[str, Any]:
    """An admin approves a waiting refund request: the order is refunded and the ticket closed."""
    async with get_process_pool().acquire() as conn, conn.transaction():
        ticket = await select_ticket(conn, ticket_id)
        if ticket is None or ticket.kind != "refund_request" or ticket.order_id is None:
            raise TicketError(f"ticket {ticket_id} is not a refund request")
        await insert_interaction(
            conn, ticket_id, author=author, action="approved", body="refund approved", key=f"approved:{ticket_id}"
        )
        await update_ticket(conn, ticket_id, status="closed")
    await enqueue(refund_order, ticket.order_id, unique_key=f"refund_order:{ticket.order_id}")
    return {"ticket_id": ticket_id, "order_id": ticket.order_id, "approved": True}
