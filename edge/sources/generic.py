"""Any storefront: product cards on its search page by CSS selectors, then JSON-LD `Product` on each product page.

Configured per source name in EDGE_SOURCES (see config.settings.GenericSource). Card fields
come first; the product page's JSON-LD fills what the card lacks and is authoritative for
price, currency and availability (sold). Products whose page answers 404 are dropped; sold
products the search page still shows are kept with `sold=True`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote_plus

from config.settings import GenericSource
from domain.listings import Listing, normalise_currency, price_to_cents
from edge.sources.base import absolute, check_answer, gather_all, goto, json_ld_products, product_fields

CURRENCY_IN_TEXT = re.compile(r"([€$£¥]|\b[A-Z]{3}\b)")
CARDS_JS = """([s]) => [...document.querySelectorAll(s.card)].map(card => {
  const one = sel => sel ? card.querySelector(sel) : null;
  const text = sel => { const el = one(sel); return el ? el.textContent.trim() : null; };
  const price = one(s.price);
  const link = one(s.link);
  return {
    href: link ? link.getAttribute('href') : null,
    title: text(s.title), brand: text(s.brand), size: text(s.size), condition: text(s.condition),
    price_text: price ? price.textContent.trim() : null,
    price_amount: price ? (price.getAttribute('data-amount') || price.getAttribute('content')) : null,
    price_currency: price ? price.getAttribute('data-currency') : null,
    images: s.image ? [...card.querySelectorAll(s.image)].map(i => i.getAttribute('src') || i.getAttribute('data-src'))
      .filter(Boolean) : [],
    sold: s.sold ? !!card.querySelector(s.sold) : false,
  };
})"""


def card_listing(source: str, config: GenericSource, card: dict[str, Any], page_url: str) -> Listing | None:
    """A Listing from one card's extracted fields (None when the card has no product link)."""
    url = absolute(page_url, card.get("href"))
    if not url:
        return None
    match = re.search(config.id_pattern, url)
    currency = card.get("price_currency") or _currency_in(card.get("price_text") or "") or config.currency
    return Listing(
        source=source,
        source_listing_id=match.group(1) if match else url,
        url=url,
        title=card.get("title") or "",
        brand=card.get("brand") or None,
        price_cents=price_to_cents(card.get("price_amount") or card.get("price_text")),
        currency=currency,
        size=card.get("size") or None,
        condition=card.get("condition") or None,
        image_urls=[u for u in (absolute(page_url, i) for i in card.get("images") or []) if u],
        sold=bool(card.get("sold")),
    )


def _currency_in(text: str) -> str | None:
    match = CURRENCY_IN_TEXT.search(text)
    if match is None:
        return None
    try:
        return normalise_currency(match.group(1))
    except ValueError:
        return None


def merge_product(listing: Listing, html: str) -> Listing:
    """The listing completed from the product page's JSON-LD (authoritative for price, currency, sold)."""
    products = json_ld_products(html)
    if not products:
        return listing
    fields = product_fields(products[0])
    update: dict[str, Any] = {
        key: fields[key] for key in ("title", "brand", "size", "condition") if fields[key] and not getattr(listing, key)
    }
    if fields["price"] is not None:
        update["price_cents"] = price_to_cents(fields["price"])
    if fields["currency"]:
        update["currency"] = fields["currency"]
    if fields["sold"] is not None:
        update["sold"] = fields["sold"]
    if fields["image_urls"]:
        update["image_urls"] = fields["image_urls"]
    return Listing.model_validate({**listing.model_dump(), **update})


async def _search_cards(
    browser: Any, context: Any, source: str, config: GenericSource, query: str, limit: int
) -> list[Listing]:
    url: str | None = config.base_url.rstrip("/") + config.search_path.format(query=quote_plus(query))
    found: dict[str, Listing] = {}
    while url and len(found) < limit:
        async with browser.page(context) as page:
            await goto(page, url, f"{source} search page")
            cards = await page.evaluate(
                CARDS_JS,
                [
                    {
                        "card": config.card_selector,
                        "link": config.link_selector,
                        "title": config.title_selector,
                        "brand": config.brand_selector,
                        "size": config.size_selector,
                        "condition": config.condition_selector,
                        "price": config.price_selector,
                        "image": config.image_selector,
                        "sold": config.sold_selector,
                    }
                ],
            )
            following = (
                await page.eval_on_selector(config.next_selector, "a => a.getAttribute('href')")
                if config.next_selector and await page.query_selector(config.next_selector)
                else None
            )
        for card in cards:
            listing = card_listing(source, config, card, url)
            if listing is not None and len(found) < limit:
                found.setdefault(listing.source_listing_id, listing)
        url = absolute(url, following) if following and cards else None
    return list(found.values())


async def _product(browser: Any, context: Any, source: str, listing: Listing) -> Listing | None:
    """The listing completed from its product page; None when the page answers 404 (gone).

    A page that times out keeps the card's data (details are best effort); an anti-bot
    answer raises SourceBlocked for the whole scrape.
    """
    from playwright.async_api import Error as PlaywrightError

    async with browser.page(context) as page:
        try:
            response = await page.goto(listing.url, wait_until="domcontentloaded")
        except PlaywrightError:
            return listing
        html = await page.content()
        if response is not None and response.status == 404:
            return None
        if response is not None:
            check_answer(response.status, html, await response.all_headers(), f"{source} product page")
    return merge_product(listing, html)


async def search(browser: Any, source: str, config: GenericSource, query: str, limit: int) -> list[Listing]:
    """Up to `limit` listings of storefront `source` for `query` (cards, then JSON-LD when configured)."""
    async with browser.context() as context:
        listings = await _search_cards(browser, context, source, config, query, limit)
        if not config.json_ld:
            return listings
        completed = await gather_all(_product(browser, context, source, item) for item in listings)
        return [item for item in completed if item is not None]
