"""Orders and their lines: creation with atomic item claims, and every guarded status change.

Each status change is one UPDATE guarded by the status it leaves, so of two racing
workers exactly one makes it, and doing it twice changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from domain.orders import (
    PRINTIFY_DEAD,
    Checkout,
    Order,
    OrderLine,
    PricedItem,
    ReleaseLine,
    payment_mismatch,
    progress_sources,
)

_ORDER_COLUMNS = """id, status, stripe_session_id, stripe_payment_intent, hold_until, amount_total_cents, currency,
    customer_email, customer_name, shipping, metadata, cancel_reason, printify_order_id, printify_requested_at,
    printify_status, tracking, stripe_refund_id, restocked_at, release_started_at, released_at, refunded_at,
    created_at, review_reason, paid_at, refunded_cents, dispute_id, dispute_status"""


@dataclass(frozen=True)
class Placed:
    """The outcome of placing a checkout: the order, whether this call created it, and its status."""

    order_id: int
    created: bool
    status: str


class _SoldOut(Exception):
    """Raised inside the claims' savepoint to undo every claim of an order that cannot be filled."""


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _order(row: Mapping[str, Any], lines: list[OrderLine]) -> Order:
    values = dict(row)
    for key in ("shipping", "metadata", "tracking"):
        values[key] = _json(values[key])
    values["metadata"] = values["metadata"] or {}
    return Order(**values, lines=tuple(lines))


async def create_order(conn: asyncpg.Connection, checkout: Checkout, *, event_id: str, hold_seconds: float) -> Placed:
    """Insert the order of a paid checkout once (by session id) and claim its items atomically.

    A 1-of-1 flips available -> sold, a stable item's stock drops by the quantity, never
    below zero. If any line cannot be had, no claim stays and the order is stored
    `cancelled` with reason `sold_out` (to be refunded). An unpaid (asynchronous) checkout
    is stored `awaiting_payment` with its items claimed. Run inside a transaction.
    """
    await lock_order_refs(conn, checkout.session_id, checkout.payment_intent)
    order_id = await conn.fetchval(
        """
        INSERT INTO orders (stripe_session_id, stripe_payment_intent, stripe_event_id, status, hold_until,
                            amount_total_cents, amount_subtotal_cents, shipping_cents, currency, customer_email,
                            customer_name, shipping, metadata, paid_at)
        VALUES ($1, $2, $3, CASE WHEN $13 THEN 'on_hold' ELSE 'awaiting_payment' END,
                CASE WHEN $13 THEN now() + make_interval(secs => $4) END, $5, $6, $7, $8, $9, $10, $11, $12,
                CASE WHEN $13 THEN now() END)
        ON CONFLICT (stripe_session_id) DO NOTHING
        RETURNING id
        """,
        checkout.session_id,
        checkout.payment_intent,
        event_id,
        hold_seconds,
        checkout.amount_total,
        checkout.amount_subtotal,
        checkout.shipping_cents,
        checkout.currency,
        checkout.email,
        checkout.name,
        json.dumps(checkout.shipping) if checkout.shipping is not None else None,
        json.dumps(checkout.attribution),
        checkout.paid,
    )
    if order_id is None:
        row = await conn.fetchrow("SELECT id, status FROM orders WHERE stripe_session_id = $1", checkout.session_id)
        return Placed(row["id"], False, row["status"])
    items = {
        r["id"]: r
        for r in await conn.fetch(
            "SELECT id, kind, title, price_cents, currency FROM items WHERE id = ANY($1::bigint[])",
            [line.item_id for line in checkout.lines],
        )
    }
    status = "on_hold" if checkout.paid else "awaiting_payment"
    try:
        async with conn.transaction():  # a savepoint: a sold-out line undoes the other claims
            for line in checkout.lines:
                if not await _claim(conn, items.get(line.item_id), line.item_id, line.quantity):
                    raise _SoldOut(line.item_id)
    except _SoldOut:
        status = "cancelled"
        await conn.execute(
            "UPDATE orders SET status = 'cancelled', cancel_reason = 'sold_out', restocked_at = now() WHERE id = $1",
            order_id,
        )
    mismatch = payment_mismatch(checkout, {i: PricedItem(r["price_cents"], r["currency"]) for i, r in items.items()})
    if status != "cancelled" and mismatch is not None:  # claimed, but never released by itself
        status = "needs_review" if status == "on_hold" else status  # an unpaid one: when its payment arrives
        await conn.execute(
            "UPDATE orders SET status = $3, review_reason = $2 WHERE id = $1", order_id, mismatch, status
        )
    await conn.executemany(
        """
        INSERT INTO order_lines (order_id, item_id, kind, quantity, unit_price_cents, title, position)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (order_id, position) DO NOTHING
        """,
        [
            (
                order_id,
                line.item_id if line.item_id in items else None,
                items[line.item_id]["kind"] if line.item_id in items else "unknown",
                line.quantity,
                (items[line.item_id]["price_cents"] or 0) if line.item_id in items else 0,
                items[line.item_id]["title"] if line.item_id in items else f"item {line.item_id}",
                position,
            )
            for position, line in enumerate(checkout.lines)
        ],
    )
    return Placed(order_id, True, status)


