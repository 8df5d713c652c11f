"""POST /v1/jobs/enrich: validates, then enqueues enrich_items on the `ml` queue."""

from __future__ import annotations

import redis

import actors
from tests.web.conftest import bearer


async def test_enrich_enqueues_enrich_items(client, tokens, redis_client: redis.Redis) -> None:
    response = await client.post(
        "/v1/jobs/enrich", json={"item_ids": [3, 5], "force": True}, headers=bearer(tokens["jobs"])
    )
    assert response.status_code == 202
    body = await response.get_json()
    assert redis_client.llen(actors.broker.jobs.keys.queue("ml")) == 1
    record = await (await client.get(body["status_url"], headers=bearer(tokens["jobs"]))).get_json()
    assert record["actor"] == "enrich_items" and record["queue"] == "ml" and record["status"] == "queued"
    assert record["kwargs"] == {"item_ids": [3, 5], "force": True}


async def test_enrich_needs_item_ids(client, tokens, redis_client: redis.Redis) -> None:
    response = await client.post("/v1/jobs/enrich", json={"item_ids": []}, headers=bearer(tokens["jobs"]))
    assert response.status_code == 422 and "item_ids" in (await response.get_json())["errors"]
    assert redis_client.dbsize() == 0
