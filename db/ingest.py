"""Scraped listings into items: deliveries, the upsert, rehosted media and the review decision."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from domain.listings import Listing
from domain.margin import MarginScore

# Statuses an ingest never changes: someone (a buyer, the pruner, an admin) decided them.
FINAL_STATUSES = ("sold", "archived", "rejected")


@dataclass(frozen=True)
class IngestedItem:
    """An item an upsert inserted or changed, and whether its images must be rehosted."""

    id: int
    created: bool
    status: str
    needs_rehost: bool


@dataclass(frozen=True)
class RehostTarget:
    """The image state of one item."""

    id: int
    status: str
    image_urls: tuple[str, ...]
    rehosted_urls: tuple[str, ...] | None
    media_keys: tuple[str, ...]

    @property
    def current(self) -> bool:
        """True when media_keys were made from exactly the current image URLs."""
        return self.rehosted_urls is not None and self.rehosted_urls == self.image_urls


async def insert_delivery(conn: asyncpg.Connection, delivery_id: str, *, source: str, listings: int) -> bool:
    """Record an edge delivery; False when this id was recorded before (a replay)."""
    inserted = await conn.fetchval(
        """
        INSERT INTO ingest_deliveries (delivery_id, source, listings) VALUES ($1, $2, $3)
        ON CONFLICT (delivery_id) DO NOTHING RETURNING true
        """,
        delivery_id,
        source,
        listings,
    )
    return bool(inserted)


async def update_items_sold_at_source(conn: asyncpg.Connection, source: str, listing_ids: Sequence[str]) -> list[int]:
    """Mark pending/available items of these listings sold (the scrape saw them sold); returns their ids."""
    rows = await conn.fetch(
        """
        UPDATE items SET status = 'sold'
        WHERE source = $1 AND source_listing_id = ANY($2::text[]) AND status IN ('pending', 'available')
        RETURNING id
        """,
        source,
        list(listing_ids),
    )
    return [r["id"] for r in rows]


_UPSERT = """
WITH incoming AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::int[], $9::int[], $10::text[], $11::text[], $12::int[], $13::text[], $14::jsonb[])
        AS t(source, source_listing_id, source_url, title, brand, size, condition, price_cents, cost_cents,
             currency, verdict, margin_cents, image_urls, attributes)
)
INSERT INTO items AS i (source, source_listing_id, source_url, title, brand, size, condition, price_cents, cost_cents,
                        currency, verdict, margin_cents, image_urls, attributes, kind, status)
SELECT source, source_listing_id, source_url, title, brand, size, condition, price_cents, cost_cents, currency,
       verdict, margin_cents, image_urls::text[], jsonb_build_object('listing', attributes), 'one_of_one',
       CASE WHEN $15 AND verdict = 'green' THEN 'available' ELSE 'pending' END
FROM incoming
ON CONFLICT (source, source_listing_id) DO UPDATE SET
    source_url = EXCLUDED.source_url, title = EXCLUDED.title, brand = EXCLUDED.brand, size = EXCLUDED.size,
    condition = EXCLUDED.condition, price_cents = EXCLUDED.price_cents, cost_cents = EXCLUDED.cost_cents,
    currency = EXCLUDED.currency, verdict = EXCLUDED.verdict, margin_cents = EXCLUDED.margin_cents,
    image_urls = EXCLUDED.image_urls, attributes = i.attributes || EXCLUDED.attributes,
    -- only a pending item moves (auto-approval); sold, archived, rejected and available stay as they are
    status = CASE WHEN i.status = 'pending' THEN EXCLUDED.status ELSE i.status END
WHERE (i.source_url, i.title, i.brand, i.size, i.condition, i.price_cents, i.cost_cents, i.currency, i.verdict,
       i.margin_cents, i.image_urls, i.attributes || EXCLUDED.attributes)
      IS DISTINCT FROM
      (EXCLUDED.source_url, EXCLUDED.title, EXCLUDED.brand, EXCLUDED.size, EXCLUDED.condition, EXCLUDED.price_cents,
       EXCLUDED.cost_cents, EXCLUDED.currency, EXCLUDED.verdict, EXCLUDED.margin_cents, EXCLUDED.image_urls,
       i.attributes)
   OR (i.status = 'pending' AND EXCLUDED.status <> 'pending')
RETURNING i.id, (xmax = 0) AS created, i.status,
          cardinality(i.image_urls) > 0 AND i.image_urls IS DISTINCT FROM i.rehosted_urls
          AND i.status <> 'rejected' AS needs_rehost
