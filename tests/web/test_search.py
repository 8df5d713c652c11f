"""Stylist matching, similar items and seed lookup through the API, on vectors from the tiny model."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml.clip import ClipModel
from ml.manifest import TINY_MODEL_DIR
from tests.web.conftest import bearer

SLOTS = ["outer_shell", "legwear", "neck"]
PRIVATE = ("marketplace.example", "source_url", "image_urls", "source_listing_id")


def picture(seed: int) -> bytes:
    """A random little picture: shapes on a coloured ground."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (320, 240), tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y, r = rng.uniform(0, 320), rng.uniform(0, 240), rng.uniform(10, 90)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@dataclass
class Catalogue:
    """Items and seeds embedded by the tiny model under a model id of this test run's own."""

    model: str
    item_ids: list[int]
    vectors: np.ndarray
    slots: list[str]
    statuses: list[str]
    seed_ids: list[int]
    seed_vectors: np.ndarray


@pytest.fixture(scope="module")
async def catalogue(database_url: str) -> AsyncIterator[Catalogue]:
    """40 items and 3 seeds with tiny-model vectors of generated pictures."""
    model = ClipModel.load(TINY_MODEL_DIR)
    vectors = np.stack(list(model.embed_images([picture(i) for i in range(43)]).vectors.values()))
    label = f"tiny-{uuid.uuid4().hex[:8]}"
    slots = [SLOTS[i % 3] for i in range(40)]
    statuses = ["sold" if i % 7 == 3 else "available" for i in range(40)]
    conn = await asyncpg.connect(database_url)
    from pgvector.asyncpg import register_vector

    await register_vector(conn)
    item_ids = [
        await conn.fetchval(
            """INSERT INTO items (source, source_listing_id, source_url, image_urls, title, kind, status, slot,
                              media_keys, embedding, embedding_model, embedding_hash)
           VALUES ('vinted', $1, $2, $3, $4, 'one_of_one', $5, $6, $7, $8, $9, 'h') RETURNING id""",
            f"{label}-{i}",
            f"https://marketplace.example/items/{i}",
            [f"https://marketplace.example/img/{i}.jpg"],
            f"item {i}",
            statuses[i],
            slots[i],
            [f"{i:064x}.jpg"],
            vectors[i],
            label,
        )
        for i in range(40)
    ]
    seed_ids = [
        await conn.fetchval(
            "INSERT INTO style_seeds (label, description, embedding, embedding_model)"
            " VALUES ($1, $2, $3, $4) RETURNING id",
            f"{label} seed {name}",
            f"a {name} look",
            vectors[40 + k],
            label,
        )
        for k, name in enumerate(["grunge", "y2k", "gorpcore"])
    ]
    yield Catalogue(label, item_ids, vectors[:40], slots, statuses, seed_ids, vectors[40:])
    await conn.execute("DELETE FROM items WHERE embedding_model = $1", label)
    await conn.execute("DELETE FROM style_seeds WHERE embedding_model = $1", label)
    await conn.close()


def exact_order(cat: Catalogue, query: np.ndarray, *, slot: str | None = None, exclude: int | None = None) -> list[int]:
    """Available item ids by exact cosine to `query`, computed in NumPy."""
    scores = cat.vectors @ (query / np.linalg.norm(query))
    keep = [
        i
        for i in range(40)
        if cat.statuses[i] == "available" and (slot is None or cat.slots[i] == slot) and cat.item_ids[i] != exclude
    ]
    return [cat.item_ids[i] for i in sorted(keep, key=lambda i: -scores[i])]


async def test_stylist_match_orders_by_exact_cosine_to_the_centroid(client, tokens, catalogue: Catalogue) -> None:
    body = {"seed_ids": catalogue.seed_ids, "limit": 10}
    first = await client.post("/v1/stylist/match", json=body, headers=bearer(tokens["jobs"]))
    second = await client.post("/v1/stylist/match", json={**body, "offset": 10}, headers=bearer(tokens["jobs"]))
    assert first.status_code == 200 and second.status_code == 200
    pages = [await first.get_json(), await second.get_json()]
    centroid = catalogue.seed_vectors.mean(axis=0)
    ids = [item["id"] for page in pages for item in page["items"]]
    assert ids == exact_order(catalogue, centroid)[:20]
    expected = catalogue.vectors[catalogue.item_ids.index(ids[0])] @ (centroid / np.linalg.norm(centroid))
    assert abs(pages[0]["items"][0]["score"] - float(expected)) < 1e-5
    assert pages[0]["model"] == catalogue.model and pages[1]["offset"] == 10


async def test_stylist_match_within_one_slot(client, tokens, catalogue: Catalogue) -> None:
    response = await client.post(
        "/v1/stylist/match",
        json={"seed_ids": catalogue.seed_ids[:1], "slot": "neck", "limit": 50},
        headers=bearer(tokens["jobs"]),
    )
    items = (await response.get_json())["items"]
    assert [i["id"] for i in items] == exact_order(catalogue, catalogue.seed_vectors[0], slot="neck")
    assert {i["slot"] for i in items} == {"neck"} and {i["status"] for i in items} == {"available"}


