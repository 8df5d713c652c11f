"""Curated collections at catalogue scale: one generation from seeds, one from k-means clusters.

    python bench/collection_generation.py      # BENCH_COLLECTIONS_N items (default 30,000) on 2 cores: about a minute

Loads clustered 512-d vectors into a fresh embedded Postgres + pgvector (the schema's HNSW index),
then runs the generator's own planning and storing (actors.collections.plan_surface and
store_generation, without a broker) with the default settings, and prints how long each took
and how the picks obey the rules (brand cap, near-duplicates) under a catalogue with duplicates.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _services import Stack, say  # noqa: E402

N = int(os.environ.get("BENCH_COLLECTIONS_N", "30000"))
CLUSTERS = 300
SEEDS = 12
BRANDS = 40
MODEL = "bench-model"


def catalogue(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """N clustered unit vectors (every 10th duplicates its predecessor) and SEEDS seed vectors."""
    centres = rng.standard_normal((CLUSTERS, 512)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    points = centres[rng.integers(0, CLUSTERS, N)] + 0.75 * rng.standard_normal((N, 512), np.float32) / np.sqrt(512)
    points[10::10] = points[9:-1:10][: len(points[10::10])]
    seeds = centres[rng.choice(CLUSTERS, SEEDS, replace=False)]
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32), seeds


async def load(
    conn,
    vectors: np.ndarray,
    seeds: np.ndarray,  # type: ignore[no-untyped-def]
    rng: np.random.Generator,
) -> None:
    """Bulk-load items (Zipf-ish brands) and build the HNSW index, then the seeds."""
    await conn.execute("DROP INDEX items_embedding_hnsw")
    brands = [f"Brand {min(int(b), BRANDS)}" for b in rng.zipf(1.6, len(vectors))]
    records = [
        ("bench", str(i), f"item {i}", brands[i], "one_of_one", "available", [f"{i:064x}"], vectors[i], MODEL)
        for i in range(len(vectors))
    ]
    await conn.copy_records_to_table(
        "items",
        records=records,
        columns=[
            "source",
            "source_listing_id",
            "title",
            "brand",
            "kind",
            "status",
            "media_keys",
            "embedding",
            "embedding_model",
        ],
    )
    started = time.perf_counter()
    await conn.execute("SET maintenance_work_mem = '1GB'")
    await conn.execute("CREATE INDEX items_embedding_hnsw ON items USING hnsw (embedding vector_cosine_ops)")
    await conn.execute("VACUUM ANALYZE items")
    say(f"loaded {len(vectors):,} items; HNSW index built in {time.perf_counter() - started:.0f}s")
    for k, vector in enumerate(seeds):
        await conn.execute(
            "INSERT INTO style_seeds (label, embedding, embedding_model) VALUES ($1, $2, $3)",
            f"look {k}",
            vector,
            MODEL,
        )


async def generation(conn, surface: str, vectors: np.ndarray) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Plan and store one generation; its timings and rule figures."""
    from actors.collections import plan_surface, store_generation
    from config.settings import get_settings

    settings = get_settings()
    now = datetime.now(UTC)
    started = time.perf_counter()
    method, planned = await plan_surface(conn, surface, model=MODEL, day=now.date(), settings=settings)
    planned_s = time.perf_counter() - started
    started = time.perf_counter()
    stored = await store_generation(
        conn, surface, planned, method=method, model=MODEL, generated_at=now, settings=settings
    )
    store_ms = (time.perf_counter() - started) * 1000
    rows = await conn.fetch(
        "SELECT id, brand FROM items WHERE id = ANY($1::bigint[])", [i for p in planned for i in p.item_ids]
    )
    brand = {r["id"]: r["brand"] for r in rows}
    worst_brand = max(max(Counter(brand[i] for i in p.item_ids).values()) for p in planned)
    worst_cosine = max(
        float(np.max(m - np.eye(len(m)) * 2))
        for m in ((vectors[np.array(p.item_ids) - 1] @ vectors[np.array(p.item_ids) - 1].T) for p in planned)
    )
    say(
        f"  {method}: {len(planned)} collections, {sum(len(p.item_ids) for p in planned)} items, planned in "
        f"{planned_s:.2f}s, stored+swapped in {store_ms:.0f} ms (swapped={stored is not None}); "
        f"max per brand {worst_brand} (cap {settings.collection_brand_cap}), max pair cosine {worst_cosine:.3f} "
        f"(threshold {settings.collection_duplicate_cosine})"
    )
    return {"planned_s": planned_s, "store_ms": store_ms, "collections": len(planned)}


async def measure(dsn: str, vectors: np.ndarray, seeds: np.ndarray, rng: np.random.Generator) -> dict[str, dict]:
    """Both generations on a loaded database."""
    from db.pool import create_pool

    pool = await create_pool(dsn, min_size=1, max_size=1)
    async with pool.acquire() as conn:
        await load(conn, vectors, seeds, rng)
        from_seeds = await generation(conn, "home", vectors)
        await conn.execute("UPDATE style_seeds SET embedding_model = 'another-model'")
        from_clusters = await generation(conn, "gifts", vectors)
    await pool.close()
    return {"seeds": from_seeds, "clusters": from_clusters}


def main() -> int:
    """Start Postgres, load, generate twice, print; the last line is the summary."""
    rng = np.random.default_rng(20261123)
    vectors, seeds = catalogue(rng)
    stack = Stack()
    try:
        say("starting embedded PostgreSQL + pgvector…")
        dsn = stack.start_postgres()
        os.environ.setdefault("DATABASE_URL", dsn)
        os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")  # settings need one; unused here
        figures = asyncio.run(measure(dsn, vectors, seeds, rng))
    finally:
        stack.stop()
    seeds_f, clusters_f = figures["seeds"], figures["clusters"]
    say(
        f"bench: collections n={N} seeds_plan_s={seeds_f['planned_s']:.2f} seeds_store_ms={seeds_f['store_ms']:.0f} "
        f"clusters_plan_s={clusters_f['planned_s']:.2f} clusters_store_ms={clusters_f['store_ms']:.0f} "
        f"collections={seeds_f['collections']}+{clusters_f['collections']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
