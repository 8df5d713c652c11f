"""The fake Grailed: `/shop` (Algolia keys in PUBLIC_CONFIG), `/api/listings/{id}`, listing pages, the Algolia host."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from fakes.marketplace.data import FakeListing
from fakes.marketplace.host import MarketHost, dumps, e, page

ACTIVE_ORDER = {
    "Listing_production": None,
    "Listing_by_date_added_production": ("created_at_i", True),
    "Listing_by_low_price_production": ("price_i", False),
    "Listing_by_high_price_production": ("price_i", True),
    "Listing_by_heat_production": None,
}
SOLD_ORDER = {
    "Listing_sold_production": None,
    "Listing_sold_by_date_production": ("sold_at_i", True),
    "Listing_sold_by_high_price_production": ("price_i", True),
}
NUMERIC = re.compile(r"^\s*([\w.]+)\s*(>=|<=|!=|=|>|<)\s*(-?[\d.]+)\s*$")
COMPARE = {
    ">=": float.__ge__,
    "<=": float.__le__,
    "=": float.__eq__,
    "!=": float.__ne__,
    ">": float.__gt__,
    "<": float.__lt__,
}


class GrailedHost(MarketHost):
    """www.grailed.com: the shop page, the listing JSON API and listing pages."""

    def site_routes(self) -> list[web.RouteDef]:
        return [
            web.get("/shop", self.shop, name="shop"),
            web.get(r"/api/listings/{id:\d+}", self.api_listing, name="api_listing"),
            web.get(r"/listings/{id:\d+}{slug:(-[^/]*)?}", self.listing_page, name="listing"),
        ]

    def listing_url(self, listing: FakeListing) -> str:
        """The listing's public page."""
        return f"{self.base_url}/listings/{listing.id}-{listing.slug}"

    def photos(self, listing: FakeListing) -> list[dict[str, Any]]:
        """Grailed's photo objects."""
        return [
            {
                "id": listing.id * 10 + i,
                "url": self.image_url(name),
                "width": 480,
                "height": 640,
                "position": i,
                "listing_id": listing.id,
            }
            for i, name in enumerate(listing.photos)
        ]

    def record(self, listing: FakeListing) -> dict[str, Any]:
        """The fields Algolia hits and the listing API share."""
        sold = listing.state == "sold"
        dollars = listing.price_cents // 100
        return {
            "id": listing.id,
            "title": listing.title,
            "description": listing.description,
            "price": dollars,
            "price_i": dollars,
            "currency": listing.currency,
            "size": listing.size.lower(),
            "category": listing.category_path.split(".")[0],
            "category_path": listing.category_path,
            "category_size": f"{listing.category_path.split('.')[0]}.{listing.size.lower()}",
            "condition": listing.site_condition(),
            "color": listing.colour,
            "designers": [
                {"id": listing.brand_id, "name": listing.brand, "slug": re.sub(r"\W+", "-", listing.brand.lower())}
            ],
            "designer_names": listing.brand,
            "department": "menswear",
            "location": "United States",
            "strata": "basic",
            "created_at": listing.created_at,
            "created_at_i": listing.created_at,
            "sold": sold,
            "sold_at": listing.created_at + 432000 if sold else None,
            "sold_at_i": listing.created_at + 432000 if sold else None,
            "sold_price": dollars if sold else None,
            "deleted": False,
            "buynow": True,
            "makeoffer": True,
            "cover_photo": self.photos(listing)[0],
            "pretty_path": f"/listings/{listing.id}-{listing.slug}",
            "user": {"username": f"seller{listing.id % 97}", "trusted_seller": listing.id % 2 == 0},
        }

    async def shop(self, request: web.Request) -> web.Response:
        """GET /shop: the page whose inline script carries the Algolia app id and search-only key."""
        config = {
            "ALGOLIA_APP_ID": self.market.algolia_app_id,
            "ALGOLIA_SEARCH_API_KEY": self.market.algolia_api_key,
            "ALGOLIA_HOST": self.market.algolia.base_url,
            "LISTINGS_INDEX": "Listing_production",
            "SOLD_INDEX": "Listing_sold_production",
        }
        body = f'<div id="__next"><h1>Shop</h1></div><script>window.PUBLIC_CONFIG = {dumps(config)};</script>'
        return web.Response(text=page("Shop | Grailed", body), content_type="text/html")

    async def api_listing(self, request: web.Request) -> web.StreamResponse:
        """GET /api/listings/{id}: `{"data": {...}}`; removed -> 404 `{"error": "Listing not found"}`."""
        listing = self.market.find("grailed", int(request.match_info["id"]))
        if listing is None or listing.state == "removed":
            return web.json_response({"error": "Listing not found"}, status=404)
        gated = await self.gate(listing)
        if gated is not None:
            return gated
        data = {
            **self.record(listing),
            "photos": self.photos(listing),
            "hidden": False,
            "published": True,
            "deleted_via_refund": False,
            "seller": {"username": f"seller{listing.id % 97}"},
            "price_drops": [],
        }
        return web.json_response({"data": data})

    async def listing_page(self, request: web.Request) -> web.StreamResponse:
        """GET /listings/{id}: the HTML page; sold shows a badge; removed -> 404 page."""
        listing = self.market.find("grailed", int(request.match_info["id"]))
        if listing is None or listing.state == "removed":
            return web.Response(
                status=404,
                text=page("Grailed", '<h1 data-testid="not-found">Listing not found</h1>'),
                content_type="text/html",
            )
        gated = await self.gate(listing)
        if gated is not None:
            return gated
        badge = '<div data-testid="listing-sold-badge">Sold</div>' if listing.state == "sold" else ""
        photos = "".join(f'<img data-testid="listing-photo" src="{e(p["url"])}">' for p in self.photos(listing))
        body = (
            f'<main data-testid="listing-page"><h1 data-testid="listing-title">{e(listing.title)}</h1>'
            f'<a data-testid="designer" href="/designers/{e(listing.brand)}">{e(listing.brand)}</a>'
            f"{badge}"
            f'<span data-testid="price" data-amount="{listing.price_cents // 100}">${listing.price_cents // 100}</span>'
            f'<span data-testid="size">{e(listing.size)}</span>'
            f'<span data-testid="condition">{e(listing.site_condition())}</span>{photos}</main>'
            f'<script id="__NEXT_DATA__" type="application/json">'
            f"{dumps({'props': {'pageProps': {'listing': {**self.record(listing), 'photos': self.photos(listing)}}}})}"
            "</script>"
        )
        return web.Response(text=page(f"{listing.title} | Grailed", body), content_type="text/html")


