"""`make run`'s demo cycle: scrape sources aimed at the local marketplace (only where none are configured), and a
first scrape queued on `edge` at start."""

from __future__ import annotations

import json

import asyncpg
import redis
from dramatiq.message import Message

import actors
from cli.demo import DEMO_BY, DEMO_QUERIES, marketplace_sources, queue_demo_scrapes, store_demo_sources
from cli.devstack import start_marketplace
from db.schedules import select_schedule_config
from domain.contracts import EDGE_QUEUE, SCRAPE_SOURCE
from domain.schedules import ScrapeJob, scrape_plan


def test_only_sources_pointing_at_the_marketplace_are_demo_sources() -> None:
    env = {"DEV_MARKETPLACE_PORT": "0", "GRAILED_BASE_URL": "https://www.grailed.com"}
    market = start_marketplace(env)
    try:
        assert marketplace_sources(env, market) == ["vinted", "shop"]  # an exported grailed setting wins
        env["EDGE_SOURCES"] = json.dumps({"shop": {"base_url": "https://shop.example"}})
        assert marketplace_sources(env, market) == ["vinted"]
    finally:
        market.stop()


async def test_demo_sources_are_stored_once_and_never_over_configured_ones(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute("DELETE FROM schedule_config WHERE key = 'sources'")
        assert await store_demo_sources(conn, ["vinted", "shop"])
        sources = (await select_schedule_config(conn)).sources
        # the default grailed source stays as it was (its settings point at the real site here)
        assert [(s.source, s.queries, s.brands, s.enabled) for s in sources] == [
            ("vinted", DEMO_QUERIES["vinted"], False, True),
            ("grailed", [], True, True),
            ("shop", DEMO_QUERIES["shop"], False, True),
        ]
        demo = [s for s in sources if s.source != "grailed"]
        assert [j.query for j in scrape_plan(demo, ["Rick Owens"])] == [*DEMO_QUERIES["vinted"], *DEMO_QUERIES["shop"]]
        audited = await conn.fetchval("SELECT count(*) FROM audit_log WHERE actor = $1", DEMO_BY)
        assert audited == 2
        assert not await store_demo_sources(conn, ["vinted", "grailed", "shop"])  # configured now: left alone
        await conn.execute("UPDATE schedule_config SET value = '[]' WHERE key = 'sources'")  # an admin's "none"
        assert not await store_demo_sources(conn, ["vinted"])
        assert (await select_schedule_config(conn)).sources == []
    finally:
        await transaction.rollback()
        await conn.close()


def test_first_scrapes_are_queued_on_edge_without_a_live_node_and_only_once(redis_client: redis.Redis) -> None:
    plan = [ScrapeJob(source="vinted", query="Jacket", limit=24), ScrapeJob(source="shop", query="jeans", limit=24)]
    first = queue_demo_scrapes(plan)
    again = queue_demo_scrapes(plan)  # a restart while they still wait
    assert first == again and len(set(first)) == 2
    keys = actors.broker.jobs.keys.edge  # edge work waits in the edge namespace
    waiting = [Message.decode(m) for m in redis_client.hvals(keys.messages(EDGE_QUEUE))]
    assert sorted((m.actor_name, m.kwargs["source"], m.options["unique_key"]) for m in waiting) == [
        (SCRAPE_SOURCE, "shop", "scrape_source:shop:jeans"),
        (SCRAPE_SOURCE, "vinted", "scrape_source:vinted:jacket"),
    ]
