"""Curated collections: grow diverse collections around style seeds (or k-means clusters when no seed is
embedded) and swap the surface to the new generation in one transaction."""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import dramatiq
import numpy as np

from actors.embed import current_model_id
from config.settings import Settings, get_settings
from db.collections import (
    delete_stale_generations,
    insert_generation,
    select_available_item_ids,
    select_item_vectors,
    select_seed_centres,
    swap_surface_generation,
)
from db.item_search import select_nearest_items
from db.pool import get_process_pool
from domain.collections import (
    Candidate,
    DiversityRules,
    InvalidSurface,
    PlannedCollection,
    check_surface,
    cluster_title,
    distinct_titles,
    pick_seeds,
    seed_title,
    select_diverse,
)
from ml.clusters import cosine_matrix, kmeans
from ml.manifest import ModelDirError


@dataclass(frozen=True)
class Centre:
    """Where one collection grows from: a seed (with its label) or a cluster centroid."""

    vector: np.ndarray
    seed_id: int | None = None
    title: str | None = None
    description: str | None = None


def rules_from(settings: Settings) -> DiversityRules:
    """The diversity rules the settings describe."""
    return DiversityRules(
        size=settings.collection_size,
        brand_cap=settings.collection_brand_cap,
        max_similarity=settings.collection_duplicate_cosine,
        relevance_weight=settings.collection_relevance_weight,
    )


async def seed_centres(conn: asyncpg.Connection, surface: str, *, model: str, day: date, count: int) -> list[Centre]:
    """Today's seeds for this surface (a window rotating daily through every embedded seed)."""
    seeds = {seed.id: seed for seed in await select_seed_centres(conn, model=model)}
    return [
        Centre(seeds[i].vector, i, seed_title(seeds[i].label), seeds[i].description)
        for i in pick_seeds(list(seeds), count, surface=surface, day=day)
    ]


async def cluster_centres(conn: asyncpg.Connection, *, model: str, k: int, sample: int, seed: int) -> list[Centre]:
    """k-means centroids of a sample of the available items' vectors (largest cluster first)."""
    ids = await select_available_item_ids(conn, model=model)
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(ids, size=min(sample, len(ids)), replace=False).tolist()) if ids else []
    vectors = await select_item_vectors(conn, chosen)
    if not vectors:
        return []
    centroids = await asyncio.to_thread(kmeans, np.stack(list(vectors.values())), k, seed=seed)
    return [Centre(vector) for vector in centroids]


async def plan_collection(
    conn: asyncpg.Connection, centre: Centre, ordinal: int, *, model: str, used: set[int], settings: Settings
) -> PlannedCollection | None:
    """Diverse picks among the available items nearest the centre, skipping items used by earlier collections."""
    # used items are dropped here rather than in SQL: an exclusion filter would push HNSW into its exact fallback
    cards = await select_nearest_items(
        conn,
        centre.vector,
        model=model,
        ef_search=settings.search_ef_search,
        limit=settings.collection_candidates + len(used),
    )
    cards = [card for card in cards if card.id not in used]
    vectors = await select_item_vectors(conn, [card.id for card in cards])
    cards = [card for card in cards if card.id in vectors]
    if len(cards) < settings.collection_min_size:
        return None
    similarity = cosine_matrix(np.stack([vectors[card.id] for card in cards])).tolist()
    candidates = [Candidate(card.id, float(card.score or 0.0), card.brand) for card in cards]
    picks = [cards[i] for i in select_diverse(candidates, similarity, rules_from(settings))]
    if len(picks) < settings.collection_min_size:
        return None
    title = centre.title or cluster_title([c.slot or c.category for c in picks], [c.brand for c in picks], ordinal)
    return PlannedCollection(
        title,
        centre.description,
        centre.seed_id,
        tuple(c.id for c in picks),
        tuple(float(c.score or 0.0) for c in picks),
    )


async def plan_surface(
    conn: asyncpg.Connection, surface: str, *, model: str, day: date, settings: Settings
) -> tuple[str, list[PlannedCollection]]:
    """The method used ('seeds' or 'clusters') and the collections of a new generation, in order."""
    count = settings.collections_per_surface
    centres = await seed_centres(conn, surface, model=model, day=day, count=count)
    method = "seeds" if centres else "clusters"
    if not centres:
        centres = await cluster_centres(
            conn,
            model=model,
            k=count,
            sample=settings.collection_cluster_sample,
            seed=zlib.crc32(surface.encode()) + day.toordinal(),
        )
    used: set[int] = set()
    planned: list[PlannedCollection] = []
    for centre in centres:
        collection = await plan_collection(conn, centre, len(planned) + 1, model=model, used=used, settings=settings)
        if collection is not None:
            used.update(collection.item_ids)
            planned.append(collection)
    titles = distinct_titles([p.title for p in planned])
    return method, [
        PlannedCollection(title, p.description, p.seed_id, p.item_ids, p.scores) for title, p in zip(titles, planned)
    ]


async def store_generation(
    conn: asyncpg.Connection,
    surface: str,
    planned: Sequence[PlannedCollection],
    *,
    method: str,
    model: str,
    generated_at: datetime,
    settings: Settings,
) -> uuid.UUID | None:
    """Insert the generation and make it current in one transaction; None when a newer one is already current."""
    generation = uuid.uuid4()
    try:
        async with conn.transaction():
            await insert_generation(
                conn,
                generation=generation,
                surface=surface,
                method=method,
                model=model,
                generated_at=generated_at,
                valid_hours=settings.collection_valid_hours,
                collections=planned,
            )
            if not await swap_surface_generation(
                conn, surface=surface, generation=generation, generated_at=generated_at
            ):
                raise _Superseded
            await delete_stale_generations(conn, surface=surface, keep=settings.collection_keep_generations)
    except _Superseded:
        return None
    return generation


class _Superseded(Exception):
    """Rolls the transaction back: a newer generation became current meanwhile."""


@dramatiq.actor(
    queue_name="default",
    max_retries=3,
    min_backoff=5_000,
    max_backoff=300_000,
    time_limit=600_000,
    throws=(InvalidSurface, ModelDirError),
)
async def generate_collections(surface: str) -> dict[str, Any]:
    """Build a new generation of the surface's collections (seeds, else clusters) and swap it in atomically."""
    check_surface(surface)
    settings, model, generated_at = get_settings(), current_model_id(), datetime.now(UTC)
    async with get_process_pool().acquire() as conn:
        method, planned = await plan_surface(conn, surface, model=model, day=generated_at.date(), settings=settings)
        generation = None
        if planned:  # nothing to show: keep the current generation rather than empty the surface
            generation = await store_generation(
                conn, surface, planned, method=method, model=model, generated_at=generated_at, settings=settings
            )
    return {
        "surface": surface,
        "method": method,
        "generation": str(generation) if generation else None,
        "collections": len(planned),
        "items": sum(len(p.item_ids) for p in planned),
        "swapped": bool(generation),
    }
