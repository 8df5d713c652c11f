"""Ingest (queue `ingest`): scraped listings become scored items, their images are rehosted, admins review.

The chain: ingest_listings -> rehost_images(item) per item with new image URLs -> embed_items([item]).
Each step commits first and enqueues the next after; each is idempotent (delivery ids, guarded
SQL, content-addressed media, unique keys), so a redelivery or a retry repeats nothing.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage
from pydantic import ValidationError

from actors.chain import enqueue
from actors.clients import get_providers
from actors.embed import embed_items
from broker.waits import Failure, Wait, retry_policy
from config.settings import Settings, get_settings
from db.audit import insert_audit
from db.ingest import (
    IngestedItem,
    RehostTarget,
    insert_delivery,
    select_item_ids_to_rehost,
    select_item_status,
    select_rehost_target,
    update_item_media,
    update_item_review,
    update_items_sold_at_source,
    upsert_listings,
)
from db.pool import get_process_pool
from domain.admin import AuditEntry
from domain.contracts import INGEST_LISTINGS, INGEST_QUEUE
from domain.listings import Listing
from domain.margin import MarginPolicy, MarginScore, score_listing
from media.fetch import FetchFailed, FetchLimits, fetch_image, parse_hosts
from media.images import ImageRejected, reencode
from media.store import open_store

_DECODE_SLOTS = threading.BoundedSemaphore(2)
RETRIES: dict[str, Any] = {
    "retry_when": retry_policy(max_failures=5, max_waits=50),
    "min_backoff": 1_000,
    "max_backoff": 300_000,
}


class ReviewRefused(ValueError):
    """The item does not exist, or its status forbids this review decision."""


def margin_policy(settings: Settings) -> MarginPolicy:
    """The margin policy the settings describe."""
    return MarginPolicy(
        default_multiplier=settings.margin_default_multiplier,
        brand_multipliers=settings.margin_brand_multipliers,
        fee_percent=settings.margin_fee_percent,
        shipping_cents=settings.margin_shipping_cents,
        green_margin_cents=settings.margin_green_cents,
    )


def parse_listings(source: str, raw: list[dict[str, Any]]) -> tuple[list[Listing], list[str]]:
    """The valid listings of this source (the last of duplicates wins), and why the others were dropped."""
    valid: dict[str, Listing] = {}
    dropped: list[str] = []
    for index, entry in enumerate(raw):
        try:
            listing = Listing.model_validate(entry)
        except ValidationError as error:
            dropped.append(
                f"listing {index}: {error.error_count()} invalid field(s): "
                + ", ".join(".".join(map(str, e["loc"])) for e in error.errors())
            )
            continue
        if listing.source != source:
            dropped.append(f"listing {index}: source {listing.source!r} is not {source!r}")
            continue
        valid[listing.source_listing_id] = listing
    return list(valid.values()), dropped


def score(policy: MarginPolicy, listing: Listing) -> MarginScore:
    """A listing's margin score (a price without a currency counts as no price)."""
    return score_listing(policy, listing.price_cents if listing.currency else None, listing.brand)


@dramatiq.actor(actor_name=INGEST_LISTINGS, queue_name=INGEST_QUEUE, time_limit=120_000, **RETRIES)
async def ingest_listings(source: str, listings: list[dict[str, Any]], delivery_id: str) -> dict[str, Any]:
    """Score and upsert one edge delivery of listings (a replayed delivery id changes nothing), then rehost."""
    valid, dropped = parse_listings(source, listings)
    settings = get_settings()
    policy = margin_policy(settings)
    summary: dict[str, Any] = {
        "delivery_id": delivery_id,
        "received": len(listings),
        "dropped": dropped[:20],
        "edge_node": edge_node(),
    }
    async with get_process_pool().acquire() as conn:
        async with conn.transaction():
            if await insert_delivery(conn, delivery_id, source=source, listings=len(listings)):
                sold = await update_items_sold_at_source(conn, source, [x.source_listing_id for x in valid if x.sold])
                items = await upsert_listings(
                    conn, [(x, score(policy, x)) for x in valid if not x.sold], auto_approve=settings.auto_approve_green
                )
                summary.update(summarise(items), sold=sold)
            else:
                summary["replayed"] = True
        # also on a replay: the first attempt may have committed and died before sending these
        to_rehost = await select_item_ids_to_rehost(conn, source, [x.source_listing_id for x in valid])
    jobs = [await enqueue(rehost_images, item_id, unique_key=f"rehost_images:{item_id}") for item_id in to_rehost]
    return {**summary, "rehost": to_rehost, "rehost_jobs": jobs}


def edge_node() -> str | None:
    """The edge node the edge gateway attributed the delivery being ingested to (message option `edge_node`)."""
    message = CurrentMessage.get_current_message()
    return message.options.get("edge_node") if message is not None else None