async def _claim(conn: asyncpg.Connection, item: Mapping[str, Any] | None, item_id: int, quantity: int) -> bool:
    if item is None:
        return False
    if item["kind"] == "one_of_one":
        if quantity != 1:
            return False
        return (
            await conn.fetchval(
                "UPDATE items SET status = 'sold' WHERE id = $1 AND status = 'available' RETURNING id", item_id
            )
            is not None
        )
    if item["kind"] == "stable":
        return (
            await conn.fetchval(
                "UPDATE items SET stock = stock - $2"
                " WHERE id = $1 AND status = 'available' AND stock >= $2 RETURNING id",
                item_id,
                quantity,
            )
            is not None
        )
    return await conn.fetchval("SELECT id FROM items WHERE id = $1 AND status = 'available'", item_id) is not None


async def restock_order(conn: asyncpg.Connection, order_id: int) -> bool:
    """Give the order's 1-of-1s back (sold -> available) and its stock back, once; False if already done."""
    done = await conn.fetchval(
        "UPDATE orders SET restocked_at = now() WHERE id = $1 AND restocked_at IS NULL RETURNING id", order_id
    )
    if done is None:
        return False
    await conn.execute(
        """
        UPDATE items i SET status = 'available' FROM order_lines l
        WHERE l.order_id = $1 AND l.item_id = i.id AND i.kind = 'one_of_one' AND i.status = 'sold'
        """,
        order_id,
    )
    await conn.execute(
        """
        UPDATE items i SET stock = i.stock + l.quantity FROM order_lines l
        WHERE l.order_id = $1 AND l.item_id = i.id AND i.kind = 'stable'
        """,
        order_id,
    )
    return True


async def select_order(conn: asyncpg.Connection, order_id: int) -> Order | None:
    """The order with its lines, or None."""
    row = await conn.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = $1", order_id)
    if row is None:
        return None
    lines = await conn.fetch(
        "SELECT id, item_id, kind, quantity, unit_price_cents, title FROM order_lines WHERE order_id = $1"
        " ORDER BY position",
        order_id,
    )
    return _order(row, [OrderLine(**dict(line)) for line in lines])


async def select_order_id_by_printify(conn: asyncpg.Connection, printify_order_id: str) -> int | None:
    """Our order id for a Printify order id."""
    return await conn.fetchval("SELECT id FROM orders WHERE printify_order_id = $1", printify_order_id)


async def select_release_lines(conn: asyncpg.Connection, order_id: int) -> list[ReleaseLine]:
    """The lines with what release needs from their items (source URL and Printify ids included)."""
    rows = await conn.fetch(
        """
        SELECT l.id AS line_id, l.item_id, coalesce(i.kind, l.kind) AS kind, l.quantity, l.title,
               l.unit_price_cents, i.source_url, coalesce(i.attributes, '{}'::jsonb) AS attributes
        FROM order_lines l LEFT JOIN items i ON i.id = l.item_id
        WHERE l.order_id = $1 ORDER BY l.position
        """,
        order_id,
    )
    return [ReleaseLine(**{**dict(r), "attributes": _json(r["attributes"]) or {}}) for r in rows]


async def select_due_order_ids(conn: asyncpg.Connection, *, stalled_after_s: int = 300, limit: int = 1000) -> list[int]:
    """Orders whose hold is over, and releases that stalled (no progress for `stalled_after_s`)."""
    rows = await conn.fetch(
        """
        (SELECT id FROM orders WHERE status = 'on_hold' AND hold_until <= now() ORDER BY hold_until LIMIT $2)
        UNION
        (SELECT id FROM orders WHERE status = 'releasing'
             AND updated_at < now() - make_interval(secs => $1) LIMIT $2)
        """,
        float(stalled_after_s),
        limit,
    )
    return sorted(r["id"] for r in rows)


async def update_order_cancelled(conn: asyncpg.Connection, order_id: int, reason: str) -> bool:
    """on_hold or needs_review -> cancelled; False when the order is neither (released, already cancelled...)."""
    return (
        await conn.fetchval(
            "UPDATE orders SET status = 'cancelled', cancel_reason = $2"
            " WHERE id = $1 AND status IN ('on_hold', 'needs_review') RETURNING id",
            order_id,
            reason,
        )
        is not None
    )


