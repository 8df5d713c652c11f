"""One host of the local marketplace: request log, host switches (block, rate limit, slow), anti-bot pages, images."""

from __future__ import annotations

import asyncio
import html
import json
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from fakes.base import FakeServer

if TYPE_CHECKING:
    from fakes.marketplace import Marketplace
    from fakes.marketplace.data import FakeListing

Handler = Any

CHALLENGE_PAGE = """<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="refresh" content="390"><meta name="robots" content="noindex,nofollow"></head>
<body><div class="main-wrapper" role="main"><div class="main-content">
<h1 class="zone-name-title h1">Verifying you are human. This may take a few seconds.</h1>
<div id="challenge-stage"><div class="loading-verifying">Please wait</div></div>
<noscript>
<div class="h2"><span id="challenge-error-text">Enable JavaScript and cookies to continue</span></div></noscript>
</div></div>
<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray={ray}"></script></body></html>"""

RATE_LIMIT_PAGE = (
    "<!DOCTYPE html><html><head><title>Too many requests</title></head>"
    "<body><h1>You are rate limited</h1></body></html>"
)


@dataclass(frozen=True)
class LoggedRequest:
    """One request a host received (`at` is time.monotonic(), comparable with the test's own clock)."""

    method: str
    path: str
    query: str
    at: float
    status: int


def page(title: str, body: str, *, head: str = "", lang: str = "en") -> str:
    """A small HTML document."""
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"{head}</head><body>{body}</body></html>"
    )


def dumps(value: Any) -> str:
    """Compact JSON (the sites' own `"key":value` spacing), safe inside a <script>."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def e(value: Any) -> str:
    """HTML-escape a value."""
    return html.escape(str(value))


class MarketHost(FakeServer):
    """A marketplace host; subclasses add `site_routes()`. Shared listing state lives on the Marketplace."""

    def __init__(self, market: Marketplace, name: str) -> None:
        super().__init__()
        self.market = market
        self.name = name
        self.log: list[LoggedRequest] = []
        self.reset_state()

    def reset_state(self) -> None:
        self.blocked = False
        self.rate_limited = False
        self.retry_after = 30.0
        self.slow = False
        self.log = []

    # --- the switches' answers ---
    def challenge(self) -> web.Response:
        """Cloudflare-style 403 challenge page (HTML, not JSON)."""
        ray = secrets.token_hex(8)
        return web.Response(
            status=403,
            text=CHALLENGE_PAGE.replace("{ray}", ray),
            content_type="text/html",
            headers={
                "cf-mitigated": "challenge",
                "cf-ray": f"{ray}-CDG",
                "Server": "cloudflare",
                "Accept-CH": "Sec-CH-UA-Bitness, Sec-CH-UA-Arch, Sec-CH-UA-Full-Version",
            },
        )

    def too_many(self, request: web.Request) -> web.Response:
        """429 with Retry-After; JSON for API paths, an HTML page otherwise."""
        headers = {"Retry-After": f"{self.retry_after:g}"}
        if self.is_api(request.path):
            return web.json_response({"code": 429, "message": "Too Many Requests"}, status=429, headers=headers)
        return web.Response(status=429, text=RATE_LIMIT_PAGE, content_type="text/html", headers=headers)

    def is_api(self, path: str) -> bool:
        """Whether `path` is one of this host's JSON endpoints."""
        return path.startswith(("/api/", "/svc-", "/1/"))

    async def wait_slow(self) -> None:
        """Hold the answer for the marketplace's `slow_s` (cut short when the marketplace stops)."""
        deadline = time.monotonic() + self.market.slow_s
        while time.monotonic() < deadline and not self.market.stopping.is_set():
            await asyncio.sleep(0.05)

    async def gate(self, listing: FakeListing) -> web.Response | None:
        """Apply a listing's `blocked` / `slow` state to a request about it; None means answer normally."""
        if listing.state == "blocked":
            return self.challenge()
        if listing.state == "slow":
            await self.wait_slow()
        return None

    # --- wiring ---
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Log the request, then apply host switches and queued faults before the route runs."""
        arrived = time.monotonic()
        status = 500
        try:
            response = await self._answer(request, handler)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            with self.lock:
                self.log.append(LoggedRequest(request.method, request.path, request.query_string, arrived, status))

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return await handler(request)
        if self.blocked:
            return self.challenge()
        if self.rate_limited:
            return self.too_many(request)
        if self.slow:
            await self.wait_slow()
        route = request.match_info.route.name
        if route:
            injected = await self.inject(route, request)
            if injected is not None:
                return injected
        return await handler(request)

    async def image(self, request: web.Request) -> web.Response:
        """GET /images/{name}.jpg: real JPEG bytes with EXIF."""
        data = self.market.image_bytes(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="Not found")
        return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "max-age=31536000"})

    def site_routes(self) -> list[web.RouteDef]:
        """The site's own endpoints."""
        return []

    def routes(self) -> list[web.RouteDef]:
        return [*self.site_routes(), web.get("/images/{name}.jpg", self.image, name="image")]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        app.add_routes(self.routes())
        return app

    def image_url(self, name: str) -> str:
        """The absolute URL of image `name` on this host."""
        return f"{self.base_url}/images/{name}.jpg"
