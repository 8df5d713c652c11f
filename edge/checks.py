"""Listing checks on the edge: a source that blocks datacenter IPs is opened in a real browser from here.

The server paces and sends the checks (its per-host limiter holds the slot until the answer
comes back); this side opens the page in a fresh context, judges what it shows with the
shared pure rules, and delivers the evidence (never the page) to `record_listing_check`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from domain import contracts
from domain.listing_checks import Evidence, judge
from edge.deliver import deliver


@dataclass(frozen=True)
class PageSeen:
    """What the browser got: the main document's status, the final URL and the rendered page, or an error."""

    http_status: int | None
    final_url: str | None
    body: str | None
    error: str | None
    elapsed_ms: int


async def open_listing(browser: Any, url: str) -> PageSeen:
    """Open `url` in a fresh context; a timeout or a network error is an error, not an exception."""
    from playwright.async_api import Error as PlaywrightError, TimeoutError as PlaywrightTimeout

    started = time.monotonic()
    async with browser.context() as context, browser.page(context) as page:
        try:
            response = await page.goto(url, wait_until="domcontentloaded")
            body = await page.content()
        except PlaywrightTimeout:
            return PageSeen(None, None, None, f"timeout after {browser.timeout_ms / 1000:g} s", _since(started))
        except PlaywrightError as error:  # the message carries the URL: name the kind only
            return PageSeen(None, None, None, f"no answer ({_kind(error)})", _since(started))
        return PageSeen(response.status if response else None, page.url, body, None, _since(started))


async def check_on_edge(browser: Any, item_id: int, source: str, url: str) -> dict[str, Any]:
    """Open the listing, decide from what it shows, deliver the evidence to the server; returns the summary."""
    seen = await open_listing(browser, url)
    decision = judge(Evidence(source, url, seen.http_status, seen.final_url, seen.body, seen.error))
    check_id = f"edge:{uuid.uuid4()}"
    evidence = {
        "check_id": check_id,
        "source": source,
        "http_status": seen.http_status,
        "final_url": seen.final_url,
        "markers": list(decision.markers),
        "error": seen.error,
        "reason": decision.reason,
        "elapsed_ms": seen.elapsed_ms,
    }
    await asyncio.to_thread(
        deliver,
        contracts.RECORD_LISTING_CHECK,
        {"item_id": item_id, "outcome": decision.outcome, "evidence": evidence},
        delivery_id=check_id,
    )
    return {
        "item_id": item_id,
        "outcome": decision.outcome,
        "http_status": seen.http_status,
        "markers": list(decision.markers),
    }


def _kind(error: Exception) -> str:
    first = str(error).split(" at ", 1)[0].split(":", 1)[0]
    return first[:60] or type(error).__name__


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
