"""The Payload CMS -> Backroom mirroring contract (Gifter seed, section 4) and what an item gets from it."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Text = Field(None, max_length=20_000)
Url = Field(None, max_length=2000, pattern=r"^https?://\S+$")


class Model(BaseModel):
    """Payload's fields in camelCase; unknown fields are ignored (the CMS may add some)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Brand(Model):
    """A brand as Payload sends it."""

    payloadBrandId: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=300)
    status: str | None = Field(None, max_length=50)
    country: str | None = Field(None, max_length=2)
    baseCurrency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    logoUrl: str | None = Url
    coverImageUrl: str | None = Url


class Product(Model):
    """A product's content."""

    title: str = Field(min_length=1, max_length=500)
    slug: str | None = Field(None, max_length=500)
    status: str = Field("draft", max_length=50)
    visibleToGifter: bool = True
    isFeatured: bool = False
    shortDescription: str | None = Text
    description: str | None = Text
    specs: str | None = Text
    primaryImageUrl: str | None = Url
    galleryImageUrls: list[str] = Field(default_factory=list, max_length=50)
    defaultPrice: int | None = Field(None, ge=0, le=100_000_000)
    defaultCurrency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    giftTags: list[str] = Field(default_factory=list, max_length=50)
    occasionFit: list[str] = Field(default_factory=list, max_length=50)
    styleTags: list[str] = Field(default_factory=list, max_length=50)


class Variant(Model):
    """One purchasable variant; stock None = made to order (print on demand)."""

    payloadVariantId: str = Field(min_length=1, max_length=100)
    sku: str | None = Field(None, max_length=200)
    optionValues: list[dict[str, str]] = Field(default_factory=list, max_length=20)
    price: int | None = Field(None, ge=0, le=100_000_000)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    stock: int | None = Field(None, ge=0, le=10_000_000)
    stripePriceId: str | None = Field(None, max_length=200)


class ProductChanged(Model):
    """`product.changed`: the whole product with its brand and variants, as of `ts`."""

    event: str = Field("product.changed", pattern=r"^product\.changed$")
    payloadProductId: str = Field(min_length=1, max_length=100)
    brand: Brand | None = None
    product: Product
    variants: list[Variant] = Field(default_factory=list, max_length=200)
    ts: AwareDatetime


class BrandChanged(Model):
    """`brand.changed`: a brand as of `ts`."""

    event: str = Field("brand.changed", pattern=r"^brand\.changed$")
    brand: Brand
    ts: AwareDatetime


class OrderStatusChanged(Model):
    """`order.status_changed`: a CMS-owned order's status as of `ts`."""

    event: str = Field("order.status_changed", pattern=r"^order\.status_changed$")
    payloadOrderId: str = Field(min_length=1, max_length=100)
    status: str = Field(min_length=1, max_length=50, pattern=r"^[a-z_]+$")
    ts: AwareDatetime


class CatalogItem(BaseModel):
    """One item the mirror keeps: one per variant (or one for a product without variants)."""

    source_listing_id: str
    title: str
    brand: str | None
    kind: str
    status: str
    price_cents: int | None
    currency: str | None
    stock: int | None
    image_urls: list[str]
    attributes: dict[str, Any]


def live(product: Product) -> bool:
    """Published and visible: sold on the storefront (enriched and embedded)."""
    return product.status == "published" and product.visibleToGifter


def text_hash(event: ProductChanged) -> str:
    """Hash of the canonical embedding text (title, descriptions, tags, brand): unchanged = no new text work."""
    p = event.product
    parts = [
        p.title,
        p.shortDescription or "",
        p.description or "",
        p.specs or "",
        " ".join(p.giftTags),
        " ".join(p.occasionFit),
        " ".join(p.styleTags),
        event.brand.name if event.brand else "",
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def image_hash(event: ProductChanged) -> str:
    """Hash of the image URLs in order: unchanged = no new rehost and image embedding."""
    urls = image_urls(event.product)
    return hashlib.sha256(json.dumps(urls).encode()).hexdigest()


def image_urls(product: Product) -> list[str]:
    """The primary image, then the gallery, without repeats."""
    return list(dict.fromkeys([u for u in [product.primaryImageUrl, *product.galleryImageUrls] if u]))


def catalog_items(event: ProductChanged) -> list[CatalogItem]:
    """The items a product is mirrored as: stable stock per variant, print on demand when stock is None."""
    p = event.product
    status = "available" if live(p) else "archived"
    brand, urls = event.brand.name if event.brand else None, image_urls(p)
    attributes = {
        "payload_product_id": event.payloadProductId,
        "slug": p.slug,
        "description": p.shortDescription,
        "gift_tags": p.giftTags,
        "occasion_fit": p.occasionFit,
        "style_tags": p.styleTags,
    }
    if not event.variants:
        currency = p.defaultCurrency if p.defaultPrice is not None else None
        return [
            CatalogItem(
                source_listing_id=f"product:{event.payloadProductId}",
                title=p.title,
                kind="print_on_demand",
                price_cents=p.defaultPrice,
                currency=currency,
                stock=None,
                attributes=attributes,
                brand=brand,
                status=status,
                image_urls=urls,
            )
        ]
    items = []
    for v in event.variants:
        options = " / ".join(o.get("value", "") for o in v.optionValues if o.get("value"))
        price = v.price if v.price is not None else p.defaultPrice
        items.append(
            CatalogItem(
                source_listing_id=f"variant:{v.payloadVariantId}",
                title=f"{p.title} - {options}" if options else p.title,
                kind="stable" if v.stock is not None else "print_on_demand",
                price_cents=price,
                currency=(v.currency or p.defaultCurrency) if price is not None else None,
                stock=v.stock,
                attributes={
                    **attributes,
                    "payload_variant_id": v.payloadVariantId,
                    "sku": v.sku,
                    "stripe_price_id": v.stripePriceId,
                    "options": v.optionValues,
                },
                brand=brand,
                status=status,
                image_urls=urls,
            )
        )
    return items


def newer(ts: datetime, stored: datetime | None) -> bool:
    """True when an update at `ts` is newer than what is stored (an equal or older one is ignored)."""
    return stored is None or ts > stored
