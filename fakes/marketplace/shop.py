"""The fake generic storefront: `/search?q=` product cards (CSS-selectable) and `/products/{id}` with JSON-LD."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from fakes.marketplace.data import FakeListing
from fakes.marketplace.host import MarketHost, dumps, e, page

PER_PAGE = 24
CONDITION_URL = {"new_with_tags": "NewCondition", "new": "NewCondition"}


class ShopHost(MarketHost):
    """A small second-hand shop: search results list sold-out products too (badged), removed ones vanish."""

    def site_routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.home, name="home"),
            web.get("/search", self.search, name="search"),
            web.get(r"/products/{id:\d+}", self.product, name="product"),
        ]

    def product_url(self, listing: FakeListing) -> str:
        """The product page."""
        return f"{self.base_url}/products/{listing.id}"

    async def home(self, request: web.Request) -> web.Response:
        """GET /: a search form."""
        return web.Response(
            text=page("Second Shop", '<form action="/search"><input name="q"></form>'), content_type="text/html"
        )

    def card(self, listing: FakeListing) -> str:
        """One product card of the search page."""
        sold = listing.state == "sold"
        badge = '<span class="badge sold-out">Sold out</span>' if sold else ""
        return (
            f'<li class="product-card{" is-sold" if sold else ""}" data-product-id="{listing.id}">'
            f'<a class="product-link" href="/products/{listing.id}">'
            f'<img class="product-image" src="{e(self.image_url(listing.photos[0]))}" alt="{e(listing.title)}"></a>'
            f'<h2 class="product-title">{e(listing.title)}</h2><span class="product-brand">{e(listing.brand)}</span>'
            f'<span class="product-price" data-amount="{listing.price_text()}" data-currency="{listing.currency}">'
            f'£{listing.price_text()}</span><span class="product-size">{e(listing.size)}</span>'
            f'<span class="product-condition">{e(listing.site_condition())}</span>{badge}</li>'
        )

    async def search(self, request: web.Request) -> web.Response:
        """GET /search?q=&page=: product cards, 24 a page, a `a.next` link while more remain."""
        text = request.query.get("q", "")
        try:
            page_no = max(1, int(request.query.get("page", "1")))
        except ValueError:
            page_no = 1
        found = [x for x in self.market.listings("shop") if x.state != "removed" and x.matches(text)]
        chosen = found[(page_no - 1) * PER_PAGE : page_no * PER_PAGE]
        more = page_no * PER_PAGE < len(found)
        nav = (
            f'<nav class="pagination"><a class="next" rel="next" '
            f'href="/search?{e(urlencode({"q": text, "page": page_no + 1}))}">Next</a></nav>'
            if more
            else ""
        )
        body = (
            f'<h1 class="results-title">{len(found)} results for “{e(text)}”</h1>'
            f'<ul class="product-grid">{"".join(self.card(x) for x in chosen)}</ul>{nav}'
        )
        return web.Response(text=page(f"Search: {text}", body), content_type="text/html")

    async def product(self, request: web.Request) -> web.StreamResponse:
        """GET /products/{id}: JSON-LD Product with offers.availability; removed -> 404 "Product not found"."""
        listing = self.market.find("shop", int(request.match_info["id"]))
        if listing is None or listing.state == "removed":
            return web.Response(
                status=404, text=page("Not found", "<h1>Product not found</h1>"), content_type="text/html"
            )
        gated = await self.gate(listing)
        if gated is not None:
            return gated
        sold = listing.state == "sold"
        images = [self.image_url(name) for name in listing.photos]
        ld = {
            "@context": "https://schema.org",
            "@type": "Product",
            "name": listing.title,
            "sku": str(listing.id),
            "brand": {"@type": "Brand", "name": listing.brand},
            "image": images,
            "description": listing.description,
            "size": listing.size,
            "color": listing.colour,
            "itemCondition": f"https://schema.org/{CONDITION_URL.get(listing.condition, 'UsedCondition')}",
            "offers": {
                "@type": "Offer",
                "price": listing.price_text(),
                "priceCurrency": listing.currency,
                "url": self.product_url(listing),
                "availability": f"https://schema.org/{'SoldOut' if sold else 'InStock'}",
            },
        }
        action = '<p class="sold-out">Sold out</p>' if sold else '<button class="add-to-cart">Add to cart</button>'
        gallery = "".join(f'<img class="product-gallery-image" src="{e(url)}">' for url in images)
        body = (
            f'<main class="product" data-product-id="{listing.id}"><div class="gallery">{gallery}</div>'
            f'<h1 class="product-title">{e(listing.title)}</h1>'
            f"{action}"
            f'<p class="product-description">{e(listing.description)}</p></main>'
        )
        head = f'<script type="application/ld+json">{dumps(ld)}</script>'
        return web.Response(text=page(listing.title, body, head=head), content_type="text/html")