def summarise(items: list[IngestedItem]) -> dict[str, list[int]]:
    """Which items an upsert created, updated and left available."""
    return {
        "created": [i.id for i in items if i.created],
        "updated": [i.id for i in items if not i.created],
        "available": [i.id for i in items if i.status == "available"],
    }


def _clean(data: bytes, settings: Settings) -> bytes:
    """Re-encode one image, at most two at a time per process (a decoded photo can take 100+ MB)."""
    with _DECODE_SLOTS:
        return reencode(data, max_pixels=settings.rehost_max_pixels, max_edge=settings.rehost_max_edge_px)


async def _rehost_one(url: str, settings: Settings) -> str:
    """Download, clean and store one image; returns its media key."""
    limits = FetchLimits(
        max_bytes=settings.rehost_max_bytes,
        timeout_s=settings.rehost_timeout_s,
        allowed_hosts=parse_hosts(settings.rehost_allowed_hosts),
    )
    data = await fetch_image(get_providers().session, url, limits)
    clean = await asyncio.to_thread(_clean, data, settings)
    return await asyncio.to_thread(open_store(settings).put, clean, extension="jpg")


async def rehost_all(target: RehostTarget, settings: Settings) -> tuple[list[str], list[str]]:
    """Media keys of the item's first images in order, and why the rejected ones were; raises to retry."""
    urls = target.image_urls[: settings.rehost_max_images]
    results = await asyncio.gather(*(_rehost_one(url, settings) for url in urls), return_exceptions=True)
    retry = [r for r in results if isinstance(r, FetchFailed)]
    if retry:
        delays = [r.delay_ms for r in retry if r.delay_ms]
        if delays:
            raise Wait(f"{len(retry)} image(s): {retry[0]}", max(delays))
        raise Failure(f"{len(retry)} image(s): {retry[0]}")
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, ImageRejected):
            raise result
    keys = [r for r in results if isinstance(r, str)]
    errors = [f"image {n}: {r}" for n, r in enumerate(results, 1) if isinstance(r, ImageRejected)]
    return list(dict.fromkeys(keys)), errors


@dramatiq.actor(queue_name=INGEST_QUEUE, time_limit=300_000, throws=(ImageRejected,), **RETRIES)
async def rehost_images(item_id: int) -> dict[str, Any]:
    """Copy an item's marketplace images into our media store (EXIF stripped), then embed it."""
    settings = get_settings()
    async with get_process_pool().acquire() as conn:
        target = await select_rehost_target(conn, item_id)
    if target is None or target.current or target.status == "rejected" or not target.image_urls:
        return {"item_id": item_id, "skipped": "unknown" if target is None else "current, rejected or no images"}
    keys, errors = await rehost_all(target, settings)
    async with get_process_pool().acquire() as conn, conn.transaction():
        stored = await update_item_media(
            conn,
            item_id,
            image_urls=target.image_urls,
            media_keys=keys or target.media_keys,
            error="; ".join(errors) or None,
        )
    if not stored:
        raise Failure(f"item {item_id}'s images changed while they were rehosted")
    if not keys:
        raise ImageRejected(f"item {item_id}: no usable image: " + "; ".join(errors))
    await enqueue(embed_items, [item_id], unique_key=f"embed_items:{item_id}")
    return {"item_id": item_id, "media_keys": len(keys), "rejected": errors}


async def review(item_id: int, *, action: str, status: str, from_statuses: tuple[str, ...], by: str) -> dict[str, Any]:
    """Move an item to `status` with an audit row; a repeat is a no-op, a forbidden move is refused."""
    async with get_process_pool().acquire() as conn, conn.transaction():
        before = await update_item_review(conn, item_id, status=status, from_statuses=from_statuses)
        if before is None:
            current = await select_item_status(conn, item_id)
            if current == status:
                return {"item_id": item_id, "status": status, "changed": False}
            raise ReviewRefused(
                f"item {item_id} is {current or 'unknown'}: only {'/'.join(from_statuses)} items"
                f" can be moved to {status}"
            )
        await insert_audit(
            conn,
            actor=by,
            entry=AuditEntry(
                action=action, target=f"item:{item_id}", before={"status": before}, after={"status": status}
            ),
        )
    return {"item_id": item_id, "status": status, "changed": True}


@dramatiq.actor(queue_name=INGEST_QUEUE, time_limit=30_000, throws=(ReviewRefused,), **RETRIES)
async def approve_item(item_id: int, by: str = "system") -> dict[str, Any]:
    """Put a pending (or rejected) item live: status available."""
    return await review(
        item_id, action="items.approve", status="available", from_statuses=("pending", "rejected"), by=by
    )


@dramatiq.actor(queue_name=INGEST_QUEUE, time_limit=30_000, throws=(ReviewRefused,), **RETRIES)
async def reject_item(item_id: int, by: str = "system") -> dict[str, Any]:
    """Take a pending or available item out of the shop for good: status rejected."""
    return await review(
        item_id, action="items.reject", status="rejected", from_statuses=("pending", "available"), by=by
    )
