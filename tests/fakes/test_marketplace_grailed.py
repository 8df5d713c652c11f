"""The fake Grailed: keys in /shop, the Algolia multi-query protocol, the listing API per state."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import aiohttp

from fakes.marketplace import Marketplace


async def _keys(http: aiohttp.ClientSession, market: Marketplace) -> tuple[str, str]:
    async with http.get(f"{market.grailed_url}/shop") as response:
        html = await response.text()
    config = json.loads(re.search(r"window\.PUBLIC_CONFIG = (\{.*?\});", html).group(1))
    return config["ALGOLIA_APP_ID"], config["ALGOLIA_SEARCH_API_KEY"]


async def _queries(
    http: aiohttp.ClientSession, market: Marketplace, requests: list[dict[str, Any]], keys: tuple[str, str]
) -> tuple[int, dict[str, Any]]:
    headers = {
        "X-Algolia-Application-Id": keys[0],
        "X-Algolia-API-Key": keys[1],
        "Content-Type": "application/x-www-form-urlencoded",
    }  # what the JS client sends, JSON inside
    async with http.post(
        f"{market.algolia_url}/1/indexes/*/queries", data=json.dumps({"requests": requests}), headers=headers
    ) as response:
        return response.status, await response.json()


def _params(**values: Any) -> str:
    return urlencode({k: json.dumps(v) if isinstance(v, list) else v for k, v in values.items()})


async def test_keys_come_from_the_shop_page_and_are_checked(market: Marketplace, http: aiohttp.ClientSession) -> None:
    keys = await _keys(http, market)
    assert keys == (market.algolia_app_id, market.algolia_api_key)
    request = [{"indexName": "Listing_production", "params": _params(query="", hitsPerPage=5)}]
    status, body = await _queries(http, market, request, (keys[0], "wrong"))
    assert status == 403 and "Invalid Application-ID or API key" in body["message"]
    status, body = await _queries(http, market, request, keys)
    assert status == 200 and len(body["results"][0]["hits"]) == 5
    old = keys[1]
    market.rotate_algolia_key()
    assert (await _queries(http, market, request, keys))[0] == 403
    fresh = await _keys(http, market)
    assert fresh[1] != old and (await _queries(http, market, request, fresh))[0] == 200
    # the browser client sends the key as query parameters instead of headers
    url = f"{market.algolia_url}/1/indexes/Listing_production/query?" + urlencode(
        {"x-algolia-application-id": fresh[0], "x-algolia-api-key": fresh[1]}
    )
    async with http.post(url, data=json.dumps({"params": _params(query="jacket")})) as response:
        assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
        assert all("jacket" in hit["title"] for hit in (await response.json())["hits"])


async def test_hits_carry_the_fields_and_filters_work(market: Marketplace, http: aiohttp.ClientSession) -> None:
    keys = await _keys(http, market)
    requests = [
        {
            "indexName": "Listing_production",
            "params": _params(query="", hitsPerPage=100, facetFilters=[["designers.name:Nike"]]),
        },
        {
            "indexName": "Listing_by_low_price_production",
            "params": _params(query="", hitsPerPage=100, numericFilters=["price_i>=100", "price_i<=200"]),
        },
        {"indexName": "Listing_production", "params": _params(query="", filters="condition:is_used")},
    ]
    status, body = await _queries(http, market, requests, keys)
    assert status == 200
    nike, priced, used = (result["hits"] for result in body["results"])
    assert nike and all(hit["designers"][0]["name"] == "Nike" for hit in nike)
    assert body["results"][0]["nbHits"] == len(market.listings("grailed")) // 8
    prices = [hit["price_i"] for hit in priced]
    assert prices and all(100 <= p <= 200 for p in prices) and prices == sorted(prices)
    assert used and {hit["condition"] for hit in used} == {"is_used"}
    hit = nike[0]
    assert {"id", "objectID", "title", "price", "size", "condition", "designers", "cover_photo", "sold"} <= set(hit)
    assert hit["objectID"] == str(hit["id"]) and hit["sold"] is False
    status, body = await _queries(http, market, [{"indexName": "Listing_nope", "params": ""}], keys)
    assert status == 404
    status, body = await _queries(http, market, [{"indexName": "Listing_production", "params": ""}] * 51, keys)
    assert status == 400 and "Too many queries" in body["message"]


async def test_sold_and_removed_listings(market: Marketplace, http: aiohttp.ClientSession) -> None:
    keys = await _keys(http, market)
    live, sold, removed = market.listings("grailed")[:3]
    market.set_state("grailed", sold.id, "sold")
    market.set_state("grailed", removed.id, "removed")
    all_params = _params(query="", hitsPerPage=1000)
    status, body = await _queries(
        http,
        market,
        [
            {"indexName": "Listing_production", "params": all_params},
            {"indexName": "Listing_sold_production", "params": all_params},
        ],
        keys,
    )
    active = {hit["id"] for hit in body["results"][0]["hits"]}
    sold_hits = body["results"][1]["hits"]
    assert live.id in active and sold.id not in active and removed.id not in active
    assert [hit["id"] for hit in sold_hits] == [sold.id] and sold_hits[0]["sold"] is True
    async with http.get(f"{market.grailed_url}/api/listings/{live.id}") as response:
        data = (await response.json())["data"]
        assert response.status == 200 and data["sold"] is False and data["photos"] and data["title"] == live.title
    async with http.get(f"{market.grailed_url}/api/listings/{sold.id}") as response:
        assert (await response.json())["data"]["sold"] is True
    async with http.get(f"{market.grailed_url}/api/listings/{removed.id}") as response:
        assert response.status == 404 and await response.json() == {"error": "Listing not found"}
    async with http.get(market.url_of(sold)) as response:
        assert response.status == 200 and 'data-testid="listing-sold-badge"' in await response.text()
    async with http.get(market.url_of(removed)) as response:
        assert response.status == 404


async def test_blocked_listing_api_answers_the_challenge(market: Marketplace, http: aiohttp.ClientSession) -> None:
    blocked = market.listings("grailed")[5]
    market.set_state("grailed", blocked.id, "blocked")
    async with http.get(f"{market.grailed_url}/api/listings/{blocked.id}") as response:
        assert response.status == 403 and response.content_type == "text/html"
        assert "challenge-platform" in await response.text()
