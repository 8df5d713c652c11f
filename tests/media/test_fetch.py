"""Downloading images against a local HTTP server: limits, types, redirects, anti-bot and timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from fakes.marketplace.data import make_jpeg
from media.fetch import FetchFailed, FetchLimits, check_url, fetch_image, parse_hosts
from media.images import ImageRejected

JPEG = make_jpeg("shop-1-0", 1)
LIMITS = FetchLimits(max_bytes=100_000, timeout_s=2.0)


async def chunked_forever(request: web.Request) -> web.StreamResponse:
    """An image that never stops coming and never says how long it is."""
    response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(1000):
        await response.write(b"\xff" * 65_536)
    return response


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(3)  # a server slower than the fetch's time limit
    return web.Response(body=JPEG, content_type="image/jpeg")


ROUTES = {
    "/ok.jpg": lambda r: web.Response(body=JPEG, content_type="image/jpeg"),
    "/ok-with-charset": lambda r: web.Response(body=JPEG, headers={"Content-Type": "image/jpeg; charset=binary"}),
    "/page": lambda r: web.Response(text="<html>Just a moment...</html>", content_type="text/html"),
    "/no-type": lambda r: web.Response(body=JPEG, headers={"Content-Type": ""}),
    "/huge.jpg": lambda r: web.Response(body=b"\xff" * 200_000, content_type="image/jpeg"),
    "/endless.jpg": chunked_forever,
    "/moved.jpg": lambda r: web.Response(status=302, headers={"Location": "/ok.jpg"}),
    "/loop.jpg": lambda r: web.Response(status=302, headers={"Location": "/loop.jpg"}),
    "/away.jpg": lambda r: web.Response(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data"}),
    "/gone.jpg": lambda r: web.Response(status=404, text="Not found"),
    "/challenge.jpg": lambda r: web.Response(status=403, text="Just a moment...", content_type="text/html"),
    "/busy.jpg": lambda r: web.Response(status=429, headers={"Retry-After": "7"}),
    "/broken.jpg": lambda r: web.Response(status=503),
    "/slow.jpg": slow,
}


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[str]:
    """The routes above on a free loopback port."""
    app = web.Application()
    for path, handler in ROUTES.items():

        async def route(request: web.Request, handler=handler) -> web.StreamResponse:  # type: ignore[no-untyped-def]
            result = handler(request)
            return await result if asyncio.iscoroutine(result) else result

        app.router.add_get(path, route)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture()
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.mark.parametrize("path", ["/ok.jpg", "/ok-with-charset", "/moved.jpg"])
async def test_images_are_downloaded(server: str, session: aiohttp.ClientSession, path: str) -> None:
    assert await fetch_image(session, server + path, LIMITS) == JPEG


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/page", "wrong content type 'text/html'"),
        ("/no-type", "wrong content type 'none'"),
        ("/huge.jpg", "image too large: 200000 bytes (limit 100000)"),
        ("/endless.jpg", "image too large: more than 100000 bytes"),
        ("/gone.jpg", "image host answered HTTP 404"),
        ("/loop.jpg", "more than 3 redirects"),
    ],
)
async def test_unusable_images_are_rejected_with_a_clear_error(
    server: str, session: aiohttp.ClientSession, path: str, reason: str
) -> None:
    with pytest.raises(ImageRejected) as caught:
        await fetch_image(session, server + path, LIMITS)
    assert reason in str(caught.value)
    assert server not in str(caught.value) and "127.0.0.1" not in str(caught.value)  # no URL in errors


@pytest.mark.parametrize(
    ("path", "delay_ms"),
    [
        ("/challenge.jpg", None),
        ("/busy.jpg", 7_000),
        ("/broken.jpg", None),
        ("/slow.jpg", None),
    ],
)
async def test_anti_bot_overload_and_timeouts_are_worth_a_retry(
    server: str, session: aiohttp.ClientSession, path: str, delay_ms: int | None
) -> None:
    limits = FetchLimits(max_bytes=100_000, timeout_s=0.5)
    with pytest.raises(FetchFailed) as caught:
        await fetch_image(session, server + path, limits)
    assert caught.value.delay_ms == delay_ms


async def test_a_refused_connection_is_worth_a_retry(session: aiohttp.ClientSession) -> None:
    with pytest.raises(FetchFailed, match="download failed"):
        await fetch_image(session, "http://127.0.0.1:9/x.jpg", LIMITS)


async def test_redirects_are_checked_against_the_allow_list(server: str, session: aiohttp.ClientSession) -> None:
    limits = FetchLimits(max_bytes=100_000, timeout_s=2.0, allowed_hosts=("127.0.0.1",))
    assert await fetch_image(session, server + "/moved.jpg", limits) == JPEG
    with pytest.raises(ImageRejected, match="'169.254.169.254' is not in REHOST_ALLOWED_HOSTS"):
        await fetch_image(session, server + "/away.jpg", limits)


@pytest.mark.parametrize(
    ("url", "hosts", "ok"),
    [
        ("https://images1.vinted.net/t/a.jpg", ("vinted.net",), True),
        ("https://vinted.net/a.jpg", ("vinted.net",), True),
        ("https://evilvinted.net/a.jpg", ("vinted.net",), False),
        ("https://anything.example/a.jpg", (), True),
        ("file:///etc/passwd", (), False),
        ("ftp://host/a.jpg", (), False),
        ("https:///a.jpg", (), False),
    ],
)
def test_check_url(url: str, hosts: tuple[str, ...], ok: bool) -> None:
    if ok:
        check_url(url, hosts)
    else:
        with pytest.raises(ImageRejected):
            check_url(url, hosts)


def test_parse_hosts() -> None:
    assert parse_hosts(" Vinted.net, .grailed.com ,,") == ("vinted.net", "grailed.com")
    assert parse_hosts("") == ()
