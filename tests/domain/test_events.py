"""Storefront events' pure rules: which addresses deliveries may reach, backoff, secrets, the catalogue's items."""

from __future__ import annotations

from datetime import datetime, UTC

import pytest

from domain.catalog import ProductChanged, catalog_items, image_hash, text_hash
from domain.events import (
    StorefrontEvent,
    address_allowed,
    event_body,
    new_secret,
    retry_delay_ms,
    secret_valid,
    should_disable,
)


@pytest.mark.parametrize(
    "address, allow, ok",
    [
        ("93.184.216.34", "public", True),
        ("127.0.0.1", "public", False),
        ("127.0.0.1", "loopback", True),
        ("::1", "public", False),
        ("::ffff:127.0.0.1", "public", False),
        ("10.0.0.5", "public", False),
        ("10.0.0.5", "loopback", False),
        ("10.0.0.5", "private", True),
        ("192.168.1.2", "public", False),
        ("169.254.169.254", "public", False),
        ("169.254.169.254", "loopback", False),
        ("0.0.0.0", "private", False),
        ("224.0.0.1", "private", False),
        ("fd00::1", "public", False),
        ("2606:4700::1111", "public", True),
    ],
)
def test_addresses_deliveries_may_reach(address: str, allow: str, ok: bool) -> None:
    assert address_allowed(address, allow=allow) is ok


def test_backoff_doubles_and_stops_at_the_cap_and_three_days_of_failures_fit_the_defaults() -> None:
    delays = [retry_delay_ms(n, min_ms=10_000, max_ms=21_600_000, jitter=0.0) for n in range(1, 26)]
    assert delays[:3] == [10_000, 20_000, 40_000] and max(delays) == 21_600_000
    assert 2.5 * 86400 < sum(delays) / 1000 < 4 * 86400
    assert retry_delay_ms(3, min_ms=100, max_ms=10_000, jitter=0.99) < 400 * 1.5


def test_secrets_and_the_day_of_failures() -> None:
    secret = new_secret(b"x" * 32)
    assert secret_valid(secret) and not secret_valid("whsec_!!") and not secret_valid("plain")
    with pytest.raises(ValueError):
        new_secret(b"short")
    assert should_disable(86400, disable_after_s=86400) and not should_disable(None, disable_after_s=1)


def test_the_body_is_thin_and_sorted() -> None:
    event = StorefrontEvent(
        7, "item.sold", "item", "12", 3, {"id": 12, "changed": {"status": "sold"}}, datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert event_body(event) == (
        '{"data":{"changed":{"status":"sold"},"id":12,"resource":"item","seq":3},'
        '"timestamp":"2026-01-01T00:00:00+00:00","type":"item.sold"}'
    )


def test_a_product_becomes_one_item_per_variant() -> None:
    event = ProductChanged.model_validate(
        {
            "payloadProductId": "1",
            "ts": "2026-01-01T00:00:00Z",
            "brand": {"payloadBrandId": "9", "name": "B"},
            "product": {
                "title": "Tee",
                "status": "published",
                "primaryImageUrl": "https://cms.example.com/a.jpg",
                "galleryImageUrls": ["https://cms.example.com/a.jpg", "https://cms.example.com/b.jpg"],
                "defaultPrice": 100,
                "defaultCurrency": "GBP",
            },
            "variants": [
                {"payloadVariantId": "v1", "stock": 2, "optionValues": [{"option": "Size", "value": "S"}]},
                {"payloadVariantId": "v2", "price": 120, "currency": "EUR"},
            ],
        }
    )
    items = catalog_items(event)
    assert [(i.source_listing_id, i.title, i.kind, i.stock, i.price_cents, i.currency) for i in items] == [
        ("variant:v1", "Tee - S", "stable", 2, 100, "GBP"),
        ("variant:v2", "Tee", "print_on_demand", None, 120, "EUR"),
    ]
    assert items[0].image_urls == ["https://cms.example.com/a.jpg", "https://cms.example.com/b.jpg"]
    hidden = event.model_copy(update={"product": event.product.model_copy(update={"visibleToGifter": False})})
    assert {i.status for i in catalog_items(hidden)} == {"archived"}
    retitled = event.model_copy(update={"product": event.product.model_copy(update={"title": "Tee 2"})})
    assert text_hash(retitled) != text_hash(event) and image_hash(retitled) == image_hash(event)
