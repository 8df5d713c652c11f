"""What every source adapter shares: its errors, anti-bot detection and small page helpers."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urljoin

from domain.listings import Listing

# Markers of anti-bot interstitials (Cloudflare, Datadome, Vinted's own rate-limit page). Not
# `challenge-platform` alone: Cloudflare injects that script into ordinary pages too.
CHALLENGE_MARKERS = (
    "<title>Just a moment...</title>",
    "Attention Required! | Cloudflare",
    "cf-chl-",
    "Verifying you are human",
    "You are rate limited",
    "captcha-delivery.com",
    "cf-browser-verification",
)

T = TypeVar("T")
Adapter = Callable[[Any, str, int], Awaitable[list[Listing]]]


class SourceBlocked(Exception):
    """The source answered with an anti-bot page (403/429/challenge): results unknown, never 'empty'."""

    def __init__(self, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class SourceFailed(Exception):
    """The source failed otherwise (5xx, timeout, an answer we cannot parse)."""


def blocked_reason(status: int, body: str) -> str | None:
    """Why an answer is an anti-bot page (`HTTP 403`, `challenge page`), or None when it is not."""
    if status in (403, 429):
        return f"HTTP {status}"
    head = body[:300_000]
    if any(marker in head for marker in CHALLENGE_MARKERS):
        return f"challenge page (HTTP {status})"
    return None


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds from a Retry-After header given in seconds (dates are ignored)."""
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def check_answer(status: int, body: str, headers: dict[str, str], where: str) -> None:
    """Raise SourceBlocked for anti-bot answers and SourceFailed for other failures of `where`."""
    reason = blocked_reason(status, body)
    if reason is not None:
        raise SourceBlocked(f"{where}: {reason}", retry_after(headers))
    if status >= 400:
        raise SourceFailed(f"{where}: HTTP {status}")


async def goto(page: Any, url: str, where: str) -> str:
    """Navigate `page` to `url`; return the HTML, raising SourceBlocked / SourceFailed on a bad answer."""
    from playwright.async_api import Error as PlaywrightError

    try:
        response = await page.goto(url, wait_until="domcontentloaded")
    except PlaywrightError as error:  # timeouts, refused connections
        raise SourceFailed(f"{where}: {type(error).__name__}: {str(error).splitlines()[0]}") from None
    html = await page.content()
    status = response.status if response is not None else 0
    check_answer(status, html, await response.all_headers() if response is not None else {}, where)
    return html


async def get_json(request: Any, url: str, where: str, **options: Any) -> Any:
    """GET/POST `url` with a Playwright APIRequestContext (the job's cookies); JSON or SourceBlocked/Failed.

    A 401 raises SourceBlocked with detail `... HTTP 401` for callers to re-bootstrap on.
    """
    from playwright.async_api import Error as PlaywrightError

    method = options.pop("method", "GET")
    try:
        response = await request.fetch(url, method=method, fail_on_status_code=False, **options)
        body = await response.text()
    except PlaywrightError as error:
        raise SourceFailed(f"{where}: {type(error).__name__}: {str(error).splitlines()[0]}") from None
    if response.status == 401:
        raise SourceBlocked(f"{where}: HTTP 401")
    check_answer(response.status, body, response.headers, where)
    try:
        return json.loads(body)
    except ValueError:
        raise SourceFailed(f"{where}: not JSON (HTTP {response.status})") from None


async def gather_all(coroutines: Iterable[Awaitable[T]]) -> list[T]:
    """Run `coroutines` together; when any failed, raise the first failure once all have finished."""
    results = await asyncio.gather(*coroutines, return_exceptions=True)
    done: list[T] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        done.append(result)
    return done


def absolute(base_url: str, href: str | None) -> str | None:
    """`href` made absolute against `base_url` (None stays None)."""
    return urljoin(base_url if base_url.endswith("/") else base_url + "/", href) if href else None


JSON_LD_SCRIPT = re.compile(r'<script[^>]+type=["\']application/ld\+json["\'][^>]*>(.*?)</script>', re.S | re.I)


def json_ld_products(html: str) -> list[dict[str, Any]]:
    """Every schema.org `Product` object in the page's JSON-LD blocks (including inside @graph / lists)."""
    found: list[dict[str, Any]] = []
    for block in JSON_LD_SCRIPT.findall(html):
        try:
            data = json.loads(block.strip())
        except ValueError:
            continue
        stack = [data]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict):
                kind = node.get("@type")
                if kind == "Product" or (isinstance(kind, list) and "Product" in kind):
                    found.append(node)
                stack.extend(v for k, v in node.items() if k == "@graph")
    return found


def product_fields(product: dict[str, Any]) -> dict[str, Any]:
    """Listing fields from a JSON-LD Product: title, brand, price, currency, sold, images, condition."""
    offers = product.get("offers") or {}
    offer = offers[0] if isinstance(offers, list) and offers else offers if isinstance(offers, dict) else {}
    brand = product.get("brand")
    images = product.get("image") or []
    availability = str(offer.get("availability") or "")
    condition = str(offer.get("itemCondition") or product.get("itemCondition") or "")
    return {
        "title": product.get("name"),
        "brand": brand.get("name") if isinstance(brand, dict) else brand,
        "price": offer.get("price"),
        "currency": offer.get("priceCurrency"),
        "sold": availability.rsplit("/", 1)[-1] in {"SoldOut", "OutOfStock", "Discontinued"} if availability else None,
        "image_urls": [images] if isinstance(images, str) else [i for i in images if isinstance(i, str)],
        "condition": condition.rsplit("/", 1)[-1] or None,
        "sku": product.get("sku") or product.get("productID"),
        "size": product.get("size") if isinstance(product.get("size"), str) else None,
    }
