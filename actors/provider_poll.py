"""The fallback for lost Printify webhooks: released orders nobody heard about are polled.

Printify retries a webhook a few times and then gives up; an order whose webhooks were all
lost would stay `released` for ever. Every 5 minutes (schedules/orders.py) each released
order with no webhook for PRINTIFY_POLL_AFTER_MINUTES is read with `GET` (through the shared
Printify rate limit) and moved on exactly as its webhook would have moved it.
"""

from __future__ import annotations

from typing import Any

import dramatiq

from actors.chain import enqueue
from actors.orders import RETRIES, follow_printify
from config.settings import get_settings
from db.orders import select_order, select_stalled_printify_order_ids
from db.pool import get_process_pool
from providers.errors import NotConfigured, Permanent


@dramatiq.actor(queue_name="orders", time_limit=60_000, throws=(NotConfigured, Permanent), **RETRIES)
async def poll_printify_order(order_id: int) -> dict[str, Any]:
    """Read one released order's Printify order and move ours on as its webhook would have."""
    async with get_process_pool().acquire() as conn:
        order = await select_order(conn, order_id)
    if order is None or order.printify_order_id is None:
        return {"order_id": order_id, "polled": False}
    return {**await follow_printify(order_id, order.printify_order_id), "polled": True}


@dramatiq.actor(queue_name="orders", max_retries=3, max_backoff=60_000, time_limit=60_000)
async def poll_stalled_printify_orders() -> int:
    """Send poll_printify_order for each released order Printify has been silent about; returns how many."""
    quiet_s = get_settings().printify_poll_after_minutes * 60
    async with get_process_pool().acquire() as conn:
        stalled = await select_stalled_printify_order_ids(conn, quiet_s=quiet_s)
    for order_id in stalled:
        await enqueue(poll_printify_order, order_id, unique_key=f"poll_printify:{order_id}")
    return len(stalled)