async def test_similar_items_exclude_the_item_itself(client, tokens, catalogue: Catalogue) -> None:
    item_id = catalogue.item_ids[5]
    response = await client.get(f"/v1/items/{item_id}/similar?limit=5", headers=bearer(tokens["jobs"]))
    assert response.status_code == 200
    ids = [i["id"] for i in (await response.get_json())["items"]]
    assert ids == exact_order(catalogue, catalogue.vectors[5], exclude=item_id)[:5]


async def test_public_responses_hold_no_marketplace_urls(client, tokens, catalogue: Catalogue) -> None:
    responses = [
        await client.post(
            "/v1/stylist/match", json={"seed_ids": catalogue.seed_ids, "limit": 50}, headers=bearer(tokens["jobs"])
        ),
        await client.get(f"/v1/items/{catalogue.item_ids[0]}/similar?limit=50", headers=bearer(tokens["jobs"])),
    ]
    for response in responses:
        text = json.dumps(await response.get_json())
        assert response.status_code == 200 and "media_keys" in text
        assert not any(word in text for word in PRIVATE)
        assert "vinted" not in text


async def test_seed_text_search(client, tokens, catalogue: Catalogue) -> None:
    response = await client.get("/v1/seeds?q=Y2K", headers=bearer(tokens["jobs"]))
    labels = [s["label"] for s in (await response.get_json())["seeds"]]
    assert labels == [f"{catalogue.model} seed y2k"]
    wildcard = await client.get("/v1/seeds?q=%25", headers=bearer(tokens["jobs"]))
    assert (await wildcard.get_json())["seeds"] == []  # % is a literal, not a wildcard
    everything = await client.get("/v1/seeds?limit=200", headers=bearer(tokens["jobs"]))
    assert {s["id"] for s in (await everything.get_json())["seeds"]} >= set(catalogue.seed_ids)


@pytest.mark.parametrize(
    "body,field",
    [
        ({"seed_ids": []}, "seed_ids"),
        ({"seed_ids": list(range(1, 9))}, "seed_ids"),
        ({"seed_ids": [1, 1]}, "seed_ids"),
        ({"seed_ids": [1], "limit": 51}, "limit"),
        ({"seed_ids": [1], "slot": "Not A Slot!"}, "slot"),
    ],
)
async def test_bad_match_bodies_are_422(client, tokens, body: dict, field: str) -> None:
    response = await client.post("/v1/stylist/match", json=body, headers=bearer(tokens["jobs"]))
    assert response.status_code == 422
    assert field in (await response.get_json())["errors"]


async def test_unknown_or_unembedded_seeds_and_items(client, tokens, catalogue: Catalogue, database_url: str) -> None:
    missing = await client.post("/v1/stylist/match", json={"seed_ids": [987654321]}, headers=bearer(tokens["jobs"]))
    assert missing.status_code == 404
    conn = await asyncpg.connect(database_url)
    try:
        seed = await conn.fetchval("INSERT INTO style_seeds (label) VALUES ($1) RETURNING id", uuid.uuid4().hex)
        item = await conn.fetchval(
            "INSERT INTO items (source, source_listing_id, title, kind) VALUES ('t', $1, 'x', 'stable') RETURNING id",
            uuid.uuid4().hex,
        )
    finally:
        await conn.close()
    bare = await client.post("/v1/stylist/match", json={"seed_ids": [seed]}, headers=bearer(tokens["jobs"]))
    assert bare.status_code == 409 and "no embedding" in (await bare.get_json())["detail"]
    assert (await client.get(f"/v1/items/{item}/similar", headers=bearer(tokens["jobs"]))).status_code == 409
    assert (await client.get("/v1/items/987654321/similar", headers=bearer(tokens["jobs"]))).status_code == 404


async def test_search_needs_a_token(client) -> None:
    assert (await client.get("/v1/seeds")).status_code == 401


async def test_post_embed_enqueues_for_real(client, tokens, redis_client) -> None:
    import actors

    sync = await client.post("/v1/jobs/embed", json={}, headers=bearer(tokens["jobs"]))
    some = await client.post("/v1/jobs/embed", json={"item_ids": [1, 2], "force": True}, headers=bearer(tokens["jobs"]))
    assert sync.status_code == 202 and some.status_code == 202
    first = actors.broker.jobs.get((await sync.get_json())["job_id"])
    second = actors.broker.jobs.get((await some.get_json())["job_id"])
    assert (first.actor, first.queue, first.kwargs) == ("sync_embeddings", "ml", {"force": False})
    assert (second.actor, second.kwargs) == ("embed_items", {"item_ids": [1, 2], "force": True})
