"""Retention: delete rows past their keeping period, in small batches, and tell which media keys are in use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

BATCH = 5_000

# table -> the condition (with $1 = the cutoff) of rows that are past due
_PAST_DUE = {
    # finished ones only: a pending or sending notification still guards its idempotency key
    "notifications": "created_at < $1 AND status IN ('sent', 'failed', 'skipped', 'unknown')",
    # processed ones only: an unprocessed event is work not done, kept until someone looks
    "webhook_events": "received_at < $1 AND processed_at IS NOT NULL",
    # the check that changed an item's status is its proof, kept for good
    "listing_checks": "checked_at < $1 AND NOT applied",
}


async def delete_past_due(conn: asyncpg.Connection, table: str, cutoff: datetime, *, batch: int = BATCH) -> int:
    """Delete `table`'s rows past due at `cutoff` (see _PAST_DUE), `batch` at a time; returns how many."""
    where = _PAST_DUE[table]
    total = 0
    while True:
        status = await conn.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} LIMIT {int(batch)})", cutoff
        )
        deleted = int(status.split()[-1])
        total += deleted
        if deleted < batch:
            return total


async def select_referenced_media_keys(conn: asyncpg.Connection, keys: Sequence[str]) -> set[str]:
    """Those of `keys` that an item or a style seed references."""
    rows = await conn.fetch(
        """
        SELECT k FROM unnest($1::text[]) AS k
        WHERE EXISTS (SELECT 1 FROM items WHERE media_keys @> ARRAY[k])
           OR EXISTS (SELECT 1 FROM style_seeds WHERE media_key = k)
        """,
        list(keys),
    )
    return {r["k"] for r in rows}
