"""POST /v1/jobs/scrape: 409 while no edge node is live (unless forced); the admin lists registry nodes."""
from __future__ import annotations

from datetime import datetime, timezone

import redis

from broker.edge_registry import write_beat
from broker.keys import Keys
from domain.edge_registry import EdgeBeat
from tests.web.conftest import bearer
from tests.web.test_admin_pages import sign_in

KEYS = Keys("backroom")
BODY = {"source": "vinted", "query": "barbour jacket", "limit": 10}


def _beat(redis_client: redis.Redis, **fields: object) -> None:
    beat = EdgeBeat(node_id="pi-hall", pid=42, version="0.1.0", host="pi-hall.lan", sources=["grailed", "vinted"],
                    browser=True, last_beat=datetime.now(timezone.utc), **fields)
    write_beat(redis_client, KEYS, beat, ttl_s=30)


async def test_scrape_is_refused_with_409_when_no_edge_node_is_live(client, tokens, redis_client) -> None:
    response = await client.post("/v1/jobs/scrape", json=BODY, headers=bearer(tokens["jobs"]))
    assert response.status_code == 409
    assert "no edge node is live" in (await response.get_json())["detail"]
    assert redis_client.llen("backroom:edge") == 0


async def test_scrape_is_queued_on_edge_when_a_node_is_live_or_forced(client, tokens, redis_client) -> None:
    forced = await client.post("/v1/jobs/scrape", json={**BODY, "force": True}, headers=bearer(tokens["jobs"]))
    assert forced.status_code == 202
    _beat(redis_client)
    response = await client.post("/v1/jobs/scrape", json=BODY, headers=bearer(tokens["jobs"]))
    assert response.status_code == 202
    job = await (await client.get((await response.get_json())["status_url"], headers=bearer(tokens["jobs"]))).get_json()
    assert (job["actor"], job["queue"], job["status"], job["kwargs"]) == ("scrape_source", "edge", "queued", BODY)
    assert redis_client.llen("backroom:edge") == 2


async def test_scrape_validates_its_body(client, tokens, redis_client) -> None:
    _beat(redis_client)
    for body in ({**BODY, "source": "Vinted!"}, {**BODY, "limit": 0}, {"source": "vinted"}, {**BODY, "extra": 1}):
        response = await client.post("/v1/jobs/scrape", json=body, headers=bearer(tokens["jobs"]))
        assert response.status_code == 422, body


async def test_the_admin_lists_registry_nodes(client, tokens, redis_client) -> None:
    _beat(redis_client, done=5, failed=1, blocked=2, current_jobs=["abc"])
    body = await (await client.get("/v1/admin/edge-nodes", headers=bearer(tokens["reader"]))).get_json()
    node = next(n for n in body["nodes"] if n["node_id"] == "pi-hall")
    assert (node["online"], node["source"], node["version"], node["host"]) == (True, "heartbeat", "0.1.0", "pi-hall.lan")
    assert (node["done"], node["failed"], node["blocked"], node["current_job"]) == (5, 1, 2, "abc")
    assert node["sources"] == ["grailed", "vinted"] and node["browser"] is True
    await sign_in(client, tokens["reader"])
    page = await client.get("/admin/edge")
    assert page.status_code == 200 and "grailed, vinted" in await page.get_data(as_text=True)
