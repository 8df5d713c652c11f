"""Vinted: a real page session, then `/svc-catalogue/items` with `attribute_ids[...]`; item pages for details.

The legacy `/api/v2/catalog/items` answers 404 since September 2026 and is never called.
Search results (the svc-catalogue shape) lack brand_title/size_title/status: the brand is
`item_box.first_line` and `item_box.second_line` is "size · condition". Item pages are
opened (EDGE_PAGES_IN_FLIGHT at a time) when fields are missing or VINTED_ITEM_DETAILS is on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from domain.listings import Listing, parse_search_query, price_to_cents
from edge.sources.base import (
    SourceBlocked,
    absolute,
    check_answer,
    gather_all,
    get_json,
    goto,
    json_ld_products,
    product_fields,
)

CATALOGUE_PATH = "/svc-catalogue/items"
# query filter name -> attribute_ids[...] key (plain brand_ids= is silently ignored by svc-catalogue)
ATTRIBUTES = ("brand", "size", "status", "catalog", "color", "material")
PLAIN = ("price_from", "price_to", "currency", "order")
PER_PAGE_MAX = 96
CSRF = re.compile(r'CSRF_TOKEN\\?"\s*:\s*\\?"([0-9a-fA-F-]{16,})')
ITEM_DATA = re.compile(r'<script[^>]+id="item-data"[^>]*>(.*?)</script>', re.S)
CLOSED = re.compile(r'\\?"is_closed\\?"\s*:\s*true')


@dataclass(frozen=True)
class VintedConfig:
    """Where Vinted lives: the site (session) and the catalogue API host."""

    base_url: str
    api_base_url: str | None = None
    item_details: bool = False

    @property
    def api(self) -> str:
        """The API base: configured, else `api.` + the site host without `www.` (vinted-scraper 5.1)."""
        if self.api_base_url:
            return self.api_base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        host = parts.netloc.removeprefix("www.")
        return f"{parts.scheme}://api.{host}"


def catalogue_params(text: str, filters: dict[str, list[str]], page: int, per_page: int) -> str:
    """The svc-catalogue query string; only parameters with values (empty ones answer 400)."""
    params: list[tuple[str, str]] = [("search_text", text)] if text else []
    params += [("page", str(page)), ("per_page", str(per_page))]
    for name in ATTRIBUTES:
        if filters.get(name):
            params.append((f"attribute_ids[{name}]", ",".join(filters[name])))
    params += [(name, filters[name][0]) for name in PLAIN if filters.get(name)]
    return urlencode(params)


def parse_item(item: dict[str, Any], base_url: str) -> Listing | None:
    """A Listing from a catalogue item (old or svc-catalogue shape); None for promoted placements."""
    if item.get("promoted") or "promoted" in str(item.get("content_source") or ""):
        return None
    price = item.get("price")
    amount, currency = (
        (price.get("amount"), price.get("currency_code")) if isinstance(price, dict) else (price, item.get("currency"))
    )
    box = item.get("item_box") or {}
    size, condition = item.get("size_title") or None, item.get("status") or None
    parts = [p.strip() for p in str(box.get("second_line") or "").split("·")]
    if len(parts) == 2:
        size, condition = size or parts[0] or None, condition or parts[1] or None
    photo = item.get("photo") or {}
    image = photo.get("full_size_url") or photo.get("url")
    return Listing(
        source="vinted",
        source_listing_id=str(item["id"]),
        title=str(item.get("title") or ""),
        url=absolute(base_url, item.get("url") or item.get("path") or f"/items/{item['id']}") or "",
        brand=item.get("brand_title") or box.get("first_line") or None,
        price_cents=price_to_cents(amount),
        currency=currency,
        size=size,
        condition=condition,
        image_urls=[image] if image else [],
        attributes={k: item[k] for k in ("favourite_count",) if k in item},
    )


def needs_details(listing: Listing) -> bool:
    """True when the catalogue left brand, size, condition, price or photos unknown."""
    return not (
        listing.brand and listing.size and listing.condition and listing.price_cents is not None and listing.image_urls
    )


def merge_item_page(listing: Listing, html: str) -> Listing:
    """The listing completed from its item page: JSON-LD Product, embedded item JSON, sold markers."""
    update: dict[str, Any] = {}
    for product in json_ld_products(html)[:1]:
        fields = product_fields(product)
        update.update({k: fields[k] for k in ("brand", "currency") if fields[k]})
        if fields["price"] is not None:
            update["price_cents"] = price_to_cents(fields["price"])
        if fields["image_urls"]:
            update["image_urls"] = fields["image_urls"]
        update["sold"] = bool(fields["sold"])
    match = ITEM_DATA.search(html)
    item = (json.loads(match.group(1)).get("item") or {}) if match else {}
    if item:
        update["size"] = item.get("size_title") or listing.size
        update["condition"] = item.get("status") or listing.condition
        update["attributes"] = {**listing.attributes, "description": item.get("description")}
    update["sold"] = bool(update.get("sold")) or bool(CLOSED.search(html)) or 'data-testid="item-status--sold"' in html
    return listing.model_copy(update=update)


async def _bootstrap(browser: Any, context: Any, base_url: str) -> dict[str, str]:
    """Visit the home page in a real page (sets `access_token_web`); the API headers for this session."""
    async with browser.page(context) as page:
        html = await goto(page, base_url.rstrip("/") + "/", "vinted home page")
    headers = {
        "Accept": "application/json, text/plain, */*",
        "Platform": "web",
        "X-Next-App": "marketplace-web",
        "Origin": base_url.rstrip("/"),
        "Referer": base_url.rstrip("/") + "/",
    }
    csrf = CSRF.search(html)
    if csrf:
        headers["X-Csrf-Token"] = csrf.group(1)
    return headers


async def _search_pages(browser: Any, context: Any, config: VintedConfig, query: str, limit: int) -> list[Listing]:
    parsed = parse_search_query(query)
    headers = await _bootstrap(browser, context, config.base_url)
    found: dict[str, Listing] = {}
    page_no, reboots = 1, 0
    while len(found) < limit:
        url = f"{config.api}{CATALOGUE_PATH}?" + catalogue_params(
            parsed.text, parsed.filters, page_no, min(PER_PAGE_MAX, max(limit, 20))
        )
        try:
            body = await get_json(context.request, url, "vinted catalogue", headers=headers)
        except SourceBlocked as blocked:
            if str(blocked).endswith("HTTP 401") and reboots == 0:  # token expired: one fresh session
                reboots += 1
                headers = await _bootstrap(browser, context, config.base_url)
                continue
            raise
        items = body.get("items") or body.get("catalogItems") or (body.get("data") or {}).get("items") or []
        for item in items:
            listing = parse_item(item, config.base_url)
            if listing is not None and len(found) < limit:
                found.setdefault(listing.source_listing_id, listing)
        pagination = body.get("pagination") or {}
        if not items or page_no >= int(pagination.get("total_pages") or page_no):
            break
        page_no += 1
    return list(found.values())


async def _details(browser: Any, context: Any, listing: Listing) -> Listing | None:
    """The listing completed from its item page; None when the page says it is gone (404)."""
    from playwright.async_api import Error as PlaywrightError

    async with browser.page(context) as page:
        try:
            response = await page.goto(listing.url, wait_until="domcontentloaded")
        except PlaywrightError:
            return listing  # details are best effort; the catalogue data stands
        html = await page.content()
        if response is not None and response.status == 404:
            return None
        if response is not None:
            check_answer(response.status, html, await response.all_headers(), "vinted item page")
    return merge_item_page(listing, html)


async def search(browser: Any, config: VintedConfig, query: str, limit: int) -> list[Listing]:
    """Up to `limit` Vinted listings for `query` (`text brand:53 size:207 status:2 catalog:2052 order:...`)."""
    async with browser.context() as context:
        listings = await _search_pages(browser, context, config, query, limit)
        wanted = [item for item in listings if config.item_details or needs_details(item)]
        if wanted:
            completed = await gather_all(_details(browser, context, item) for item in wanted)
            by_id = {item.source_listing_id: done for item, done in zip(wanted, completed)}
            kept = [by_id.get(item.source_listing_id, item) for item in listings]
            listings = [item for item in kept if item is not None]
        return listings
