"""Incoming webhook events, stored once per provider event id."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg


async def insert_webhook_event(conn: asyncpg.Connection, *, provider: str, event_id: str, event_type: str,
                               payload: Mapping[str, Any]) -> bool:
    """Store an event; False when it was stored before (a replay)."""
    return await conn.fetchval(
        """
        INSERT INTO webhook_events (provider, event_id, event_type, payload) VALUES ($1, $2, $3, $4)
        ON CONFLICT (provider, event_id) DO NOTHING RETURNING id
        """, provider, event_id, event_type, json.dumps(dict(payload), default=str)) is not None


async def update_webhook_processed(conn: asyncpg.Connection, *, provider: str, event_id: str) -> None:
    """Mark an event processed (the first time only)."""
    await conn.execute(
        "UPDATE webhook_events SET processed_at = coalesce(processed_at, now()) WHERE provider = $1 AND event_id = $2",
        provider, event_id)
