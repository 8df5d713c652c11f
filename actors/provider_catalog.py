"""The nightly print-provider catalog sync: products, variants and prices, one page a message
at PRINTIFY_CATALOG_RATE_PER_MIN (2 a minute), resumable where it stopped.

Each page is its own job: a page done advances the run's `next_page` (guarded), then the next
page is sent. A run stopped half-way (worker killed, Printify down past the retries) is
picked up by the next `sync_catalog` from the page it had reached.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq

from actors.chain import enqueue
from actors.clients import call, get_providers
from broker.waits import retry_policy
from db.provider_catalog import (
    CatalogVariant,
    select_catalog_sync,
    start_catalog_sync,
    update_catalog_sync,
    upsert_catalog,
)
from db.pool import get_process_pool
from providers.errors import NotConfigured, Permanent

log = logging.getLogger("backroom.catalog")
PROVIDER = "printify"


@dramatiq.actor(queue_name="orders", max_retries=3, max_backoff=60_000, time_limit=30_000)
async def sync_catalog(page_size: int = 50) -> dict[str, Any]:
    """Start a catalog sync run, or resume the unfinished one from its page."""
    async with get_process_pool().acquire() as conn:
        run = await start_catalog_sync(conn, PROVIDER, max(1, min(100, page_size)))
    await enqueue(sync_catalog_page, run.id, run.next_page, unique_key=f"catalog:{run.id}:{run.next_page}")
    return {"sync_id": run.id, "from_page": run.next_page}


@dramatiq.actor(
    queue_name="orders",
    time_limit=60_000,
    throws=(NotConfigured, Permanent),
    retry_when=retry_policy(max_failures=8, max_waits=2_000),
    min_backoff=5_000,
    max_backoff=300_000,
)
async def sync_catalog_page(sync_id: int, page: int) -> dict[str, Any]:
    """Fetch one page of products (with variants and prices), store it, and send the next page."""
    async with get_process_pool().acquire() as conn:
        run = await select_catalog_sync(conn, sync_id)
    if run is None or run.finished or run.next_page != page:
        return {"sync_id": sync_id, "page": page, "skipped": True}  # a page done already (a replay)
    printify = get_providers().printify
    products, more = await call(
        "printify_catalog", lambda: call("printify", lambda: printify.list_products(page, limit=run.page_size))
    )
    variants = [_variant(product, variant) for product in products for variant in product.get("variants") or []]
    async with get_process_pool().acquire() as conn, conn.transaction():
        stored = await upsert_catalog(conn, PROVIDER, variants)
        advanced = await update_catalog_sync(conn, sync_id, page=page, variants=stored, more=more)
    if advanced and more:
        await enqueue(sync_catalog_page, sync_id, page + 1, unique_key=f"catalog:{sync_id}:{page + 1}")
    elif advanced:
        log.info("catalog sync %s done: %s page(s)", sync_id, page)
    return {"sync_id": sync_id, "page": page, "variants": stored, "more": more}


def _variant(product: dict[str, Any], variant: dict[str, Any]) -> CatalogVariant:
    price = variant.get("price")
    return CatalogVariant(
        product_id=str(product["id"]),
        variant_id=str(variant["id"]),
        title=str(product.get("title") or "")[:300] or None,
        variant_title=str(variant.get("title") or "")[:300] or None,
        price_cents=int(price) if isinstance(price, (int, float)) else None,
        enabled=bool(variant.get("is_enabled", True)),
    )
