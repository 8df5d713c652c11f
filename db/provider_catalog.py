"""The print provider's catalog and the runs that sync it, one page at a time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class CatalogVariant:
    """One sellable variant of a provider product, at its price."""

    product_id: str
    variant_id: str
    title: str | None
    variant_title: str | None
    price_cents: int | None
    enabled: bool


@dataclass(frozen=True)
class CatalogSync:
    """A sync run: where it goes on from."""

    id: int
    page_size: int
    next_page: int
    finished: bool


async def start_catalog_sync(conn: asyncpg.Connection, provider: str, page_size: int) -> CatalogSync:
    """The provider's unfinished run (resumed where it stopped), or a new one from page 1."""
    row = await conn.fetchrow(
        """
        INSERT INTO catalog_syncs (provider, page_size) VALUES ($1, $2)
        ON CONFLICT (provider) WHERE finished_at IS NULL DO NOTHING RETURNING id, page_size, next_page, finished_at
        """,
        provider,
        page_size,
    )
    if row is None:
        row = await conn.fetchrow(
            "SELECT id, page_size, next_page, finished_at FROM catalog_syncs"
            " WHERE provider = $1 AND finished_at IS NULL",
            provider,
        )
    return CatalogSync(row["id"], row["page_size"], row["next_page"], row["finished_at"] is not None)


async def select_catalog_sync(conn: asyncpg.Connection, sync_id: int) -> CatalogSync | None:
    """One run, or None."""
    row = await conn.fetchrow("SELECT id, page_size, next_page, finished_at FROM catalog_syncs WHERE id = $1", sync_id)
    return (
        None
        if row is None
        else CatalogSync(row["id"], row["page_size"], row["next_page"], row["finished_at"] is not None)
    )


async def upsert_catalog(conn: asyncpg.Connection, provider: str, variants: Iterable[CatalogVariant]) -> int:
    """Store variants and their prices; items sold from them take the provider's price. Returns how many."""
    rows = [
        (provider, v.product_id, v.variant_id, v.title, v.variant_title, v.price_cents, v.enabled) for v in variants
    ]
    await conn.executemany(
        """
        INSERT INTO provider_catalog (provider, product_id, variant_id, title, variant_title, price_cents, enabled)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (provider, product_id, variant_id) DO UPDATE SET title = EXCLUDED.title,
            variant_title = EXCLUDED.variant_title, price_cents = EXCLUDED.price_cents, enabled = EXCLUDED.enabled,
            synced_at = now()
        """,
        rows,
    )
    await conn.executemany(
        """
        UPDATE items SET price_cents = $3
        WHERE kind = 'print_on_demand' AND attributes->>'printify_product_id' = $1
          AND attributes->>'printify_variant_id' = $2 AND price_cents IS DISTINCT FROM $3 AND $3 IS NOT NULL
        """,
        [(r[1], r[2], r[5]) for r in rows],
    )
    return len(rows)


async def update_catalog_sync(conn: asyncpg.Connection, sync_id: int, *, page: int, variants: int, more: bool) -> bool:
    """Note `page` done (once: guarded by the page it was on); the run ends when no page follows."""
    return (
        await conn.fetchval(
            """
        UPDATE catalog_syncs SET next_page = $2 + 1, variants = variants + $3,
                                 finished_at = CASE WHEN $4 THEN NULL ELSE now() END
        WHERE id = $1 AND next_page = $2 AND finished_at IS NULL RETURNING id
        """,
            sync_id,
            page,
            variants,
            more,
        )
        is not None
    )
