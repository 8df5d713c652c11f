"""A local marketplace: fake Vinted, Grailed (+ its Algolia host) and a generic shop on 127.0.0.1.

Four hosts, each on its own port (politeness is per host), serving a deterministic seeded catalogue
(`seed`, `per_source` listings per site, brands Nike/Adidas/Carhartt/Levi's/Ralph Lauren/Patagonia/
Stone Island/Arc'teryx, clothing sizes XS-XL and EU shoe sizes, prices in EUR / USD / GBP).

Routes
- every host: `GET /images/{name}.jpg` real 480x640 JPEGs with EXIF (Make, Model, DateTime, GPS).
- vinted: `GET /` sets cookie `access_token_web`, header `X-Anon-Id`, HTML with `"CSRF_TOKEN":"<uuid>"`;
  `GET /svc-catalogue/items?search_text=&page=&per_page=&order=&price_from=&price_to=`
  `&attribute_ids[brand|size|status|catalog]=`
  -> `{"items": [...], "pagination": {current_page,total_pages,total_entries,per_page,time}, "code": 0}`
  (items lack brand_title/size_title/status/path: brand = item_box.first_line, "size · condition" =
  item_box.second_line; price `{"amount": "12.5", "currency_code": "EUR"}`); 401 `invalid_authentication_token`
  without a cookie minted by `/`; 400 INVALID_REQUEST for an empty parameter; plain `brand_ids=` is ignored;
  page 1 carries one extra `"promoted": true` item that ignores the query (unless `promoted=False`).
  `GET /api/v2/catalog/items` and `GET /api/v2/items/{id}` -> 404 HTML always.
  `GET /items/{id}-{slug}` (or `/items/{id}`): og: tags, JSON-LD Product (`offers.availability`), `data-testid`
  details (item-title, item-price[data-amount,data-currency], item-attributes-brand|size|status, item-photo-N),
  `<script id="item-data" type="application/json">{"item":{..."is_closed":false...}}`.
- grailed: `GET /shop` -> `window.PUBLIC_CONFIG = {"ALGOLIA_APP_ID","ALGOLIA_SEARCH_API_KEY","ALGOLIA_HOST",...}`;
  `GET /api/listings/{id}` -> `{"data": {id,title,price,sold,deleted,photos,designers,...}}`;
  `GET /listings/{id}[-slug]` HTML (`__NEXT_DATA__` JSON, `data-testid="listing-sold-badge"` when sold).
- algolia: `POST /1/indexes/*/queries` `{"requests":[{"indexName","params":"query=..&hitsPerPage=..&page=..&
  facetFilters=..&numericFilters=..&filters=.."}]}` and `POST /1/indexes/{index}/query`; app id + key from
  `X-Algolia-Application-Id`/`X-Algolia-API-Key` headers or `x-algolia-*` query params (403 when wrong);
  indices Listing_production, Listing_by_{date_added,low_price,high_price,heat}_production (live only) and
  Listing_sold_production, Listing_sold_by_{date,high_price}_production (sold only); unknown index 404; > 50
  queries 400; CORS open. Hits: id, objectID, title, price, price_i, size, condition, designers[{id,name,slug}],
  designer_names, category_path, cover_photo{url,...}, sold, sold_at_i, created_at_i, user{...}.
- shop: `GET /search?q=&page=` -> `li.product-card[data-product-id]` with `a.product-link`, `img.product-image`,
  `.product-title`, `.product-brand`, `.product-price[data-amount][data-currency]`, `.product-size`,
  `.product-condition`, sold ones `.is-sold` + `.sold-out`; `a.next` while more pages; `GET /products/{id}` HTML
  with JSON-LD Product (`offers.availability` https://schema.org/InStock | SoldOut).

Listing states (`set_state(source, id, state)`)
- available: listed and answered normally.
- sold: drops out of live searches (vinted, grailed active indices; the shop still lists it badged sold-out);
  vinted page has `data-testid="item-status--sold"` + `"is_closed":true`, JSON-LD SoldOut; grailed `"sold": true`
  and it appears in the sold indices; shop JSON-LD SoldOut.
- removed: gone from searches; vinted page 404 with `data-testid="item-not-found"`; grailed API 404
  `{"error": "Listing not found"}` and page 404; shop 404 "Product not found".
- blocked: that listing's pages/API answer the 403 challenge (searches still list it).
- slow: that listing's pages/API answer after `slow_s` seconds (searches still list it).

Host switches: `block(host)` -> every request gets 403 "Just a moment..." (`challenge-platform`, `cf-mitigated`);
`rate_limit(host, retry_after=)` -> 429 + Retry-After; `slow(host)` -> every answer waits `slow_s`.
`requests(host)` is the host's log of LoggedRequest(method, path, query, at=time.monotonic(), status).
Per-route faults from FakeServer work too: `market.vinted.fail_next("catalogue", 500)`.
"""

