"""Source adapters (one module each) and the registry that builds them from the edge settings.

`vinted` and `grailed` are built in; every name in EDGE_SOURCES is a generic storefront.
`scrape()` turns an adapter's run into a ScrapeOutcome: anti-bot answers are `blocked`
(never an empty `ok`), other failures `error`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from dramatiq import Retry

from config.settings import EdgeSettings
from domain.listings import ScrapeOutcome
from edge.sources import generic, grailed, vinted
from edge.sources.base import Adapter, SourceBlocked, SourceFailed

log = logging.getLogger("backroom.edge.sources")
BUILT_IN = ("vinted", "grailed")
SOURCES = BUILT_IN  # what every node can scrape; EDGE_SOURCES adds generic storefronts (source_names)
LIMIT_MAX = 500


class InvalidScrape(ValueError):
    """A scrape that can never succeed as asked (unknown source, limit out of range): not retried."""


class ScrapeBlocked(Retry):
    """The source answered with an anti-bot page: retried later (after its Retry-After when it gave one)."""

    status = "blocked"


class ScrapeFailed(Exception):
    """The source failed otherwise (5xx, timeout, an answer we cannot parse): retried with backoff."""

    status = "error"


def source_names(settings: EdgeSettings) -> list[str]:
    """Every source this node can scrape: the built-ins plus EDGE_SOURCES' storefronts."""
    return sorted({*BUILT_IN, *settings.edge_sources})


def adapters(settings: EdgeSettings) -> dict[str, Adapter]:
    """Source name -> `async (browser, query, limit) -> list[Listing]`, from the edge settings."""
    table: dict[str, Adapter] = {
        "vinted": functools.partial(
            _vinted,
            vinted.VintedConfig(
                settings.vinted_base_url, settings.vinted_api_base_url or None, settings.vinted_item_details
            ),
        ),
        "grailed": functools.partial(
            _grailed,
            grailed.GrailedConfig(
                settings.grailed_base_url, settings.grailed_algolia_url or None, settings.grailed_algolia_index
            ),
        ),
    }
    for name, config in settings.edge_sources.items():
        if name in BUILT_IN:
            raise ValueError(f"EDGE_SOURCES may not redefine the built-in source {name!r}")
        table[name] = functools.partial(_generic, name, config)
    return table


async def _vinted(config: vinted.VintedConfig, browser: Any, query: str, limit: int) -> list:
    return await vinted.search(browser, config, query, limit)


async def _grailed(config: grailed.GrailedConfig, browser: Any, query: str, limit: int) -> list:
    return await grailed.search(browser, config, query, limit)


async def _generic(name: str, config: Any, browser: Any, query: str, limit: int) -> list:
    return await generic.search(browser, name, config, query, limit)


async def scrape(browser: Any, settings: EdgeSettings, source: str, query: str, limit: int) -> ScrapeOutcome:
    """Run `source`'s adapter; `ok` with listings, `blocked` on anti-bot answers, `error` otherwise."""
    table = adapters(settings)
    if source not in table:
        raise InvalidScrape(f"no source adapter named {source!r} (known: {', '.join(sorted(table))})")
    if not 1 <= limit <= LIMIT_MAX:
        raise InvalidScrape(f"limit must be 1..{LIMIT_MAX}, not {limit}")
    try:
        listings = await table[source](browser, query, limit)
    except SourceBlocked as blocked:
        detail = str(blocked) + (f" (retry after {blocked.retry_after_s:g}s)" if blocked.retry_after_s else "")
        return ScrapeOutcome(status="blocked", detail=detail, retry_after_s=blocked.retry_after_s)
    except SourceFailed as failed:
        return ScrapeOutcome(status="error", detail=str(failed))
    return ScrapeOutcome(status="ok", listings=listings, detail=f"{len(listings)} listings")


def raise_for_outcome(source: str, outcome: ScrapeOutcome) -> None:
    """Raise ScrapeBlocked / ScrapeFailed (naming the outcome) unless the outcome is `ok`."""
    if outcome.status == "blocked":
        log.warning("scrape blocked", extra={"source": source, "detail": outcome.detail})
        delay = int(min(outcome.retry_after_s, 3600) * 1000) if outcome.retry_after_s else None  # else backoff
        raise ScrapeBlocked(f"blocked: {source}: {outcome.detail}", delay=delay)
    if outcome.status == "error":
        raise ScrapeFailed(f"error: {source}: {outcome.detail}")
