"""Approve/reject through the API with a real worker, and no marketplace address in any public response."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis
from dramatiq import Worker

import actors
from actors.embed import reset_clip_model
from actors.ingest import ingest_listings
from config.settings import get_settings
from domain.jobs import JobStatus
from fakes.marketplace import Marketplace
from tests.actors.helpers import wait_for_status
from tests.waiting import eventually
from tests.web.conftest import bearer


@pytest.fixture(scope="module")
def market() -> Iterator[Marketplace]:
    """The local marketplace: item URLs and images on 127.0.0.1 ports of its own."""
    server = Marketplace(seed=21, per_source=6).start()
    yield server
    server.stop()


@pytest.fixture()
def worker(redis_client: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Worker]:
    """A real worker over every server queue, with a fresh local media store and the tiny model."""
    settings = get_settings()
    monkeypatch.setattr(settings, "media_dir", tmp_path / "media")
    monkeypatch.setattr(settings, "media_s3_bucket", None)
    monkeypatch.setattr(settings, "model_dir", None)
    monkeypatch.setattr(settings, "auto_approve_green", False)
    reset_clip_model()
    worker = Worker(actors.broker, worker_threads=4, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()
    reset_clip_model()


async def ingested(market: Marketplace, pool: asyncpg.Pool, count: int) -> list[int]:
    """Ingest `count` vinted listings through the actors; their ids once all are rehosted and embedded."""
    source = f"vinted-{uuid.uuid4().hex[:8]}"
    listings = [
        {
            "source": source,
            "source_listing_id": str(f.id),
            "url": market.url_of(f),
            "title": f.title,
            "brand": f.brand,
            "price_cents": f.price_cents,
            "currency": f.currency,
            "image_urls": [market.vinted.image_url(p) for p in f.photos],
        }
        for f in market.listings("vinted")[:count]
    ]
    message = ingest_listings.send(source, listings, f"d-{source}")
    await asyncio.to_thread(wait_for_status, message.message_id, JobStatus.SUCCEEDED, timeout=30)

    async def embedded_ids() -> list[int] | None:
        rows = await pool.fetch("SELECT id, embedded_at FROM items WHERE source = $1 ORDER BY id", source)
        return [r["id"] for r in rows] if len(rows) == count and all(r["embedded_at"] for r in rows) else None

    return await eventually(embedded_ids, 60, f"the ingest chain to embed {count} items")


async def accepted(response: Any) -> str:
    """The job id of a 202, once that job succeeded."""
    assert response.status_code == 202, await response.get_data(as_text=True)
    job_id = (await response.get_json())["job_id"]
    await asyncio.to_thread(wait_for_status, job_id, JobStatus.SUCCEEDED, timeout=30)
    return job_id


async def test_approve_and_reject_go_through_the_actors(client, tokens, worker, market, pool) -> None:  # type: ignore[no-untyped-def]
    [item_id] = await ingested(market, pool, 1)
    admin = bearer(tokens["admin"])
    assert await pool.fetchval("SELECT status FROM items WHERE id = $1", item_id) == "pending"
    await accepted(await client.post(f"/v1/items/{item_id}/approve", headers=admin))
    assert await pool.fetchval("SELECT status FROM items WHERE id = $1", item_id) == "available"
    job_id = await accepted(await client.post(f"/v1/items/{item_id}/approve", headers=admin))  # again: a no-op
    assert actors.broker.jobs.get(job_id).result == {"item_id": item_id, "status": "available", "changed": False}
    await accepted(await client.post(f"/v1/items/{item_id}/reject", headers=admin))
    row = await pool.fetchrow("SELECT status, reviewed_at FROM items WHERE id = $1", item_id)
    assert row["status"] == "rejected" and row["reviewed_at"] is not None
    audit = await pool.fetch(
        "SELECT actor, action, before, after FROM audit_log WHERE target = $1 ORDER BY id", f"item:{item_id}"
    )
    assert [(a["action"], json.loads(a["before"])["status"], json.loads(a["after"])["status"]) for a in audit] == [
        ("items.approve", "pending", "available"),
        ("items.reject", "available", "rejected"),
    ]
    assert all(a["actor"].startswith("token:") for a in audit)


async def test_refusals(client, tokens, worker, pool) -> None:  # type: ignore[no-untyped-def]
    item_id = await pool.fetchval(
        """INSERT INTO items (source, source_listing_id, title, kind, status)
           VALUES ('test', $1, 'sold thing', 'one_of_one', 'sold') RETURNING id""",
        uuid.uuid4().hex,
    )
    for action in ("approve", "reject"):
        response = await client.post(f"/v1/items/{item_id}/{action}", headers=bearer(tokens["admin"]))
        assert response.status_code == 409 and "sold" in (await response.get_json())["detail"]
        assert (await client.post(f"/v1/items/999999999/{action}", headers=bearer(tokens["admin"]))).status_code == 404
        assert (await client.post(f"/v1/items/{item_id}/{action}", headers=bearer(tokens["jobs"]))).status_code == 403
        assert (await client.post(f"/v1/items/{item_id}/{action}", headers=bearer(tokens["reader"]))).status_code == 403
        assert (await client.post(f"/v1/items/{item_id}/{action}")).status_code == 401
    assert await pool.fetchval("SELECT status FROM items WHERE id = $1", item_id) == "sold"


async def test_no_public_response_carries_a_marketplace_address(client, app, tokens, worker, market, pool) -> None:  # type: ignore[no-untyped-def]
    item_ids = await ingested(market, pool, 3)
    for item_id in item_ids:
        await accepted(await client.post(f"/v1/items/{item_id}/approve", headers=bearer(tokens["admin"])))
    seed_id = await pool.fetchval(
        """INSERT INTO style_seeds (label, embedding, embedding_model)
           SELECT $2, embedding, embedding_model FROM items WHERE id = $1 RETURNING id""",
        item_ids[0],
        f"seed-{uuid.uuid4().hex[:8]}",
    )
    hosts = [market.vinted_url.split("//")[1], market.grailed_url.split("//")[1]]
    private = ("source_url", "image_urls", "source_listing_id", "/images/", "/items/", *hosts)
    public = bearer(tokens["jobs"])
    responses = {
        "similar": await client.get(f"/v1/items/{item_ids[0]}/similar?limit=50", headers=public),
        "match": await client.post("/v1/stylist/match", json={"seed_ids": [seed_id]}, headers=public),
    }
    # every other public GET with only an integer in its path, tried on these item ids
    for rule in app.app.url_map.iter_rules():
        path = rule.rule
        if "GET" not in rule.methods or not path.startswith("/v1/") or path.startswith("/v1/admin"):
            continue
        if list(rule.arguments) and path.count("<id:") == len(rule.arguments) == 1:
            for item_id in item_ids:
                prefix, _, rest = path.partition("<id:")
                responses[f"{path}:{item_id}"] = await client.get(
                    prefix + str(item_id) + rest.partition(">")[2], headers=public
                )
    assert responses["similar"].status_code == 200 and responses["match"].status_code == 200
    similar = (await responses["similar"].get_json())["items"]
    mine = [card for card in similar if card["id"] in item_ids]  # the suite's database holds other items too
    assert {c["id"] for c in mine} == set(item_ids[1:]) and all(c["media_keys"] for c in mine)
    assert "/v1/items/<id:item_id>/similar:" + str(item_ids[1]) in responses  # the crawl found the item routes
    for name, response in responses.items():
        body = await response.get_data(as_text=True)
        assert not [p for p in private if p in body], f"{name} leaks a marketplace address: {body[:500]}"
