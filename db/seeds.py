"""Style seeds: reference looks with an image embedding; the stylist averages a few of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import numpy as np
from pydantic import BaseModel, ConfigDict

from db.items import as_array


class SeedCard(BaseModel):
    """A style seed."""

    model_config = ConfigDict(frozen=True)

    id: int
    label: str
    description: str | None
    media_key: str | None
    embedded: bool


@dataclass(frozen=True)
class SeedEmbedding:
    """One seed's vector (None when not embedded yet) and the model that made it."""

    id: int
    vector: np.ndarray | None
    model: str | None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def select_seeds(
    conn: asyncpg.Connection, *, q: str | None = None, limit: int = 50, offset: int = 0
) -> list[SeedCard]:
    """Seeds whose label or description contains `q` (any case), by label."""
    rows = await conn.fetch(
        """
        SELECT id, label, description, media_key, embedding IS NOT NULL AS embedded FROM style_seeds
        WHERE $1::text IS NULL OR label ILIKE $1 OR description ILIKE $1
        ORDER BY label, id LIMIT $2 OFFSET $3
        """,
        None if not q else _like(q),
        limit,
        offset,
    )
    return [SeedCard(**dict(r)) for r in rows]


async def select_seed_embeddings(conn: asyncpg.Connection, seed_ids: Sequence[int]) -> list[SeedEmbedding]:
    """The vectors of these seeds (missing ids are simply absent), in id order."""
    rows = await conn.fetch(
        "SELECT id, embedding, embedding_model FROM style_seeds WHERE id = ANY($1::bigint[]) ORDER BY id",
        list(seed_ids),
    )
    return [
        SeedEmbedding(r["id"], None if r["embedding"] is None else as_array(r["embedding"]), r["embedding_model"])
        for r in rows
    ]


async def upsert_seed(
    conn: asyncpg.Connection, *, label: str, description: str | None, media_key: str
) -> tuple[int, bool]:
    """Add a seed, or give the labelled one this image; returns its id and whether it needs embedding."""
    row = await conn.fetchrow(
        """
        INSERT INTO style_seeds (label, description, media_key) VALUES ($1, $2, $3)
        ON CONFLICT (label) DO UPDATE SET
            description = coalesce(EXCLUDED.description, style_seeds.description), media_key = EXCLUDED.media_key,
            embedding = CASE WHEN style_seeds.media_key IS DISTINCT FROM EXCLUDED.media_key THEN NULL
                             ELSE style_seeds.embedding END
        RETURNING id, embedding IS NULL AS unembedded
        """,
        label,
        description,
        media_key,
    )
    return row["id"], row["unembedded"]
