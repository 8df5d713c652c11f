"""Similarity search at catalogue scale: HNSW vs exact scan on 200,000 clustered 512-d vectors.

    python bench/search.py        # a few minutes on 2 cores (most of it loading and indexing)

Loads the vectors into a fresh embedded Postgres + pgvector (the schema's own HNSW index),
sweeps hnsw.ef_search for recall@20 against NumPy's exact answer, then times the query path the
API uses (db.item_search.select_nearest_items) at the configured ef_search, an exact scan, and
the same path with a 1%-selective slot filter.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _services import Stack, say  # noqa: E402

N = int(os.environ.get("BENCH_SEARCH_N", "200000"))
CLUSTERS = 500
QUERIES = 100
EXACT_QUERIES = 30
K = 20
MODEL = "bench-model"
SWEEP = (40, 100, 200, 400)
RARE_EVERY = 100  # one item in 100 sits in the rare slot: a 1%-selective filter


def clustered(n: int, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors around random centres (intra-cluster cosine about 0.8, like product photos)."""
    points = centres[rng.integers(0, len(centres), n)] + 0.75 * rng.standard_normal((n, 512), np.float32) / np.sqrt(512)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def exact(vectors: np.ndarray, queries: np.ndarray, mask: np.ndarray | None = None) -> list[set[int]]:
    """Ids (1-based) of the true top-K per query."""
    out = []
    for query in queries:
        scores = vectors @ query
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        out.append({int(i) + 1 for i in np.argpartition(-scores, K)[:K]})
    return out


