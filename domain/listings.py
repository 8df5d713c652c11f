"""Listings found on a marketplace by an edge worker, and the outcome of one scrape."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

_CURRENCY = re.compile(r"^[A-Z]{3}$")
# symbols marketplaces print instead of ISO 4217 codes
_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "CHF": "CHF", "ZŁ": "PLN", "KČ": "CZK"}


class Listing(BaseModel):
    """One marketplace listing as an edge adapter sees it (prices in minor units)."""

    source: str = Field(min_length=1)
    source_listing_id: str = Field(min_length=1)
    url: str = Field(min_length=1)
    title: str
    brand: str | None = None
    price_cents: int | None = None
    currency: str | None = Field(None, description="ISO 4217, upper case.")
    size: str | None = None
    condition: str | None = None
    image_urls: list[str] = Field(default_factory=list)
    sold: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("source_listing_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @field_validator("currency", mode="before")
    @classmethod
    def _normalise_currency(cls, value: object) -> object:
        return normalise_currency(value) if isinstance(value, str) else value

    @field_validator("price_cents")
    @classmethod
    def _not_negative(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("price_cents must not be negative")
        return value


def normalise_currency(value: str) -> str | None:
    """An ISO 4217 code from `eur`, ` EUR `, `€` and the like; empty means unknown (None)."""
    text = value.strip().upper()
    if not text:
        return None
    text = _SYMBOLS.get(text, text)
    if not _CURRENCY.match(text):
        raise ValueError(f"not an ISO 4217 currency: {value!r}")
    return text


def price_to_cents(amount: object) -> int | None:
    """Minor units from a marketplace amount (`"12.50"`, `12.5`, `"1,299.00"`, `"12,50"`); None when absent."""
    if amount is None or amount == "":
        return None
    if isinstance(amount, bool):
        raise ValueError("a price is not a boolean")
    if isinstance(amount, int):
        return amount * 100
    if isinstance(amount, float):
        return round(amount * 100)
    text = re.sub(r"[^\d.,-]", "", str(amount))
    if "," in text and "." in text:
        text = text.replace(",", "") if text.rfind(".") > text.rfind(",") else text.replace(".", "").replace(",", ".")
    elif "," in text:
        head, _, tail = text.rpartition(",")
        text = f"{head.replace(',', '')}.{tail}" if len(tail) != 3 else text.replace(",", "")
    if not text or text in {"-", "."}:
        return None
    return round(float(text) * 100)


_FILTER = re.compile(r"^([a-z_]+):([\w.,-]+)$")


class SearchQuery(BaseModel):
    """A scrape query: free text plus `name:value[,value]` filters (`jacket brand:53 size:207,208`)."""

    text: str
    filters: dict[str, list[str]] = Field(default_factory=dict)


def parse_search_query(query: str) -> SearchQuery:
    """Split `query` into free text and `name:v1,v2` filter tokens (repeated names accumulate)."""
    words: list[str] = []
    filters: dict[str, list[str]] = {}
    for token in query.split():
        match = _FILTER.match(token)
        if match is None:
            words.append(token)
            continue
        values = [v for v in match.group(2).split(",") if v]
        filters.setdefault(match.group(1), []).extend(values)
    return SearchQuery(text=" ".join(words), filters={k: v for k, v in filters.items() if v})


class ScrapeOutcome(BaseModel):
    """What one scrape produced: `ok` with listings, `blocked` by anti-bot, or `error`."""

    status: Literal["ok", "blocked", "error"]
    listings: list[Listing] = Field(default_factory=list)
    detail: str = ""
    retry_after_s: float | None = Field(None, ge=0, description="The source's Retry-After, when it gave one.")
