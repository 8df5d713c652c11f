"""The pool: pgvector codec on every connection, and the per-process holder."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest
from pgvector import Vector

from db import pool as pool_module
from db.migrate import migrate
from db.pool import close_process_pool, create_pool, get_process_pool, set_process_pool

INSERT_ITEM = """
INSERT INTO items (source, source_listing_id, title, kind, embedding)
VALUES ($1, $2, $3, 'one_of_one', $4)
RETURNING id
"""


def unit(vector: np.ndarray) -> np.ndarray:
    """`vector` scaled to length one, as float32."""
    return (vector / np.linalg.norm(vector)).astype(np.float32)


async def test_a_512d_vector_round_trips(db_pool: asyncpg.Pool) -> None:
    rng = np.random.default_rng(7)
    embedding = rng.standard_normal(512).astype(np.float32)
    async with db_pool.acquire() as conn:
        item_id = await conn.fetchval(INSERT_ITEM, "test", "a1", "Jacket", embedding)
        stored = await conn.fetchval("SELECT embedding FROM items WHERE id = $1", item_id)
    assert isinstance(stored, Vector)
    back = stored.to_numpy()
    assert back.shape == (512,)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, embedding)


async def test_cosine_nearest_neighbour_query(db_pool: asyncpg.Pool) -> None:
    rng = np.random.default_rng(11)
    vectors = [unit(rng.standard_normal(512)) for _ in range(20)]
    async with db_pool.acquire() as conn:
        ids = [await conn.fetchval(INSERT_ITEM, "test", f"n{i}", f"Item {i}", v) for i, v in enumerate(vectors)]
        probe = unit(vectors[13] + 0.01 * rng.standard_normal(512))
        nearest = await conn.fetchval("SELECT id FROM items ORDER BY embedding <=> $1 LIMIT 1", probe)
    assert nearest == ids[13]


async def test_wrong_dimension_is_rejected(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        with pytest.raises(asyncpg.DataError, match="512"):
            await conn.fetchval(INSERT_ITEM, "test", "bad", "Short", np.ones(3, np.float32))


async def test_pool_opens_before_the_extension_and_gains_the_codec(empty_db_dsn: str) -> None:
    pool = await create_pool(empty_db_dsn, min_size=2, max_size=2)
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
        await migrate(pool)
        async with pool.acquire() as conn:
            value = await conn.fetchval("SELECT '[1,2,3]'::vector")
        assert isinstance(value, Vector)
        assert value.to_list() == [1.0, 2.0, 3.0]
    finally:
        await pool.close()


async def test_process_pool_holder(migrated_db_dsn: str) -> None:
    assert pool_module._process_pool is None
    with pytest.raises(RuntimeError, match="not open"):
        get_process_pool()
    pool = await create_pool(migrated_db_dsn, min_size=1, max_size=1)
    other = await create_pool(migrated_db_dsn, min_size=1, max_size=1)
    try:
        set_process_pool(pool)
        assert get_process_pool() is pool
        set_process_pool(pool)  # the same pool again is harmless
        with pytest.raises(RuntimeError, match="already open"):
            set_process_pool(other)
        await close_process_pool()
        assert pool.is_closing()
        with pytest.raises(RuntimeError, match="not open"):
            get_process_pool()
        await close_process_pool()  # closing twice is a no-op
    finally:
        pool_module._process_pool = None
        await other.close()
        if not pool.is_closing():
            await pool.close()
