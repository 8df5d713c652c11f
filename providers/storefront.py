"""Delivering a signed event to a storefront: Standard Webhooks headers, and an outbound guard.

Endpoint URLs are typed in by admins, so a delivery is a request to an address we do not
control: every resolved address is checked (loopback and private networks refused unless the
setting allows), redirects are followed by hand (each hop checked) up to a cap, and the time
and the bytes read from the answer are bounded.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import datetime, UTC
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from standardwebhooks.webhooks import Webhook

from domain.events import MAX_EXCERPT, Endpoint, StorefrontEvent, address_allowed, event_body, excerpt, message_id
from providers.http import USER_AGENT

MAX_REDIRECTS = 3


class AddressRefused(Exception):
    """The endpoint resolves to an address deliveries may not reach."""


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt got: the status (None when no answer), latency, an excerpt or error."""

    status: int | None
    latency_ms: int
    excerpt: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses deliveries may reach."""

    def __init__(self, allow: Callable[[], str]) -> None:
        self.allow = allow  # read at each lookup: the setting may change without a new session
        self.inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        allowed = [r for r in results if address_allowed(r["host"], allow=self.allow())]
        if not allowed:
            raise AddressRefused(f"{host} resolves only to addresses deliveries may not reach")
        return allowed

    async def close(self) -> None:
        await self.inner.close()


def new_session(*, allow: Callable[[], str], timeout_s: float) -> aiohttp.ClientSession:
    """The process's delivery session (open it on the loop that uses it)."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow), limit=100)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s), headers={"User-Agent": USER_AGENT}
    )


def signed_headers(endpoint: Endpoint, event: StorefrontEvent, body: str, now: datetime) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature (v1, HMAC-SHA256) for `body`."""
    msg_id = message_id(event.id)
    signature = Webhook(endpoint.secret).sign(msg_id, now, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def check_literal(url: str, allow: str) -> None:
    """Refuse a URL whose host is an IP literal deliveries may not reach (aiohttp skips resolving those)."""
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return
    if not address_allowed(host, allow=allow):
        raise AddressRefused(f"{host} is an address deliveries may not reach")


async def deliver(session: aiohttp.ClientSession, endpoint: Endpoint, event: StorefrontEvent, *, allow: str) -> Outcome:
    """POST the event to the endpoint once (redirects followed by hand, each hop checked)."""
    body = event_body(event)
    headers = signed_headers(endpoint, event, body, datetime.now(UTC))
    started = time.monotonic()
    url = endpoint.url
    try:
        for _ in range(MAX_REDIRECTS + 1):
            check_literal(url, allow)
            async with session.post(url, data=body.encode(), headers=headers, allow_redirects=False) as response:
                if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                    url = urljoin(url, response.headers["Location"])
                    continue
                raw = await response.content.read(MAX_EXCERPT)
                return Outcome(response.status, _ms(started), excerpt=excerpt(raw))
        return Outcome(None, _ms(started), error=f"more than {MAX_REDIRECTS} redirects")
    except AddressRefused as error:
        return Outcome(None, _ms(started), error=str(error))
    except (aiohttp.ClientError, TimeoutError) as error:
        # the type only: aiohttp's messages carry the URL, which may hold a token
        return Outcome(None, _ms(started), error=f"no answer ({type(error).__name__})")


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def outcome_summary(outcome: Outcome) -> dict[str, Any]:
    """The attempt as a job result."""
    return {"status": outcome.status, "latency_ms": outcome.latency_ms, "error": outcome.error}
