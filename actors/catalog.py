"""Catalog in (queue `ingest`): Payload CMS product and brand events mirrored into items; style seeds added.

Each event is stored once by its id (a replay changes nothing); an update older than the
stored product is ignored; rehosting (then embedding) runs only when the images changed,
enrichment only when the text did, each written to the job outbox in the product's transaction
(a replayed event is a no-op, so a step enqueued after the commit could be lost for good).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import dramatiq

from actors.clients import get_providers
from actors.embed import embed_seeds
from actors.enrich import enrich_items
from actors.ingest import RETRIES, rehost_images
from broker.waits import Failure
from config.settings import get_settings
from db.catalog import Applied, apply_product, upsert_brand, upsert_order_status
from db.outbox import insert_job
from db.pool import get_process_pool
from db.seeds import upsert_seed
from db.webhooks import insert_webhook_event, update_webhook_processed
from domain.catalog import BrandChanged, OrderStatusChanged, ProductChanged
from domain.contracts import INGEST_QUEUE
from media.fetch import FetchFailed, FetchLimits, fetch_image, parse_hosts
from media.images import ImageRejected, reencode
from media.store import MediaNotFound, open_store

PROVIDER = "payload"


@dramatiq.actor(queue_name=INGEST_QUEUE, time_limit=60_000, **RETRIES)
async def mirror_product(event_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply one Payload `product.changed` (once by event id, never over a newer one), then rehost/enrich."""
    event = ProductChanged.model_validate(payload)
    async with get_process_pool().acquire() as conn, conn.transaction():
        if not await insert_webhook_event(
            conn, provider=PROVIDER, event_id=event_id, event_type=event.event, payload=payload
        ):
            return {"event_id": event_id, "replayed": True}
        applied = await apply_product(conn, event)
        steps = await next_steps(conn, applied) if applied is not None else {}
        await update_webhook_processed(conn, provider=PROVIDER, event_id=event_id)
    if applied is None:
        return {"event_id": event_id, "stale": True}
    return {"event_id": event_id, "items": applied.item_ids, **steps}


async def next_steps(conn: asyncpg.Connection, applied: Applied) -> dict[str, list[int]]:
    """Rehost (which embeds) when the images changed, enrich when only the text did: written to the job outbox."""
    if not applied.live:
        return {"rehost": [], "enrich": []}
    if applied.images_changed:
        return {
            "rehost": [
                await insert_job(conn, rehost_images.actor_name, [i], unique_key=f"rehost_images:{i}")
                for i in applied.item_ids
            ],
            "enrich": [],
        }
    if applied.text_changed:
        return {"rehost": [], "enrich": [await insert_job(conn, enrich_items.actor_name, [applied.item_ids, True])]}
    return {"rehost": [], "enrich": []}


@dramatiq.actor(queue_name=INGEST_QUEUE, time_limit=30_000, **RETRIES)
async def mirror_brand(event_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply one Payload `brand.changed` (once by event id, never over a newer one)."""
    event = BrandChanged.model_validate(payload)
    async with get_process_pool().acquire() as conn, conn.transaction():
        if not await insert_webhook_event(
            conn, provider=PROVIDER, event_id=event_id, event_type=event.event, payload=payload
        ):
            return {"event_id": event_id, "replayed": True}
        applied = await upsert_brand(conn, event.brand, event.ts)
        await update_webhook_processed(conn, provider=PROVIDER, event_id=event_id)
    return {"event_id": event_id, "applied": applied}


@dramatiq.actor(queue_name=INGEST_QUEUE, time_limit=30_000, **RETRIES)
async def mirror_order_status(event_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply one Payload `order.status_changed` (once by event id, never over a newer one)."""
    event = OrderStatusChanged.model_validate(payload)
    async with get_process_pool().acquire() as conn, conn.transaction():
        if not await insert_webhook_event(
            conn, provider=PROVIDER, event_id=event_id, event_type=event.event, payload=payload
        ):
            return {"event_id": event_id, "replayed": True}
        applied = await upsert_order_status(conn, event)
        await update_webhook_processed(conn, provider=PROVIDER, event_id=event_id)
    return {"event_id": event_id, "applied": applied}


@dramatiq.actor(queue_name=INGEST_QUEUE, time_limit=120_000, throws=(ImageRejected,), **RETRIES)
async def add_seed(label: str, image_url: str, description: str | None = None) -> dict[str, Any]:
    """Rehost a style seed's image (cleaned, content-addressed), store the seed by label, then embed it."""
    settings = get_settings()
    limits = FetchLimits(
        max_bytes=settings.rehost_max_bytes,
        timeout_s=settings.rehost_timeout_s,
        allowed_hosts=parse_hosts(settings.rehost_allowed_hosts),
    )
    try:
        data = await fetch_image(get_providers().session, image_url, limits)
    except FetchFailed as error:
        raise Failure(f"seed {label!r}: {error}", error.delay_ms) from None
    return await store_seed(label, description, data)


@dramatiq.actor(queue_name=INGEST_QUEUE, time_limit=120_000, throws=(ImageRejected,), **RETRIES)
async def add_seed_upload(label: str, upload_key: str, description: str | None = None) -> dict[str, Any]:
    """A style seed from an image the API staged (POST /v1/seeds/upload): cleaned, stored, embedded."""
    try:
        data = await asyncio.to_thread(open_store(get_settings()).get, upload_key)
    except MediaNotFound:  # purged as an orphan before a worker got to it
        raise ImageRejected(f"seed {label!r}: the upload {upload_key} is no longer stored; upload it again") from None
    return await store_seed(label, description, data)


async def store_seed(label: str, description: str | None, data: bytes) -> dict[str, Any]:
    """Re-encode the image, store it content-addressed, upsert the seed; its embedding goes to the job outbox."""
    settings = get_settings()
    clean = await asyncio.to_thread(
        reencode, data, max_pixels=settings.rehost_max_pixels, max_edge=settings.rehost_max_edge_px
    )
    key = await asyncio.to_thread(open_store(settings).put, clean, extension="jpg")
    async with get_process_pool().acquire() as conn, conn.transaction():
        seed_id, unembedded = await upsert_seed(conn, label=label, description=description, media_key=key)
        job = (
            await insert_job(conn, embed_seeds.actor_name, [[seed_id]], unique_key=f"embed_seeds:{seed_id}")
            if unembedded
            else None
        )
    return {"seed_id": seed_id, "media_key": key, "embed_job": job}