async def update_order_releasing(conn: asyncpg.Connection, order_id: int) -> bool:
    """on_hold -> releasing once the hold is over; False otherwise."""
    return (
        await conn.fetchval(
            """
        UPDATE orders SET status = 'releasing', release_started_at = now()
        WHERE id = $1 AND status = 'on_hold' AND hold_until <= now() RETURNING id
        """,
            order_id,
        )
        is not None
    )


async def update_order_released(conn: asyncpg.Connection, order_id: int) -> bool:
    """releasing -> released; False when it was not releasing."""
    return (
        await conn.fetchval(
            "UPDATE orders SET status = 'released', released_at = now() WHERE id = $1 AND status = 'releasing'"
            " RETURNING id",
            order_id,
        )
        is not None
    )


async def update_order_failed(conn: asyncpg.Connection, order_id: int, error: str) -> bool:
    """releasing -> failed with the reason (an admin takes over); False when it was not releasing."""
    return (
        await conn.fetchval(
            "UPDATE orders SET status = 'failed', release_error = $2"
            " WHERE id = $1 AND status = 'releasing' RETURNING id",
            order_id,
            error[:1000],
        )
        is not None
    )


async def update_printify_requested(conn: asyncpg.Connection, order_id: int) -> None:
    """Note that a Printify create is about to be sent (a retry then looks it up before creating)."""
    await conn.execute(
        "UPDATE orders SET printify_requested_at = coalesce(printify_requested_at, now()) WHERE id = $1", order_id
    )


async def update_printify(
    conn: asyncpg.Connection,
    order_id: int,
    *,
    printify_order_id: str | None = None,
    printify_status: str | None = None,
    sent: bool = False,
) -> None:
    """Record Printify's order id (once), its last seen status, and when it was sent to production."""
    await conn.execute(
        """
        UPDATE orders SET printify_order_id = coalesce(printify_order_id, $2),
                          printify_status = coalesce($3, printify_status),
                          sent_to_production_at = CASE WHEN $4 THEN coalesce(sent_to_production_at, now())
                                                       ELSE sent_to_production_at END
        WHERE id = $1
        """,
        order_id,
        printify_order_id,
        printify_status,
        sent,
    )


async def update_order_refunded(conn: asyncpg.Connection, order_id: int, refund_id: str) -> None:
    """Record the refund; a cancelled order stays cancelled, any other becomes refunded."""
    await conn.execute(
        """
        UPDATE orders SET stripe_refund_id = coalesce(stripe_refund_id, $2), refunded_at = coalesce(refunded_at, now()),
                          status = CASE WHEN status = 'cancelled' THEN status ELSE 'refunded' END
        WHERE id = $1
        """,
        order_id,
        refund_id,
    )


async def update_order_progress(
    conn: asyncpg.Connection, order_id: int, target: str, tracking: Mapping[str, str] | None = None
) -> bool:
    """Move a released order forward (in_production, dispatched) with tracking; never backwards."""
    return (
        await conn.fetchval(
            """
        UPDATE orders SET status = $2, tracking = coalesce($3::jsonb, tracking),
                          dispatched_at = CASE WHEN $2 = 'dispatched' THEN now() ELSE dispatched_at END
        WHERE id = $1 AND status = ANY($4::text[]) RETURNING id
        """,
            order_id,
            target,
            json.dumps(tracking) if tracking else None,
            progress_sources(target),
        )
        is not None
    )


async def lock_order_refs(conn: asyncpg.Connection, *refs: str | None) -> None:
    """Serialise, until commit, an order's creation with Stripe events naming its session or payment intent."""
    for ref in sorted({r for r in refs if r}):
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('stripe_ref:' || $1))", ref)


async def select_order_id_by_ref(conn: asyncpg.Connection, ref: str) -> int | None:
    """Our order id for a Checkout Session id or a payment intent id."""
    return await conn.fetchval(
        "SELECT id FROM orders WHERE stripe_session_id = $1 OR stripe_payment_intent = $1 ORDER BY id LIMIT 1", ref
    )


async def update_order_paid(conn: asyncpg.Connection, order_id: int, hold_seconds: float) -> bool:
    """awaiting_payment -> on_hold (or needs_review when it was mismatched) as the payment arrives; hold starts."""
    return (
        await conn.fetchval(
            """
        UPDATE orders SET paid_at = coalesce(paid_at, now()), hold_until = now() + make_interval(secs => $2),
                          status = CASE WHEN status = 'awaiting_payment'
                                        THEN CASE WHEN review_reason IS NULL THEN 'on_hold' ELSE 'needs_review' END
                                        ELSE status END
        WHERE id = $1 AND paid_at IS NULL RETURNING id
        """,
            order_id,
            hold_seconds,
        )
        is not None
    )


