"""The outbox triggers of 0013: which change makes which event, public fields only, a sequence per resource."""

from __future__ import annotations

import json
import uuid

import asyncpg


async def events(conn: asyncpg.Connection, resource: str, resource_id: object) -> list[tuple[str, int, dict]]:
    rows = await conn.fetch(
        "SELECT event_type, seq, data FROM storefront_events WHERE resource = $1 AND resource_id = $2 ORDER BY id",
        resource,
        str(resource_id),
    )
    return [(r["event_type"], r["seq"], json.loads(r["data"])) for r in rows]


async def test_item_changes_and_what_they_emit(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        item = await conn.fetchval(
            "INSERT INTO items (source, source_listing_id, source_url, title, kind, status, image_urls)"
            " VALUES ('t', 'a', 'https://www.vinted.fr/items/1', 'Tabi', 'one_of_one', 'pending',"
            " '{https://images.vinted.net/x.jpg}') RETURNING id"
        )
        await conn.execute("UPDATE items SET title = 'Tabi boots' WHERE id = $1", item)  # pending: no event
        await conn.execute("UPDATE items SET status = 'available' WHERE id = $1", item)
        await conn.execute("UPDATE items SET price_cents = 100, currency = 'EUR' WHERE id = $1", item)
        await conn.execute(
            "UPDATE items SET source_url = 'https://x', image_urls = '{}' WHERE id = $1", item
        )  # private
        await conn.execute("UPDATE items SET status = 'sold' WHERE id = $1", item)
        await conn.execute("UPDATE items SET status = 'available' WHERE id = $1", item)
        await conn.execute("UPDATE items SET status = 'archived' WHERE id = $1", item)
        got = await events(conn, "item", item)
        assert [(t, s) for t, s, _ in got] == [
            ("item.approved", 1),
            ("item.updated", 2),
            ("item.sold", 3),
            ("item.available", 4),
            ("item.archived", 5),
        ]
        assert got[1][2]["changed"] == {"price_cents": 100, "currency": "EUR"}
        assert "vinted" not in json.dumps([d for _, _, d in got])
        stock = await conn.fetchval(
            "INSERT INTO items (source, source_listing_id, title, kind, status, stock)"
            " VALUES ('t', 'b', 'Tee', 'stable', 'available', 5) RETURNING id"
        )
        await conn.execute("UPDATE items SET stock = 4 WHERE id = $1", stock)
        await conn.execute("UPDATE items SET stock = 4 WHERE id = $1", stock)  # no change, no event
        assert [(t, d["changed"]) for t, _, d in await events(conn, "item", stock)] == [
            ("item.available", {"status": "available"}),
            ("item.stock_changed", {"stock": 4}),
        ]
        rejected = await conn.fetchval(
            "INSERT INTO items (source, source_listing_id, title, kind, status)"
            " VALUES ('t', 'c', 'X', 'one_of_one', 'pending') RETURNING id"
        )
        await conn.execute("UPDATE items SET status = 'rejected' WHERE id = $1", rejected)
        assert await events(conn, "item", rejected) == []  # never on a storefront


async def test_order_status_and_published_collections(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        order = await conn.fetchval("INSERT INTO orders (stripe_session_id) VALUES ('cs_1') RETURNING id")
        await conn.execute("UPDATE orders SET customer_email = 'a@example.com' WHERE id = $1", order)
        await conn.execute("UPDATE orders SET status = 'cancelled' WHERE id = $1", order)
        assert [(t, d["changed"], d["previous"]) for t, _, d in await events(conn, "order", order)] == [
            ("order.status_changed", {"status": "cancelled"}, {"status": "on_hold"})
        ]
        generation = uuid.uuid4()
        await conn.execute(
            "INSERT INTO collection_generations (generation, surface, method, generated_at)"
            " VALUES ($1, 'home', 'seeds', now())",
            generation,
        )
        collection = await conn.fetchval(
            "INSERT INTO collections (surface, generation) VALUES ('home', $1) RETURNING id", generation
        )
        await conn.execute(
            "INSERT INTO collection_surfaces (surface, generation, generated_at) VALUES ('home', $1, now())", generation
        )
        [(kind, seq, data)] = await events(conn, "surface", "home")
        assert (kind, seq, data["collection_ids"], data["generation"]) == (
            "collection.published",
            1,
            [collection],
            str(generation),
        )
