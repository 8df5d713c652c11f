"""Curated collections: generator inputs, writing a generation and swapping it in, reads with live availability.

A generation is written with `insert_generation` and made current with `swap_surface_generation`
inside one transaction owned by the caller, so readers (one statement each, one snapshot) see
the whole old surface or the whole new one. Reads join the items live: an item sold since the
generation ran is left out of the public read (or shown with its live status when asked).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from db.items import CARD_COLUMNS, ItemCard, as_array, item_card
from domain.collections import PlannedCollection

_CARD = [column.strip() for column in CARD_COLUMNS.split(",")]
_ITEM_COLUMNS = ", ".join(f"i.{column} AS i_{column}" for column in _CARD)


@dataclass(frozen=True)
class SeedCentre:
    """An embedded style seed: a collection grows around its vector and takes its label."""

    id: int
    label: str
    description: str | None
    vector: np.ndarray


class CollectionView(BaseModel):
    """A curated collection; items carry our media keys only, never marketplace URLs."""

    # served as it is by web/; items in order with live status (score = fit to its centre)
    model_config = ConfigDict(frozen=True)

    id: int
    surface: str
    title: str | None
    description: str | None
    seed_id: int | None
    generation: str
    current: bool = Field(description="True while this collection belongs to its surface's current generation.")
    valid_from: datetime
    valid_until: datetime | None
    item_count: int = Field(description="Items picked at generation time (available or not now).")
    items: tuple[ItemCard, ...]


@dataclass(frozen=True)
class SurfaceView:
    """The current generation of a surface and its collections, in order."""

    surface: str
    generation: str
    generated_at: datetime
    swapped_at: datetime
    collections: tuple[CollectionView, ...]


async def select_seed_centres(conn: asyncpg.Connection, *, model: str) -> list[SeedCentre]:
    """Style seeds embedded by `model`, by id."""
    rows = await conn.fetch(
        """
        SELECT id, label, description, embedding FROM style_seeds
        WHERE embedding IS NOT NULL AND embedding_model = $1 ORDER BY id
        """,
        model,
    )
    return [SeedCentre(r["id"], r["label"], r["description"], as_array(r["embedding"])) for r in rows]


async def select_available_item_ids(conn: asyncpg.Connection, *, model: str) -> list[int]:
    """Ids of available items with a vector of `model` (what clustering may sample)."""
    rows = await conn.fetch(
        """
        SELECT id FROM items WHERE status = 'available' AND embedding_model = $1 AND embedding IS NOT NULL ORDER BY id
        """,
        model,
    )
    return [r["id"] for r in rows]


async def select_item_vectors(conn: asyncpg.Connection, item_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The vectors of these items by id (items without one are absent)."""
    rows = await conn.fetch(
        "SELECT id, embedding FROM items WHERE id = ANY($1::bigint[]) AND embedding IS NOT NULL", list(item_ids)
    )
    return {r["id"]: as_array(r["embedding"]) for r in rows}


async def insert_generation(
    conn: asyncpg.Connection,
    *,
    generation: uuid.UUID,
    surface: str,
    method: str,
    model: str | None,
    generated_at: datetime,
    valid_hours: float,
    collections: Sequence[PlannedCollection],
) -> list[int]:
    """Write a generation and its still available items (valid from now for `valid_hours`); returns the ids.

    Idempotent per generation id: a second call writes nothing and returns the existing ids.
    """
    created = await conn.fetchval(
        """
        INSERT INTO collection_generations (generation, surface, method, model, generated_at)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (generation) DO NOTHING RETURNING true
        """,
        generation,
        surface,
        method,
        model,
        generated_at,
    )
    if not created:
        rows = await conn.fetch("SELECT id FROM collections WHERE generation = $1 ORDER BY position", generation)
        return [r["id"] for r in rows]
    ids = []
    for position, planned in enumerate(collections):
        collection_id = await conn.fetchval(
            """
            INSERT INTO collections (surface, title, description, generation, position, seed_id, valid_until)
            VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7)) RETURNING id
            """,
            surface,
            planned.title,
            planned.description,
            generation,
            position,
            planned.seed_id,
            valid_hours * 3600.0,
        )
        await conn.execute(
            """
            INSERT INTO collection_items (collection_id, item_id, position, score)
            SELECT $1, picked.item_id, (picked.n - 1)::integer, picked.score
            FROM unnest($2::bigint[], $3::float8[]) WITH ORDINALITY AS picked (item_id, score, n)
            -- checked again at write time: an item sold since the candidates were read is not stored
            JOIN items ON items.id = picked.item_id AND items.status = 'available'
            """,
            collection_id,
            list(planned.item_ids),
            list(planned.scores),
        )
        ids.append(collection_id)
    return ids


