"""generate_collections on a real worker: seeds or clusters, only available items, brand cap, no near-duplicates,
and an atomic swap while a reader keeps reading."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import numpy as np
import pytest
from dramatiq import Worker

from actors.collections import generate_collections
from config.settings import get_settings
from db.collections import SurfaceView, select_surface_collections
from domain.jobs import JobRecord, JobStatus
from tests.actors.helpers import wait_for_status
from tests.waiting import eventually

SIZE, CAP, DUPLICATE = 6, 2, 0.95


@pytest.fixture()
def model(monkeypatch: pytest.MonkeyPatch) -> str:
    """A model id of this test's own (other tests' vectors stay out) and small collection settings."""
    name = f"coll-{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr("actors.collections.current_model_id", lambda: name)
    for setting, value in (
        ("collection_size", SIZE),
        ("collection_brand_cap", CAP),
        ("collection_min_size", 2),
        ("collection_duplicate_cosine", DUPLICATE),
        ("collections_per_surface", 3),
    ):
        monkeypatch.setattr(get_settings(), setting, value)
    return name


@dataclass
class Catalogue:
    """What the test inserted: vectors by item id, statuses, brands and which direction each item is near."""

    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    status: dict[int, str] = field(default_factory=dict)
    brand: dict[int, str] = field(default_factory=dict)
    group: dict[int, int] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)


def near(direction: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector `noise` away from `direction`."""
    step = rng.standard_normal(512)
    vector = direction + noise * step / np.linalg.norm(step)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


async def build(pool: asyncpg.Pool, model: str, *, seeds: bool, groups: int = 3) -> Catalogue:
    """Per direction: 2 sold items nearest, 5 'Acne' items near, a duplicated pair, and 6 other brands."""
    rng = np.random.default_rng(7)
    cat = Catalogue()
    async with pool.acquire() as conn:
        for g in range(groups):
            direction = rng.standard_normal(512)
            direction /= np.linalg.norm(direction)
            twin = near(direction, 0.45, rng)
            plan = (
                [("sold", "Sold Co", near(direction, 0.1, rng)) for _ in range(2)]
                + [
                    ("available", "ACNE studios" if i % 2 else "Acne Studios ", near(direction, 0.35, rng))
                    for i in range(5)
                ]
                + [("available", "Twin", twin), ("available", "Twin 2", twin.copy())]
                + [("available", f"Brand {g}-{i}", near(direction, 0.6, rng)) for i in range(6)]
            )
            for status, brand, vector in plan:
                item_id = await conn.fetchval(
                    """INSERT INTO items (source, source_listing_id, source_url, title, brand, kind, status, media_keys,
                                          embedding, embedding_model)
                       VALUES ('test', $1, 'https://marketplace.example/x', 'item', $2, 'one_of_one', $3, '{k.jpg}',
                               $4, $5) RETURNING id""",
                    uuid.uuid4().hex,
                    brand,
                    status,
                    vector,
                    model,
                )
                cat.vectors[item_id], cat.status[item_id], cat.brand[item_id], cat.group[item_id] = (
                    vector,
                    status,
                    brand,
                    g,
                )
            if seeds:
                cat.seeds.append(
                    await conn.fetchval(
                        """INSERT INTO style_seeds (label, description, embedding, embedding_model)
                       VALUES ($1, 'a look', $2, $3) RETURNING id""",
                        f"Look {g} of {model}",
                        direction.astype(np.float32),
                        model,
                    )
                )
    return cat


async def run(surface: str) -> JobRecord:
    """Send generate_collections and wait for its outcome off the event loop."""
    message = generate_collections.send(surface)
    return await asyncio.to_thread(wait_for_status, message.message_id, JobStatus.SUCCEEDED, JobStatus.DEAD, timeout=60)


async def read(pool: asyncpg.Pool, surface: str, **kwargs: bool) -> SurfaceView:
    """The surface as the API reads it."""
    async with pool.acquire() as conn:
        view = await select_surface_collections(conn, surface, **kwargs)
    assert view is not None
    return view


def assert_rules(view: SurfaceView, cat: Catalogue) -> None:
    """Only items available at generation time, brand cap, no near-duplicates, no item in two collections."""
    seen: list[int] = []
    for collection in view.collections:
        ids = [item.id for item in collection.items]
        assert 2 <= len(ids) <= SIZE
        assert all(cat.status[i] == "available" for i in ids), collection
        brands = Counter(" ".join(cat.brand[i].split()).casefold() for i in ids)
        assert max(brands.values()) <= CAP
        for a in ids:
            for b in ids:
                assert a == b or float(cat.vectors[a] @ cat.vectors[b]) <= DUPLICATE
        seen.extend(ids)
    assert len(seen) == len(set(seen))