from __future__ import annotations

import json
import secrets
import string
import threading

from fakes.base import FakeRunner
from fakes.marketplace.data import SOURCES, STATES, FakeListing, make_jpeg, seed_listings
from fakes.marketplace.grailed import AlgoliaHost, GrailedHost
from fakes.marketplace.host import LoggedRequest, MarketHost
from fakes.marketplace.shop import ShopHost
from fakes.marketplace.vinted import VintedHost

__all__ = ["Marketplace", "FakeListing", "LoggedRequest", "STATES", "SOURCES", "HOSTS"]

HOSTS = ("vinted", "grailed", "algolia", "shop")


class Marketplace:
    """The four hosts, their shared seeded catalogue, and the switches tests and benches flip."""

    def __init__(
        self,
        *,
        seed: int = 1,
        per_source: int = 36,
        slow_s: float = 30.0,
        promoted: bool = True,
        algolia_app_id: str | None = None,
        algolia_api_key: str | None = None,
    ) -> None:
        self.seed = seed
        self.slow_s = slow_s
        self.promoted = promoted
        self.algolia_app_id = algolia_app_id or "".join(
            secrets.choice(string.ascii_uppercase + string.digits) for _ in range(10)
        )
        self.algolia_api_key = algolia_api_key or secrets.token_hex(16)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.catalogue = {source: seed_listings(source, per_source, seed) for source in SOURCES}
        self._by_id = {(x.source, x.id): x for listings in self.catalogue.values() for x in listings}
        self._images: dict[str, bytes] = {}
        self.vinted = VintedHost(self, "vinted")
        self.grailed = GrailedHost(self, "grailed")
        self.algolia = AlgoliaHost(self, "algolia")
        self.shop = ShopHost(self, "shop")
        self.runner: FakeRunner | None = None

    @property
    def hosts(self) -> dict[str, MarketHost]:
        """Every host by name."""
        return {"vinted": self.vinted, "grailed": self.grailed, "algolia": self.algolia, "shop": self.shop}

    vinted_url = property(lambda self: self.vinted.base_url, doc="Base URL of the fake Vinted.")
    grailed_url = property(lambda self: self.grailed.base_url, doc="Base URL of the fake Grailed.")
    algolia_url = property(lambda self: self.algolia.base_url, doc="Base URL of the fake Algolia host.")
    shop_url = property(lambda self: self.shop.base_url, doc="Base URL of the generic shop.")

    # --- lifecycle ---
    def start(self, ports: dict[str, int] | None = None) -> Marketplace:
        """Serve the four hosts on 127.0.0.1 (free ports unless `ports` names them by host)."""
        self.stopping.clear()
        self.runner = FakeRunner(*self.hosts.values(), ports=ports).start()
        return self

    def stop(self) -> None:
        """Stop serving (slow answers in flight are released first)."""
        self.stopping.set()
        if self.runner is not None:
            self.runner.stop()
            self.runner = None

    def reset(self) -> None:
        """Every listing available again; switches off; logs, sessions and queued faults forgotten."""
        with self.lock:
            for listing in self._by_id.values():
                listing.state = "available"
        for host in self.hosts.values():
            host.reset()

    # --- the catalogue ---
    def listings(self, source: str, state: str | None = None) -> list[FakeListing]:
        """The seeded listings of `source` (the live objects: change them through `set_state`)."""
        return [x for x in self.catalogue[source] if state is None or x.state == state]

    def find(self, source: str, listing_id: int) -> FakeListing | None:
        """One listing, or None."""
        return self._by_id.get((source, int(listing_id)))

    def set_state(self, source: str, listing_id: int, state: str) -> FakeListing:
        """Make a listing available | sold | removed | blocked | slow from now on."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, not {state!r}")
        listing = self.find(source, listing_id)
        if listing is None:
            raise KeyError(f"no {source} listing {listing_id}")
        with self.lock:
            listing.state = state
        return listing

    def url_of(self, listing: FakeListing) -> str:
        """The public page of a listing on its site."""
        if listing.source == "vinted":
            return self.vinted.item_url(listing)
        if listing.source == "grailed":
            return self.grailed.listing_url(listing)
        return self.shop.product_url(listing)

    def image_bytes(self, name: str) -> bytes | None:
        """The JPEG served as /images/{name}.jpg (None for an unknown name)."""
        source, _, rest = name.partition("-")
        listing = self.find(source, int(rest.split("-")[0])) if rest.split("-")[0].isdigit() else None
        if listing is None or name not in listing.photos:
            return None
        with self.lock:
            if name not in self._images:
                self._images[name] = make_jpeg(name, self.seed, listing.colour)
            return self._images[name]

    # --- switches ---
    def block(self, host: str, on: bool = True) -> None:
        """Every request to `host` gets the 403 challenge page while on."""
        self.hosts[host].blocked = on

    def rate_limit(self, host: str, on: bool = True, *, retry_after: float = 30.0) -> None:
        """Every request to `host` gets 429 with `Retry-After: retry_after` while on."""
        self.hosts[host].retry_after = retry_after
        self.hosts[host].rate_limited = on

    def slow(self, host: str, on: bool = True) -> None:
        """Every answer from `host` waits `slow_s` seconds while on."""
        self.hosts[host].slow = on

    def rotate_algolia_key(self) -> str:
        """A new search-only key (the old one gets 403; /shop serves the new one)."""
        self.algolia_api_key = secrets.token_hex(16)
        return self.algolia_api_key

    def requests(self, host: str) -> list[LoggedRequest]:
        """What `host` received so far, oldest first."""
        with self.hosts[host].lock:
            return list(self.hosts[host].log)

    def clear_requests(self) -> None:
        """Forget every host's request log."""
        for host in self.hosts.values():
            with host.lock:
                host.log = []

    def env(self) -> dict[str, str]:
        """Settings that point Backroom's sources (config/settings.py) at this marketplace."""
        shop = {
            "base_url": self.shop_url,
            "search_path": "/search?q={query}",
            "card_selector": "li.product-card",
            "link_selector": "a.product-link",
            "title_selector": ".product-title",
            "price_selector": ".product-price",
            "brand_selector": ".product-brand",
            "size_selector": ".product-size",
            "condition_selector": ".product-condition",
            "image_selector": "img.product-image",
            "currency": "GBP",
            "json_ld": True,
        }
        return {
            "VINTED_BASE_URL": self.vinted_url,
            "VINTED_API_BASE_URL": self.vinted_url,
            "GRAILED_BASE_URL": self.grailed_url,
            "GRAILED_ALGOLIA_URL": self.algolia_url,
            "GRAILED_ALGOLIA_INDEX": "Listing_production",
            "EDGE_SOURCES": json.dumps({"shop": shop}),
        }