async def load(conn, vectors: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """Bulk-load the items, then build the schema's HNSW index (as a bulk import should)."""
    await conn.execute("DROP INDEX items_embedding_hnsw")
    started = time.perf_counter()
    chunk = 20_000
    for start in range(0, len(vectors), chunk):
        records = [
            (
                "bench",
                str(i),
                f"item {i}",
                "one_of_one",
                "available",
                "rare" if i % RARE_EVERY == 0 else f"slot{i % 7}",
                [f"{i:064x}"],
                vectors[i],
                MODEL,
            )
            for i in range(start, min(start + chunk, len(vectors)))
        ]
        await conn.copy_records_to_table(
            "items",
            records=records,
            columns=[
                "source",
                "source_listing_id",
                "title",
                "kind",
                "status",
                "slot",
                "media_keys",
                "embedding",
                "embedding_model",
            ],
        )
    say(f"loaded {len(vectors):,} items in {time.perf_counter() - started:.0f}s; building the HNSW index…")
    started = time.perf_counter()
    await conn.execute("SET maintenance_work_mem = '2GB'")
    await conn.execute("SET max_parallel_maintenance_workers = 1")
    await conn.execute("CREATE INDEX items_embedding_hnsw ON items USING hnsw (embedding vector_cosine_ops)")
    await conn.execute("VACUUM ANALYZE items")
    say(f"HNSW index (m=16, ef_construction=64, as migrated) built in {time.perf_counter() - started:.0f}s")


async def timed(run, queries: np.ndarray) -> tuple[list[set[int]], np.ndarray]:  # type: ignore[no-untyped-def]
    """Each query's result ids and latency in ms (after a few untimed warm-up queries)."""
    for query in queries[:5]:
        await run(query)
    found, times = [], []
    for query in queries:
        started = time.perf_counter()
        ids = await run(query)
        times.append((time.perf_counter() - started) * 1000)
        found.append(set(ids))
    return found, np.array(times)


def recall(found: list[set[int]], truth: list[set[int]]) -> float:
    """Mean recall@K."""
    return float(np.mean([len(f & t) / K for f, t in zip(found, truth)]))


def pct(times: np.ndarray) -> str:
    """p50/p99 of latencies in ms."""
    return f"p50 {np.percentile(times, 50):.1f} ms, p99 {np.percentile(times, 99):.1f} ms"


async def raw_hnsw(conn, ef: int):  # type: ignore[no-untyped-def]
    """The bare index query at one ef_search (what pgvector gives without our fallbacks)."""
    await conn.execute(f"SET hnsw.ef_search = {ef}")

    async def run(query: np.ndarray) -> list[int]:
        rows = await conn.fetch("SELECT id FROM items ORDER BY embedding <=> $1 LIMIT 20", query)
        return [r["id"] for r in rows]

    return run


async def measure(dsn: str, vectors: np.ndarray, queries: np.ndarray) -> dict[str, float]:
    """Every figure of the bench, on a loaded database."""
    from config.settings import get_settings
    from db.item_search import select_nearest_items
    from db.pool import create_pool

    ef_search = get_settings().search_ef_search
    pool = await create_pool(dsn, min_size=1, max_size=1)
    async with pool.acquire() as conn:
        await load(conn, vectors)
        truth = exact(vectors, queries)
        enough = None
        for ef in SWEEP:
            found, times = await timed(await raw_hnsw(conn, ef), queries)
            enough = enough or (ef if recall(found, truth) >= 0.95 else None)
            say(f"  raw HNSW ef_search={ef}: recall@{K} {recall(found, truth):.3f}, {pct(times)}")
        say(f"smallest ef_search reaching recall 0.95 here: {enough or 'none swept'} (SEARCH_EF_SEARCH={ef_search})")
        await conn.execute("RESET hnsw.ef_search")

        async def api(query: np.ndarray, slot: str | None = None) -> list[int]:
            cards = await select_nearest_items(conn, query, model=MODEL, slot=slot, limit=K, ef_search=ef_search)
            return [c.id for c in cards]

        hnsw_found, hnsw_times = await timed(api, queries)
        say(f"API path (SEARCH_EF_SEARCH={ef_search}): recall@{K} {recall(hnsw_found, truth):.3f}, {pct(hnsw_times)}")

        async def exact_sql(query: np.ndarray) -> list[int]:
            # the function form of <=> never uses the index: a sequential scan and a top-N sort
            rows = await conn.fetch("SELECT id FROM items ORDER BY cosine_distance(embedding, $1) LIMIT 20", query)
            return [r["id"] for r in rows]

        exact_found, exact_times = await timed(exact_sql, queries[:EXACT_QUERIES])
        say(f"exact scan: recall@{K} {recall(exact_found, truth):.3f}, {pct(exact_times)} ({EXACT_QUERIES} queries)")
        rare = np.arange(len(vectors)) % RARE_EVERY == 0
        filtered_found, filtered_times = await timed(lambda q: api(q, "rare"), queries)
        filtered_recall = recall(filtered_found, exact(vectors, queries, rare))
        full = sum(len(f) == K for f in filtered_found)
        say(
            f"1% slot filter ({int(rare.sum()):,} candidates):"
            f" recall@{K} {filtered_recall:.3f}, {pct(filtered_times)}, "
            f"{full}/{len(queries)} queries got {K} rows"
        )
    await pool.close()
    hnsw_p99, exact_p99 = float(np.percentile(hnsw_times, 99)), float(np.percentile(exact_times, 99))
    return {
        "recall": recall(hnsw_found, truth),
        "hnsw_p99": hnsw_p99,
        "exact_p99": exact_p99,
        "filtered_recall": filtered_recall,
    }


def main() -> int:
    """Start Postgres, load, measure, print; the last line is the summary."""
    rng = np.random.default_rng(20261122)
    centres = rng.standard_normal((CLUSTERS, 512)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors, queries = clustered(N, centres, rng), clustered(QUERIES, centres, rng)
    stack = Stack()
    try:
        say("starting embedded PostgreSQL + pgvector…")
        dsn = stack.start_postgres()
        os.environ.setdefault("DATABASE_URL", dsn)
        os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")  # settings need one; unused here
        figures = asyncio.run(measure(dsn, vectors, queries))
    finally:
        stack.stop()
    speedup = figures["exact_p99"] / figures["hnsw_p99"]
    say(
        f"bench: search n={N} recall={figures['recall']:.3f} hnsw_p99_ms={figures['hnsw_p99']:.1f} "
        f"exact_p99_ms={figures['exact_p99']:.1f} speedup={speedup:.1f}"
        f" filtered_recall={figures['filtered_recall']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
