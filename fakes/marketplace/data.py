"""The local marketplace's seeded catalogue: listings per source and the JPEG photos they show."""

from __future__ import annotations

import io
import random
import re
from dataclasses import dataclass, field
from typing import cast

from PIL import Image, ImageDraw

STATES = ("available", "sold", "removed", "blocked", "slow")
SOURCES = ("vinted", "grailed", "shop")

# (name, vinted brand id): the ids are what `attribute_ids[brand]=` filters on
BRANDS = [
    ("Nike", 53),
    ("Adidas", 14),
    ("Carhartt", 362),
    ("Levi's", 10),
    ("Ralph Lauren", 88),
    ("Patagonia", 6223),
    ("Stone Island", 73306),
    ("Arc'teryx", 319730),
]
GARMENTS = [
    ("hoodie", "tops.sweatshirts_hoodies"),
    ("jacket", "outerwear.light_jackets"),
    ("t-shirt", "tops.short_sleeve_shirts"),
    ("jeans", "bottoms.denim"),
    ("fleece", "tops.sweaters_knitwear"),
    ("sneakers", "footwear.low_top_sneakers"),
]
CATALOG_IDS = {"hoodie": 267, "jacket": 2052, "t-shirt": 77, "jeans": 257, "fleece": 1811, "sneakers": 1242}
ADJECTIVES = ["vintage", "washed", "oversized", "classic", "heavyweight", "faded", "boxy", "retro"]
COLOURS = [
    ("black", (25, 25, 28)),
    ("navy", (20, 35, 90)),
    ("olive", (85, 95, 45)),
    ("grey", (128, 128, 132)),
    ("red", (170, 30, 35)),
    ("cream", (235, 225, 200)),
    ("green", (30, 110, 60)),
    ("brown", (110, 70, 40)),
]
# (label, vinted size id); sneakers use EU sizes
SIZES = [("XS", 206), ("S", 207), ("M", 208), ("L", 209), ("XL", 210)]
SHOE_SIZES = [("41", 784), ("42", 785), ("43", 786), ("44", 787)]
# a neutral condition key -> each site's own vocabulary
CONDITIONS: dict[str, dict[str, tuple[str, int] | str]] = {  # vinted: (label, status id)
    "new_with_tags": {"vinted": ("New with tags", 6), "grailed": "is_new", "shop": "New with tags"},
    "new": {"vinted": ("New without tags", 1), "grailed": "is_new", "shop": "New"},
    "very_good": {"vinted": ("Very good", 2), "grailed": "is_gently_used", "shop": "Very good"},
    "good": {"vinted": ("Good", 3), "grailed": "is_used", "shop": "Good"},
    "satisfactory": {"vinted": ("Satisfactory", 4), "grailed": "is_worn", "shop": "Worn"},
}
CURRENCY = {"vinted": "EUR", "grailed": "USD", "shop": "GBP"}
ID_BASE = {"vinted": 4_100_000_000, "grailed": 61_000_000, "shop": 1000}


@dataclass
class FakeListing:
    """One listing on one fake site; `state` is what the site answers about it right now."""

    source: str
    id: int
    title: str
    brand: str
    brand_id: int
    garment: str
    category_path: str
    colour: str
    size: str
    size_id: int
    condition: str  # neutral key of CONDITIONS
    price_cents: int
    currency: str
    description: str
    created_at: int  # unix seconds
    photos: list[str] = field(default_factory=list)  # image names, served as /images/{name}.jpg
    state: str = "available"

    @property
    def slug(self) -> str:
        """The URL slug of the title."""
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")

    @property
    def listed(self) -> bool:
        """Whether searches still show it (sold and removed listings drop out of live results)."""
        return self.state not in ("sold", "removed")

    def site_condition(self) -> str:
        """The condition in this source's own vocabulary."""
        value = CONDITIONS[self.condition][self.source]
        return value[0] if isinstance(value, tuple) else value

    def vinted_status_id(self) -> int:
        """Vinted's condition (`status`) id."""
        return cast(tuple[str, int], CONDITIONS[self.condition]["vinted"])[1]

    def catalog_id(self) -> int:
        """Vinted's catalogue (category) id."""
        return CATALOG_IDS[self.garment]

    def price_text(self) -> str:
        """The price as a decimal string (`"45.00"`)."""
        return f"{self.price_cents // 100}.{self.price_cents % 100:02d}"

    def matches(self, text: str) -> bool:
        """Every word of `text` appears in the title, brand or colour (case-insensitive)."""
        haystack = f"{self.title} {self.brand} {self.colour}".lower()
        return all(word in haystack for word in text.lower().split())


def seed_listings(source: str, count: int, seed: int) -> list[FakeListing]:
    """`count` deterministic listings for `source` (the same seed gives the same catalogue)."""
    rng = random.Random(f"{seed}-{source}")
    listings = []
    for index in range(count):
        brand, brand_id = BRANDS[index % len(BRANDS)]
        garment, category = GARMENTS[(index // len(BRANDS) + index) % len(GARMENTS)]
        colour = COLOURS[rng.randrange(len(COLOURS))][0]
        size, size_id = rng.choice(SHOE_SIZES if garment == "sneakers" else SIZES)
        listing_id = ID_BASE[source] + index * 7919 + rng.randrange(1000)
        title = f"{brand} {rng.choice(ADJECTIVES)} {colour} {garment}"
        listings.append(
            FakeListing(
                source=source,
                id=listing_id,
                title=title,
                brand=brand,
                brand_id=brand_id,
                garment=garment,
                category_path=category,
                colour=colour,
                size=size,
                size_id=size_id,
                condition=rng.choice(list(CONDITIONS)),
                price_cents=rng.randrange(8, 320) * 100 + rng.choice([0, 50, 99]),
                currency=CURRENCY[source],
                description=f"{title}, size {size}. Smoke-free home, ships in 2 days.",
                created_at=1_790_000_000 + index * 3600,
                photos=[f"{source}-{listing_id}-{n}" for n in range(1 + rng.randrange(3))],
            )
        )
    return listings


def make_jpeg(name: str, seed: int, colour: str | None = None) -> bytes:
    """A real JPEG for image `name` (mostly `colour`), with EXIF incl. GPS that rehosting must strip."""
    rng = random.Random(f"{seed}-{name}")
    background = dict(COLOURS).get(colour or "") or tuple(rng.randrange(256) for _ in range(3))
    image = Image.new("RGB", (480, 640), background)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(400), rng.randrange(560)
        fill = tuple(rng.randrange(256) for _ in range(3))
        box = (x, y, x + 40 + rng.randrange(200), y + 40 + rng.randrange(200))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    exif = Image.Exif()
    exif[0x010F] = "FakeCam"  # Make
    exif[0x0110] = "Marketplace 1"  # Model
    exif[0x0132] = "2026:10:01 12:00:00"  # DateTime
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, float(rng.randrange(60))), 3: "E", 4: (2.0, 21.0, 7.0)}  # GPS
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, exif=exif)
    return buffer.getvalue()
