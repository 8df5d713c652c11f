"""Edge results as they cross the trust boundary: signed per node, bounded in size, validated before forwarding.

An edge node delivers every result as one envelope (`EdgeDelivery`) to the edge gateway's
`results` queue. The envelope names the node and the server actor it is for, and carries
an HMAC-SHA256 of its content under the node's signing key (derived from the node's Redis
password, which the server saw when it issued the credential). The gateway checks the
signature, validates the payload against the bounded model of that actor, and forwards
only what validated. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from domain.contracts import INGEST_LISTINGS, RECORD_LISTING_CHECK

MAX_LISTINGS = 500  # per delivery (a scrape's limit is at most 200)
MAX_IMAGES = 40  # image URLs per listing
MAX_TEXT = 2_000  # characters of any text field
MAX_URL = 2_048
MAX_ATTRIBUTES_JSON = 8_000  # characters of a listing's attributes (or a check's evidence) as JSON
Text = Field(None, max_length=MAX_TEXT)


def signing_key(password: str) -> str:
    """A node's delivery signing key (hex), derived from its Redis password (never the password itself)."""
    return hashlib.sha256(f"backroom-edge-signing:{password}".encode()).hexdigest()


def _signed_text(node_id: str, actor: str, delivery_id: str, payload: dict[str, Any]) -> bytes:
    return json.dumps(
        [node_id, actor, delivery_id, payload], sort_keys=True, separators=(",", ":"), default=str
    ).encode()


def sign(key: str, node_id: str, actor: str, delivery_id: str, payload: dict[str, Any]) -> str:
    """The HMAC-SHA256 (hex) of one delivery under the node's signing key."""
    return hmac.new(bytes.fromhex(key), _signed_text(node_id, actor, delivery_id, payload), hashlib.sha256).hexdigest()


def signature_valid(key: str, delivery: EdgeDelivery) -> bool:
    """True when `delivery` was signed with `key` (constant-time comparison)."""
    expected = sign(key, delivery.node_id, delivery.actor, delivery.delivery_id, delivery.payload)
    return hmac.compare_digest(expected, delivery.signature)


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value, default=str)) > MAX_ATTRIBUTES_JSON:
        raise ValueError(f"at most {MAX_ATTRIBUTES_JSON} characters as JSON")
    return value


class EdgeDelivery(BaseModel):
    """The envelope an edge node sends to the gateway (the arguments of `accept_edge_result`)."""

    model_config = ConfigDict(extra="forbid")

    node_id: str = Field(min_length=1, max_length=63)
    actor: str = Field(min_length=1, max_length=64)
    delivery_id: str = Field(min_length=1, max_length=200)
    payload: dict[str, JsonValue]
    signature: str = Field(min_length=64, max_length=64)


class BoundedListing(BaseModel):
    """One listing's fields with their size bounds (ingest_listings judges the content)."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(None, max_length=40)
    source_listing_id: str | int | None = Field(None, max_length=200)
    url: str | None = Field(None, max_length=MAX_URL)
    title: str | None = Text
    brand: str | None = Field(None, max_length=200)
    price_cents: int | None = Field(None, ge=-(2**53), le=2**53)
    currency: str | None = Field(None, max_length=10)
    size: str | None = Field(None, max_length=200)
    condition: str | None = Field(None, max_length=200)
    image_urls: list[str] = Field(default_factory=list, max_length=MAX_IMAGES)
    sold: bool = False
    attributes: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("image_urls")
    @classmethod
    def _urls_bounded(cls, value: list[str]) -> list[str]:
        if any(len(url) > MAX_URL for url in value):
            raise ValueError(f"an image URL is longer than {MAX_URL} characters")
        return value

    @field_validator("attributes")
    @classmethod
    def _attributes_bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _bounded_json(value)


class IngestListingsPayload(BaseModel):
    """What an edge node may send to ingest_listings."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=40)
    listings: list[BoundedListing] = Field(max_length=MAX_LISTINGS)
    delivery_id: str = Field(min_length=1, max_length=200)


class ListingCheckPayload(BaseModel):
    """What an edge node may send to record_listing_check."""

    model_config = ConfigDict(extra="forbid")

    item_id: int = Field(ge=1, le=2**63 - 1)
    outcome: str = Field(min_length=1, max_length=32)
    evidence: dict[str, JsonValue]

    @field_validator("evidence")
    @classmethod
    def _evidence_bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _bounded_json(value)


PAYLOADS: dict[str, type[BaseModel]] = {
    INGEST_LISTINGS: IngestListingsPayload,
    RECORD_LISTING_CHECK: ListingCheckPayload,
}


def forwarded_kwargs(delivery: EdgeDelivery) -> dict[str, Any]:
    """The kwargs for the server actor, as validated (raises KeyError for an actor edge nodes may not reach,
    pydantic's ValidationError for a payload out of bounds)."""
    model = PAYLOADS[delivery.actor].model_validate(delivery.payload)
    return model.model_dump(mode="json", exclude_unset=True)
