"""One aiohttp session per process, and the outcome classification every client shares."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from datetime import datetime, UTC
from typing import Any

import aiohttp

from providers.errors import Ambiguous, Permanent, RateLimited, Retryable

CONNECT_TIMEOUT_S = 5.0  # connect fast or give up: nothing was sent, so a retry is always safe
MAX_RETRY_AFTER_MS = 3_600_000
USER_AGENT = "Backroom/0.1 (+https://github.com/backroom)"


@dataclass(frozen=True)
class Reply:
    """A provider's HTTP answer: status, headers and the body (parsed JSON when it is JSON)."""

    status: int
    headers: Mapping[str, str]
    body: Any

    def field(self, *path: str) -> Any:
        """`body[path0][path1]...`, or None when any step is missing."""
        value: Any = self.body
        for key in path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value


def new_session(read_timeout_s: float = 15.0) -> aiohttp.ClientSession:
    """The process's session (call on the event loop that will use it); a slow answer is ambiguous, so bounded."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=read_timeout_s)
    return aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": USER_AGENT})


async def request(session: aiohttp.ClientSession, provider: str, method: str, url: str, **kwargs: Any) -> Reply:
    """Send one request; a connect failure is Retryable (nothing sent), a lost answer Ambiguous.

    Error texts name the exception type only: aiohttp's messages carry the URL, and some
    providers (Telegram) put the token in the path.
    """
    try:
        async with session.request(method, url, **kwargs) as response:
            raw = await response.read()
            return Reply(response.status, dict(response.headers), _decode(raw))
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
        raise Retryable(provider, f"connection failed ({type(error).__name__})") from None
    except (TimeoutError, aiohttp.ClientError) as error:
        raise Ambiguous(provider, f"no answer ({type(error).__name__})") from None


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text[:500]


def retry_after_ms(headers: Mapping[str, str], default_ms: int, *, now: datetime | None = None) -> int:
    """The `Retry-After` header (seconds or an HTTP date) in ms, else `default_ms`; capped at an hour."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return default_ms
    try:
        ms = int(float(value) * 1000)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default_ms
        ms = int((when - (now or datetime.now(UTC))).total_seconds() * 1000)
    return max(0, min(MAX_RETRY_AFTER_MS, ms))


def raise_for(provider: str, reply: Reply, reason: str, *, min_retry_ms: int = 1_000) -> None:
    """Turn a non-2xx reply into RateLimited (429), Retryable (408/425/5xx) or Permanent (other 4xx)."""
    if 200 <= reply.status < 300:
        return
    if reply.status == 429:
        raise RateLimited(provider, max(min_retry_ms, retry_after_ms(reply.headers, min_retry_ms)), f"429 {reason}")
    if reply.status in (408, 425) or reply.status >= 500:
        delay = retry_after_ms(reply.headers, min_retry_ms)
        raise Retryable(provider, f"{reply.status} {reason}", max(min_retry_ms, delay))
    raise Permanent(provider, reason, reply.status)
