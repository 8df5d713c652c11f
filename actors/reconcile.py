"""The nightly reconciliation: Backroom's orders and stock against Stripe's payments and
Printify's orders for the last RECONCILE_DAYS, one ticket per mismatch.

The lists are read page by page through each provider's shared rate limit; a ticket's key
names its mismatch, so a run repeated (or retried half-way) opens no second ticket.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, UTC
from typing import Any

import dramatiq

from actors.clients import call, get_providers
from broker.waits import retry_policy
from config.settings import get_settings
from db.pool import get_process_pool
from db.reconcile import (
    select_known_sessions,
    select_printify_orders_since,
    select_stock_count_mismatches,
    select_stock_mismatches,
)
from db.tickets import insert_ticket
from db.webhooks import select_unmatched_events
from domain.orders import PRINTIFY_DEAD
from providers.errors import NotConfigured, Permanent

log = logging.getLogger("backroom.orders")
# kept events worth a person when their order never showed up (a declined card at checkout is not)
UNMATCHED_WORTH_A_TICKET = [
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
    "checkout.session.async_payment_failed",
]
UNMATCHED_AFTER_S = 3600.0


@dramatiq.actor(
    queue_name="orders",
    time_limit=900_000,
    throws=(Permanent,),
    retry_when=retry_policy(max_failures=5, max_waits=400),
    min_backoff=5_000,
    max_backoff=300_000,
)
async def reconcile_orders() -> dict[str, int]:
    """Compare, open a ticket per mismatch (once); returns how many mismatches of each kind were seen."""
    since = datetime.now(UTC) - timedelta(days=get_settings().reconcile_days)
    found: dict[str, int] = {}
    for name, check in (("stripe", _stripe), ("printify", _printify), ("stock", _stock), ("kept", _kept)):
        try:
            tickets = await check(since)
        except NotConfigured:
            continue  # a provider Backroom does not use has nothing to disagree with
        for key, subject, text, order_id in tickets:
            async with get_process_pool().acquire() as conn:
                await insert_ticket(
                    conn,
                    kind="mismatch",
                    key=f"reconcile:{key}",
                    subject=subject,
                    order_id=order_id,
                    contact=None,
                    body=text,
                )
        found[name] = len(tickets)
    if any(found.values()):
        log.warning("reconciliation found mismatches: %s", found)
    return found


Mismatch = tuple[str, str, str, Any]


async def _stripe(since: datetime) -> list[Mismatch]:
    """Paid goods checkouts that have no order here."""
    stripe = get_providers().stripe
    cursor: str | None = None
    mismatches: list[Mismatch] = []
    for _ in range(get_settings().reconcile_max_pages):
        page, cursor = await call(
            "stripe", lambda: stripe.list_sessions(created_gte=int(since.timestamp()), starting_after=cursor)
        )
        paid = [
            s
            for s in page
            if s.get("payment_status") == "paid"
            and str((s.get("metadata") or {}).get("type", "")).lower() not in ("membership", "society")
        ]
        async with get_process_pool().acquire() as conn:
            known = await select_known_sessions(conn, [str(s["id"]) for s in paid])
        mismatches += [
            (
                f"stripe_paid_no_order:{s['id']}",
                f"Paid in Stripe, no order here ({s['id']})",
                f"Checkout Session {s['id']} was paid ({s.get('amount_total')} {s.get('currency')}) but no"
                " order exists for it; look at its webhook deliveries.",
                None,
            )
            for s in paid
            if s["id"] not in known
        ]
        if cursor is None:
            break
    return mismatches


async def _printify(since: datetime) -> list[Mismatch]:
    """Our released orders whose Printify order is missing or cancelled."""
    async with get_process_pool().acquire() as conn:
        ours = await select_printify_orders_since(conn, since)
    if not ours:
        return []
    printify = get_providers().printify
    seen: dict[str, str] = {}
    for page in range(1, get_settings().reconcile_max_pages + 1):
        orders, more = await call("printify", lambda: printify.list_orders(page))
        seen.update({str(o["id"]): str(o.get("status")) for o in orders})
        if not more or (orders and _created(orders[-1]) < since):
            break
    mismatches: list[Mismatch] = []
    for order_id, printify_id, status in ours:
        remote = seen.get(printify_id)
        if remote is None or remote in PRINTIFY_DEAD:
            what = "missing" if remote is None else "cancelled"
            mismatches.append(
                (
                    f"printify_{what}:{order_id}",
                    f"Order #{order_id} is {what} at Printify",
                    f"Order #{order_id} is {status} here, but its Printify order {printify_id} is {what}.",
                    order_id,
                )
            )
    return mismatches


def _created(order: dict[str, Any]) -> datetime:
    """A Printify order's creation time (long ago when unreadable: it ends the paging)."""
    try:
        created = datetime.fromisoformat(str(order.get("created_at")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return created if created.tzinfo else created.replace(tzinfo=UTC)


async def _stock(since: datetime) -> list[Mismatch]:
    """Ordered 1-of-1s whose status disagrees with the orders holding them; stable counts that disagree
    with the units sold."""
    async with get_process_pool().acquire() as conn:
        rows = await select_stock_mismatches(conn)
        counts = await select_stock_count_mismatches(conn)
    text = {
        "sold_without_order": "is sold, but no order holds it (refunded or cancelled without its restock?)",
        "available_but_ordered": "is available, but an order still holds it (it may be sold twice)",
    }
    pieces = [
        (
            f"stock:{item_id}:{state}",
            f"Item {item_id} {state.replace('_', ' ')}",
            f"Item {item_id} ({title}) {text[state]}.",
            None,
        )
        for item_id, title, state in rows
    ]
    # keyed by the difference: the same gap seen again (sales since move both numbers) is the same mismatch
    return pieces + [
        (
            f"stock:{item_id}:count:{stock - expected:+d}",
            f"Item {item_id} stock is {stock}, its orders say {expected}",
            f"Item {item_id} ({title}) has {stock} in stock, but its starting stock less the units its"
            f" orders hold is {expected} ({stock - expected:+d}): a restock that never ran, or ran twice,"
            " or a count changed by hand?",
            None,
        )
        for item_id, title, stock, expected in counts
    ]


async def _kept(since: datetime) -> list[Mismatch]:
    """Stripe events about orders that never showed up (kept by handle_stripe_event for an hour or more)."""
    async with get_process_pool().acquire() as conn:
        rows = await select_unmatched_events(conn, types=UNMATCHED_WORTH_A_TICKET, older_than_s=UNMATCHED_AFTER_S)
    return [
        (
            f"kept_event:{r['event_id']}",
            f"Stripe {r['event_type']} for no known order ({r['order_ref']})",
            f"Stripe event {r['event_id']} ({r['event_type']}) names {r['order_ref']}, which matches no order"
            f" here since {r['received_at']:%Y-%m-%d %H:%M} UTC.",
            None,
        )
        for r in rows
    ]
