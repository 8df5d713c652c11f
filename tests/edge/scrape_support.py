"""Fixtures for the scraping tests: the local marketplace, edge settings pointing at it, a real Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import pytest_asyncio

from config.settings import EdgeSettings
from domain.listings import ScrapeOutcome
from edge.browser import Browser
from edge.sources import scrape
from fakes.marketplace import Marketplace
from fakes.marketplace.data import FakeListing

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def market_server() -> Iterator[Marketplace]:
    """One marketplace per module (a random Algolia key each run)."""
    market = Marketplace(seed=11, per_source=40, slow_s=30.0).start()
    yield market
    market.stop()


@pytest.fixture
def market(market_server: Marketplace) -> Marketplace:
    """The marketplace, every listing available and every switch off."""
    market_server.reset()
    return market_server


def settings_for(market: Marketplace, monkeypatch: pytest.MonkeyPatch, **env: str) -> EdgeSettings:
    """Edge settings read from the environment the marketplace asks for (plus `env`)."""
    for name, value in {**market.env(), **env}.items():
        monkeypatch.setenv(name, value)
    return EdgeSettings()


@pytest.fixture
def settings(market: Marketplace, monkeypatch: pytest.MonkeyPatch) -> EdgeSettings:
    """Edge settings pointing every source at the marketplace."""
    return settings_for(market, monkeypatch)


class CountingBrowser(Browser):
    """A real Browser that also records the most pages it ever had open at once."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.open_pages = 0
        self.most_pages = 0

    @asynccontextmanager
    async def page(self, context: Any) -> AsyncIterator[Any]:
        async with super().page(context) as page:
            self.open_pages += 1
            self.most_pages = max(self.most_pages, self.open_pages)
            try:
                yield page
            finally:
                self.open_pages -= 1


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[CountingBrowser]:
    """One real Chromium for the module (2 pages in flight), closed at the end."""
    shared = CountingBrowser(CHROMIUM, 2, 10_000)
    yield shared
    await shared.close()


async def run(browser: Browser, settings: EdgeSettings, source: str, query: str, limit: int = 20) -> ScrapeOutcome:
    """One scrape through the registry, as the actor runs it."""
    return await scrape(browser, settings, source, query, limit)


def expected(market: Marketplace, source: str, text: str = "", **attrs: Any) -> set[str]:
    """Ids of the live listings of `source` matching `text` and attribute values (sets allowed)."""
    found = set()
    for listing in market.listings(source):
        values = {
            "brand_id": listing.brand_id,
            "size_id": listing.size_id,
            "garment": listing.garment,
            "status_id": listing.vinted_status_id(),
            "brand": listing.brand,
        }
        if (
            listing.listed
            and listing.matches(text)
            and all(values[k] in (v if isinstance(v, (set, frozenset)) else {v}) for k, v in attrs.items())
        ):
            found.add(str(listing.id))
    return found


def paths(market: Marketplace, host: str) -> list[str]:
    """The paths `host` was asked for, oldest first."""
    return [request.path for request in market.requests(host)]


def fake(market: Marketplace, source: str, listing_id: str) -> FakeListing:
    """The marketplace's own record of a listing."""
    found = market.find(source, int(listing_id))
    assert found is not None
    return found
