"""Item embedding state and nearest-item search on real PostgreSQL + pgvector."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest

from db import item_search
from db.embeddings import select_embed_targets, select_ids_to_embed, update_embedding
from db.item_search import select_nearest_items, select_vector_version
from db.items import select_item_embedding

MODEL = "test-model"


def clustered(n: int, *, clusters: int = 20, seed: int = 0) -> np.ndarray:
    """Unit vectors around a few centres, like real image embeddings (hard for HNSW under filters)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, 512)).astype(np.float32)
    vectors = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, 512)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


async def load_items(
    conn: asyncpg.Connection, vectors: np.ndarray, *, slots: list[str], statuses: list[str], model: str = MODEL
) -> None:
    """Bulk-load items with vectors, rebuilding the HNSW index afterwards (as a bulk load should)."""
    await conn.execute("DROP INDEX items_embedding_hnsw")
    records = [
        (
            "test",
            f"s{i}",
            f"https://marketplace.example/{i}",
            f"item {i}",
            slots[i],
            statuses[i],
            "one_of_one",
            [f"{i:064x}"],
            vec,
            model,
        )
        for i, vec in enumerate(vectors)
    ]
    await conn.copy_records_to_table(
        "items",
        records=records,
        columns=[
            "source",
            "source_listing_id",
            "source_url",
            "title",
            "slot",
            "status",
            "kind",
            "media_keys",
            "embedding",
            "embedding_model",
        ],
    )
    await conn.execute("CREATE INDEX items_embedding_hnsw ON items USING hnsw (embedding vector_cosine_ops)")
    await conn.execute("ANALYZE items")


def exact_top(vectors: np.ndarray, query: np.ndarray, mask: np.ndarray, k: int) -> list[int]:
    """Ids (1-based, as bigserial gives them) of the k nearest vectors under the mask."""
    scores = vectors @ (query / np.linalg.norm(query))
    scores[~mask] = -np.inf
    return [int(i) + 1 for i in np.argsort(-scores, kind="stable")[:k]]


