"""The fake Vinted host: landing page (session cookie + CSRF), svc-catalogue JSON search, item pages."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from typing import Any

from aiohttp import web

from fakes.marketplace.data import FakeListing
from fakes.marketplace.host import MarketHost, dumps, e, page

NOT_FOUND_HTML = (
    '<main data-testid="item-not-found"><h1 class="web_ui__Text__text web_ui__Text__heading '
    "web_ui__Text__center\">The page doesn't exist</h1></main>"
)
LEGACY_404 = page("Vinted", "<h1>Page not found</h1><p>Sorry, we couldn't find this page.</p>")
FILTERS = {
    "attribute_ids[brand]": "brand_id",
    "attribute_ids[size]": "size_id",
    "attribute_ids[status]": "status_id",
    "attribute_ids[catalog]": "catalog_id",
}
ORDERS = {
    "price_low_to_high": (lambda item: item.price_cents, False),
    "price_high_to_low": (lambda item: item.price_cents, True),
    "newest_first": (lambda item: item.created_at, True),
}


def _token() -> str:
    """A JWT-shaped guest token (Vinted issues `access_token_web` to anonymous visitors too)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {"iss": "vinted-iam-service", "sub": "anon", "exp": int(time.time()) + 3600, "jti": secrets.token_hex(8)}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_urlsafe(32)}"


