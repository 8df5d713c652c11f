"""Listing validation and the edge/server contract constants."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain import contracts
from domain.listings import Listing, ScrapeOutcome, parse_search_query, price_to_cents


def _listing(**overrides: object) -> Listing:
    fields = {"source": "vinted", "source_listing_id": "1", "url": "https://x/items/1", "title": "Jacket"}
    return Listing(**{**fields, **overrides})


@pytest.mark.parametrize(
    ("raw", "expected"), [("eur", "EUR"), (" gbp ", "GBP"), ("€", "EUR"), ("$", "USD"), ("", None), (None, None)]
)
def test_currency_is_normalised(raw: str | None, expected: str | None) -> None:
    assert _listing(currency=raw).currency == expected


@pytest.mark.parametrize("raw", ["euro", "E1R", "12"])
def test_unknown_currency_is_rejected(raw: str) -> None:
    with pytest.raises(ValidationError):
        _listing(currency=raw)


def test_negative_price_is_rejected() -> None:
    with pytest.raises(ValidationError, match="negative"):
        _listing(price_cents=-1)
    assert _listing(price_cents=0).price_cents == 0


def test_integer_ids_become_text_and_defaults_are_fresh() -> None:
    one, two = _listing(source_listing_id=42), _listing()
    one.image_urls.append("a")
    assert one.source_listing_id == "42" and two.image_urls == [] and two.sold is False


@pytest.mark.parametrize(
    ("raw", "cents"),
    [
        ("12.50", 1250),
        (12.5, 1250),
        (12, 1200),
        ("1,299.00", 129900),
        ("12,50", 1250),
        ("€ 7", 700),
        ("1.299,95", 129995),
        (None, None),
    ],
)
def test_price_to_cents(raw: object, cents: int | None) -> None:
    assert price_to_cents(raw) == cents


def test_outcome_status_is_checked() -> None:
    assert ScrapeOutcome(status="blocked", detail="403").listings == []
    with pytest.raises(ValidationError):
        ScrapeOutcome(status="empty")


def test_contract_queues() -> None:
    assert contracts.queue_of(contracts.INGEST_LISTINGS) == "ingest"
    assert contracts.queue_of(contracts.RECORD_LISTING_CHECK) == "ingest"
    assert contracts.queue_of(contracts.SCRAPE_SOURCE) == "edge"
    assert contracts.queue_of(contracts.CHECK_LISTING_ON_EDGE) == "edge"
    assert contracts.EDGE_ACTORS == {"scrape_source", "check_listing_on_edge"}
    with pytest.raises(TypeError):
        contracts.QUEUES["x"] = "y"  # type: ignore[index]


@pytest.mark.parametrize(
    ("query", "text", "filters"),
    [
        ("levis jacket", "levis jacket", {}),
        ("jacket brand:53 size:207,208", "jacket", {"brand": ["53"], "size": ["207", "208"]}),
        ("brand:1 brand:2 denim", "denim", {"brand": ["1", "2"]}),
        ("http://x.y/z  sale", "http://x.y/z sale", {}),
        ("status:", "status:", {}),
    ],
)
def test_parse_search_query(query: str, text: str, filters: dict[str, list[str]]) -> None:
    parsed = parse_search_query(query)
    assert (parsed.text, parsed.filters) == (text, filters)
