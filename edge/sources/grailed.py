"""Grailed: load /shop in a real page, read the Algolia app id + search key from it (they rotate), query Algolia.

The key is read on every run (and re-read once when Algolia answers 403); the Algolia host
is GRAILED_ALGOLIA_URL when set, else `https://<app id>-dsn.algolia.net`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from domain.listings import Listing, parse_search_query, price_to_cents
from edge.sources.base import SourceBlocked, SourceFailed, absolute, get_json, goto

QUERIES_PATH = "/1/indexes/*/queries"
HITS_MAX = 100
APP_ID_RE = re.compile(
    r'["\']?(?:ALGOLIA_APP_ID|algolia_?app_?id|appId|applicationId)["\']?\s*[:=]\s*["\']([A-Za-z0-9]{6,})["\']', re.I
)
KEY_RE = re.compile(
    r'["\']?(?:ALGOLIA_SEARCH_API_KEY|algolia_?search_?(?:api_?)?key|algolia_?api_?key|searchApiKey|apiKey)'
    r'["\']?\s*[:=]\s*["\']([A-Za-z0-9]{16,})["\']',
    re.I,
)
FACETS = {
    "designer": "designers.name",
    "brand": "designers.name",
    "condition": "condition",
    "category": "category_path",
    "size": "category_size",
    "department": "department",
}


@dataclass(frozen=True)
class GrailedConfig:
    """Where Grailed lives: the site (its /shop page) and, optionally, a fixed Algolia host and the index."""

    base_url: str
    algolia_url: str | None = None
    index: str = "Listing_production"


@dataclass(frozen=True)
class AlgoliaKeys:
    """The public search credentials the shop page hands every visitor."""

    app_id: str
    api_key: str


def read_keys(html: str) -> AlgoliaKeys | None:
    """The Algolia app id and search-only key from the shop page's inline config (None when absent)."""
    app_id, key = APP_ID_RE.search(html), KEY_RE.search(html)
    if app_id is None or key is None:
        return None
    return AlgoliaKeys(app_id.group(1), key.group(1))


def algolia_params(text: str, filters: dict[str, list[str]], page: int, hits: int) -> str:
    """The Algolia `params` string: query, paging, facetFilters (AND of ORs) and numeric price filters."""
    params: dict[str, Any] = {"query": text, "hitsPerPage": hits, "page": page}
    facets = [
        [f"{FACETS[name]}:{value.replace('_', ' ')}" for value in values]
        for name, values in filters.items()
        if name in FACETS
    ]
    numeric = [f"price_i>={filters['price_from'][0]}"] if filters.get("price_from") else []
    numeric += [f"price_i<={filters['price_to'][0]}"] if filters.get("price_to") else []
    if facets:
        params["facetFilters"] = json.dumps(facets)
    if numeric:
        params["numericFilters"] = json.dumps(numeric)
    return urlencode(params)


def parse_hit(hit: dict[str, Any], base_url: str) -> Listing:
    """A Listing from an Algolia hit (price in whole dollars)."""
    designers = hit.get("designers") or []
    brand = designers[0].get("name") if designers and isinstance(designers[0], dict) else hit.get("designer_names")
    photos = [hit.get("cover_photo") or {}, *(hit.get("photos") or [])]
    images = list(dict.fromkeys(p["url"] for p in photos if isinstance(p, dict) and p.get("url")))
    listing_id = str(hit.get("id") or hit["objectID"])
    return Listing(
        source="grailed",
        source_listing_id=listing_id,
        title=str(hit.get("title") or ""),
        url=absolute(base_url, hit.get("pretty_path") or f"/listings/{listing_id}") or "",
        brand=brand or None,
        price_cents=price_to_cents(hit.get("price_i", hit.get("price"))),
        currency=hit.get("currency") or "USD",
        size=hit.get("size") or None,
        condition=hit.get("condition") or None,
        image_urls=images,
        sold=bool(hit.get("sold")),
        attributes={k: hit[k] for k in ("category_path", "color", "department") if hit.get(k)},
    )


async def _keys(browser: Any, context: Any, base_url: str) -> AlgoliaKeys:
    """Load /shop in a page and read this run's Algolia credentials from it."""
    async with browser.page(context) as page:
        html = await goto(page, base_url.rstrip("/") + "/shop", "grailed shop page")
        config = await page.evaluate("() => JSON.stringify(window.PUBLIC_CONFIG || null)")
    keys = read_keys(config or "") or read_keys(html)
    if keys is None:
        raise SourceFailed("grailed shop page: no Algolia app id / key found")
    return keys


async def search(browser: Any, config: GrailedConfig, query: str, limit: int) -> list[Listing]:
    """Up to `limit` live Grailed listings for `query` (`text designer:Nike condition:is_new price_to:200`)."""
    parsed = parse_search_query(query)
    async with browser.context() as context:
        keys, rereads = await _keys(browser, context, config.base_url), 0
        found: dict[str, Listing] = {}
        page_no = 0
        while len(found) < limit:
            host = (config.algolia_url or f"https://{keys.app_id.lower()}-dsn.algolia.net").rstrip("/")
            body = {
                "requests": [
                    {
                        "indexName": config.index,
                        "params": algolia_params(parsed.text, parsed.filters, page_no, min(HITS_MAX, limit)),
                    }
                ]
            }
            headers = {
                "X-Algolia-Application-Id": keys.app_id,
                "X-Algolia-API-Key": keys.api_key,
                "Content-Type": "application/json",
                "Origin": config.base_url.rstrip("/"),
            }
            try:
                answer = await get_json(
                    context.request,
                    host + QUERIES_PATH,
                    "grailed algolia",
                    method="POST",
                    headers=headers,
                    data=json.dumps(body),
                )
            except SourceBlocked as blocked:
                if str(blocked).endswith("HTTP 403") and rereads == 0:  # the key rotated: read the page again
                    keys, rereads = await _keys(browser, context, config.base_url), 1
                    continue
                raise
            result = (answer.get("results") or [{}])[0]
            for hit in result.get("hits") or []:
                if len(found) < limit and not hit.get("sold"):
                    listing = parse_hit(hit, config.base_url)
                    found.setdefault(listing.source_listing_id, listing)
            if not result.get("hits") or page_no + 1 >= int(result.get("nbPages") or 0):
                break
            page_no += 1
        return list(found.values())