async def swap_surface_generation(
    conn: asyncpg.Connection, *, surface: str, generation: uuid.UUID, generated_at: datetime
) -> bool:
    """Point the surface at this generation and close the old one's validity; False if a newer one is current.

    Call it in the transaction that inserted the generation: readers then switch at commit.
    """
    previous = await conn.fetchrow(
        "SELECT generation, generated_at FROM collection_surfaces WHERE surface = $1 FOR UPDATE", surface
    )
    if previous is not None and previous["generated_at"] > generated_at:
        return False
    swapped = await conn.fetchval(
        """
        INSERT INTO collection_surfaces (surface, generation, generated_at) VALUES ($1, $2, $3)
        ON CONFLICT (surface) DO UPDATE
            SET generation = EXCLUDED.generation, generated_at = EXCLUDED.generated_at, swapped_at = now()
            WHERE collection_surfaces.generated_at <= EXCLUDED.generated_at
        RETURNING true
        """,
        surface,
        generation,
        generated_at,
    )
    if swapped and previous is not None and previous["generation"] != generation:
        await conn.execute(
            """
            UPDATE collections SET valid_until = now()
            WHERE generation = $1 AND valid_from < now() AND (valid_until IS NULL OR valid_until > now())
            """,
            previous["generation"],
        )
    return bool(swapped)


async def delete_stale_generations(conn: asyncpg.Connection, *, surface: str, keep: int) -> int:
    """Delete this surface's generations beyond the newest `keep` (never the current one); returns how many."""
    result = await conn.execute(
        """
        DELETE FROM collection_generations g
        WHERE g.surface = $1
          AND g.generation NOT IN (SELECT generation FROM collection_surfaces WHERE surface = $1)
          AND g.generation NOT IN (SELECT generation FROM collection_generations
                                   WHERE surface = $1 ORDER BY generated_at DESC LIMIT $2)
        """,
        surface,
        max(keep, 1),
    )
    return int(result.split()[-1])


def _card(row: Mapping[str, Any]) -> ItemCard:
    card = item_card({column: row[f"i_{column}"] for column in _CARD})
    return card.model_copy(update={"score": row["i_score"]})


def _collections(rows: Sequence[asyncpg.Record], current: str | None) -> list[CollectionView]:
    """Group joined rows (one per collection item, ordered) into collections."""
    views: list[CollectionView] = []
    items: dict[int, list[ItemCard]] = {}
    counts: dict[int, int] = {}
    for row in rows:
        collection_id = row["c_id"]
        if collection_id is None:
            continue
        if collection_id not in items:
            items[collection_id], counts[collection_id] = [], 0
            views.append(
                CollectionView(
                    id=collection_id,
                    surface=row["c_surface"],
                    title=row["title"],
                    description=row["description"],
                    seed_id=row["seed_id"],
                    generation=str(row["c_generation"]),
                    current=current is not None and str(row["c_generation"]) == current,
                    valid_from=row["valid_from"],
                    valid_until=row["valid_until"],
                    item_count=0,
                    items=(),
                )
            )
        if row["ci_item_id"] is not None:
            counts[collection_id] += 1
        if row["i_id"] is not None:
            items[collection_id].append(_card(row))
    return [v.model_copy(update={"item_count": counts[v.id], "items": tuple(items[v.id])}) for v in views]


_COLLECTION_ROWS = f"""
    c.id AS c_id, c.surface AS c_surface, c.title, c.description, c.seed_id, c.generation AS c_generation,
    c.valid_from, c.valid_until, ci.item_id AS ci_item_id, ci.score AS i_score, {_ITEM_COLUMNS}
"""
_ITEM_JOINS = """
    LEFT JOIN collection_items ci ON ci.collection_id = c.id
    LEFT JOIN items i ON i.id = ci.item_id AND ($2 OR i.status = 'available')
"""


async def select_surface_collections(
    conn: asyncpg.Connection, surface: str, *, include_unavailable: bool = False
) -> SurfaceView | None:
    """The surface's current, still valid collections with their items (live: unavailable ones left out
    unless `include_unavailable`); None when the surface was never generated."""
    rows = await conn.fetch(
        f"""
        SELECT s.generation, s.generated_at, s.swapped_at, {_COLLECTION_ROWS}
        FROM collection_surfaces s
        LEFT JOIN collections c ON c.generation = s.generation AND (c.valid_until IS NULL OR c.valid_until > now())
        {_ITEM_JOINS}
        WHERE s.surface = $1
        ORDER BY c.position, c.id, ci.position
        """,
        surface,
        include_unavailable,
    )
    if not rows:
        return None
    first = rows[0]
    return SurfaceView(
        surface=surface,
        generation=str(first["generation"]),
        generated_at=first["generated_at"],
        swapped_at=first["swapped_at"],
        collections=tuple(_collections(rows, str(first["generation"]))),
    )


async def select_collection(
    conn: asyncpg.Connection, collection_id: int, *, include_unavailable: bool = False
) -> CollectionView | None:
    """One collection (current or from a kept older generation) with its items, live as above."""
    rows = await conn.fetch(
        f"""
        SELECT s.generation, {_COLLECTION_ROWS}
        FROM collections c
        LEFT JOIN collection_surfaces s ON s.surface = c.surface
        {_ITEM_JOINS}
        WHERE c.id = $1
        ORDER BY ci.position
        """,
        collection_id,
        include_unavailable,
    )
    if not rows:
        return None
    current = rows[0]["generation"]
    return _collections(rows, None if current is None else str(current))[0]
