"""Fetching one listing page (or a marketplace's listing API) for a check: what came back, never a verdict.

Any failure (timeout, refused connection, reset) becomes `error` on the result instead of
an exception: to a listing check, no answer is evidence of nothing, not a crash.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp

from providers.http import retry_after_ms

MAX_BODY_BYTES = 2_000_000  # a listing page; more is not a listing page
ACCEPT = "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8"


@dataclass(frozen=True)
class Fetched:
    """One fetch: status and final URL (after redirects) and the body, or the error instead; Retry-After on 429."""

    http_status: int | None
    final_url: str | None
    body: str | None
    error: str | None
    elapsed_ms: int
    retry_after_ms: int | None = None


async def fetch_listing(
    session: aiohttp.ClientSession, url: str, *, timeout_s: float, max_bytes: int = MAX_BODY_BYTES
) -> Fetched:
    """GET `url` within `timeout_s` (redirects followed); errors name the exception type only, never the URL."""
    started = time.monotonic()
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout_s), headers={"Accept": ACCEPT}, allow_redirects=True
        ) as response:
            raw = await response.content.read(max_bytes)
            retry = retry_after_ms(response.headers, 60_000) if response.status == 429 else None
            return Fetched(
                response.status,
                str(response.url),
                raw.decode(response.charset or "utf-8", "replace"),
                None,
                _since(started),
                retry,
            )
    except TimeoutError:
        return Fetched(None, None, None, f"timeout after {timeout_s:g} s", _since(started))
    except aiohttp.ClientError as error:
        return Fetched(None, None, None, f"no answer ({type(error).__name__})", _since(started))


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
