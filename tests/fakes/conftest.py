"""One local marketplace for the fakes' tests, reset before each test."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from fakes.marketplace import Marketplace


@pytest.fixture(scope="module")
def market_server() -> Iterator[Marketplace]:
    market = Marketplace(seed=3, per_source=40, slow_s=30.0).start()
    yield market
    market.stop()


@pytest.fixture
def market(market_server: Marketplace) -> Marketplace:
    market_server.reset()
    market_server.slow_s = 30.0
    return market_server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # the hosts are IP addresses: aiohttp's default jar refuses their cookies
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def json_ld(html: str) -> dict[str, Any]:
    """The page's JSON-LD block."""
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert match, "no JSON-LD in the page"
    return json.loads(match.group(1))
