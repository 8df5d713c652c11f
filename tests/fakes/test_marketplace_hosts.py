"""The generic shop, images with EXIF, host switches (block, rate limit), the request log, determinism."""

from __future__ import annotations

import io
import re

import aiohttp
from PIL import Image

from fakes.marketplace import Marketplace
from tests.fakes.conftest import json_ld


async def test_shop_search_cards_and_product_pages(market: Marketplace, http: aiohttp.ClientSession) -> None:
    live, sold, removed = [x for x in market.listings("shop") if "hoodie" in x.title][:3]
    market.set_state("shop", sold.id, "sold")
    market.set_state("shop", removed.id, "removed")
    async with http.get(f"{market.shop_url}/search", params={"q": "hoodie"}) as response:
        html = await response.text()
    ids = {
        int(product_id): classes
        for classes, product_id in re.findall(r'<li class="product-card([^"]*)" data-product-id="(\d+)"', html)
    }
    assert live.id in ids and sold.id in ids and removed.id not in ids
    assert "is-sold" in ids[sold.id] and "is-sold" not in ids[live.id]
    async with http.get(market.url_of(live)) as response:
        product = json_ld(await response.text())
        assert product["@type"] == "Product" and product["offers"]["availability"] == "https://schema.org/InStock"
        assert product["offers"]["price"] == live.price_text() and product["brand"]["name"] == live.brand
    async with http.get(market.url_of(sold)) as response:
        assert json_ld(await response.text())["offers"]["availability"] == "https://schema.org/SoldOut"
    async with http.get(market.url_of(removed)) as response:
        assert response.status == 404 and "Product not found" in await response.text()


async def test_shop_paginates(market: Marketplace, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{market.shop_url}/search", params={"q": ""}) as response:
        first = await response.text()
    assert first.count('class="product-card') == 24 and 'class="next"' in first
    async with http.get(f"{market.shop_url}/search", params={"q": "", "page": "2"}) as response:
        second = await response.text()
    assert second.count('class="product-card') == len(market.listings("shop")) - 24 and 'class="next"' not in second


async def test_images_are_jpegs_with_exif_gps(market: Marketplace, http: aiohttp.ClientSession) -> None:
    for host, listing in (
        ("vinted", market.listings("vinted")[0]),
        ("grailed", market.listings("grailed")[0]),
        ("shop", market.listings("shop")[0]),
    ):
        url = market.hosts[host].image_url(listing.photos[0])
        async with http.get(url) as response:
            assert response.status == 200 and response.content_type == "image/jpeg"
            image = Image.open(io.BytesIO(await response.read()))
        image.load()
        assert image.format == "JPEG" and image.size == (480, 640)
        exif = image.getexif()
        gps = exif.get_ifd(0x8825)
        assert exif[0x010F] == "FakeCam" and gps[1] == "N" and len(gps[2]) == 3
    async with http.get(f"{market.vinted_url}/images/vinted-1-0.jpg") as response:
        assert response.status == 404


async def test_block_and_rate_limit_switches(market: Marketplace, http: aiohttp.ClientSession) -> None:
    listing = market.listings("vinted")[0]
    market.block("vinted")
    for path in ("/", "/svc-catalogue/items", f"/images/{listing.photos[0]}.jpg"):
        async with http.get(f"{market.vinted_url}{path}") as response:
            html = await response.text()
            assert response.status == 403 and "<title>Just a moment...</title>" in html
            assert "challenge-platform" in html and response.headers["cf-mitigated"] == "challenge"
    async with http.get(f"{market.shop_url}/search?q=x") as response:
        assert response.status == 200  # the switch is per host
    market.block("vinted", False)
    market.rate_limit("grailed", retry_after=7)
    async with http.get(f"{market.grailed_url}/api/listings/{market.listings('grailed')[0].id}") as response:
        assert response.status == 429 and response.headers["Retry-After"] == "7"
        assert (await response.json())["code"] == 429
    async with http.get(f"{market.grailed_url}/shop") as response:
        assert response.status == 429 and "rate limited" in await response.text()
    market.rate_limit("grailed", False)
    async with http.get(f"{market.grailed_url}/shop") as response:
        assert response.status == 200


async def test_request_log_per_host(market: Marketplace, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{market.vinted_url}/"):
        pass
    async with http.get(f"{market.vinted_url}/svc-catalogue/items?search_text=nike"):
        pass
    async with http.get(f"{market.shop_url}/search?q=nike"):
        pass
    log = market.requests("vinted")
    assert [(r.path, r.query, r.status) for r in log] == [
        ("/", "", 200),
        ("/svc-catalogue/items", "search_text=nike", 200),
    ]
    assert log[0].at <= log[1].at
    assert [r.path for r in market.requests("shop")] == ["/search"]
    assert market.requests("grailed") == []


def test_the_catalogue_is_deterministic() -> None:
    one, two, other = Marketplace(seed=9), Marketplace(seed=9), Marketplace(seed=10)
    assert [(x.id, x.title, x.price_cents) for x in one.listings("vinted")] == [
        (x.id, x.title, x.price_cents) for x in two.listings("vinted")
    ]
    assert [x.title for x in one.listings("vinted")] != [x.title for x in other.listings("vinted")]
    name = one.listings("grailed")[0].photos[0]
    assert one.image_bytes(name) == two.image_bytes(name)
    assert {len(one.listings(source)) for source in ("vinted", "grailed", "shop")} == {36}
    assert len({x.brand for x in one.listings("shop")}) == 8 and len({x.size for x in one.listings("shop")}) > 3