async def test_pgvector_version_is_read(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        assert await select_vector_version(conn) >= (0, 5)


async def test_embedding_state_roundtrip(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        await load_items(conn, clustered(3), slots=["a"] * 3, statuses=["available"] * 3)
        await conn.execute("UPDATE items SET embedding = NULL, embedding_model = NULL WHERE id = 3")
        await conn.execute("UPDATE items SET media_keys = '{}' WHERE id = 2")
        assert await select_ids_to_embed(conn, "items", model=MODEL) == [3]
        assert await select_ids_to_embed(conn, "items", model="other") == [1, 3]  # 2 has no image
        assert await select_ids_to_embed(conn, "items", model=MODEL, force=True, after_id=1) == [3]
        vector = clustered(1, seed=5)[0]
        await update_embedding(conn, "items", 3, vector=vector, model=MODEL, content_hash="h3")
        stored, model = await select_item_embedding(conn, 3)
        np.testing.assert_allclose(stored, vector, atol=1e-7)
        await update_embedding(conn, "items", 1, model=MODEL, content_hash="h1", error="broken image")
        targets = {t.id: t for t in await select_embed_targets(conn, "items", [1, 3])}
        assert targets[1].embed_error == "broken image" and not targets[1].embedded
        assert targets[1].is_current(MODEL, "h1") and not targets[1].is_current(MODEL, "other")
        assert targets[3].is_current(MODEL, "h3") and not targets[3].is_current("other", "h3")
        assert await select_item_embedding(conn, 1) is None
        assert await select_ids_to_embed(conn, "items", model=MODEL) == []  # a refused image is not retried


async def test_unfiltered_search_matches_exact_order(db_pool: asyncpg.Pool) -> None:
    vectors = clustered(500)
    async with db_pool.acquire() as conn:
        await load_items(conn, vectors, slots=["a"] * 500, statuses=["available"] * 500)
        query = clustered(1, seed=9)[0]
        page1 = await select_nearest_items(conn, query, model=MODEL, limit=10)
        page2 = await select_nearest_items(conn, query, model=MODEL, limit=10, offset=10)
    assert [c.id for c in page1 + page2] == exact_top(vectors, query, np.ones(500, bool), 20)
    scores = [c.score for c in page1 + page2]
    assert scores == sorted(scores, reverse=True)
    assert abs(scores[0] - float(vectors[page1[0].id - 1] @ query)) < 1e-5


@pytest.mark.parametrize("exact_scan_max", [item_search.EXACT_SCAN_MAX, 0])
async def test_one_percent_slot_filter_still_returns_limit(
    db_pool: asyncpg.Pool, exact_scan_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # exact_scan_max=0 forces the HNSW path, whose plain scan returns too few rows at 1%
    monkeypatch.setattr(item_search, "EXACT_SCAN_MAX", exact_scan_max)
    n = 4000
    vectors = clustered(n, seed=1)
    slots = ["rare" if i % 100 == 0 else "common" for i in range(n)]  # 40 rare items: 1%
    async with db_pool.acquire() as conn:
        await load_items(conn, vectors, slots=slots, statuses=["available"] * n)
        for seed in range(5):
            query = clustered(1, seed=100 + seed)[0]
            found = await select_nearest_items(conn, query, model=MODEL, slot="rare", limit=20, ef_search=40)
            mask = np.array([s == "rare" for s in slots])
            assert [c.id for c in found] == exact_top(vectors, query, mask, 20)
            assert all(c.slot == "rare" for c in found)


async def test_plain_hnsw_scan_really_loses_rows_under_the_filter(db_pool: asyncpg.Pool) -> None:
    """The problem the fallbacks solve: pgvector < 0.8 filters after its ef_search candidates."""
    n = 4000
    async with db_pool.acquire() as conn:
        if await select_vector_version(conn) >= (0, 8):
            pytest.skip("pgvector >= 0.8 scans iteratively")
        await load_items(
            conn,
            clustered(n, seed=1),
            slots=["rare" if i % 100 == 0 else "common" for i in range(n)],
            statuses=["available"] * n,
        )
        async with conn.transaction():
            await conn.execute("SET LOCAL hnsw.ef_search = 40")
            await conn.execute("SET LOCAL enable_bitmapscan = off")
            await conn.execute("SET LOCAL enable_seqscan = off")
            rows = await conn.fetch(
                "SELECT id FROM items WHERE slot = 'rare' ORDER BY embedding <=> $1 LIMIT 20", clustered(1, seed=7)[0]
            )
    assert len(rows) < 20


async def test_one_percent_available_without_slot(db_pool: asyncpg.Pool) -> None:
    n = 4000
    vectors = clustered(n, seed=2)
    statuses = ["available" if i % 100 == 0 else "sold" for i in range(n)]
    async with db_pool.acquire() as conn:
        await load_items(conn, vectors, slots=["a"] * n, statuses=statuses)
        query = clustered(1, seed=11)[0]
        found = await select_nearest_items(conn, query, model=MODEL, limit=20, ef_search=40)
    assert [c.id for c in found] == exact_top(vectors, query, np.array([s == "available" for s in statuses]), 20)


async def test_search_skips_other_models_and_excluded_ids(db_pool: asyncpg.Pool) -> None:
    vectors = clustered(50, seed=3)
    async with db_pool.acquire() as conn:
        await load_items(conn, vectors, slots=["a"] * 50, statuses=["available"] * 50)
        await conn.execute("UPDATE items SET embedding_model = 'old' WHERE id <= 10")
        found = await select_nearest_items(conn, vectors[20], model=MODEL, exclude_ids=[21], limit=50)
    ids = [c.id for c in found]
    assert 21 not in ids and all(i > 10 for i in ids) and len(ids) == 39
