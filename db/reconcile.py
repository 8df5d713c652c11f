"""What the nightly reconciliation compares Stripe's and Printify's records with."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def select_known_sessions(conn: asyncpg.Connection, session_ids: list[str]) -> set[str]:
    """The Checkout Session ids among `session_ids` that have an order here."""
    rows = await conn.fetch(
        "SELECT stripe_session_id FROM orders WHERE stripe_session_id = ANY($1::text[])", session_ids
    )
    return {r["stripe_session_id"] for r in rows}


async def select_printify_orders_since(conn: asyncpg.Connection, since: datetime) -> list[tuple[int, str, str]]:
    """(order id, Printify order id, our status) of the orders released to Printify since `since`."""
    rows = await conn.fetch(
        """
        SELECT id, printify_order_id, status FROM orders
        WHERE printify_order_id IS NOT NULL AND released_at >= $1
          AND status IN ('released', 'in_production', 'dispatched')
        ORDER BY id
        """,
        since,
    )
    return [(r["id"], r["printify_order_id"], r["status"]) for r in rows]


async def select_stock_mismatches(conn: asyncpg.Connection) -> list[tuple[int, str, str]]:
    """(item id, title, what is wrong) for ordered 1-of-1s whose status disagrees with their orders.

    An order holds its items until it gives them back (`order_holds_items`, migration 0016): a
    piece sold with no order holding it, or available while an order holds it, is a mismatch.
    """
    rows = await conn.fetch(
        """
        SELECT i.id, coalesce(i.title, '') AS title, i.status
        FROM items i JOIN order_lines l ON l.item_id = i.id JOIN orders o ON o.id = l.order_id
        WHERE i.kind = 'one_of_one' AND i.status IN ('sold', 'available')
        GROUP BY i.id, i.title, i.status
        HAVING (i.status = 'sold') <> bool_or(order_holds_items(o.restocked_at, o.status, o.dispatched_at))
        ORDER BY i.id
        """
    )
    return [
        (r["id"], r["title"], "sold_without_order" if r["status"] == "sold" else "available_but_ordered") for r in rows
    ]


async def select_stock_count_mismatches(conn: asyncpg.Connection, limit: int = 500) -> list[tuple[int, str, int, int]]:
    """(item id, title, stock, expected) for stable items whose count is not their starting stock
    less the units their orders hold."""
    rows = await conn.fetch(
        """
        SELECT i.id, coalesce(i.title, '') AS title, i.stock, i.stock_start - coalesce(h.units, 0) AS expected
        FROM items i
        LEFT JOIN (SELECT l.item_id, sum(l.quantity) AS units
                   FROM order_lines l JOIN orders o ON o.id = l.order_id
                   WHERE order_holds_items(o.restocked_at, o.status, o.dispatched_at)
                   GROUP BY l.item_id) h ON h.item_id = i.id
        WHERE i.kind = 'stable' AND i.stock IS NOT NULL AND i.stock_start IS NOT NULL
          AND i.stock <> i.stock_start - coalesce(h.units, 0)
        ORDER BY i.id LIMIT $1
        """,
        limit,
    )
    return [(r["id"], r["title"], r["stock"], r["expected"]) for r in rows]
