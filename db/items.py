"""Items: the embedding state the embed actors read and write, and the public card of an item."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np

# Public columns only: never source, source_url, source_listing_id or image_urls
# (marketplace addresses stay private; media_keys are our own rehosted copies).
CARD_COLUMNS = "id, title, brand, category, slot, size, condition, price_cents, currency, kind, status, media_keys"


@dataclass(frozen=True)
class ItemCard:
    """An item as public clients see it, with its similarity when it answers a search."""

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
    score: float | None = None


@dataclass(frozen=True)
class EmbedTarget:
    """What the embed actor needs to know about one item (or seed)."""

    id: int
    media_key: str | None
    embedding_model: str | None
    embedding_hash: str | None
    embedded: bool
    embed_error: str | None

    def is_current(self, model: str, content_hash: str) -> bool:
        """True when this exact image was already handled by this model (embedded or refused)."""
        return (self.embedding_model == model and self.embedding_hash == content_hash
                and (self.embedded or self.embed_error is not None))


def as_array(value: Any) -> np.ndarray:
    """A pgvector value as a float32 NumPy array (pgvector-python returns Vector objects)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def item_card(row: Mapping[str, Any]) -> ItemCard:
    """Build a card from a row holding CARD_COLUMNS (and maybe `distance`)."""
    distance = row.get("distance")
    return ItemCard(
        id=row["id"], title=row["title"], brand=row["brand"], category=row["category"], slot=row["slot"],
        size=row["size"], condition=row["condition"], price_cents=row["price_cents"],
        currency=row["currency"].strip() if row["currency"] else None, kind=row["kind"], status=row["status"],
        media_keys=tuple(row["media_keys"]), score=None if distance is None else 1.0 - float(distance),
    )


async def select_item_embed_targets(conn: asyncpg.Connection, item_ids: Sequence[int]) -> list[EmbedTarget]:
    """The embedding state of these items (first media key as the image), in id order."""
    rows = await conn.fetch(
        """
        SELECT id, media_keys[1] AS media_key, embedding_model, embedding_hash,
               embedding IS NOT NULL AS embedded, embed_error
        FROM items WHERE id = ANY($1::bigint[]) ORDER BY id
        """,
        list(item_ids),
    )
    return [EmbedTarget(**dict(r)) for r in rows]


async def update_item_embedding(
    conn: asyncpg.Connection, item_id: int, *, vector: np.ndarray, model: str, content_hash: str
) -> None:
    """Store an item's vector with the model and image hash that made it (clears any error)."""
    await conn.execute(
        """
        UPDATE items SET embedding = $2, embedding_model = $3, embedding_hash = $4,
                         embedded_at = now(), embed_error = NULL
        WHERE id = $1
        """,
        item_id, np.asarray(vector, dtype=np.float32), model, content_hash,
    )


async def update_item_embed_error(
    conn: asyncpg.Connection, item_id: int, *, model: str, content_hash: str | None, error: str
) -> None:
    """Mark an item whose image could not be embedded (its old vector no longer describes it)."""
    await conn.execute(
        """
        UPDATE items SET embedding = NULL, embedding_model = $2, embedding_hash = $3,
                         embedded_at = now(), embed_error = $4
        WHERE id = $1
        """,
        item_id, model, content_hash, error[:500],
    )


async def select_item_ids_to_embed(
    conn: asyncpg.Connection, *, model: str, force: bool = False, after_id: int = 0, limit: int = 1000
) -> list[int]:
    """Ids after `after_id` of items with an image and no vector (or a vector of another model); all with force."""
    rows = await conn.fetch(
        """
        SELECT id FROM items
        WHERE id > $1 AND cardinality(media_keys) > 0
          AND ($3 OR (embedding IS NULL AND embed_error IS NULL) OR embedding_model IS DISTINCT FROM $2)
        ORDER BY id LIMIT $4
        """,
        after_id, model, force, limit,
    )
    return [r["id"] for r in rows]


async def select_item_embedding(conn: asyncpg.Connection, item_id: int) -> tuple[np.ndarray, str] | None:
    """An item's vector and the model that made it; None when it has none (or no such item)."""
    row = await conn.fetchrow(
        "SELECT embedding, embedding_model FROM items WHERE id = $1 AND embedding IS NOT NULL", item_id
    )
    return None if row is None else (as_array(row["embedding"]), row["embedding_model"])


async def select_item_exists(conn: asyncpg.Connection, item_id: int) -> bool:
    """True when an item with this id exists."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM items WHERE id = $1)", item_id))
