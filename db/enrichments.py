"""Item enrichments: what the enrich actor reads about items, and the slot, tags and LLM text it writes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import numpy as np

from db.items import as_array
from domain.enrichment import Pick
from domain.enrichment_llm import LlmEnrichment


@dataclass(frozen=True)
class EnrichTarget:
    """One item as the enrich actor sees it: public facts, its image vector, and its last enrichment."""

    id: int
    title: str
    brand: str | None
    size: str | None
    condition: str | None
    vector: np.ndarray | None
    embedding_model: str | None
    image_hash: str | None
    fingerprint: str | None
    slot: str | None
    tags: tuple[str, ...]
    llm_fingerprint: str | None


@dataclass(frozen=True)
class ItemEnrichment:
    """An item's stored enrichment."""

    item_id: int
    slot: str
    slot_score: float
    slot_scores: dict[str, float]
    tags: tuple[str, ...]
    tag_scores: dict[str, float]
    model: str
    vocabulary_version: str
    image_hash: str
    fingerprint: str
    enriched_at: datetime
    llm_model: str | None
    llm_status: str | None
    llm_error: str | None
    description: str | None
    llm_tags: tuple[str, ...] | None
    occasion_fit: tuple[str, ...] | None
    llm_run_id: int | None
    llm_enriched_at: datetime | None


async def select_enrich_targets(conn: asyncpg.Connection, item_ids: Sequence[int]) -> list[EnrichTarget]:
    """These items (in id order) with their vector, image hash and current enrichment, if any."""
    rows = await conn.fetch(
        """
        SELECT i.id, i.title, i.brand, i.size, i.condition, i.embedding, i.embedding_model, i.embedding_hash,
               e.fingerprint, e.slot, e.tags, e.llm_fingerprint
        FROM items i LEFT JOIN item_enrichments e ON e.item_id = i.id
        WHERE i.id = ANY($1::bigint[]) ORDER BY i.id
        """,
        list(item_ids),
    )
    return [
        EnrichTarget(
            id=r["id"],
            title=r["title"],
            brand=r["brand"],
            size=r["size"],
            condition=r["condition"],
            vector=None if r["embedding"] is None else as_array(r["embedding"]),
            embedding_model=r["embedding_model"],
            image_hash=r["embedding_hash"],
            fingerprint=r["fingerprint"],
            slot=r["slot"],
            tags=tuple(r["tags"] or ()),
            llm_fingerprint=r["llm_fingerprint"],
        )
        for r in rows
    ]


async def upsert_item_enrichment(
    conn: asyncpg.Connection,
    item_id: int,
    *,
    pick: Pick,
    model: str,
    vocabulary_version: str,
    image_hash: str,
    fingerprint: str,
) -> None:
    """Store an item's zero-shot slot and tags; items.slot follows unless someone else set it."""
    previous = await conn.fetchval("SELECT slot FROM item_enrichments WHERE item_id = $1 FOR UPDATE", item_id)
    await conn.execute(
        """
        INSERT INTO item_enrichments (item_id, slot, slot_score, slot_scores, tags, tag_scores, model,
                                      vocabulary_version, image_hash, fingerprint, enriched_at)
        VALUES ($1, $2, $3, $4::jsonb, $5, $6::jsonb, $7, $8, $9, $10, now())
        ON CONFLICT (item_id) DO UPDATE SET
            slot = EXCLUDED.slot, slot_score = EXCLUDED.slot_score, slot_scores = EXCLUDED.slot_scores,
            tags = EXCLUDED.tags, tag_scores = EXCLUDED.tag_scores, model = EXCLUDED.model,
            vocabulary_version = EXCLUDED.vocabulary_version, image_hash = EXCLUDED.image_hash,
            fingerprint = EXCLUDED.fingerprint, enriched_at = now()
        """,
        item_id,
        pick.slot,
        pick.slot_score,
        json.dumps(pick.slot_scores),
        list(pick.tags),
        json.dumps(pick.tag_scores),
        model,
        vocabulary_version,
        image_hash,
        fingerprint,
    )
    # the stylist filters on items.slot: fill it, or move it along with our own earlier pick,
    # but never overwrite a slot an admin or the source set
    await conn.execute(
        "UPDATE items SET slot = $2 WHERE id = $1 AND (slot IS NULL OR slot = $3) AND slot IS DISTINCT FROM $2",
        item_id,
        pick.slot,
        previous,
    )


