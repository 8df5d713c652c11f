"""One read and one update of the embedding state, for each embeddable table (items, style_seeds)."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest

from db.embeddings import EMBEDDABLE, select_embed_targets, select_ids_to_embed, update_embedding
from db.seeds import select_seed_embeddings

MODEL = "test-model"


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(512).astype(np.float32)
    return vector / np.linalg.norm(vector)


async def test_a_style_seed_goes_through_the_same_update(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        seed_id = await conn.fetchval(
            "INSERT INTO style_seeds (label, media_key) VALUES ('denim', 'ab12') RETURNING id"
        )
        (target,) = await select_embed_targets(conn, "style_seeds", [seed_id, 999])
        assert (target.id, target.media_key, target.embedded, target.embed_error) == (seed_id, "ab12", False, None)
        await update_embedding(conn, "style_seeds", seed_id, model=MODEL, content_hash="h1", error="x" * 600)
        (target,) = await select_embed_targets(conn, "style_seeds", [seed_id])
        assert target.embed_error == "x" * 500 and target.is_current(MODEL, "h1")  # a refused image is not retried
        await update_embedding(conn, "style_seeds", seed_id, model=MODEL, content_hash="h2", vector=unit(1))
        (target,) = await select_embed_targets(conn, "style_seeds", [seed_id])
        assert target.embedded and target.embed_error is None and target.is_current(MODEL, "h2")
        (stored,) = await select_seed_embeddings(conn, [seed_id])
        np.testing.assert_allclose(stored.vector, unit(1), atol=1e-7)
        await update_embedding(conn, "style_seeds", seed_id, model=MODEL, content_hash="h3", error="broken")
        (stored,) = await select_seed_embeddings(conn, [seed_id])
        assert stored.vector is None  # the old vector described another image


async def test_seeds_to_embed_are_chosen_as_items_are(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        ids = [
            await conn.fetchval("INSERT INTO style_seeds (label, media_key) VALUES ($1, $2) RETURNING id", label, key)
            for label, key in [("a", "k1"), ("b", None), ("c", "k3"), ("d", "k4")]
        ]
        await update_embedding(conn, "style_seeds", ids[0], model=MODEL, content_hash="h", vector=unit(2))
        await update_embedding(conn, "style_seeds", ids[3], model=MODEL, content_hash="h", error="broken")
        assert await select_ids_to_embed(conn, "style_seeds", model=MODEL) == [ids[2]]  # b has no image
        assert await select_ids_to_embed(conn, "style_seeds", model="other") == [ids[0], ids[2], ids[3]]
        assert await select_ids_to_embed(conn, "style_seeds", model=MODEL, force=True, after_id=ids[0]) == ids[2:]
        assert await select_ids_to_embed(conn, "style_seeds", model=MODEL, force=True, limit=1) == ids[:1]


async def test_an_item_reads_its_first_image(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        item_id = await conn.fetchval(
            "INSERT INTO items (source, source_listing_id, source_url, title, slot, status, kind, media_keys) "
            "VALUES ('test', 's1', 'https://marketplace.example/1', 'shirt', 'top', 'available', 'one_of_one', "
            "ARRAY['first', 'second']) RETURNING id"
        )
        (target,) = await select_embed_targets(conn, "items", [item_id])
        assert target.media_key == "first"


@pytest.mark.parametrize("table", ["tokens", "items; DROP TABLE items", "Items", ""])
async def test_only_embeddable_tables_reach_the_sql(db_pool: asyncpg.Pool, table: str) -> None:
    async with db_pool.acquire() as conn:
        with pytest.raises(ValueError, match="not an embeddable table"):
            await select_embed_targets(conn, table, [1])  # type: ignore[arg-type]  # what the check is for
        with pytest.raises(ValueError, match="not an embeddable table"):
            await update_embedding(conn, table, 1, model=MODEL, content_hash="h", error="e")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="not an embeddable table"):
            await select_ids_to_embed(conn, table, model=MODEL)  # type: ignore[arg-type]  # what the check is for
        assert await conn.fetchval("SELECT count(*) FROM items") == 0
    assert EMBEDDABLE == {"items", "style_seeds"}


async def test_a_vector_or_an_error_never_both(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        with pytest.raises(ValueError, match="exactly one of vector and error"):
            await update_embedding(conn, "items", 1, model=MODEL, content_hash="h", vector=unit(0), error="e")
        with pytest.raises(ValueError, match="exactly one of vector and error"):
            await update_embedding(conn, "items", 1, model=MODEL, content_hash="h")
