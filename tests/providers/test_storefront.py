"""Delivering one event: signed headers, hostnames resolving to loopback refused, redirects capped and checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, UTC

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from domain.events import Endpoint, StorefrontEvent, new_secret
from providers.storefront import deliver, new_session

SECRET = new_secret(b"k" * 32)
EVENT = StorefrontEvent(
    5, "item.sold", "item", "1", 1, {"id": 1, "changed": {"status": "sold"}}, datetime(2026, 1, 1, tzinfo=UTC)
)


@pytest.fixture()
async def server() -> AsyncIterator[tuple[str, list[web.Request], list[bytes]]]:
    """A local storefront: /ok answers 200 with a long body, /loop redirects to itself, /away to 10.0.0.1."""
    seen: list[web.Request] = []
    bodies: list[bytes] = []

    async def ok(request: web.Request) -> web.Response:
        seen.append(request)
        bodies.append(await request.read())
        return web.Response(text="x" * 10_000)

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def away(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("http://10.0.0.1/hook")

    app = web.Application()
    app.add_routes([web.post("/ok", ok), web.post("/loop", loop), web.post("/away", away)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"{port}", seen, bodies
    await runner.cleanup()


def endpoint(url: str) -> Endpoint:
    return Endpoint(1, "front", url, SECRET, (), True, None, None)


async def test_signed_and_bounded_when_loopback_is_allowed(server) -> None:  # type: ignore[no-untyped-def]
    port, seen, bodies = server
    session = new_session(allow=lambda: "loopback", timeout_s=5)
    try:
        outcome = await deliver(session, endpoint(f"http://localhost:{port}/ok"), EVENT, allow="loopback")
        assert outcome.ok and len(outcome.excerpt or "") == 300
        headers = {k.lower(): v for k, v in seen[0].headers.items()}
        assert headers["webhook-id"] == "evt_5"
        assert Webhook(SECRET).verify(bodies[0], headers)["type"] == "item.sold"
        looped = await deliver(session, endpoint(f"http://127.0.0.1:{port}/loop"), EVENT, allow="loopback")
        assert looped.status is None and "redirects" in (looped.error or "")
        away = await deliver(session, endpoint(f"http://127.0.0.1:{port}/away"), EVENT, allow="loopback")
        assert away.status is None and "may not reach" in (away.error or "")
    finally:
        await session.close()


async def test_a_hostname_resolving_to_loopback_is_refused_by_default(server) -> None:  # type: ignore[no-untyped-def]
    port, seen, _ = server
    session = new_session(allow=lambda: "public", timeout_s=5)
    try:
        outcome = await deliver(session, endpoint(f"http://localhost:{port}/ok"), EVENT, allow="public")
        assert outcome.status is None and outcome.error and seen == []
    finally:
        await session.close()