"""


async def upsert_listings(
    conn: asyncpg.Connection, scored: Sequence[tuple[Listing, MarginScore]], *, auto_approve: bool
) -> list[IngestedItem]:
    """Insert new listings (pending, or available when green and `auto_approve`) and update known ones.

    A known listing gets the scrape's fields, never a status back from sold/archived/rejected.
    Only inserted or actually changed items are returned (an identical re-scrape returns none).
    Listings are one_of_one items: cost_cents is their price, price_cents our resale estimate.
    """
    # postgres arrays of arrays must be rectangular: image lists travel as text[] literals
    columns: list[list[object]] = [[] for _ in range(14)]
    for listing, score in scored:
        values = (
            listing.source,
            listing.source_listing_id,
            listing.url,
            listing.title,
            listing.brand,
            listing.size,
            listing.condition,
            score.resale_cents if listing.currency else None,
            listing.price_cents if listing.currency else None,
            listing.currency,
            score.verdict,
            score.margin_cents,
            _text_array(listing.image_urls),
            json.dumps(listing.attributes),
        )
        for column, value in zip(columns, values):
            column.append(value)
    rows = await conn.fetch(_UPSERT, *columns, auto_approve)
    return [
        IngestedItem(id=r["id"], created=r["created"], status=r["status"], needs_rehost=r["needs_rehost"]) for r in rows
    ]


def _text_array(values: Sequence[str]) -> str:
    """A Postgres text[] literal (every element quoted and escaped)."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


async def select_item_ids_to_rehost(conn: asyncpg.Connection, source: str, listing_ids: Sequence[str]) -> list[int]:
    """Ids of these listings' items whose media_keys were not made from their current image URLs."""
    rows = await conn.fetch(
        """
        SELECT id FROM items
        WHERE source = $1 AND source_listing_id = ANY($2::text[]) AND status <> 'rejected'
          AND cardinality(image_urls) > 0 AND image_urls IS DISTINCT FROM rehosted_urls
        ORDER BY id
        """,
        source,
        list(listing_ids),
    )
    return [r["id"] for r in rows]


async def select_rehost_target(conn: asyncpg.Connection, item_id: int) -> RehostTarget | None:
    """The image URLs of an item and what they were last rehosted from; None when no such item."""
    row = await conn.fetchrow(
        "SELECT id, status, image_urls, rehosted_urls, media_keys FROM items WHERE id = $1", item_id
    )
    if row is None:
        return None
    return RehostTarget(
        id=row["id"],
        status=row["status"],
        image_urls=tuple(row["image_urls"]),
        rehosted_urls=None if row["rehosted_urls"] is None else tuple(row["rehosted_urls"]),
        media_keys=tuple(row["media_keys"]),
    )


async def update_item_media(
    conn: asyncpg.Connection, item_id: int, *, image_urls: Sequence[str], media_keys: Sequence[str], error: str | None
) -> bool:
    """Store the rehosted keys made from `image_urls`; False when the item's URLs changed meanwhile."""
    updated = await conn.fetchval(
        """
        UPDATE items SET media_keys = $3, rehosted_urls = $2, rehosted_at = now(), rehost_error = $4
        WHERE id = $1 AND image_urls = $2::text[] RETURNING true
        """,
        item_id,
        list(image_urls),
        list(media_keys),
        error[:500] if error else None,
    )
    return bool(updated)


async def update_item_rehost_error(conn: asyncpg.Connection, item_id: int, error: str) -> None:
    """Record why none of an item's images could be rehosted (its old media keys stay)."""
    await conn.execute("UPDATE items SET rehost_error = $2 WHERE id = $1", item_id, error[:500])


async def update_item_review(
    conn: asyncpg.Connection, item_id: int, *, status: str, from_statuses: Sequence[str]
) -> str | None:
    """Move an item to `status` (approve/reject) if it is in one of `from_statuses`; returns the status before."""
    return await conn.fetchval(
        """
        UPDATE items AS i SET status = $2, reviewed_at = now()
        FROM (SELECT id, status FROM items WHERE id = $1 FOR UPDATE) AS before
        WHERE i.id = before.id AND before.status = ANY($3::text[])
        RETURNING before.status
        """,
        item_id,
        status,
        list(from_statuses),
    )


async def select_item_status(conn: asyncpg.Connection, item_id: int) -> str | None:
    """An item's status; None when no such item."""
    return await conn.fetchval("SELECT status FROM items WHERE id = $1", item_id)
