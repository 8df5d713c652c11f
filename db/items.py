"""Items: which ones need embedding, their vectors, and the public card of an item (db.embeddings writes vectors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

# Public columns only: never source, source_url, source_listing_id or image_urls
# (marketplace addresses stay private; media_keys are our own rehosted copies).
CARD_COLUMNS = "id, title, brand, category, slot, size, condition, price_cents, currency, kind, status, media_keys"


class ItemCard(BaseModel):
    """A public item card: never the marketplace source or its image URLs."""

    # served as it is by web/ (one declaration of the public shape)
    model_config = ConfigDict(frozen=True)

    id: int
    title: str
    brand: str | None
    category: str | None
    slot: str | None
    size: str | None
    condition: str | None
    price_cents: int | None
    currency: str | None
    kind: str
    status: str
    media_keys: tuple[str, ...]
    score: float | None = Field(None, description="Cosine similarity to the query (1 = same direction).")


def as_array(value: Any) -> np.ndarray:
    """A pgvector value as a float32 NumPy array (pgvector-python returns Vector objects)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def item_card(row: Mapping[str, Any]) -> ItemCard:
    """Build a card from a row holding CARD_COLUMNS (and maybe `distance`)."""
    distance = row.get("distance")
    return ItemCard(
        id=row["id"],
        title=row["title"],
        brand=row["brand"],
        category=row["category"],
        slot=row["slot"],
        size=row["size"],
        condition=row["condition"],
        price_cents=row["price_cents"],
        currency=row["currency"].strip() if row["currency"] else None,
        kind=row["kind"],
        status=row["status"],
        media_keys=tuple(row["media_keys"]),
        score=None if distance is None else 1.0 - float(distance),
    )


async def select_item_embedding(conn: asyncpg.Connection, item_id: int) -> tuple[np.ndarray, str] | None:
    """An item's vector and the model that made it; None when it has none (or no such item)."""
    row = await conn.fetchrow(
        "SELECT embedding, embedding_model FROM items WHERE id = $1 AND embedding IS NOT NULL", item_id
    )
    return None if row is None else (as_array(row["embedding"]), row["embedding_model"])


async def select_item_exists(conn: asyncpg.Connection, item_id: int) -> bool:
    """True when an item with this id exists."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM items WHERE id = $1)", item_id))


async def select_items(
    conn: asyncpg.Connection,
    *,
    status: str | None,
    source: str | None,
    kind: str | None,
    text: str | None,
    before_id: int | None,
    limit: int,
) -> list[ItemCard]:
    """Items newest first (by id, before `before_id`), filtered; `text` matches title or brand, case-insensitive."""
    pattern = None
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await conn.fetch(
        f"""
        SELECT {CARD_COLUMNS} FROM items
        WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR source = $2)
          AND ($3::text IS NULL OR kind = $3) AND ($4::text IS NULL OR title ILIKE $4 OR brand ILIKE $4)
          AND ($5::bigint IS NULL OR id < $5)
        ORDER BY id DESC LIMIT $6
        """,
        status,
        source,
        kind,
        pattern,
        before_id,
        limit,
    )
    return [item_card(r) for r in rows]
