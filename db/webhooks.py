"""Incoming webhook events, stored once per provider event id."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg

from domain.webhooks import UnmatchedEvent, ref_kind


async def insert_webhook_event(
    conn: asyncpg.Connection, *, provider: str, event_id: str, event_type: str, payload: Mapping[str, Any]
) -> bool:
    """Store an event; False when it was stored before (a replay)."""
    return (
        await conn.fetchval(
            """
        INSERT INTO webhook_events (provider, event_id, event_type, payload) VALUES ($1, $2, $3, $4)
        ON CONFLICT (provider, event_id) DO NOTHING RETURNING id
        """,
            provider,
            event_id,
            event_type,
            json.dumps(dict(payload), default=str),
        )
        is not None
    )


async def update_webhook_processed(conn: asyncpg.Connection, *, provider: str, event_id: str) -> None:
    """Mark an event processed (the first time only)."""
    await conn.execute(
        "UPDATE webhook_events SET processed_at = coalesce(processed_at, now()) WHERE provider = $1 AND event_id = $2",
        provider,
        event_id,
    )


async def update_webhook_unmatched(conn: asyncpg.Connection, *, provider: str, event_id: str, order_ref: str) -> None:
    """Keep an event about an order we do not know (yet), with the session or payment intent it names."""
    await conn.execute(
        "UPDATE webhook_events SET order_ref = $3, unmatched_at = coalesce(unmatched_at, now())"
        " WHERE provider = $1 AND event_id = $2 AND processed_at IS NULL",
        provider,
        event_id,
        order_ref,
    )


async def select_unmatched_event_ids(conn: asyncpg.Connection, *, provider: str, refs: list[str]) -> list[str]:
    """Kept events naming one of `refs` (an order just created), oldest first."""
    rows = await conn.fetch(
        "SELECT event_id FROM webhook_events WHERE provider = $1 AND order_ref = ANY($2::text[])"
        " AND unmatched_at IS NOT NULL AND processed_at IS NULL ORDER BY received_at, id",
        provider,
        refs,
    )
    return [r["event_id"] for r in rows]


async def select_unmatched_events(
    conn: asyncpg.Connection, *, types: list[str], older_than_s: float, limit: int = 500
) -> list[dict[str, Any]]:
    """Kept events of `types` still about no known order after `older_than_s`, oldest first (reconciliation)."""
    rows = await conn.fetch(
        """
        SELECT provider, event_id, event_type, order_ref, received_at FROM webhook_events
        WHERE unmatched_at IS NOT NULL AND processed_at IS NULL AND event_type = ANY($1::text[])
          AND unmatched_at < now() - make_interval(secs => $2)
        ORDER BY received_at LIMIT $3
        """,
        types,
        older_than_s,
        limit,
    )
    return [dict(r) for r in rows]


async def select_unmatched_event_page(
    conn: asyncpg.Connection, *, source: str | None = None, before: int | None = None, limit: int = 50
) -> list[UnmatchedEvent]:
    """Kept events that still name no known order, newest first, below row id `before` (the report's page).

    A kept event whose order has appeared since (a Printify order recorded after its webhook, a Stripe
    event not yet replayed) is left out: it no longer refers to nothing.
    """
    rows = await conn.fetch(
        """
        SELECT w.id, w.provider AS source, w.event_id, w.event_type, w.received_at,
               coalesce(w.order_ref, '') AS order_ref
        FROM webhook_events w
        WHERE w.unmatched_at IS NOT NULL AND w.processed_at IS NULL
          AND ($1::text IS NULL OR w.provider = $1) AND ($2::bigint IS NULL OR w.id < $2)
          AND NOT (w.provider = 'printify'
                   AND EXISTS (SELECT 1 FROM orders o WHERE o.printify_order_id = w.order_ref))
          AND NOT (w.provider = 'stripe'
                   AND EXISTS (SELECT 1 FROM orders o WHERE o.stripe_session_id = w.order_ref
                                                         OR o.stripe_payment_intent = w.order_ref))
        ORDER BY w.id DESC LIMIT $3
        """,
        source,
        before,
        limit,
    )
    return [UnmatchedEvent(**dict(r), refers_to=ref_kind(r["source"], r["order_ref"])) for r in rows]
