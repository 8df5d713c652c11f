"""Listing checks: which items to check, and each decision stored with its evidence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from domain.listing_checks import ITEM_STATUS_OF


@dataclass(frozen=True)
class CheckTarget:
    """What a check needs to know about one item (source_url stays server-side, except for edge checks)."""

    id: int
    source: str
    source_listing_id: str
    source_url: str | None
    status: str


@dataclass(frozen=True)
class CheckRecord:
    """One stored check."""

    check_id: str
    item_id: int
    checked_at: datetime
    outcome: str
    via: str
    http_status: int | None
    final_url: str | None
    markers: tuple[str, ...]
    error: str | None
    reason: str | None
    status_before: str | None
    applied: bool


@dataclass(frozen=True)
class Recorded:
    """What storing a check did: the item's status after, whether it changed, its unknown streak."""

    stored: bool
    status: str
    applied: bool
    unknown_streak: int


async def select_check_targets(
    conn: asyncpg.Connection, *, after_id: int = 0, limit: int = 500, source: str | None = None
) -> list[CheckTarget]:
    """Available sourced items (of `source`) after `after_id`, in id order, except those with a recheck due later."""
    rows = await conn.fetch(
        """
        SELECT id, source, source_listing_id, source_url, status FROM items
        WHERE status = 'available' AND source_url IS NOT NULL AND id > $1 AND ($3::text IS NULL OR source = $3)
          AND (next_check_at IS NULL OR next_check_at <= now())
        ORDER BY id LIMIT $2
        """,
        after_id,
        limit,
        source,
    )
    return [CheckTarget(**dict(r)) for r in rows]


async def select_check_target(conn: asyncpg.Connection, item_id: int) -> CheckTarget | None:
    """One item's check target (any status), or None."""
    row = await conn.fetchrow(
        "SELECT id, source, source_listing_id, source_url, status FROM items WHERE id = $1", item_id
    )
    return None if row is None else CheckTarget(**dict(row))


async def record_check(
    conn: asyncpg.Connection,
    *,
    check_id: str,
    item_id: int,
    outcome: str,
    via: str,
    http_status: int | None,
    final_url: str | None,
    markers: list[str],
    error: str | None,
    reason: str | None,
    elapsed_ms: int | None,
) -> Recorded:
    """Store a check once per check_id and apply it: sold/archived move an available item (run in a transaction)."""
    item = await conn.fetchrow("SELECT status, check_unknown_streak FROM items WHERE id = $1 FOR UPDATE", item_id)
    if item is None:
        raise LookupError(f"no item {item_id}")
    new_status = ITEM_STATUS_OF.get(outcome)
    applies = new_status is not None and item["status"] == "available"
    stored = await conn.fetchval(
        """
        INSERT INTO listing_checks (check_id, item_id, outcome, via, http_status, final_url, markers, error, reason,
                                    status_before, applied, elapsed_ms)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT (check_id) DO NOTHING RETURNING id
        """,
        check_id,
        item_id,
        outcome,
        via,
        http_status,
        final_url,
        markers,
        _cut(error),
        _cut(reason),
        item["status"],
        applies,
        elapsed_ms,
    )
    if stored is None:  # a redelivery: the first one already applied it
        return Recorded(False, item["status"], False, item["check_unknown_streak"])
    row = await conn.fetchrow(
        """
        UPDATE items SET status = CASE WHEN $3 THEN $2 ELSE status END,
                         last_checked_at = now(), last_check_outcome = $4,
                         check_unknown_streak = CASE WHEN $4 = 'unknown' THEN check_unknown_streak + 1 ELSE 0 END,
                         next_check_at = NULL
        WHERE id = $1 RETURNING status, check_unknown_streak
        """,
        item_id,
        new_status,
        applies,
        outcome,
    )
    return Recorded(True, row["status"], applies, row["check_unknown_streak"])


async def update_next_check(conn: asyncpg.Connection, item_id: int, delay_ms: int) -> None:
    """Note that a recheck of this item is scheduled `delay_ms` from now (the fan-out skips it until then)."""
    await conn.execute(
        "UPDATE items SET next_check_at = now() + make_interval(secs => $2) WHERE id = $1", item_id, delay_ms / 1000
    )


async def select_checks(conn: asyncpg.Connection, item_id: int) -> list[CheckRecord]:
    """An item's stored checks, newest first."""
    rows = await conn.fetch(
        """
        SELECT check_id, item_id, checked_at, outcome, via, http_status, final_url, markers, error, reason,
               status_before, applied
        FROM listing_checks WHERE item_id = $1 ORDER BY checked_at DESC, id DESC
        """,
        item_id,
    )
    return [CheckRecord(**{**dict(r), "markers": tuple(r["markers"])}) for r in rows]


def _cut(text: str | None) -> str | None:
    return None if text is None else text[:1000]