async def test_collections_grow_around_seeds_by_the_rules(worker: Worker, pool, model: str) -> None:
    cat = await build(pool, model, seeds=True)
    surface = f"s-{uuid.uuid4().hex[:8]}"
    record = await run(surface)
    assert record.status is JobStatus.SUCCEEDED, record.last_error
    assert record.result["method"] == "seeds" and record.result["swapped"] and record.result["collections"] == 3
    view = await read(pool, surface, include_unavailable=True)
    assert view.generation == record.result["generation"]
    assert [c.title for c in view.collections] == [f"Look {g} of {model}" for g in range(3)]
    assert [c.seed_id for c in view.collections] == cat.seeds
    assert all(c.description == "a look" for c in view.collections)
    assert_rules(view, cat)
    for g, collection in enumerate(view.collections):
        ids = [item.id for item in collection.items]
        assert {cat.group[i] for i in ids} == {g}
        # the cap binds: five Acne items are the most relevant available ones, only two are taken
        assert sum(cat.brand[i].strip().casefold() == "acne studios" for i in ids) == CAP
        assert sum(cat.brand[i].startswith("Twin") for i in ids) <= 1


async def test_without_seeds_collections_come_from_clusters(worker: Worker, pool, model: str) -> None:
    cat = await build(pool, model, seeds=False)
    surface = f"c-{uuid.uuid4().hex[:8]}"
    record = await run(surface)
    assert record.status is JobStatus.SUCCEEDED, record.last_error
    assert record.result["method"] == "clusters" and record.result["collections"] == 3
    view = await read(pool, surface)
    assert_rules(view, cat)
    groups = [{cat.group[item.id] for item in c.items} for c in view.collections]
    assert all(len(g) == 1 for g in groups) and set().union(*groups) == {0, 1, 2}
    titles = [c.title for c in view.collections]
    assert all(titles) and len(set(titles)) == 3


async def test_a_regeneration_swaps_atomically_under_a_reading_loop(worker: Worker, pool, model: str) -> None:
    cat = await build(pool, model, seeds=True)
    surface = f"a-{uuid.uuid4().hex[:8]}"
    first = await run(surface)
    reads: list[tuple[str, int, tuple[int, ...]]] = []
    stop = asyncio.Event()

    async def reader() -> None:
        async with pool.acquire() as conn:
            while not stop.is_set():
                view = await select_surface_collections(conn, surface)
                reads.append(
                    ("none", 0, ())
                    if view is None
                    else (view.generation, len(view.collections), tuple(len(c.items) for c in view.collections))
                )
                await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    second = await run(surface)
    await eventually(
        lambda: reads and reads[-1][0] == second.result["generation"] or task.done(),
        30,
        "the reader to see the new generation",
        interval=0.005,
    )
    stop.set()
    await task
    assert second.status is JobStatus.SUCCEEDED
    shapes = {(n, sizes) for _, n, sizes in reads}
    assert len(shapes) == 1 and next(iter(shapes))[0] == 3 and 0 not in next(iter(shapes))[1]
    generations = list(dict.fromkeys(g for g, _, _ in reads))
    assert generations in ([first.result["generation"], second.result["generation"]], [second.result["generation"]])
    assert_rules(await read(pool, surface), cat)


async def test_nothing_available_keeps_the_current_generation(worker: Worker, pool, model: str) -> None:
    cat = await build(pool, model, seeds=True, groups=1)
    surface = f"k-{uuid.uuid4().hex[:8]}"
    first = await run(surface)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE items SET status = 'sold' WHERE id = ANY($1::bigint[])", list(cat.vectors))
    again = await run(surface)
    assert again.status is JobStatus.SUCCEEDED
    assert again.result["swapped"] is False and again.result["collections"] == 0
    view = await read(pool, surface, include_unavailable=True)
    assert view.generation == first.result["generation"]
    assert (await read(pool, surface)).collections[0].items == ()  # sold since: hidden live


async def test_a_bad_surface_is_dead_at_once(worker: Worker) -> None:
    record = await run("Not A Surface")
    assert record.status is JobStatus.DEAD and record.attempts == 1
    assert "invalid surface" in (record.last_error or "")
