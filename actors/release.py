"""The release after the hold: Printify for print-on-demand lines, Tap-to-Secure for sourced 1-of-1s.

`release_order` is enqueued for `hold_until` when the order is placed, and the minute
sweep (`release_due_orders`) re-sends it for any hold that slipped through. The order
moves on_hold -> releasing -> released by guarded updates, each Printify step is
recorded as it happens, so a retry (or a worker killed mid-release) resumes where the
last attempt stopped and never creates a second Printify order.
"""

from __future__ import annotations

from datetime import datetime, UTC
from typing import Any

import dramatiq

from actors.chain import enqueue
from actors.clients import call, get_providers
from actors.notify import MaybeSent, NoAddress, deliver, notify
from actors.tickets import open_ticket
from broker.waits import Wait, retry_policy
from db.orders import (
    select_due_order_ids,
    select_order,
    select_release_lines,
    update_order_failed,
    update_order_released,
    update_order_releasing,
    update_printify,
    update_printify_requested,
)
from db.outbox import insert_job
from db.pool import get_process_pool
from domain.notifications import TemplateError
from domain.orders import Order, ReleaseLine, delay_ms, money, printify_address, printify_step
from providers.errors import NotConfigured, Permanent
from providers.printify import order_body

PRINTIFY_POLL_MS = 2_000  # how often a pending Printify order is looked at again


class ReleaseFailed(Exception):
    """Printify cancelled the order before production: an admin has to look at it."""


@dramatiq.actor(
    queue_name="orders",
    retry_when=retry_policy(max_failures=8, max_waits=400),
    min_backoff=2_000,
    max_backoff=300_000,
    time_limit=120_000,
    throws=(NotConfigured, Permanent, ReleaseFailed),
)
async def release_order(order_id: int) -> dict[str, Any]:
    """After the hold, release an order once: Printify create -> on-hold -> production; Tap-to-Secure alerts."""
    order = await _start(order_id)
    if order.status != "releasing":
        return {"order_id": order_id, "status": order.status, "released": False}
    try:
        lines = await _lines(order_id)
        if any(line.printify_line() for line in lines):
            await _release_to_printify(order, lines)
    except (NotConfigured, Permanent, ReleaseFailed) as error:
        await _give_up(order_id, str(error))
        raise
    if any(line.kind == "one_of_one" and line.source_url for line in lines):
        await enqueue(alert_tap_to_secure, order_id, unique_key=f"tap_to_secure:{order_id}")
    async with get_process_pool().acquire() as conn:
        released = await update_order_released(conn, order_id)
    return {"order_id": order_id, "status": "released", "released": released}


async def _give_up(order_id: int, reason: str) -> None:
    """Mark the order failed (so the sweep leaves it alone); the admin's push and ticket go to the job outbox with it.

    A retry finds the order failed and sends nothing, so a push enqueued after the commit could be lost for good.
    """
    async with get_process_pool().acquire() as conn, conn.transaction():
        if await update_order_failed(conn, order_id, reason):
            await insert_job(
                conn,
                notify.actor_name,
                [
                    "push",
                    "admin",
                    "release_failed",
                    {"order_id": order_id, "reason": reason[:300]},
                    f"release_failed:{order_id}",
                ],
            )
            await insert_job(
                conn,
                open_ticket.actor_name,
                [
                    "provider_rejected",
                    f"provider_rejected:{order_id}",
                    f"Order #{order_id} refused at release",
                    reason[:2000],
                    order_id,
                ],
                unique_key=f"ticket:provider_rejected:{order_id}",
            )


async def _start(order_id: int) -> Order:
    """Take the order from on_hold to releasing when its hold is over; Wait when it is not over yet."""
    async with get_process_pool().acquire() as conn, conn.transaction():
        await update_order_releasing(conn, order_id)
        order = await select_order(conn, order_id)
    if order is None:
        raise Permanent("orders", f"order {order_id} does not exist")
    if order.status == "on_hold" and order.hold_until is not None:
        raise Wait("the hold is not over yet", max(50, delay_ms(datetime.now(UTC), order.hold_until)))
    return order


async def _lines(order_id: int) -> list[ReleaseLine]:
    async with get_process_pool().acquire() as conn:
        return await select_release_lines(conn, order_id)


async def _release_to_printify(order: Order, lines: list[ReleaseLine]) -> None:
    """Create the Printify order once (external_id = our id), wait for on-hold, send it to production."""
    printify = get_providers().printify
    printify_id = order.printify_order_id
    if printify_id is None and order.printify_requested_at is not None:
        # an earlier attempt sent the create and died before recording the answer: find that order
        printify_id = await call("printify", lambda: printify.find_by_external_id(str(order.id)))
    if printify_id is None:
        body = order_body(
            str(order.id),
            f"#{order.id}",
            [p for line in lines if (p := line.printify_line())],
            printify_address(order.shipping, order.customer_email),
        )
        async with get_process_pool().acquire() as conn:
            await update_printify_requested(conn, order.id)
        printify_id = await call("printify", lambda: printify.create_order(body))
    async with get_process_pool().acquire() as conn:
        await update_printify(conn, order.id, printify_order_id=printify_id)
    remote = await call("printify", lambda: printify.get_order(printify_id))
    step = printify_step(str(remote.get("status")))
    async with get_process_pool().acquire() as conn:
        await update_printify(conn, order.id, printify_status=str(remote.get("status")))
    if step == "wait":
        raise Wait("Printify is still calculating the order", PRINTIFY_POLL_MS)
    if step == "dead":
        raise ReleaseFailed(f"Printify order of order {order.id} is {remote.get('status')}")
    if step == "send":
        await call("printify", lambda: printify.send_to_production(printify_id))
        async with get_process_pool().acquire() as conn:
            await update_printify(conn, order.id, printify_status="sending-to-production", sent=True)


@dramatiq.actor(
    queue_name="notify",
    retry_when=retry_policy(max_failures=6, max_waits=100),
    min_backoff=2_000,
    max_backoff=300_000,
    time_limit=60_000,
    throws=(NotConfigured, Permanent, MaybeSent, TemplateError, NoAddress),
)
async def alert_tap_to_secure(order_id: int) -> int:
    """Push the admin one Tap-to-Secure alert per sourced 1-of-1 line, with its private source URL."""
    sent = 0
    for line in await _lines(order_id):
        if line.kind == "one_of_one" and line.source_url:
            data = {
                "order_id": order_id,
                "title": line.title or "",
                "source_url": line.source_url,
                "price": money(line.unit_price_cents, None),
            }
            await deliver("push", "admin", "tap_to_secure", data, f"tap_to_secure:{order_id}:{line.line_id}")
            sent += 1
    return sent


@dramatiq.actor(queue_name="orders", max_retries=3, max_backoff=60_000, time_limit=60_000)
async def release_due_orders() -> int:
    """Send release_order for every order whose hold is over (and every stalled release); returns how many."""
    async with get_process_pool().acquire() as conn:
        due = await select_due_order_ids(conn)
    for order_id in due:
        await enqueue(release_order, order_id, unique_key=f"release_order:{order_id}")
    return len(due)
