"""Nearest available items by cosine distance, returning `limit` rows even under selective filters.

pgvector's HNSW scan stops after `hnsw.ef_search` candidates and filters them afterwards, so a
filter can leave fewer rows than asked. pgvector >= 0.8 can keep scanning (iterative scans);
before that (pgserver ships 0.6.2, we support 0.5+) we (1) scan exactly when a slot filter
leaves few candidates, (2) widen ef_search once, then (3) fall back to an exact scan.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import numpy as np

from db.items import CARD_COLUMNS, ItemCard, item_card

EXACT_SCAN_MAX = 20_000  # below this many candidates an exact scan is as fast as the index
MAX_EF_SEARCH = 1000  # pgvector's ceiling
_WHERE = "status = 'available' AND embedding_model = $2 AND NOT (id = ANY($4::bigint[]))"


async def select_vector_version(conn: asyncpg.Connection) -> tuple[int, ...]:
    """The installed pgvector version, e.g. (0, 6, 2)."""
    version = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    return _version(version)


def _version(text: str | None) -> tuple[int, ...]:
    return tuple(int(part) for part in str(text or "0").split(".") if part.isdigit())


def _query(slot: str | None, *, exact: bool) -> str:
    where = _WHERE + (" AND slot = $3" if slot is not None else " AND $3::text IS NULL")
    # The operator form is what an HNSW index serves; the function form never uses the index,
    # so the exact query stays exact whatever plan a prepared statement has cached.
    distance = "cosine_distance(embedding, $1)" if exact else "embedding <=> $1"
    return f"SELECT {CARD_COLUMNS}, {distance} AS distance FROM items WHERE {where} ORDER BY {distance} LIMIT $5"


async def _few_candidates(conn: asyncpg.Connection, model: str, slot: str) -> bool:
    count = await conn.fetchval(
        """
        SELECT count(*) FROM (
            SELECT 1 FROM items WHERE status = 'available' AND slot = $1 AND embedding_model = $2 LIMIT $3
        ) AS candidates
        """,
        slot,
        model,
        EXACT_SCAN_MAX + 1,
    )
    return count <= EXACT_SCAN_MAX


async def _set_ef_search(conn: asyncpg.Connection, ef: int) -> tuple[int, ...]:
    """Set ef_search for this transaction; returns the pgvector version (one round trip for both)."""
    version = await conn.fetchval(
        "SELECT extversion FROM pg_extension, set_config('hnsw.ef_search', $1, true) WHERE extname = 'vector'",
        str(min(ef, MAX_EF_SEARCH)),
    )
    return _version(version)


async def _hnsw(conn: asyncpg.Connection, args: tuple, slot: str | None, ef: int) -> list[asyncpg.Record]:
    if await _set_ef_search(conn, ef) >= (0, 8):
        # relaxed order keeps scanning past ef_search under a filter; re-sort the page it found
        await conn.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
        sql = f"WITH nearest AS MATERIALIZED ({_query(slot, exact=False)}) SELECT * FROM nearest ORDER BY distance"
        return await conn.fetch(sql, *args)
    rows = await conn.fetch(_query(slot, exact=False), *args)
    if len(rows) < args[-1] and ef < MAX_EF_SEARCH:
        await _set_ef_search(conn, ef * 4)
        rows = await conn.fetch(_query(slot, exact=False), *args)
    return rows


async def select_nearest_items(
    conn: asyncpg.Connection,
    vector: np.ndarray,
    *,
    model: str,
    slot: str | None = None,
    exclude_ids: Sequence[int] = (),
    limit: int = 20,
    offset: int = 0,
    ef_search: int = 200,
) -> list[ItemCard]:
    """Available items embedded by `model`, nearest to `vector` first (score = cosine similarity)."""
    want = limit + offset
    args = (np.asarray(vector, dtype=np.float32), model, slot, list(exclude_ids), want)
    async with conn.transaction():
        rows: list[asyncpg.Record] = []
        if slot is None or not await _few_candidates(conn, model, slot):
            rows = await _hnsw(conn, args, slot, max(ef_search, want))
        if len(rows) < want:  # the filter left too few of the index's candidates: scan exactly
            rows = await conn.fetch(_query(slot, exact=True), *args)
    return [item_card(r) for r in rows[offset:]]