async def update_order_unpaid_cancelled(conn: asyncpg.Connection, order_id: int, reason: str) -> bool:
    """awaiting_payment -> cancelled (payment failed, session expired); False when it was not waiting."""
    return (
        await conn.fetchval(
            "UPDATE orders SET status = 'cancelled', cancel_reason = $2 WHERE id = $1 AND status = 'awaiting_payment'"
            " RETURNING id",
            order_id,
            reason,
        )
        is not None
    )


async def update_order_refunded_in_stripe(
    conn: asyncpg.Connection, order_id: int, *, refund_id: str, refunded_cents: int | None, full: bool
) -> str | None:
    """Record what Stripe says was refunded; a full refund makes the order refunded (a cancelled one stays).

    Returns the status the order had before a full refund first reached it, else None.
    """
    return await conn.fetchval(
        """
        WITH before AS (SELECT id, status, refunded_at FROM orders WHERE id = $1 FOR UPDATE)
        UPDATE orders o SET refunded_cents = greatest(coalesce(o.refunded_cents, 0), coalesce($3, 0)),
               stripe_refund_id = CASE WHEN $4 THEN coalesce(o.stripe_refund_id, $2) ELSE o.stripe_refund_id END,
               refunded_at = CASE WHEN $4 THEN coalesce(o.refunded_at, now()) ELSE o.refunded_at END,
               status = CASE WHEN $4 AND o.status NOT IN ('cancelled', 'refunded') THEN 'refunded' ELSE o.status END
        FROM before WHERE o.id = before.id
        RETURNING CASE WHEN $4 AND before.refunded_at IS NULL THEN before.status END
        """,
        order_id,
        refund_id,
        refunded_cents,
        full,
    )


async def update_order_disputed(
    conn: asyncpg.Connection, order_id: int, *, dispute_id: str, status: str, reason: str, closed: bool
) -> bool:
    """Flag a disputed order (a held one waits for review, never released); a closed outcome is kept.

    True when this call stopped a held order's release.
    """
    return (
        await conn.fetchval(
            """
        WITH before AS (SELECT id, status FROM orders WHERE id = $1 FOR UPDATE)
        UPDATE orders o SET dispute_id = coalesce(o.dispute_id, $2), disputed_at = coalesce(o.disputed_at, now()),
               dispute_reason = coalesce(o.dispute_reason, nullif($4, '')),
               dispute_status = CASE WHEN $5 OR o.dispute_closed_at IS NULL THEN $3 ELSE o.dispute_status END,
               dispute_closed_at = CASE WHEN $5 THEN coalesce(o.dispute_closed_at, now()) ELSE o.dispute_closed_at END,
               status = CASE WHEN o.status IN ('on_hold', 'awaiting_payment') THEN 'needs_review' ELSE o.status END,
               review_reason = CASE WHEN o.status IN ('on_hold', 'awaiting_payment')
                                    THEN 'the payment is disputed (' || coalesce(nullif($4, ''), 'no reason') || ')'
                                    ELSE o.review_reason END
        FROM before WHERE o.id = before.id
        RETURNING before.status IN ('on_hold', 'awaiting_payment')
        """,
            order_id,
            dispute_id,
            status,
            reason,
            closed,
        )
        is True
    )


async def update_printify_webhook_seen(conn: asyncpg.Connection, order_id: int) -> None:
    """Note that Printify told us about this order (it is not polled while webhooks arrive)."""
    await conn.execute("UPDATE orders SET printify_webhook_at = now() WHERE id = $1", order_id)


async def select_stalled_printify_order_ids(conn: asyncpg.Connection, *, quiet_s: float, limit: int = 500) -> list[int]:
    """Released Printify orders, not yet dispatched, with no webhook for `quiet_s` (to be polled).

    An order final on either side is left alone: here (dispatched, refunded, cancelled: not in
    the statuses read) or at Printify (cancelled there: no webhook or poll will move it again).
    """
    rows = await conn.fetch(
        """
        SELECT id FROM orders
        WHERE status IN ('released', 'in_production') AND printify_order_id IS NOT NULL
          AND NOT (coalesce(printify_status, '') = ANY($3::text[]))
          AND coalesce(printify_webhook_at, released_at, updated_at) < now() - make_interval(secs => $1)
        ORDER BY coalesce(printify_webhook_at, released_at, updated_at) LIMIT $2
        """,
        quiet_s,
        limit,
        sorted(PRINTIFY_DEAD),
    )
    return [r["id"] for r in rows]