class AlgoliaHost(MarketHost):
    """The Algolia search host (`{appid}-dsn.algolia.net`): multi-query and single-index query, CORS open."""

    def is_api(self, path: str) -> bool:
        return True

    def site_routes(self) -> list[web.RouteDef]:
        return [
            web.post("/1/indexes/*/queries", self.queries, name="queries"),
            web.post("/1/indexes/{index}/query", self.query, name="query"),
            web.options("/1/{tail:.*}", self.preflight),
        ]

    def app(self) -> web.Application:
        app = super().app()

        async def cors(request: web.Request, response: web.StreamResponse) -> None:
            response.headers["Access-Control-Allow-Origin"] = "*"

        app.on_response_prepare.append(cors)
        return app

    async def preflight(self, request: web.Request) -> web.Response:
        """CORS preflight (the browser calls Algolia from the Grailed page)."""
        return web.Response(
            headers={
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "*",
                "Access-Control-Max-Age": "86400",
            }
        )

    def authorised(self, request: web.Request) -> bool:
        """The app id and search key, from headers or `x-algolia-*` query parameters."""
        app_id = request.headers.get("X-Algolia-Application-Id") or request.query.get("x-algolia-application-id")
        key = request.headers.get("X-Algolia-API-Key") or request.query.get("x-algolia-api-key")
        return app_id == self.market.algolia_app_id and key == self.market.algolia_api_key

    async def body(self, request: web.Request) -> dict[str, Any] | None:
        """The JSON body (clients send it as form-urlencoded or text/plain to skip the preflight)."""
        try:
            value = json.loads(await request.read() or b"{}")
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def queries(self, request: web.Request) -> web.Response:
        """POST /1/indexes/*/queries: `{"requests": [{"indexName", "params"}]}` -> `{"results": [...]}`."""
        if not self.authorised(request):
            return web.json_response({"message": "Invalid Application-ID or API key", "status": 403}, status=403)
        body = await self.body(request)
        if body is None or not isinstance(body.get("requests"), list):
            return web.json_response({"message": "Invalid JSON", "status": 400}, status=400)
        if len(body["requests"]) > 50:
            return web.json_response({"message": "Too many queries in multi query request", "status": 400}, status=400)
        results = []
        for sub in body["requests"]:
            result = self.run(str(sub.get("indexName", "")), sub)
            if isinstance(result, web.Response):
                return result
            results.append(result)
        return web.json_response({"results": results})

    async def query(self, request: web.Request) -> web.Response:
        """POST /1/indexes/{index}/query: one query, one result."""
        if not self.authorised(request):
            return web.json_response({"message": "Invalid Application-ID or API key", "status": 403}, status=403)
        body = await self.body(request)
        if body is None:
            return web.json_response({"message": "Invalid JSON", "status": 400}, status=400)
        result = self.run(request.match_info["index"], body)
        return result if isinstance(result, web.Response) else web.json_response(result)

    def run(self, index: str, sub: dict[str, Any]) -> dict[str, Any] | web.Response:
        """One Algolia query against the active or sold index."""
        if index not in ACTIVE_ORDER and index not in SOLD_ORDER:
            return web.json_response({"message": f"Index {index} does not exist", "status": 404}, status=404)
        params: dict[str, Any] = {
            **dict(parse_qsl(str(sub.get("params", "")))),
            **{k: v for k, v in sub.items() if k not in ("indexName", "params")},
        }
        try:
            hits_per_page = min(1000, int(params.get("hitsPerPage", 20)))
            page_no = int(params.get("page", 0))
        except ValueError:
            return web.json_response({"message": "Invalid hitsPerPage or page", "status": 400}, status=400)
        grailed: GrailedHost = self.market.grailed
        sold_index = index in SOLD_ORDER
        records = [
            grailed.record(x)
            for x in self.market.listings("grailed")
            if (x.state == "sold" if sold_index else x.listed) and x.matches(str(params.get("query", "")))
        ]
        records = [r for r in records if _passes(r, params)]
        order = (SOLD_ORDER if sold_index else ACTIVE_ORDER)[index]
        if order is not None:
            records.sort(key=lambda r: r[order[0]] or 0, reverse=order[1])
        hits = [
            {**r, "objectID": str(r["id"])} for r in records[page_no * hits_per_page : (page_no + 1) * hits_per_page]
        ]
        return {
            "hits": hits,
            "nbHits": len(records),
            "page": page_no,
            "hitsPerPage": hits_per_page,
            "nbPages": -(-len(records) // hits_per_page),
            "exhaustiveNbHits": True,
            "processingTimeMS": 1,
            "query": str(params.get("query", "")),
            "params": str(sub.get("params", "")),
            "index": index,
        }


def _listish(value: Any) -> list[Any]:
    """A filter parameter: a list already, a JSON list in a string, or a comma-separated string."""
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value.startswith("["):
        return list(json.loads(value))
    return [part for part in str(value).split(",") if part] if value else []


def _facet(record: dict[str, Any], term: str) -> bool:
    """`attr:value` (`designers.name:Nike`), or a numeric comparison (`price_i>=100`)."""
    term = term.strip().strip("()")
    numeric = NUMERIC.match(term)
    if numeric:
        attr, op, number = numeric.groups()
        value = record.get(attr)
        return value is not None and COMPARE[op](float(value), float(number))
    negate = term.startswith("-") or term.upper().startswith("NOT ")
    attr, _, wanted = term.lstrip("-").removeprefix("NOT ").partition(":")
    values = [d["name"] for d in record["designers"]] if attr == "designers.name" else [record.get(attr)]
    hit = any(str(v).lower() == wanted.strip().strip('"').lower() for v in values)
    return hit != negate


def _passes(record: dict[str, Any], params: dict[str, Any]) -> bool:
    """facetFilters (AND of ORs), numericFilters (AND) and the `filters` string (ANDs of OR groups)."""
    for group in _listish(params.get("facetFilters", [])):
        if not any(_facet(record, t) for t in (group if isinstance(group, list) else [group])):
            return False
    if not all(_facet(record, str(t)) for t in _listish(params.get("numericFilters", []))):
        return False
    for clause in filter(None, re.split(r"\s+AND\s+", str(params.get("filters", "")).strip())):
        if not any(_facet(record, t) for t in re.split(r"\s+OR\s+", clause.strip().strip("()"))):
            return False
    return True
