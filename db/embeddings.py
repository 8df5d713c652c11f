"""The embedding state of the embeddable tables (items, style_seeds): what the embed actors read and write.

Both tables carry the same columns (embedding, embedding_model, embedding_hash, embedded_at,
embed_error), so one read and one update serve both; the table name is checked against
EMBEDDABLE before it reaches the SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast, get_args

import asyncpg
import numpy as np

Embeddable = Literal["items", "style_seeds"]
# each embeddable table and the expression of the one image its vector describes
IMAGE_OF: dict[Embeddable, str] = {"items": "media_keys[1]", "style_seeds": "media_key"}
EMBEDDABLE: frozenset[str] = frozenset(get_args(Embeddable))


@dataclass(frozen=True)
class EmbedTarget:
    """What the embed actor needs to know about one row of an embeddable table."""

    id: int
    media_key: str | None
    embedding_model: str | None
    embedding_hash: str | None
    embedded: bool
    embed_error: str | None

    def is_current(self, model: str, content_hash: str) -> bool:
        """True when this exact image was already handled by this model (embedded or refused)."""
        return (
            self.embedding_model == model
            and self.embedding_hash == content_hash
            and (self.embedded or self.embed_error is not None)
        )


def _checked(table: str) -> Embeddable:
    if table not in EMBEDDABLE:
        raise ValueError(f"not an embeddable table: {table!r} (known: {', '.join(sorted(EMBEDDABLE))})")
    return cast(Embeddable, table)


async def select_embed_targets(conn: asyncpg.Connection, table: Embeddable, ids: Sequence[int]) -> list[EmbedTarget]:
    """The embedding state of these rows of `table` (with the image their vector describes), in id order."""
    rows = await conn.fetch(
        f"""
        SELECT id, {IMAGE_OF[_checked(table)]} AS media_key, embedding_model, embedding_hash,
               embedding IS NOT NULL AS embedded, embed_error
        FROM {table} WHERE id = ANY($1::bigint[]) ORDER BY id
        """,
        list(ids),
    )
    return [EmbedTarget(**dict(r)) for r in rows]


async def select_ids_to_embed(
    conn: asyncpg.Connection,
    table: Embeddable,
    *,
    model: str,
    force: bool = False,
    after_id: int = 0,
    limit: int | None = None,
) -> list[int]:
    """Ids after `after_id` of rows of `table` with an image and no vector (or one of another model); all with force."""
    rows = await conn.fetch(
        f"""
        SELECT id FROM {table}
        WHERE id > $1 AND {IMAGE_OF[_checked(table)]} IS NOT NULL
          AND ($3 OR (embedding IS NULL AND embed_error IS NULL) OR embedding_model IS DISTINCT FROM $2)
        ORDER BY id LIMIT $4
        """,
        after_id,
        model,
        force,
        limit,
    )
    return [r["id"] for r in rows]


async def update_embedding(
    conn: asyncpg.Connection,
    table: Embeddable,
    row_id: int,
    *,
    model: str,
    content_hash: str | None,
    vector: np.ndarray | None = None,
    error: str | None = None,
) -> None:
    """Store a row's vector (clearing any error), or why its image gave none (its old vector no longer fits)."""
    if (vector is None) == (error is None):
        raise ValueError("give exactly one of vector and error")
    await conn.execute(
        f"""
        UPDATE {_checked(table)} SET embedding = $2, embedding_model = $3, embedding_hash = $4,
                                     embedded_at = now(), embed_error = $5
        WHERE id = $1
        """,
        row_id,
        None if vector is None else np.asarray(vector, dtype=np.float32),
        model,
        content_hash,
        None if error is None else error[:500],
    )
