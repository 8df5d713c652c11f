"""GET /v1/collections and /v1/collections/{id} (live availability, no marketplace URLs) and the enqueue."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest

import actors
from db.collections import insert_generation, swap_surface_generation
from domain.collections import PlannedCollection
from tests.web.conftest import bearer

PRIVATE = ("marketplace.example", "source_url", "image_urls", "source_listing_id")


@dataclass
class Surface:
    """A generated surface: its name, generation, collection ids and item ids per collection."""

    name: str
    generation: str
    collection_ids: list[int]
    item_ids: list[list[int]]


@pytest.fixture()
async def surface(database_url: str) -> AsyncIterator[Surface]:
    """A surface of two collections (3 and 2 items) swapped in; the first item of the first is sold afterwards."""
    name = f"web-{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        ids = [
            await conn.fetchval(
                """INSERT INTO items (source, source_listing_id, source_url, image_urls, title, brand, kind, status,
                                  media_keys, price_cents, currency)
               VALUES ('vinted', $1, 'https://marketplace.example/items/1', '{https://marketplace.example/i.jpg}',
                       $2, 'Acne', 'one_of_one', 'available', $3, 12000, 'EUR') RETURNING id""",
                uuid.uuid4().hex,
                f"item {i}",
                [f"{i:064x}.jpg"],
            )
            for i in range(5)
        ]
        generation = uuid.uuid4()
        planned = [
            PlannedCollection("Grunge", "a grunge look", None, tuple(ids[:3]), (0.9, 0.8, 0.7)),
            PlannedCollection("Y2k", None, None, tuple(ids[3:]), (0.6, 0.5)),
        ]
        async with conn.transaction():
            collection_ids = await insert_generation(
                conn,
                generation=generation,
                surface=name,
                method="seeds",
                model="m",
                generated_at=datetime.now(UTC),
                valid_hours=24,
                collections=planned,
            )
            await swap_surface_generation(conn, surface=name, generation=generation, generated_at=datetime.now(UTC))
        await conn.execute("UPDATE items SET status = 'sold' WHERE id = $1", ids[0])
        yield Surface(name, str(generation), collection_ids, [ids[:3], ids[3:]])
    finally:
        await conn.close()


async def test_surface_lists_current_collections_with_available_items_only(client, tokens, surface) -> None:
    response = await client.get(f"/v1/collections?surface={surface.name}", headers=bearer(tokens["jobs"]))
    assert response.status_code == 200
    body = await response.get_json()
    assert not any(word in json.dumps(body) for word in PRIVATE)
    assert body["surface"] == surface.name and body["generation"] == surface.generation
    datetime.fromisoformat(body["generated_at"])  # ISO 8601, not an HTTP date
    assert [c["id"] for c in body["collections"]] == surface.collection_ids
    first, second = body["collections"]
    assert first["title"] == "Grunge" and first["description"] == "a grunge look" and first["current"] is True
    assert first["item_count"] == 3 and [i["id"] for i in first["items"]] == surface.item_ids[0][1:]
    assert [i["score"] for i in first["items"]] == [0.8, 0.7]
    assert first["items"][0]["media_keys"] == [f"{1:064x}.jpg"] and first["items"][0]["status"] == "available"
    assert [i["id"] for i in second["items"]] == surface.item_ids[1]
    assert set(first) >= {"valid_from", "valid_until", "generation", "seed_id", "surface"}


async def test_unavailable_items_can_be_shown_with_their_live_status(client, tokens, surface) -> None:
    response = await client.get(
        f"/v1/collections?surface={surface.name}&include_unavailable=true", headers=bearer(tokens["jobs"])
    )
    items = (await response.get_json())["collections"][0]["items"]
    assert [(i["id"], i["status"]) for i in items] == [
        (surface.item_ids[0][0], "sold"),
        (surface.item_ids[0][1], "available"),
        (surface.item_ids[0][2], "available"),
    ]


async def test_one_collection_by_id(client, tokens, surface) -> None:
    response = await client.get(f"/v1/collections/{surface.collection_ids[1]}", headers=bearer(tokens["jobs"]))
    assert response.status_code == 200
    body = await response.get_json()
    assert body["title"] == "Y2k" and body["surface"] == surface.name and body["current"] is True
    assert [i["id"] for i in body["items"]] == surface.item_ids[1]
    assert not any(word in json.dumps(body) for word in PRIVATE)
    missing = await client.get("/v1/collections/987654321", headers=bearer(tokens["jobs"]))
    assert missing.status_code == 404


async def test_a_surface_never_generated_is_empty(client, tokens) -> None:
    response = await client.get("/v1/collections?surface=never-generated", headers=bearer(tokens["jobs"]))
    assert response.status_code == 200
    assert await response.get_json() == {
        "surface": "never-generated",
        "generation": None,
        "generated_at": None,
        "collections": [],
    }


@pytest.mark.parametrize("query", ["", "?surface=", "?surface=Not%20Valid", "?surface=home&include_unavailable=maybe"])
async def test_bad_queries_are_422(client, tokens, query: str) -> None:
    response = await client.get(f"/v1/collections{query}", headers=bearer(tokens["jobs"]))
    assert response.status_code == 422


async def test_reads_need_a_token(client) -> None:
    assert (await client.get("/v1/collections?surface=home")).status_code == 401
    assert (await client.get("/v1/collections/1")).status_code == 401


async def test_post_enqueues_generate_collections(client, tokens, redis_client) -> None:
    response = await client.post("/v1/jobs/collections", json={"surface": "home"}, headers=bearer(tokens["jobs"]))
    assert response.status_code == 202
    job_id = (await response.get_json())["job_id"]
    record = actors.broker.jobs.get(job_id)
    assert record is not None and record.actor == "generate_collections" and record.queue == "default"
    bad = await client.post("/v1/jobs/collections", json={"surface": "Home Page"}, headers=bearer(tokens["jobs"]))
    assert bad.status_code == 422
