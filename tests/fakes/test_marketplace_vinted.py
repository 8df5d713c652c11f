"""The fake Vinted speaks the current shapes: session cookie, svc-catalogue filters, item pages per state."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from fakes.marketplace import Marketplace
from tests.fakes.conftest import json_ld


async def _session(http: aiohttp.ClientSession, market: Marketplace) -> None:
    async with http.get(f"{market.vinted_url}/") as response:
        assert response.status == 200


async def _search(http: aiohttp.ClientSession, market: Marketplace, **params: str) -> dict:
    async with http.get(f"{market.vinted_url}/svc-catalogue/items", params=params) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_catalogue_needs_the_session_cookie(market: Marketplace, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{market.vinted_url}/svc-catalogue/items", params={"search_text": "nike"}) as response:
        assert response.status == 401
        assert (await response.json())["message_code"] == "invalid_authentication_token"
    async with http.get(f"{market.vinted_url}/svc-catalogue/items", cookies={"access_token_web": "forged"}) as response:
        assert response.status == 401
    async with http.get(f"{market.vinted_url}/") as response:
        html = await response.text()
        assert "access_token_web" in response.cookies
        assert response.headers["X-Anon-Id"]
        assert re.search(r'"CSRF_TOKEN":"[0-9a-f-]{36}"', html)
    body = await _search(http, market, search_text="nike")
    assert body["items"] and set(body["pagination"]) >= {"current_page", "total_pages", "total_entries", "per_page"}


async def test_legacy_endpoints_answer_404(market: Marketplace, http: aiohttp.ClientSession) -> None:
    await _session(http, market)
    for path in ("/api/v2/catalog/items?search_text=nike", f"/api/v2/items/{market.listings('vinted')[0].id}"):
        async with http.get(f"{market.vinted_url}{path}") as response:
            assert response.status == 404
            assert response.content_type == "text/html"


async def test_items_have_the_svc_catalogue_shape(market: Marketplace, http: aiohttp.ClientSession) -> None:
    await _session(http, market)
    body = await _search(http, market, search_text="hoodie", per_page="20")
    organic = [item for item in body["items"] if not item["promoted"]]
    item = organic[0]
    assert not {"brand_title", "size_title", "status", "path"} & set(item)
    listing = market.find("vinted", item["id"])
    assert listing is not None and "hoodie" in listing.title.lower()
    assert item["item_box"]["first_line"] == listing.brand
    assert item["item_box"]["second_line"] == f"{listing.size} · {listing.site_condition()}"
    assert float(item["price"]["amount"]) * 100 == pytest.approx(listing.price_cents)
    assert item["price"]["currency_code"] == "EUR"
    assert item["url"] == market.url_of(listing)
    assert item["photo"]["url"].endswith(".jpg")
    promoted = [item for item in body["items"] if item["promoted"]]
    assert len(promoted) == 1 and "hoodie" not in promoted[0]["title"].lower()  # off-query paid placement


async def test_filters_narrow_results(market: Marketplace, http: aiohttp.ClientSession) -> None:
    await _session(http, market)
    nike = next(x for x in market.listings("vinted") if x.brand == "Nike")
    by_brand = await _search(http, market, **{"attribute_ids[brand]": str(nike.brand_id), "per_page": "96"})
    organic = [i for i in by_brand["items"] if not i["promoted"]]
    assert organic and all(i["item_box"]["first_line"] == "Nike" for i in organic)
    assert by_brand["pagination"]["total_entries"] == len(market.listings("vinted")) // 8
    ignored = await _search(http, market, brand_ids=str(nike.brand_id), per_page="96")  # the trap: silently ignored
    assert ignored["pagination"]["total_entries"] == len(market.listings("vinted"))
    by_size = await _search(http, market, **{"attribute_ids[size]": str(nike.size_id)})
    assert {market.find("vinted", i["id"]).size for i in by_size["items"] if not i["promoted"]} == {nike.size}
    cheap = await _search(http, market, price_to="50", order="price_high_to_low")
    prices = [float(i["price"]["amount"]) for i in cheap["items"] if not i["promoted"]]
    assert prices and max(prices) <= 50 and prices == sorted(prices, reverse=True)
    page2 = await _search(http, market, per_page="10", page="2")
    assert page2["pagination"]["current_page"] == 2 and len(page2["items"]) == 10  # promoted only on page 1
    async with http.get(f"{market.vinted_url}/svc-catalogue/items", params={"price_from": ""}) as response:
        assert response.status == 400


async def test_item_page_states(market: Marketplace, http: aiohttp.ClientSession) -> None:
    await _session(http, market)
    live, sold, removed = market.listings("vinted")[:3]
    market.set_state("vinted", sold.id, "sold")
    market.set_state("vinted", removed.id, "removed")
    async with http.get(market.url_of(live)) as response:
        html = await response.text()
        assert response.status == 200 and '"is_closed":false' in html and "item-status--sold" not in html
        assert json_ld(html)["offers"]["availability"] == "https://schema.org/InStock"
    async with http.get(market.url_of(sold)) as response:
        html = await response.text()
        assert response.status == 200
        assert 'data-testid="item-status--sold"' in html and '"is_closed":true' in html
        assert json_ld(html)["offers"]["availability"] == "https://schema.org/SoldOut"
    async with http.get(market.url_of(removed)) as response:
        assert response.status == 404 and 'data-testid="item-not-found"' in await response.text()
    everything = await _search(http, market, per_page="96")
    ids = {i["id"] for i in everything["items"]}
    assert live.id in ids and sold.id not in ids and removed.id not in ids


async def test_blocked_and_slow_listings(market: Marketplace, http: aiohttp.ClientSession) -> None:
    await _session(http, market)
    blocked, slow = market.listings("vinted")[3:5]
    market.set_state("vinted", blocked.id, "blocked")
    market.set_state("vinted", slow.id, "slow")
    async with http.get(market.url_of(blocked)) as response:
        html = await response.text()
        assert response.status == 403 and "Just a moment..." in html and "challenge-platform" in html
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(market.url_of(slow), timeout=aiohttp.ClientTimeout(total=0.3)):
            pass
    market.slow_s = 0.2  # a patient client still gets the page
    async with http.get(market.url_of(slow), timeout=aiohttp.ClientTimeout(total=20)) as response:
        assert response.status == 200 and slow.title in await response.text()
    ids = {i["id"] for i in (await _search(http, market, per_page="96"))["items"]}
    assert {blocked.id, slow.id} <= ids  # searches still list them
