"""The CMS mirror: brands and products applied once and in order of their `ts`, products as items."""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from domain.catalog import Brand, OrderStatusChanged, ProductChanged, catalog_items, image_hash, live, newer, text_hash


@dataclass(frozen=True)
class Applied:
    """A product update that was newer than the stored one: its items, and what changed."""

    item_ids: list[int]
    live: bool
    text_changed: bool
    images_changed: bool


async def upsert_brand(conn: asyncpg.Connection, brand: Brand, ts: object) -> bool:
    """Store a brand as of `ts` and rename it on its items; False when a newer one is stored."""
    applied = await conn.fetchval(
        """
        INSERT INTO catalog_brands (payload_brand_id, name, data, ts) VALUES ($1, $2, $3, $4)
        ON CONFLICT (payload_brand_id) DO UPDATE SET name = EXCLUDED.name, data = EXCLUDED.data, ts = EXCLUDED.ts,
                                                     updated_at = now()
        WHERE catalog_brands.ts < EXCLUDED.ts RETURNING 1
        """,
        brand.payloadBrandId,
        brand.name,
        brand.model_dump_json(),
        ts,
    )
    if applied:
        await conn.execute(
            "UPDATE items SET brand = $2 WHERE source = 'payload' AND attributes ->> 'payload_brand_id' = $1"
            " AND brand IS DISTINCT FROM $2",
            brand.payloadBrandId,
            brand.name,
        )
    return bool(applied)


async def apply_product(conn: asyncpg.Connection, event: ProductChanged) -> Applied | None:
    """Upsert the product's items if `event` is newer than the stored product (None: older or equal, ignored).

    Run in a transaction: the product row is locked, so two updates of one product apply one after the other.
    """
    await conn.execute(
        "INSERT INTO catalog_products (payload_product_id) VALUES ($1) ON CONFLICT DO NOTHING", event.payloadProductId
    )
    stored = await conn.fetchrow(
        "SELECT ts, text_hash, image_hash FROM catalog_products WHERE payload_product_id = $1 FOR UPDATE",
        event.payloadProductId,
    )
    if not newer(event.ts, stored["ts"]):
        return None
    texts, images = text_hash(event), image_hash(event)
    brand_id = event.brand.payloadBrandId if event.brand else None
    await conn.execute(
        "UPDATE catalog_products SET ts = $2, text_hash = $3, image_hash = $4, payload_brand_id = $5,"
        " updated_at = now() WHERE payload_product_id = $1",
        event.payloadProductId,
        event.ts,
        texts,
        images,
        brand_id,
    )
    ids = []
    for item in catalog_items(event):
        ids.append(
            await conn.fetchval(
                """
            INSERT INTO items (source, source_listing_id, title, brand, kind, status, price_cents, currency, stock,
                               image_urls, attributes)
            VALUES ('payload', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (source, source_listing_id) DO UPDATE SET
                title = EXCLUDED.title, brand = EXCLUDED.brand, kind = EXCLUDED.kind, status = EXCLUDED.status,
                price_cents = EXCLUDED.price_cents, currency = EXCLUDED.currency, stock = EXCLUDED.stock,
                image_urls = EXCLUDED.image_urls, attributes = EXCLUDED.attributes
            RETURNING id
            """,
                item.source_listing_id,
                item.title,
                item.brand,
                item.kind,
                item.status,
                item.price_cents,
                item.currency,
                item.stock,
                item.image_urls,
                json.dumps({**item.attributes, "payload_brand_id": brand_id}),
            )
        )
    # the CMS's count is the truth from now on: the starting stock is that plus what orders hold
    # (a statement of its own: it sees every order that claimed these rows before our upsert locked them)
    await conn.execute(
        "UPDATE items SET stock_start = stock + item_units_held(id) WHERE id = ANY($1::bigint[])"
        " AND stock IS NOT NULL AND stock_start IS DISTINCT FROM stock + item_units_held(id)",
        ids,
    )
    # variants Payload no longer lists leave the storefront
    await conn.execute(
        "UPDATE items SET status = 'archived' WHERE source = 'payload' AND status = 'available'"
        " AND attributes ->> 'payload_product_id' = $1 AND NOT (id = ANY($2::bigint[]))",
        event.payloadProductId,
        ids,
    )
    return Applied(ids, live(event.product), texts != stored["text_hash"], images != stored["image_hash"])


async def upsert_order_status(conn: asyncpg.Connection, event: OrderStatusChanged) -> bool:
    """Store a CMS order's status as of `ts`; False when a newer one is stored (its trigger emits the event)."""
    return bool(
        await conn.fetchval(
            """
        INSERT INTO catalog_orders (payload_order_id, status, data, ts) VALUES ($1, $2, $3, $4)
        ON CONFLICT (payload_order_id) DO UPDATE SET status = EXCLUDED.status, data = EXCLUDED.data,
                                                     ts = EXCLUDED.ts, updated_at = now()
        WHERE catalog_orders.ts < EXCLUDED.ts RETURNING 1
        """,
            event.payloadOrderId,
            event.status,
            event.model_dump_json(),
            event.ts,
        )
    )
