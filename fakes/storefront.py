"""A fake storefront: receives Backroom's events, verifies them the Standard Webhooks way, records them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from fakes.base import FakeServer


@dataclass(frozen=True)
class Received:
    """One delivery as the storefront got it: headers, raw body, parsed body, verified or not, when."""

    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any]
    verified: bool
    at: float


class FakeStorefront(FakeServer):
    """`POST /events`: answers 204 (or a queued fault: 5xx, 410, a hang, a drop) and keeps every delivery."""

    name = "storefront"

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.reset_state()

    def reset_state(self) -> None:
        self.received: list[Received] = []

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/events", self.receive)]

    @property
    def url(self) -> str:
        """Where Backroom should deliver."""
        return f"{self.base_url}/events"

    async def receive(self, request: web.Request) -> web.StreamResponse:
        if (failure := await self.inject("events", request)) is not None:
            return failure
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            Webhook(self.secret).verify(raw, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        with self.lock:
            self.received.append(Received(headers, raw, json.loads(raw), verified, time.time()))
        return web.Response(status=204)

    def events(self) -> list[dict[str, Any]]:
        """The bodies received so far, in arrival order."""
        with self.lock:
            return [r.body for r in self.received]
