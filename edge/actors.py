"""Edge actors (the `edge` queue)."""

from __future__ import annotations

import asyncio
import os
import platform
import socket

import dramatiq
from dramatiq.middleware import CurrentMessage

from config.settings import EDGE_QUEUE, get_edge_settings
from domain import contracts
from edge.browser import get_browser
from edge.checks import check_on_edge
from edge.deliver import deliver
from edge.sources import InvalidScrape, raise_for_outcome, scrape


@dramatiq.actor(queue_name=EDGE_QUEUE, max_retries=1, max_backoff=10_000, time_limit=30_000)
def ping_edge() -> dict:
    """Report which edge node answered (host, pid, platform): proves the edge path works."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "machine": platform.machine()}


@dramatiq.actor(
    actor_name=contracts.SCRAPE_SOURCE,
    queue_name=EDGE_QUEUE,
    max_retries=5,
    min_backoff=30_000,
    max_backoff=900_000,
    time_limit=300_000,
    throws=(InvalidScrape,),
)
async def scrape_source(source: str, query: str, limit: int) -> dict:
    """Scrape `source` for `query` (at most `limit` listings) and deliver them to the server's ingest_listings."""
    message = CurrentMessage.get_current_message()
    delivery_id = f"{contracts.SCRAPE_SOURCE}:{message.message_id if message else f'{source}:{query}:{limit}'}"
    outcome = await scrape(get_browser(), get_edge_settings(), source, query, limit)
    raise_for_outcome(source, outcome)  # blocked / error: retried; the job's last error names it
    listings = [listing.model_dump(mode="json") for listing in outcome.listings]
    await asyncio.to_thread(
        deliver,
        contracts.INGEST_LISTINGS,
        {"source": source, "listings": listings, "delivery_id": delivery_id},
        delivery_id=delivery_id,
    )
    return {"status": outcome.status, "source": source, "listings": len(listings)}


@dramatiq.actor(
    actor_name=contracts.CHECK_LISTING_ON_EDGE,
    queue_name=EDGE_QUEUE,
    max_retries=2,
    min_backoff=10_000,
    max_backoff=120_000,
    time_limit=120_000,
)
async def check_listing_on_edge(item_id: int, source: str, url: str) -> dict:
    """Open a listing in a real browser, judge it, and deliver the evidence to the server's record_listing_check."""
    return await check_on_edge(get_browser(), item_id, source, url)
