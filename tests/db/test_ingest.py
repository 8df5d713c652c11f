"""Listings into items on real PostgreSQL: upsert, statuses kept, deliveries, rehost state, review moves."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from db.ingest import (
    insert_delivery,
    select_item_ids_to_rehost,
    select_item_status,
    select_rehost_target,
    update_item_media,
    update_item_review,
    update_items_sold_at_source,
    upsert_listings,
)
from domain.listings import Listing
from domain.margin import MarginPolicy, MarginScore, score_listing

POLICY = MarginPolicy(default_multiplier=2.0, fee_percent=10.0, shipping_cents=1_000, green_margin_cents=5_000)


def listing(listing_id: str = "1", **changes: Any) -> Listing:
    """A vinted listing (green at the default price)."""
    fields: dict[str, Any] = {
        "source": "vinted",
        "source_listing_id": listing_id,
        "url": f"https://market.test/items/{listing_id}",
        "title": "Carhartt jacket",
        "brand": "Carhartt",
        "price_cents": 10_000,
        "currency": "EUR",
        "size": "M",
        "condition": "Very good",
        "image_urls": [f"https://market.test/images/{listing_id}-0.jpg"],
        "attributes": {"colour": "olive"},
    }
    return Listing(**{**fields, **changes})


def scored(*listings: Listing) -> list[tuple[Listing, MarginScore]]:
    return [(x, score_listing(POLICY, x.price_cents, x.brand)) for x in listings]


async def row(conn: asyncpg.Connection, listing_id: str) -> asyncpg.Record:
    return await conn.fetchrow("SELECT * FROM items WHERE source = 'vinted' AND source_listing_id = $1", listing_id)


async def test_a_new_listing_becomes_a_pending_scored_item(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        [item] = await upsert_listings(conn, scored(listing()), auto_approve=False)
        assert item.created and item.needs_rehost and item.status == "pending"
        stored = await row(conn, "1")
    assert stored["id"] == item.id and stored["kind"] == "one_of_one" and stored["stock"] is None
    # we would pay the listing's price (cost); our price is the resale estimate
    assert (stored["cost_cents"], stored["price_cents"], stored["currency"].strip()) == (10_000, 20_000, "EUR")
    assert (stored["verdict"], stored["margin_cents"]) == ("green", 7_000)
    assert stored["source_url"] == "https://market.test/items/1"
    assert stored["image_urls"] == ["https://market.test/images/1-0.jpg"] and stored["media_keys"] == []
    assert stored["attributes"] == '{"listing": {"colour": "olive"}}'


async def test_scraping_twice_updates_one_row(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        [first] = await upsert_listings(conn, scored(listing()), auto_approve=False)
        # the same scrape again changes nothing: nothing is returned, updated_at stays
        before = await row(conn, "1")
        assert await upsert_listings(conn, scored(listing()), auto_approve=False) == []
        assert (await row(conn, "1"))["updated_at"] == before["updated_at"]
        await update_item_media(conn, first.id, image_urls=before["image_urls"], media_keys=["f" * 64], error=None)
        # a price drop and a new title update the same row
        [second] = await upsert_listings(
            conn, scored(listing(price_cents=4_000, title="Carhartt jacket (WIP)")), auto_approve=False
        )
        after = await row(conn, "1")
        count = await conn.fetchval("SELECT count(*) FROM items WHERE source = 'vinted'")
    assert count == 1 and second.id == first.id and not second.created
    assert not second.needs_rehost  # the same image URLs, already rehosted
    assert (after["title"], after["cost_cents"], after["price_cents"]) == ("Carhartt jacket (WIP)", 4_000, 8_000)
    assert (after["verdict"], after["margin_cents"]) == ("orange", 2_200)


async def test_green_items_are_auto_approved_only_when_configured(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        items = await upsert_listings(conn, scored(listing("g"), listing("o", price_cents=1_000)), auto_approve=True)
        assert {(i.id, i.status) for i in items} == {(items[0].id, "available"), (items[1].id, "pending")}
        # a pending item that turns green on a re-scrape is approved then
        [later] = await upsert_listings(conn, scored(listing("o", price_cents=9_000)), auto_approve=True)
        assert later.status == "available"
        [off] = await upsert_listings(conn, scored(listing("p")), auto_approve=False)
    assert off.status == "pending"


@pytest.mark.parametrize("final", ["sold", "archived", "rejected"])
async def test_final_statuses_are_never_resurrected(db_pool: asyncpg.Pool, final: str) -> None:
    async with db_pool.acquire() as conn:
        [item] = await upsert_listings(conn, scored(listing()), auto_approve=False)
        await conn.execute("UPDATE items SET status = $2 WHERE id = $1", item.id, final)
        [again] = await upsert_listings(
            conn, scored(listing(price_cents=9_000, image_urls=["https://market.test/b.jpg"])), auto_approve=True
        )
        stored = await row(conn, "1")
    assert again.status == final and stored["status"] == final
    assert stored["cost_cents"] == 9_000  # the facts are still refreshed
    assert again.needs_rehost is (final != "rejected")


async def test_sold_at_source_marks_live_items_sold_only(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        items = await upsert_listings(conn, scored(listing("a"), listing("b"), listing("c")), auto_approve=False)
        await conn.execute("UPDATE items SET status = 'rejected' WHERE id = $1", items[2].id)
        sold = await update_items_sold_at_source(conn, "vinted", ["a", "c", "unknown"])
        assert sold == [items[0].id]
        assert [await select_item_status(conn, i.id) for i in items] == ["sold", "pending", "rejected"]
        assert await update_items_sold_at_source(conn, "grailed", ["b"]) == []


async def test_a_delivery_is_recorded_once(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        assert await insert_delivery(conn, "edge-1:job-1", source="vinted", listings=3)
        assert not await insert_delivery(conn, "edge-1:job-1", source="vinted", listings=3)
        assert await insert_delivery(conn, "edge-1:job-2", source="vinted", listings=0)


async def test_rehost_state_follows_the_image_urls(db_pool: asyncpg.Pool) -> None:
    urls = ["https://market.test/1.jpg", "https://market.test/2.jpg"]
    async with db_pool.acquire() as conn:
        [item] = await upsert_listings(conn, scored(listing(image_urls=urls)), auto_approve=False)
        target = await select_rehost_target(conn, item.id)
        assert target is not None and target.image_urls == tuple(urls) and not target.current
        assert await select_item_ids_to_rehost(conn, "vinted", ["1"]) == [item.id]
        keys = ["a" * 64 + ".jpg", "b" * 64 + ".jpg"]
        assert await update_item_media(conn, item.id, image_urls=urls, media_keys=keys, error=None)
        target = await select_rehost_target(conn, item.id)
        assert target is not None and target.current and target.media_keys == tuple(keys)
        assert await select_item_ids_to_rehost(conn, "vinted", ["1"]) == []
        # new photos: a rehost is needed again, and a rehost of the old ones may not land
        [changed] = await upsert_listings(conn, scored(listing(image_urls=urls[:1])), auto_approve=False)
        assert changed.needs_rehost
        assert not await update_item_media(conn, item.id, image_urls=urls, media_keys=keys, error=None)
        assert await select_rehost_target(conn, 999_999) is None


async def test_text_arrays_survive_quotes_and_commas(db_pool: asyncpg.Pool) -> None:
    urls = ['https://market.test/a,b.jpg?x="1"', "https://market.test/back\\slash.jpg", "https://market.test/{}.jpg"]
    async with db_pool.acquire() as conn:
        await upsert_listings(conn, scored(listing(image_urls=urls)), auto_approve=False)
        assert (await row(conn, "1"))["image_urls"] == urls


async def test_listings_without_price_or_currency(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        await upsert_listings(
            conn, scored(listing("n", price_cents=None, currency=None), listing("c", currency=None)), auto_approve=True
        )
        no_price, no_currency = await row(conn, "n"), await row(conn, "c")
    assert (no_price["price_cents"], no_price["verdict"], no_price["status"]) == (None, "orange", "pending")
    assert (no_currency["price_cents"], no_currency["cost_cents"]) == (None, None)


@pytest.mark.parametrize(
    ("start", "to", "allowed", "before"),
    [
        ("pending", "available", ("pending", "rejected"), "pending"),
        ("rejected", "available", ("pending", "rejected"), "rejected"),
        ("sold", "available", ("pending", "rejected"), None),
        ("available", "rejected", ("pending", "available"), "available"),
        ("archived", "rejected", ("pending", "available"), None),
    ],
)
async def test_review_moves(
    db_pool: asyncpg.Pool, start: str, to: str, allowed: tuple[str, ...], before: str | None
) -> None:
    async with db_pool.acquire() as conn:
        [item] = await upsert_listings(conn, scored(listing()), auto_approve=False)
        await conn.execute("UPDATE items SET status = $2 WHERE id = $1", item.id, start)
        assert await update_item_review(conn, item.id, status=to, from_statuses=allowed) == before
        assert await select_item_status(conn, item.id) == (to if before else start)
        assert await update_item_review(conn, 999_999, status=to, from_statuses=allowed) is None