async def update_item_llm_enrichment(
    conn: asyncpg.Connection,
    item_id: int,
    *,
    llm_model: str,
    basis: str,
    llm_fingerprint: str,
    answer: LlmEnrichment,
    run_id: int,
) -> None:
    """Store a usable LLM answer for an item (its zero-shot row must exist)."""
    await conn.execute(
        """
        UPDATE item_enrichments SET llm_model = $2, llm_basis = $3, llm_fingerprint = $4, llm_status = 'succeeded',
               llm_error = NULL, description = $5, llm_tags = $6, occasion_fit = $7, llm_run_id = $8,
               llm_enriched_at = now()
        WHERE item_id = $1
        """,
        item_id,
        llm_model,
        basis,
        llm_fingerprint,
        answer.description,
        answer.tags,
        answer.occasion_fit,
        run_id,
    )


async def update_item_llm_failure(
    conn: asyncpg.Connection, item_id: int, *, llm_model: str, basis: str, llm_fingerprint: str, error: str, run_id: int
) -> None:
    """Record that the LLM gave no usable answer for these inputs (an earlier answer stays)."""
    await conn.execute(
        """
        UPDATE item_enrichments SET llm_model = $2, llm_basis = $3, llm_fingerprint = $4, llm_status = 'failed',
               llm_error = $5, llm_run_id = $6
        WHERE item_id = $1
        """,
        item_id,
        llm_model,
        basis,
        llm_fingerprint,
        error[:500],
        run_id,
    )


async def select_item_enrichment(conn: asyncpg.Connection, item_id: int) -> ItemEnrichment | None:
    """An item's enrichment, or None."""
    r = await conn.fetchrow("SELECT * FROM item_enrichments WHERE item_id = $1", item_id)
    if r is None:
        return None
    row = dict(r)
    row.pop("llm_basis")
    row.pop("llm_fingerprint")
    row.update(
        slot_scores=json.loads(row["slot_scores"]),
        tag_scores=json.loads(row["tag_scores"]),
        tags=tuple(row["tags"]),
        llm_tags=None if row["llm_tags"] is None else tuple(row["llm_tags"]),
        occasion_fit=None if row["occasion_fit"] is None else tuple(row["occasion_fit"]),
    )
    return ItemEnrichment(**row)


async def select_item_ids_to_enrich(
    conn: asyncpg.Connection,
    *,
    model: str,
    vocabulary_version: str,
    llm_model: str | None,
    after_id: int = 0,
    limit: int = 1000,
) -> list[int]:
    """Ids after `after_id` of items (not rejected) with a vector of `model` whose enrichment is missing or stale.

    Stale: another image, model or vocabulary; or, when `llm_model` is given, no LLM attempt
    with that model on the current zero-shot result.
    """
    rows = await conn.fetch(
        """
        SELECT i.id FROM items i LEFT JOIN item_enrichments e ON e.item_id = i.id
        WHERE i.id > $1 AND i.embedding_model = $2 AND i.embedding IS NOT NULL AND i.status <> 'rejected'
          AND (e.item_id IS NULL OR e.model <> $2 OR e.vocabulary_version <> $3
               OR e.image_hash IS DISTINCT FROM i.embedding_hash
               OR ($4::text IS NOT NULL
                   AND (e.llm_model IS DISTINCT FROM $4 OR e.llm_basis IS DISTINCT FROM e.fingerprint)))
        ORDER BY i.id LIMIT $5
        """,
        after_id,
        model,
        vocabulary_version,
        llm_model,
        limit,
    )
    return [r["id"] for r in rows]
