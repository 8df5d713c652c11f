"""`backroom dev`'s demo cycle: scrape sources aimed at the local marketplace, and a first scrape at start.

The hourly scrape schedule reads its sources from Postgres. On a database where nobody has
configured them yet, the demo stores one source per marketplace site with queries the seeded
catalogue answers (brands off: the default brand list is not sold there). At every start it
also queues one scrape per query of the sources that point at the local marketplace, so items
appear within a minute instead of at the next :05.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rich.console import Console

from domain.schedules import ScrapeJob, scrape_plan

DEMO_BY = "backroom dev (demo)"
# queries the marketplace's seeded catalogue answers (5-7 listings each)
DEMO_QUERIES = {"vinted": ["jacket", "hoodie"], "grailed": ["fleece", "sneakers"], "shop": ["jeans", "t-shirt"]}
DEMO_LIMIT = 24


def marketplace_sources(env: dict[str, str], market: Any) -> list[str]:
    """The demo sources whose settings point at this marketplace (an explicit setting wins over it)."""
    shop = json.loads(env.get("EDGE_SOURCES") or "{}").get("shop") or {}
    pointed = {
        "vinted": env.get("VINTED_BASE_URL") == market.vinted_url,
        "grailed": env.get("GRAILED_BASE_URL") == market.grailed_url,
        "shop": shop.get("base_url") == market.shop_url,
    }
    return [source for source in DEMO_QUERIES if pointed[source]]


async def store_demo_sources(conn: Any, sources: list[str]) -> bool:
    """Store the demo scrape sources (audited) unless sources are configured already; True when stored."""
    from db.schedules import select_stored_config
    from admin.schedules import change_source

    async with conn.transaction():
        if not sources or "sources" in await select_stored_config(conn, lock=True):
            return False
        for source in sources:
            await change_source(
                conn, source, by=DEMO_BY, queries=DEMO_QUERIES[source], limit=DEMO_LIMIT, brands=False, enabled=True
            )
    return True


async def demo_plan(database_url: str, sources: list[str]) -> tuple[bool, list[ScrapeJob]]:
    """Seed the sources if unconfigured; the scrapes of the effective config on the marketplace's sources."""
    import asyncpg

    from db.schedules import select_schedule_config

    conn = await asyncpg.connect(database_url)
    try:
        stored = await store_demo_sources(conn, sources)
        config = await select_schedule_config(conn)
    finally:
        await conn.close()
    return stored, scrape_plan([s for s in config.sources if s.source in sources], config.brands)


def queue_demo_scrapes(plan: list[ScrapeJob]) -> list[str]:
    """Queue each scrape on `edge` now (forced: the edge worker starts with the other processes)."""
    from actors.edge import send_to_edge
    from domain.contracts import SCRAPE_SOURCE

    # the schedule's unique key: a restart while these are still queued queues nothing twice
    return [
        send_to_edge(
            SCRAPE_SOURCE,
            job.model_dump(),
            force=True,
            options={"unique_key": f"scrape_source:{job.source}:{job.query.lower()}"},
        )
        for job in plan
    ]


def start_demo_cycle(env: dict[str, str], market: Any, processes: list[str], console: Console) -> None:
    """Point the scrape schedule at the marketplace (if unconfigured) and queue a first scrape of it."""
    sources = marketplace_sources(env, market)
    stored, plan = asyncio.run(demo_plan(env["DATABASE_URL"], sources))
    if stored:
        console.print(f"demo: scrape sources {', '.join(sources)} stored (see `backroom schedules sources`)")
    if "edge" not in processes or not plan:
        console.print("demo: no first scrape queued (no edge process, or no source on the local marketplace)")
        return
    import actors

    try:
        job_ids = queue_demo_scrapes(plan)
    finally:
        actors.broker.close()  # this process only supervises from here on
    queries = ", ".join(f"{job.source} {job.query!r}" for job in plan)
    console.print(
        f"demo: {len(job_ids)} scrape job(s) queued on edge ({queries}); items land in Postgres as "
        "pending once the edge worker is up",
        highlight=False,
    )