class VintedHost(MarketHost):
    """www.vinted.<tld> and its api host in one: `/`, `/svc-catalogue/items`, `/items/{id}-{slug}`."""

    def reset_state(self) -> None:
        super().reset_state()
        self.tokens: set[str] = set()

    def site_routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.landing, name="landing"),
            web.get("/svc-catalogue/items", self.catalogue, name="catalogue"),
            web.get("/api/v2/catalog/items", self.legacy, name="legacy_catalogue"),
            web.get("/api/v2/items/{id}", self.legacy, name="legacy_item"),
            web.get(r"/items/{id:\d+}{slug:(-[^/]*)?}", self.item_page, name="item"),
        ]

    def item_url(self, listing: FakeListing) -> str:
        """The listing's public page."""
        return f"{self.base_url}/items/{listing.id}-{listing.slug}"

    async def landing(self, request: web.Request) -> web.Response:
        """GET /: sets `access_token_web`, answers `X-Anon-Id`, embeds the CSRF token."""
        token = _token()
        with self.lock:
            self.tokens.add(token)
        config = dumps({"CSRF_TOKEN": str(uuid.uuid4()), "locale": "fr-FR"})
        body = (
            '<header><form action="/catalog"><input name="search_text" data-testid="search-text--input">'
            f"</form></header><main><h1>Vinted</h1></main><script>window.__APP_CONFIG__ = {config};</script>"
        )
        response = web.Response(
            text=page("Vinted", body, lang="fr"), content_type="text/html", headers={"X-Anon-Id": str(uuid.uuid4())}
        )
        response.set_cookie("access_token_web", token, httponly=True, samesite="Lax", path="/")
        return response

    async def legacy(self, request: web.Request) -> web.Response:
        """The retired endpoints: a generic HTML 404, whatever the session."""
        return web.Response(status=404, text=LEGACY_404, content_type="text/html")

    async def catalogue(self, request: web.Request) -> web.Response:
        """GET /svc-catalogue/items: the current JSON search (401 without the session cookie)."""
        with self.lock:
            authorised = request.cookies.get("access_token_web") in self.tokens
        if not authorised:
            return web.json_response(
                {
                    "code": 100,
                    "message": "Token d'authentification invalide",
                    "message_code": "invalid_authentication_token",
                },
                status=401,
            )
        empty = [key for key, value in request.query.items() if value == ""]
        if empty:
            return web.json_response(
                {"code": "INVALID_REQUEST", "message": f"Invalid parameter: {empty[0]}"}, status=400
            )
        try:
            page_no = max(1, int(request.query.get("page", "1")))
            per_page = min(96, max(1, int(request.query.get("per_page", "96"))))
            price_from = float(request.query.get("price_from", "0"))
            price_to = float(request.query.get("price_to", "1e12"))
        except ValueError:
            return web.json_response({"code": "INVALID_REQUEST", "message": "Invalid number"}, status=400)
        found = self.search(request.query, price_from, price_to)
        total = len(found)
        chosen = found[(page_no - 1) * per_page : page_no * per_page]
        items = [self.feed_item(listing) for listing in chosen]
        if page_no == 1 and self.market.promoted and items:
            extra = next((x for x in self.market.listings("vinted") if x.listed and x not in found), None)
            if extra is not None:  # a paid placement that ignores the query, as on the real site
                items.insert(0, self.feed_item(extra, promoted=True))
        pagination = {
            "current_page": page_no,
            "total_pages": max(1, -(-total // per_page)),
            "total_entries": total,
            "per_page": per_page,
            "time": int(time.time()),
        }
        return web.json_response(
            {
                "items": items,
                "pagination": pagination,
                "code": 0,
                "search_tracking_params": {"search_correlation_id": str(uuid.uuid4())},
            }
        )

    def search(self, query: Any, price_from: float, price_to: float) -> list[FakeListing]:
        """Live listings matching `search_text`, the `attribute_ids[...]` filters and the price range, ordered."""
        wanted = {
            attr: {int(v) for v in query[key].split(",") if v.isdigit()}
            for key, attr in FILTERS.items()
            if key in query
        }  # plain `brand_ids=` is silently ignored
        text = query.get("search_text", "")
        found = []
        for listing in self.market.listings("vinted"):
            values = {
                "brand_id": listing.brand_id,
                "size_id": listing.size_id,
                "status_id": listing.vinted_status_id(),
                "catalog_id": listing.catalog_id(),
            }
            if (
                listing.listed
                and listing.matches(text)
                and price_from <= listing.price_cents / 100 <= price_to
                and all(values[attr] in ids for attr, ids in wanted.items())
            ):
                found.append(listing)
        order = ORDERS.get(query.get("order", "relevance"))
        if order is not None:
            found.sort(key=order[0], reverse=order[1])
        return found

    def money(self, cents: int, currency: str) -> dict[str, str]:
        """Vinted's price object (amount is a string)."""
        return {"amount": f"{cents / 100:.1f}" if cents % 10 == 0 else f"{cents / 100:.2f}", "currency_code": currency}

    def photo(self, listing: FakeListing, name: str, index: int) -> dict[str, Any]:
        """Vinted's photo object."""
        url = self.image_url(name)
        return {
            "id": listing.id * 10 + index,
            "image_no": index + 1,
            "width": 480,
            "height": 640,
            "dominant_color": "#9A896A",
            "is_main": index == 0,
            "url": url,
            "full_size_url": url,
            "thumbnails": [{"type": "thumb310x430", "url": url, "width": 310, "height": 430, "original_size": None}],
            "high_resolution": {"id": name, "timestamp": listing.created_at, "orientation": None},
            "is_hidden": False,
            "extra": {},
        }

    def feed_item(self, listing: FakeListing, *, promoted: bool = False) -> dict[str, Any]:
        """One item in the svc-catalogue shape: no brand_title/size_title/status/path; brand in item_box."""
        fee = 70 + listing.price_cents * 5 // 100
        return {
            "id": listing.id,
            "title": listing.title,
            "price": self.money(listing.price_cents, listing.currency),
            "is_visible": True,
            "url": self.item_url(listing),
            "promoted": promoted,
            "content_source": "promoted_closets" if promoted else "search",
            "favourite_count": listing.id % 17,
            "view_count": 0,
            "service_fee": self.money(fee, listing.currency),
            "total_item_price": self.money(listing.price_cents + fee, listing.currency),
            "photo": self.photo(listing, listing.photos[0], 0),
            "user": {
                "id": 900_000 + listing.id % 9973,
                "login": f"seller{listing.id % 97}",
                "business": False,
                "profile_url": f"{self.base_url}/member/{900_000 + listing.id % 9973}",
            },
            "item_box": {
                "first_line": listing.brand,
                "second_line": f"{listing.size} · {listing.site_condition()}",
                "exposures": [],
                "item_id": listing.id,
                "accessibility_label": f"{listing.title}, brand: {listing.brand}, condition: "
                f"{listing.site_condition()}, size: {listing.size}",
            },
            "search_tracking_params": {"score": 10.0, "matched_queries": ["full_text_search"]},
        }

    async def item_page(self, request: web.Request) -> web.Response:
        """GET /items/{id}-{slug}: details; sold -> status badge + `"is_closed":true`; removed -> 404."""
        listing = self.market.find("vinted", int(request.match_info["id"]))
        if listing is None or listing.state == "removed":
            return web.Response(status=404, text=page("Vinted", NOT_FOUND_HTML, lang="fr"), content_type="text/html")
        gated = await self.gate(listing)
        if gated is not None:
            return gated
        sold = listing.state == "sold"
        return web.Response(text=self.render_item(listing, sold), content_type="text/html")

    def render_item(self, listing: FakeListing, sold: bool) -> str:
        """The item page HTML: OpenGraph, JSON-LD Product, embedded item JSON, data-testid'd details."""
        images = [self.image_url(name) for name in listing.photos]
        ld = {
            "@context": "https://schema.org",
            "@type": "Product",
            "name": listing.title,
            "image": images,
            "brand": {"@type": "Brand", "name": listing.brand},
            "description": listing.description,
            "offers": {
                "@type": "Offer",
                "price": listing.price_text(),
                "priceCurrency": listing.currency,
                "url": self.item_url(listing),
                "availability": f"https://schema.org/{'SoldOut' if sold else 'InStock'}",
            },
        }
        data = {
            "item": {
                "id": listing.id,
                "title": listing.title,
                "description": listing.description,
                "is_closed": sold,
                "item_closing_action": "sold" if sold else None,
                "is_reserved": False,
                "is_hidden": False,
                "status_id": listing.vinted_status_id(),
                "status": listing.site_condition(),
                "size_title": listing.size,
                "brand_dto": {"id": listing.brand_id, "title": listing.brand},
                "price": self.money(listing.price_cents, listing.currency),
                "photos": [self.photo(listing, n, i) for i, n in enumerate(listing.photos)],
            }
        }
        head = (
            f'<meta property="og:title" content="{e(listing.title)}">'
            f'<meta property="og:description" content="{e(listing.title)} - {e(listing.description)}">'
            f'<meta property="og:url" content="{e(self.item_url(listing))}">'
            f'<meta property="og:image" content="{e(images[0])}">'
            f'<script type="application/ld+json">{dumps(ld)}</script>'
        )
        status = (
            '<div data-testid="item-status--sold"><div data-testid="item-status--content">Sold</div></div>'
            if sold
            else ""
        )
        photos = "".join(
            f'<figure data-testid="item-photo-{i + 1}"><img src="{e(url)}" alt="{e(listing.title)}"></figure>'
            for i, url in enumerate(images)
        )
        details = "".join(
            f'<div data-testid="item-attributes-{key}"><dt>{label}</dt><dd>{e(value)}</dd></div>'
            for key, label, value in (
                ("brand", "Brand", listing.brand),
                ("size", "Size", listing.size),
                ("status", "Condition", listing.site_condition()),
            )
        )
        body = (
            f'<main data-testid="item-page" data-item-id="{listing.id}"><section>{photos}</section><aside>'
            f'<h1 data-testid="item-title">{e(listing.title)}</h1>{status}'
            f'<div data-testid="item-price" data-amount="{listing.price_text()}" '
            f'data-currency="{listing.currency}">{listing.price_text()} €</div>'
            f'<dl data-testid="item-details">{details}</dl>'
            f'<div data-testid="item-description" itemprop="description">{e(listing.description)}</div></aside>'
            f'</main><script type="application/json" id="item-data">{dumps(data)}</script>'
        )
        return page(f"{listing.title} | Vinted", body, head=head, lang="fr")
