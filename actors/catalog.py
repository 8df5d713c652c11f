"""Catalog in (queue `ingest`): Payload CMS product and brand events mirrored into items.

Each event is stored once by its id (a replay changes nothing); an update older than the
stored product is ignored; rehosting (then embedding) runs only when the images changed,
enrichment only when the text did, each enqueued after the commit. A step lost to a crash
after the commit is picked up by the enrichment sweep and the embedding sync.
"""
from __future__ import annotations

from typing import Any

import dramatiq

from actors.chain import enqueue
from actors.enrich import enrich_items
from actors.ingest import RETRIES, rehost_images
from db.catalog import Applied, apply_product, upsert_brand
from db.pool import get_process_pool
from db.webhooks import insert_webhook_event, update_webhook_processed
from domain.catalog import BrandChanged, ProductChanged
from domain.contracts import INGEST_QUEUE

PROVIDER = "payload"


@dramatiq.actor(queue_name=INGEST_QUEUE, time_limit=60_000, **RETRIES)
async def mirror_product(event_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply one Payload `product.changed` (once by event id, never over a newer one), then rehost/enrich."""
    event = ProductChanged.model_validate(payload)
    async with get_process_pool().acquire() as conn, conn.transaction():
        if not await insert_webhook_event(conn, provider=PROVIDER, event_id=event_id, event_type=event.event,
                                          payload=payload):
            return {"event_id": event_id, "replayed": True}
        applied = await apply_product(conn, event)
        await update_webhook_processed(conn, provider=PROVIDER, event_id=event_id)
    if applied is None:
        return {"event_id": event_id, "stale": True}
    return {"event_id": event_id, "items": applied.item_ids, **await next_steps(applied)}


async def next_steps(applied: Applied) -> dict[str, Any]:
    """Rehost (which embeds) when the images changed, enrich when only the text did; nothing otherwise."""
    if not applied.live:
        return {"rehost": [], "enrich": []}
    if applied.images_changed:
        jobs = [await enqueue(rehost_images, i, unique_key=f"rehost_images:{i}") for i in applied.item_ids]
        return {"rehost": jobs, "enrich": []}
    if applied.text_changed:
        return {"rehost": [], "enrich": [await enqueue(enrich_items, applied.item_ids, True)]}
    return {"rehost": [], "enrich": []}


@dramatiq.actor(queue_name=INGEST_QUEUE, time_limit=30_000, **RETRIES)
async def mirror_brand(event_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply one Payload `brand.changed` (once by event id, never over a newer one)."""
    event = BrandChanged.model_validate(payload)
    async with get_process_pool().acquire() as conn, conn.transaction():
        if not await insert_webhook_event(conn, provider=PROVIDER, event_id=event_id, event_type=event.event,
                                          payload=payload):
            return {"event_id": event_id, "replayed": True}
        applied = await upsert_brand(conn, event.brand, event.ts)
        await update_webhook_processed(conn, provider=PROVIDER, event_id=event_id)
    return {"event_id": event_id, "applied": applied}
