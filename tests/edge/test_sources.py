"""Source adapters with a real Chromium against the local marketplace: fields, filters, blocked pages."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import unquote

import pytest

from config.settings import EdgeSettings
from edge.sources import InvalidScrape, scrape
from fakes.marketplace import Marketplace
from tests.edge.scrape_support import (
    CountingBrowser,
    browser,
    expected,
    fake,
    market,
    market_server,
    paths,  # noqa: F401
    run,
    settings,
    settings_for,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


# --- vinted ---
async def test_vinted_search_reads_the_svc_catalogue_in_a_page_session(
    market: Marketplace, settings: EdgeSettings, browser: CountingBrowser
) -> None:
    outcome = await run(browser, settings, "vinted", "hoodie", limit=40)
    assert outcome.status == "ok", outcome.detail
    ids = [listing.source_listing_id for listing in outcome.listings]
    assert set(ids) == expected(market, "vinted", "hoodie") and len(ids) == len(set(ids))  # the promoted one is not
    for listing in outcome.listings:
        seeded = fake(market, "vinted", listing.source_listing_id)
        assert (listing.title, listing.brand, listing.size, listing.condition) == (
            seeded.title,
            seeded.brand,
            seeded.size,
            seeded.site_condition(),
        )
        assert (listing.price_cents, listing.currency, listing.sold) == (seeded.price_cents, "EUR", False)
        assert listing.url == market.url_of(seeded) and listing.image_urls[0].endswith(f"/{seeded.photos[0]}.jpg")
    log = paths(market, "vinted")
    assert log[0] == "/" and "/svc-catalogue/items" in log  # session first, then the API with its cookie
    assert not [p for p in log if p.startswith("/api/v2/")]  # the legacy endpoints are never called
    assert not [p for p in log if p.startswith("/images/")]  # the page's images are blocked


@pytest.mark.parametrize(
    ("query", "text", "attrs"),
    [
        ("brand:53", "", {"brand_id": 53}),
        ("jacket brand:14,362", "jacket", {"brand_id": {14, 362}}),
        ("size:208 status:2,3", "", {"size_id": 208, "status_id": {2, 3}}),
    ],
)
async def test_vinted_filters_go_out_as_attribute_ids(
    market: Marketplace, settings: EdgeSettings, browser: CountingBrowser, query: str, text: str, attrs: dict
) -> None:
    outcome = await run(browser, settings, "vinted", query, limit=40)
    assert outcome.status == "ok", outcome.detail
    wanted = expected(market, "vinted", text, **attrs)
    assert wanted and {x.source_listing_id for x in outcome.listings} == wanted
    queries = [unquote(r.query) for r in market.requests("vinted") if r.path == "/svc-catalogue/items"]
    assert queries and all("attribute_ids[" in q for q in queries) and not any("brand_ids" in q for q in queries)


async def test_vinted_limit_and_an_expired_session_is_bootstrapped_again(
    market: Marketplace, settings: EdgeSettings, browser: CountingBrowser
) -> None:
    market.vinted.fail_next("catalogue", 401)
    outcome = await run(browser, settings, "vinted", "", limit=5)
    assert outcome.status == "ok", outcome.detail
    assert len(outcome.listings) == 5
    assert paths(market, "vinted").count("/") == 2  # a fresh session after the 401


async def test_vinted_item_pages_complete_details(
    market: Marketplace, monkeypatch: pytest.MonkeyPatch, browser: CountingBrowser
) -> None:
    settings = settings_for(market, monkeypatch, VINTED_ITEM_DETAILS="true")
    browser.most_pages = 0
    outcome = await run(browser, settings, "vinted", "brand:88", limit=40)
    assert outcome.status == "ok", outcome.detail
    assert {x.source_listing_id for x in outcome.listings} == expected(market, "vinted", brand_id=88)
    for listing in outcome.listings:
        seeded = fake(market, "vinted", listing.source_listing_id)
        assert len(listing.image_urls) == len(seeded.photos)  # every photo, from the item page
        assert listing.attributes["description"] == seeded.description
    assert len([p for p in paths(market, "vinted") if p.startswith("/items/")]) == len(outcome.listings)
    assert browser.most_pages == 2  # item pages in parallel, never more than EDGE_PAGES_IN_FLIGHT


async def test_vinted_item_page_sold_while_listed_is_marked_sold(
    market: Marketplace, monkeypatch: pytest.MonkeyPatch, browser: CountingBrowser
) -> None:
    settings = settings_for(market, monkeypatch, VINTED_ITEM_DETAILS="true")
    target = sorted(expected(market, "vinted", brand_id=10))[0]
    original = market.vinted.render_item
    # sold between the search and the item page: the page says so (badge, is_closed, JSON-LD SoldOut)
    monkeypatch.setattr(
        market.vinted, "render_item", lambda listing, sold: original(listing, sold or str(listing.id) == target)
    )
    outcome = await run(browser, settings, "vinted", "brand:10", limit=40)
    assert outcome.status == "ok", outcome.detail
    assert {x.source_listing_id for x in outcome.listings if x.sold} == {target}


@pytest.mark.parametrize("switch", ["block", "rate_limit"])
async def test_vinted_anti_bot_answers_are_blocked_never_empty(
    market: Marketplace, settings: EdgeSettings, browser: CountingBrowser, switch: str
) -> None:
    getattr(market, switch)("vinted")
    outcome = await run(browser, settings, "vinted", "hoodie")
    assert outcome.status == "blocked" and outcome.listings == []
    assert ("HTTP 403" if switch == "block" else "HTTP 429") in outcome.detail
    assert outcome.retry_after_s == (30.0 if switch == "rate_limit" else None)


async def test_vinted_catalogue_blocked_after_the_session_is_blocked(
    market: Marketplace, settings: EdgeSettings, browser: CountingBrowser
) -> None:
    market.vinted.fail_next("catalogue", 403, body="<html><title>Just a moment...</title></html>")
    outcome = await run(browser, settings, "vinted", "hoodie")
    assert outcome.status == "blocked" and "vinted catalogue" in outcome.detail


async def test_vinted_item_page_challenge_blocks_the_scrape(
    market: Marketplace, monkeypatch: pytest.MonkeyPatch, browser: CountingBrowser
) -> None:
    settings = settings_for(market, monkeypatch, VINTED_ITEM_DETAILS="true")
    market.set_state("vinted", int(sorted(expected(market, "vinted", brand_id=53))[0]), "blocked")
    outcome = await run(browser, settings, "vinted", "brand:53", limit=40)
    assert outcome.status == "blocked" and "vinted item page" in outcome.detail


async def test_vinted_server_error_is_an_error(
    market: Marketplace, settings: EdgeSettings, browser: CountingBrowser
) -> None:
    market.vinted.fail_next("catalogue", 503)
    outcome = await run(browser, settings, "vinted", "hoodie")
    assert outcome.status == "error" and "HTTP 503" in outcome.detail


# --- grailed ---
async def test_grailed_queries_algolia_with_the_key_read_from_the_page(
    market: Marketplace, settings: EdgeSettings, browser: CountingBrowser
) -> None:
    market.rotate_algolia_key()  # a key no one could have known before loading /shop
    outcome = await run(browser, settings, "grailed", "jacket designer:Nike,Adidas", limit=40)
    assert outcome.status == "ok", outcome.detail
    assert {x.source_listing_id for x in outcome.listings} == expected(
        market, "grailed", "jacket", brand={"Nike", "Adidas"}
    )
    for listing in outcome.listings:
        seeded = fake(market, "grailed", listing.source_listing_id)
        assert (listing.title, listing.brand, listing.currency) == (seeded.title, seeded.brand, "USD")
        assert listing.price_cents == seeded.price_cents // 100 * 100 and listing.condition == seeded.site_condition()
        assert listing.url == market.url_of(seeded) and listing.image_urls
    assert paths(market, "grailed") == ["/shop"]
    assert [r.status for r in market.requests("algolia") if r.path == "/1/indexes/*/queries"] == [200]


async def test_grailed_rereads_a_rotated_key_once(
    market: Marketplace, settings: EdgeSettings, browser: CountingBrowser
) -> None:
    market.algolia.fail_next("queries", 403, body={"message": "Invalid Application-ID or API key", "status": 403})
    outcome = await run(browser, settings, "grailed", "hoodie", limit=5)
    assert outcome.status == "ok" and len(outcome.listings) == 5
    assert paths(market, "grailed") == ["/shop", "/shop"]


@pytest.mark.parametrize(("host", "switch"), [("grailed", "block"), ("algolia", "rate_limit"), ("algolia", "block")])
async def test_grailed_anti_bot_answers_are_blocked(
    market: Marketplace, settings: EdgeSettings, browser: CountingBrowser, host: str, switch: str
) -> None:
    getattr(market, switch)(host)
    outcome = await run(browser, settings, "grailed", "hoodie")
    assert outcome.status == "blocked" and outcome.listings == []


# --- generic storefront ---
async def test_generic_reads_cards_then_json_ld(
    market: Marketplace, settings: EdgeSettings, browser: CountingBrowser
) -> None:
    sold = sorted(expected(market, "shop", "nike"))[0]
    market.set_state("shop", int(sold), "sold")  # still listed by the shop, sold per JSON-LD
    outcome = await run(browser, settings, "shop", "nike", limit=40)
    assert outcome.status == "ok", outcome.detail
    listed = {str(x.id) for x in market.listings("shop") if x.state != "removed" and x.matches("nike")}
    assert {x.source_listing_id for x in outcome.listings} == listed
    for listing in outcome.listings:
        seeded = fake(market, "shop", listing.source_listing_id)
        assert (listing.title, listing.brand, listing.size, listing.condition) == (
            seeded.title,
            seeded.brand,
            seeded.size,
            seeded.site_condition(),
        )
        assert (listing.price_cents, listing.currency) == (seeded.price_cents, "GBP")
        assert len(listing.image_urls) == len(seeded.photos)  # JSON-LD has every photo, the card one
        assert listing.sold == (listing.source_listing_id == sold)
    assert not [p for p in paths(market, "shop") if p.startswith("/images/")]


async def test_generic_follows_pages_and_css_only_never_opens_products(
    market: Marketplace, monkeypatch: pytest.MonkeyPatch, browser: CountingBrowser
) -> None:
    shop = {**json.loads(market.env()["EDGE_SOURCES"])["shop"], "json_ld": False}
    settings = settings_for(market, monkeypatch, EDGE_SOURCES=json.dumps({"shop": shop}))
    outcome = await run(browser, settings, "shop", "", limit=30)
    assert outcome.status == "ok", outcome.detail
    assert len(outcome.listings) == 30 and all(x.price_cents and x.currency == "GBP" for x in outcome.listings)
    assert paths(market, "shop") == ["/search", "/search"]  # two result pages, no product page


async def test_generic_removed_product_is_dropped_and_challenge_blocks(
    market: Marketplace, settings: EdgeSettings, browser: CountingBrowser
) -> None:
    ids = expected(market, "shop", "adidas")
    market.shop.fail_next("product", 404)  # one product removed between the search and its page
    outcome = await run(browser, settings, "shop", "adidas", limit=40)
    found = {x.source_listing_id for x in outcome.listings}
    assert outcome.status == "ok" and found < ids and len(found) == len(ids) - 1
    market.set_state("shop", int(sorted(ids)[1]), "blocked")
    outcome = await run(browser, settings, "shop", "adidas", limit=40)
    assert outcome.status == "blocked" and "shop product page" in outcome.detail and outcome.listings == []


# --- the registry and the browser ---
async def test_unknown_source_and_bad_limit_are_refused(settings: EdgeSettings, browser: CountingBrowser) -> None:
    with pytest.raises(InvalidScrape, match="no source adapter named 'ebay'"):
        await scrape(browser, settings, "ebay", "x", 5)
    with pytest.raises(InvalidScrape, match="limit"):
        await scrape(browser, settings, "vinted", "x", 0)


async def test_one_browser_per_process_reused_across_jobs(browser: CountingBrowser) -> None:
    assert browser.launches == 1  # every scrape above ran in this one Chromium, a context each


async def test_concurrent_jobs_share_the_page_bound_without_deadlock(
    market: Marketplace, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(market, monkeypatch, VINTED_ITEM_DETAILS="true")
    one_page = CountingBrowser("/usr/bin/chromium", 1, 10_000)
    try:
        outcomes = await asyncio.gather(
            run(one_page, settings, "vinted", "brand:14", limit=4),
            run(one_page, settings, "shop", "carhartt", limit=4),
            run(one_page, settings, "grailed", "fleece", limit=4),
        )
    finally:
        await one_page.close()
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"] and all(len(o.listings) == 4 for o in outcomes)
    assert one_page.most_pages == 1 and one_page._open == 0  # every page given back when its job ended
