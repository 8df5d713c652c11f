"""POST /v1/jobs/scrape: 409 while no edge node is live (unless forced); the admin lists registry nodes."""

from __future__ import annotations

from datetime import datetime, UTC

import redis

from broker.edge_registry import write_beat
from broker.keys import Keys
from domain.edge_registry import EdgeBeat
from tests.web.conftest import bearer
from tests.web.test_admin_pages import sign_in

KEYS = Keys("backroom")
BODY = {"source": "vinted", "query": "barbour jacket", "limit": 10}


def _beat(redis_client: redis.Redis, **fields: object) -> None:
    beat = EdgeBeat(
        node_id="pi-hall",
        pid=42,
        version="0.1.0",
        host="pi-hall.lan",
        sources=["grailed", "vinted"],
        browser=True,
        last_beat=datetime.now(UTC),
        **fields,
    )
    write_beat(redis_client, KEYS, beat, ttl_s=30)


async def test_scrape_is_refused_with_409_when_no_edge_node_is_live(client, tokens, redis_client) -> None:
    response = await client.post("/v1/jobs/scrape", json=BODY, headers=bearer(tokens["jobs"]))
    assert response.status_code == 409
    assert "no edge node is live" in (await response.get_json())["detail"]
    assert redis_client.llen("backroom-edge:edge") == 0


async def test_scrape_is_queued_on_edge_when_a_node_is_live_or_forced(client, tokens, redis_client) -> None:
    forced = await client.post("/v1/jobs/scrape", json={**BODY, "force": True}, headers=bearer(tokens["jobs"]))
    assert forced.status_code == 202
    _beat(redis_client)
    response = await client.post("/v1/jobs/scrape", json=BODY, headers=bearer(tokens["jobs"]))
    assert response.status_code == 202
    job = await (await client.get((await response.get_json())["status_url"], headers=bearer(tokens["jobs"]))).get_json()
    assert (job["actor"], job["queue"], job["status"], job["kwargs"]) == ("scrape_source", "edge", "queued", BODY)
    assert redis_client.llen("backroom-edge:edge") == 2


async def test_scrape_validates_its_body(client, tokens, redis_client) -> None:
    _beat(redis_client)
    for body in ({**BODY, "source": "Vinted!"}, {**BODY, "limit": 0}, {"source": "vinted"}, {**BODY, "extra": 1}):
        response = await client.post("/v1/jobs/scrape", json=body, headers=bearer(tokens["jobs"]))
        assert response.status_code == 422, body


async def test_the_admin_lists_registry_nodes(client, tokens, redis_client) -> None:
    _beat(redis_client, done=5, failed=1, blocked=2, current_jobs=["abc"])
    body = await (await client.get("/v1/admin/edge-nodes", headers=bearer(tokens["reader"]))).get_json()
    node = next(n for n in body["nodes"] if n["node_id"] == "pi-hall")
    assert (node["online"], node["source"], node["version"], node["host"]) == (
        True,
        "heartbeat",
        "0.1.0",
        "pi-hall.lan",
    )
    assert (node["done"], node["failed"], node["blocked"], node["current_job"]) == (5, 1, 2, "abc")
    assert node["sources"] == ["grailed", "vinted"] and node["browser"] is True
    await sign_in(client, tokens["reader"])
    page = await client.get("/admin/edge")
    assert page.status_code == 200 and "grailed, vinted" in await page.get_data(as_text=True)


async def test_corrupt_shared_keys_leave_the_admin_answering(client, tokens, redis_client) -> None:
    keys = Keys("backroom")
    redis_client.set(keys.paused, "garbage")  # a string where the paused set belongs
    redis_client.set(keys.edge.paused, "garbage")
    redis_client.set(keys.edge.edge_nodes, "garbage")
    redis_client.hset(keys.edge.stats("edge", 1), "not-a-minute:processed", "x")
    redis_client.rpush(keys.edge.queue("edge"), "r1")
    redis_client.hset(keys.edge.messages("edge"), "r1", "{not json")
    for path in ("/v1/admin/queues", "/v1/admin/edge-nodes"):
        response = await client.get(path, headers=bearer(tokens["reader"]))
        assert response.status_code == 200, (path, await response.get_data(as_text=True))
    queues = (await (await client.get("/v1/admin/queues", headers=bearer(tokens["reader"]))).get_json())["queues"]
    edge = next(q for q in queues if q["name"] == "edge")
    assert edge["ready"] == 1 and not any(q["paused"] for q in queues)  # the edge queue, read where it lives


async def test_pausing_edge_pauses_it_where_edge_workers_look(client, tokens, redis_client) -> None:
    keys = Keys("backroom")
    response = await client.post("/v1/admin/queues/edge/pause", headers=bearer(tokens["admin"]))
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert redis_client.smembers(keys.edge.paused) == {b"edge"} and not redis_client.exists(keys.paused)
    queues = (await (await client.get("/v1/admin/queues", headers=bearer(tokens["reader"]))).get_json())["queues"]
    assert next(q for q in queues if q["name"] == "edge")["paused"] is True
    await client.post("/v1/admin/queues/edge/resume", headers=bearer(tokens["admin"]))
    assert not redis_client.smembers(keys.edge.paused)


async def test_the_admin_edge_page_and_api_show_credentials(client, tokens, database_url) -> None:
    import asyncpg

    from db.edge_credentials import insert_edge_credential, revoke_edge_credential

    conn = await asyncpg.connect(database_url)
    try:  # what `backroom edge credentials pi-page` then `backroom edge revoke pi-page` record
        await insert_edge_credential(conn, "pi-page", "edge-pi-page", by="cli:test")
        await revoke_edge_credential(conn, "pi-page", by="cli:test")
    finally:
        await conn.close()
    body = await (await client.get("/v1/admin/edge-nodes", headers=bearer(tokens["reader"]))).get_json()
    latest = next(c for c in body["credentials"] if c["node_id"] == "pi-page")
    assert latest["redis_user"] == "edge-pi-page" and latest["revoked_at"] is not None
    await sign_in(client, tokens["reader"])
    page = await (await client.get("/admin/edge")).get_data(as_text=True)
    assert "edge-pi-page" in page and "revoked" in page
