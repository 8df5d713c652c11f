"""The admin page and API show each schedule's cadence and on/off state, and the scrape sources, brands, surfaces."""

from __future__ import annotations

import asyncpg
import redis

import actors
from admin.schedules import change_list, change_schedule, change_source
from tests.web.conftest import bearer
from tests.web.test_admin_pages import sign_in


async def configure(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("TRUNCATE schedule_settings, schedule_config")
        await change_schedule(conn, actors.broker, "schedule_prune_listings", by="test", cron="45 1 * * *")
        await change_schedule(conn, actors.broker, "schedule_sweep_enrichment", by="test", enabled=False)
        await change_source(conn, "shop", by="test", queries=["chelsea boots"], limit=7, brands=False)
        await change_list(conn, "brands", by="test", set_to=["Undercover"])
        await change_list(conn, "surfaces", by="test", set_to=["home", "gifts"])
    finally:
        await conn.close()


async def test_the_page_shows_overrides_switched_off_schedules_and_the_lists(
    app, tokens, database_url: str, redis_client: redis.Redis
) -> None:
    await configure(database_url)
    client = app.test_client()
    await sign_in(client, tokens["admin"])
    html = await (await client.get("/admin/schedules")).get_data(as_text=True)
    assert "45 1 * * *" in html and "declared: 0 2 * * *" in html
    row = html[html.index("<td>schedule_sweep_enrichment</td>") :].split("</tr>")[0]
    assert ">off<" in row
    assert "chelsea boots" in html and "Undercover" in html and "gifts" in html


async def test_the_api_lists_the_settings(client, tokens, database_url: str, redis_client: redis.Redis) -> None:
    await configure(database_url)
    body = await (await client.get("/v1/admin/schedules", headers=bearer(tokens["reader"]))).get_json()
    rows = {s["actor"]: s for s in body["schedules"]}
    assert rows["schedule_prune_listings"]["spec"] == "45 1 * * *"
    assert rows["schedule_prune_listings"]["default_spec"] == "0 2 * * *"
    sweep = rows["schedule_sweep_enrichment"]
    assert sweep["enabled"] is False and sweep["next_tick"] is None
    assert body["config"]["surfaces"] == ["home", "gifts"] and body["config"]["brands"] == ["Undercover"]
    assert [s["source"] for s in body["config"]["sources"]] == ["vinted", "grailed", "shop"]
