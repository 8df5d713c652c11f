"""Downloading one marketplace image with aiohttp: bounded size, accepted types, timeouts, checked redirects.

Error texts never carry the URL: marketplace addresses stay out of job records and logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp

from media.images import ImageRejected

CONTENT_TYPES = frozenset({"image/jpeg", "image/pjpeg", "image/png", "image/webp"})
MAX_REDIRECTS = 3
CHUNK = 64 * 1024


class FetchFailed(Exception):
    """The download may succeed later (timeout, connection, 5xx, 403/429 anti-bot); `delay_ms` when told."""

    def __init__(self, reason: str, delay_ms: int | None = None) -> None:
        super().__init__(reason)
        self.delay_ms = delay_ms


@dataclass(frozen=True)
class FetchLimits:
    """What a download may be."""

    max_bytes: int
    timeout_s: float
    allowed_hosts: tuple[str, ...] = ()  # host names (subdomains included); empty = any


def parse_hosts(raw: str) -> tuple[str, ...]:
    """REHOST_ALLOWED_HOSTS (comma-separated) as lower-case host names."""
    return tuple(h.strip().lower().lstrip(".") for h in raw.split(",") if h.strip())


def check_url(url: str, allowed_hosts: Sequence[str]) -> None:
    """Refuse non-http(s) URLs and hosts outside the allow-list (ImageRejected)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise ImageRejected(f"not an http(s) image URL (scheme {parts.scheme or 'none'!r})")
    if allowed_hosts and not any(host == h or host.endswith("." + h) for h in allowed_hosts):
        raise ImageRejected(f"image host {host!r} is not in REHOST_ALLOWED_HOSTS")


async def fetch_image(session: aiohttp.ClientSession, url: str, limits: FetchLimits) -> bytes:
    """The image's bytes; ImageRejected when it can never be used, FetchFailed when worth retrying."""
    timeout = aiohttp.ClientTimeout(total=limits.timeout_s, sock_connect=min(5.0, limits.timeout_s))
    try:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, limits.allowed_hosts)
            async with session.get(
                url, timeout=timeout, allow_redirects=False, headers={"Accept": "image/jpeg,image/png,image/webp"}
            ) as response:
                if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                    url = urljoin(url, response.headers["Location"])
                    continue
                _check_status(response)
                _check_headers(response, limits.max_bytes)
                return await _read_bounded(response, limits.max_bytes)
        raise ImageRejected(f"more than {MAX_REDIRECTS} redirects")
    except (TimeoutError, aiohttp.ClientError) as error:
        raise FetchFailed(f"download failed ({type(error).__name__})") from None


def _check_status(response: aiohttp.ClientResponse) -> None:
    status = response.status
    if status == 200:
        return
    if status in (403, 408, 425, 429) or status >= 500:  # anti-bot and overload are "not now", never "gone"
        raise FetchFailed(f"image host answered HTTP {status}", _retry_after_ms(response))
    raise ImageRejected(f"image host answered HTTP {status}")


def _check_headers(response: aiohttp.ClientResponse, max_bytes: int) -> None:
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type not in CONTENT_TYPES:
        raise ImageRejected(
            f"wrong content type {content_type or 'none'!r} (accepted: {', '.join(sorted(CONTENT_TYPES))})"
        )
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise ImageRejected(f"image too large: {length} bytes (limit {max_bytes})")


async def _read_bounded(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body, refused as soon as it grows past `max_bytes` (a missing or lying Content-Length)."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(CHUNK):
        body.extend(chunk)
        if len(body) > max_bytes:
            raise ImageRejected(f"image too large: more than {max_bytes} bytes (limit {max_bytes})")
    return bytes(body)


def _retry_after_ms(response: aiohttp.ClientResponse) -> int | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(3_600_000, max(0, int(float(value) * 1000))) if value else None
    except ValueError:
        return None
