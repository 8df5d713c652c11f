"""The sourcing pipeline's periodic actors (UTC): each reads at most its configuration, then only sends.

Cadences here are the defaults; `backroom schedules set|enable|disable` overrides them
without a deploy (schedule_settings), and the lists (sources, brands, surfaces) are read
from schedule_config at every run.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import dramatiq
from periodiq import cron

from actors.collections import generate_collections
from actors.edge import NoLiveEdgeNode, send_to_edge
from actors.embed import sync_embeddings
from actors.enrich import sweep_enrichment
from actors.jobs import trim_dead_letters
from actors.prune import prune_listings
from actors.retention import purge_expired
from db.pool import get_process_pool
from db.schedules import select_schedule_config
from domain.contracts import SCRAPE_SOURCE
from domain.schedules import ScheduleConfig, ScrapeJob, scrape_plan
from schedules.fanout import PERIODIC, send_once

log = logging.getLogger("backroom.schedules")


async def read_config() -> ScheduleConfig:
    """The admin's sources, brands and surfaces (defaults where none are stored)."""
    async with get_process_pool().acquire() as conn:
        return await select_schedule_config(conn)


@dramatiq.actor(queue_name="default", periodic=cron("5 * * * *"), **PERIODIC)
async def schedule_scrape_sources() -> dict[str, Any]:
    """Hourly at :05: scrape_source on `edge` per enabled source and query (skipped while no edge node is live)."""
    config = await read_config()
    return await asyncio.to_thread(send_scrapes, scrape_plan(config.sources, config.brands))


def send_scrapes(plan: list[ScrapeJob]) -> dict[str, Any]:
    """Send each scrape to the edge (one per source and query while it is queued or running)."""
    job_ids = []
    try:
        for job in plan:
            key = f"scrape_source:{job.source}:{job.query.lower()}"
            job_ids.append(send_to_edge(SCRAPE_SOURCE, job.model_dump(), options={"unique_key": key}))
    except NoLiveEdgeNode as error:
        log.warning("scrape cycle skipped after %d of %d scrape(s): %s", len(job_ids), len(plan), error)
        return {"sent": len(job_ids), "skipped": len(plan) - len(job_ids), "job_ids": job_ids}
    return {"sent": len(job_ids), "skipped": 0, "job_ids": job_ids}


@dramatiq.actor(queue_name="default", periodic=cron("*/5 * * * *"), **PERIODIC)
def schedule_sync_embeddings() -> str:
    """Every 5 minutes: sync_embeddings (embed the items missing a current-model vector)."""
    return send_once(sync_embeddings)


@dramatiq.actor(queue_name="default", periodic=cron("0 2 * * *"), **PERIODIC)
def schedule_prune_listings() -> str:
    """Nightly at 02:00: prune_listings (check available sourced items at their source)."""
    return send_once(prune_listings)


@dramatiq.actor(queue_name="default", periodic=cron("0 5 * * *"), **PERIODIC)
async def schedule_generate_collections() -> dict[str, Any]:
    """Nightly at 05:00: generate_collections for each configured surface."""
    surfaces = (await read_config()).surfaces
    jobs = [await asyncio.to_thread(send_once, generate_collections, s, key=s) for s in surfaces]
    return {"surfaces": surfaces, "job_ids": jobs}


@dramatiq.actor(queue_name="default", periodic=cron("*/15 * * * *"), **PERIODIC)
def schedule_sweep_enrichment() -> str:
    """Every 15 minutes: sweep_enrichment (enrich items whose enrichment is missing or stale)."""
    return send_once(sweep_enrichment)


@dramatiq.actor(queue_name="default", periodic=cron("17 3 * * *"), **PERIODIC)
def schedule_purge_expired() -> list[str]:
    """Daily at 03:17: purge_expired (records, logs, events, media past retention) and trim_dead_letters."""
    return [send_once(purge_expired), send_once(trim_dead_letters)]
