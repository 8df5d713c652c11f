"""Collection generations on real PostgreSQL: write, atomic swap, live availability, cleanup."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import pytest

from db.collections import (
    delete_stale_generations,
    insert_generation,
    select_available_item_ids,
    select_collection,
    select_item_vectors,
    select_seed_centres,
    select_surface_collections,
    swap_surface_generation,
)
from domain.collections import PlannedCollection
from tests.waiting import eventually

T0 = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)


async def new_items(
    conn: asyncpg.Connection, n: int, *, status: str = "available", brand: str | None = None, model: str | None = None
) -> list[int]:
    """n items (with a marketplace URL that must never be served), optionally with random vectors of `model`."""
    ids = []
    rng = np.random.default_rng(len(ids))
    for _ in range(n):
        vector = rng.standard_normal(512).astype(np.float32) if model else None
        ids.append(
            await conn.fetchval(
                """INSERT INTO items (source, source_listing_id, source_url, image_urls, title, brand, kind, status,
                                  media_keys, embedding, embedding_model)
               VALUES ('test', $1, 'https://marketplace.example/x', '{https://cdn.marketplace.example/a.jpg}',
                       'an item', $2, 'one_of_one', $3, '{k.jpg}', $4, $5) RETURNING id""",
                uuid.uuid4().hex,
                brand,
                status,
                vector,
                model,
            )
        )
    return ids


def plan(title: str, item_ids: list[int]) -> PlannedCollection:
    """A collection of these items, scores descending."""
    return PlannedCollection(
        title, f"about {title}", None, tuple(item_ids), tuple(1.0 - i / 100 for i in range(len(item_ids)))
    )


async def write(
    conn: asyncpg.Connection,
    surface: str,
    collections: list[PlannedCollection],
    *,
    at: datetime = T0,
    valid_hours: float = 48,
) -> tuple[uuid.UUID, bool]:
    """Insert a generation and swap it in, in one transaction."""
    generation = uuid.uuid4()
    async with conn.transaction():
        await insert_generation(
            conn,
            generation=generation,
            surface=surface,
            method="seeds",
            model="m",
            generated_at=at,
            valid_hours=valid_hours,
            collections=collections,
        )
        swapped = await swap_surface_generation(conn, surface=surface, generation=generation, generated_at=at)
    return generation, swapped


async def test_a_generation_reads_back_in_order_without_marketplace_urls(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        a, b = await new_items(conn, 3), await new_items(conn, 2)
        generation, swapped = await write(conn, "home", [plan("First", a[::-1]), plan("Second", b)])
        view = await select_surface_collections(conn, "home")
    assert swapped and view is not None and view.generation == str(generation)
    assert [c.title for c in view.collections] == ["First", "Second"]
    assert [i.id for i in view.collections[0].items] == a[::-1]
    assert [i.score for i in view.collections[0].items] == pytest.approx([1.0, 0.99, 0.98])
    assert all(c.current and c.item_count == len(c.items) for c in view.collections)
    assert "marketplace" not in repr(view)  # cards carry media keys only


async def test_unknown_surface_and_collection_read_as_none(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        assert await select_surface_collections(conn, "nowhere") is None
        assert await select_collection(conn, 424242) is None


async def test_items_sold_since_the_generation_are_hidden_or_shown_live(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        ids = await new_items(conn, 4)
        await write(conn, "home", [plan("Edit", ids)])
        await conn.execute("UPDATE items SET status = 'sold' WHERE id = $1", ids[1])
        await conn.execute("UPDATE items SET status = 'archived' WHERE id = $1", ids[3])
        public = (await select_surface_collections(conn, "home")).collections[0]
        everything = (await select_surface_collections(conn, "home", include_unavailable=True)).collections[0]
        single = await select_collection(conn, public.id)
    assert [i.id for i in public.items] == [ids[0], ids[2]] and public.item_count == 4
    assert [(i.id, i.status) for i in everything.items] == [
        (ids[0], "available"),
        (ids[1], "sold"),
        (ids[2], "available"),
        (ids[3], "archived"),
    ]
    assert single is not None and [i.id for i in single.items] == [ids[0], ids[2]]


async def test_items_no_longer_available_at_write_time_are_not_stored(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        ok = await new_items(conn, 2)
        sold = await new_items(conn, 1, status="sold")
        await write(conn, "home", [plan("Edit", [ok[0], sold[0], ok[1]])])
        view = await select_surface_collections(conn, "home", include_unavailable=True)
    assert [i.id for i in view.collections[0].items] == ok


async def test_a_new_generation_replaces_the_old_and_closes_its_validity(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        ids = await new_items(conn, 4)
        old, _ = await write(conn, "home", [plan("Old", ids[:2])])
        old_id = (await select_surface_collections(conn, "home")).collections[0].id
        await write(conn, "gifts", [plan("Gifts", ids[:1])])
        new, swapped = await write(conn, "home", [plan("New", ids[2:])], at=T0 + timedelta(hours=1))
        view = await select_surface_collections(conn, "home")
        previous = await select_collection(conn, old_id)
        gifts = await select_surface_collections(conn, "gifts")
    assert swapped and view.generation == str(new) and [c.title for c in view.collections] == ["New"]
    assert previous is not None and not previous.current and previous.generation == str(old)
    assert previous.valid_until is not None and previous.valid_until <= view.collections[0].valid_from
    assert [c.title for c in gifts.collections] == ["Gifts"]  # surfaces are independent


async def test_an_older_run_finishing_late_does_not_replace_a_newer_one(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        ids = await new_items(conn, 2)
        newer, _ = await write(conn, "home", [plan("Newer", ids)], at=T0 + timedelta(hours=1))
        _, swapped = await write(conn, "home", [plan("Older", ids)], at=T0)
        view = await select_surface_collections(conn, "home")
    assert not swapped and view.generation == str(newer)


async def test_expired_generations_are_not_served(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        ids = await new_items(conn, 2)
        await write(conn, "home", [plan("Edit", ids)], valid_hours=0.0001)
        await conn.execute(
            "UPDATE collections SET valid_from = valid_from - interval '1 hour', "
            "valid_until = valid_until - interval '1 hour'"
        )
        view = await select_surface_collections(conn, "home")
    assert view is not None and view.collections == ()


async def test_insert_generation_is_idempotent(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        ids = await new_items(conn, 2)
        generation = uuid.uuid4()
        kwargs = dict(
            generation=generation,
            surface="home",
            method="seeds",
            model="m",
            generated_at=T0,
            valid_hours=1.0,
            collections=[plan("A", ids), plan("B", ids)],
        )
        first = await insert_generation(conn, **kwargs)
        again = await insert_generation(conn, **kwargs)
        count = await conn.fetchval("SELECT count(*) FROM collection_items")
    assert first == again and len(first) == 2 and count == 4


async def test_stale_generations_are_deleted_but_never_the_current_one(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        ids = await new_items(conn, 2)
        generations = [
            (await write(conn, "home", [plan(f"G{i}", ids)], at=T0 + timedelta(hours=i)))[0] for i in range(5)
        ]
        other, _ = await write(conn, "gifts", [plan("Other", ids)])
        deleted = await delete_stale_generations(conn, surface="home", keep=2)
        left = {r["generation"] for r in await conn.fetch("SELECT generation FROM collection_generations")}
        current = await conn.fetchval("SELECT generation FROM collection_surfaces WHERE surface = 'home'")
        items_left = await conn.fetchval("SELECT count(*) FROM collection_items")
    assert deleted == 3 and left == {generations[3], generations[4], other} and current == generations[4]
    assert items_left == 3 * len(ids)  # cascaded through collections


async def test_generator_inputs_filter_by_model_and_status(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        good = await new_items(conn, 2, model="m1")
        await new_items(conn, 1, model="m2")
        await new_items(conn, 1, model="m1", status="sold")
        await new_items(conn, 1)
        vector = np.ones(512, dtype=np.float32)
        await conn.execute(
            "INSERT INTO style_seeds (label, description, embedding, embedding_model) "
            "VALUES ('a', 'd', $1, 'm1'), ('b', NULL, $1, 'm2'), ('c', NULL, NULL, NULL)",
            vector,
        )
        assert await select_available_item_ids(conn, model="m1") == good
        seeds = await select_seed_centres(conn, model="m1")
        vectors = await select_item_vectors(conn, [*good, 999])
    assert [(s.label, s.description) for s in seeds] == [("a", "d")]
    np.testing.assert_allclose(seeds[0].vector, vector)
    assert sorted(vectors) == good and vectors[good[0]].shape == (512,)


async def test_readers_see_the_whole_old_or_whole_new_surface_during_a_swap(db_pool: asyncpg.Pool) -> None:
    """The writer pauses inside its open transaction (after inserting, then after swapping) until the reader has
    read several more times; every read must show one complete generation."""
    async with db_pool.acquire() as setup:
        pools = [await new_items(setup, 6) for _ in range(4)]
    expected: dict[str, set[int]] = {}
    reads: list[str] = []
    stop = asyncio.Event()

    async def reader() -> None:
        async with db_pool.acquire() as conn:
            while not stop.is_set():
                view = await select_surface_collections(conn, "home")
                if view is None:
                    reads.append("none")
                    continue
                assert len(view.collections) == 3, view
                assert {c.generation for c in view.collections} == {view.generation}
                assert {i.id for c in view.collections for i in c.items} == expected[view.generation]
                reads.append(view.generation)

    async def reads_after(count: int) -> None:
        target = len(reads) + count
        await eventually(lambda: len(reads) >= target or task.done(), 30, "reads", interval=0.001)

    async with db_pool.acquire() as conn:
        first, _ = await write(conn, "home", [plan(f"C{j}", pools[0][2 * j : 2 * j + 2]) for j in range(3)])
        expected[str(first)] = set(pools[0])
        task = asyncio.create_task(reader())
        await reads_after(3)
        for n in range(1, 4):
            generation = uuid.uuid4()
            expected[str(generation)] = set(pools[n])
            async with conn.transaction():
                await insert_generation(
                    conn,
                    generation=generation,
                    surface="home",
                    method="seeds",
                    model="m",
                    generated_at=T0 + timedelta(hours=n),
                    valid_hours=48,
                    collections=[plan(f"C{j}", pools[n][2 * j : 2 * j + 2]) for j in range(3)],
                )
                await reads_after(3)
                assert await swap_surface_generation(
                    conn, surface="home", generation=generation, generated_at=T0 + timedelta(hours=n)
                )
                await reads_after(3)
                assert reads[-1] != str(generation)  # uncommitted: still invisible
            await eventually(
                lambda: reads and reads[-1] == str(generation) or task.done(), 30, "the new generation", interval=0.001
            )
        stop.set()
        await task  # re-raises any assertion the reader made
    assert "none" not in reads
    seen = list(dict.fromkeys(reads))
    assert seen == list(expected)  # every generation was seen, in order, never going back
