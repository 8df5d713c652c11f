"""A fake Printify: orders that sit `pending` before `on-hold`, send_to_production, and signed webhooks."""

from __future__ import annotations

import json
import random
import secrets
import time
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

from fakes.base import FakeServer
from providers.printify import sign_webhook


class FakePrintify(FakeServer):
    """The orders endpoints of one shop; counts creates per external_id and sends per order."""

    name = "printify"

    def __init__(
        self,
        *,
        token: str = "printify-fake-token",
        shop_id: str = "12345",
        webhook_secret: str = "printify-webhook-secret",
        pending_s: float = 0.5,
    ) -> None:
        super().__init__()
        self.token = token
        self.shop_id = shop_id
        self.webhook_secret = webhook_secret
        self.pending_s = pending_s
        self.reset_state()

    def reset_state(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.creates: Counter[str] = Counter()  # external_id -> orders created with it
        self.sends: Counter[str] = Counter()  # printify order id -> successful send_to_production calls
        self.created_at: dict[str, float] = {}
        self.sent_at: dict[str, float] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.announced: dict[str, str] = {}  # the last status changes() reported per order
        self.drop_webhooks = 0.0  # the share of webhook deliveries lost on the way (0..1)
        self.dropped: Counter[str] = Counter()  # printify order id -> webhooks lost
        # when set, an order sent to production is in production after this long, shipped after twice it
        self.production_s: float | None = None

    # --- helpers for tests ---
    def order_for(self, external_id: str) -> dict[str, Any] | None:
        """The (first) order created with `external_id`."""
        with self.lock:
            return next((o for o in self.orders.values() if o["external_id"] == external_id), None)

    def advance(self, order_id: str, status: str, *, shipment: dict[str, str] | None = None) -> None:
        """Move an order on (e.g. to `in-production`, or `fulfilled` with a shipment)."""
        with self.lock:
            order = self.orders[order_id]
            order["status"] = status
            if shipment:
                order["shipments"].append(shipment)

    def changes(self) -> list[tuple[str, str]]:
        """(order id, status) of each order whose status moved since the last call: what Printify
        would send `order:updated` webhooks about (the bench delivers them, or drops them)."""
        moved = []
        with self.lock:
            for order_id in list(self.orders):
                status = self._order(order_id)["status"]  # type: ignore[index]  # listed from self.orders under the lock
                if self.announced.get(order_id) != status:
                    self.announced[order_id] = status
                    moved.append((order_id, status))
        return moved

    def webhook(self, order_id: str, topic: str = "order:updated") -> tuple[bytes, str]:
        """A signed webhook delivery about `order_id`: (body, X-Pfy-Signature)."""
        with self.lock:
            status = self.orders[order_id]["status"] if order_id in self.orders else "unknown"
        body = json.dumps(
            {
                "id": secrets.token_hex(16),
                "type": topic,
                "created_at": time.strftime("%Y-%m-%d %H:%M:%S+00:00"),
                "resource": {"id": order_id, "type": "order", "data": {"shop_id": int(self.shop_id), "status": status}},
            }
        ).encode()
        return body, sign_webhook(self.webhook_secret, body)

    async def deliver(self, url: str, order_id: str, topic: str = "order:updated") -> int:
        """POST a signed webhook to `url` (what Printify does); returns the status answered (0: dropped)."""
        if self.drop_webhooks and random.random() < self.drop_webhooks:
            with self.lock:
                self.dropped[order_id] += 1
            return 0
        body, signature = self.webhook(order_id, topic)
        async with aiohttp.ClientSession() as session:
            async with session.post(
                url, data=body, headers={"X-Pfy-Signature": signature, "Content-Type": "application/json"}
            ) as response:
                return response.status

    # --- the API ---
    def error(self, status: int, retry_after: float | None) -> Any:
        if status == 429:
            return {"status": "error", "code": 429, "message": "Too Many Attempts."}
        return {"status": "error", "code": 10000 + status, "message": "Operation failed."}

    def routes(self) -> list[web.RouteDef]:
        base = "/v1/shops/{shop}/orders"
        return [
            web.post(f"{base}.json", self.create),
            web.get(f"{base}.json", self.list_orders),
            web.get(f"{base}/{{id}}.json", self.get),
            web.post(f"{base}/{{id}}/send_to_production.json", self.send),
            web.post(f"{base}/{{id}}/cancel.json", self.cancel),
            web.get("/v1/shops/{shop}/products.json", self.list_products),
        ]

    def add_product(self, title: str, variants: list[tuple[int, int]]) -> str:
        """A product with (variant id, price in cents) variants; returns its id."""
        product_id = secrets.token_hex(12)
        with self.lock:
            self.products[product_id] = {
                "id": product_id,
                "title": title,
                "visible": True,
                "variants": [
                    {"id": vid, "title": f"variant {vid}", "price": price, "is_enabled": True, "sku": f"SKU{vid}"}
                    for vid, price in variants
                ],
            }
        return product_id

    async def list_products(self, request: web.Request) -> web.StreamResponse:
        if (failure := await self.inject("products", request)) is not None:
            return failure
        if (refused := self._check(request)) is not None:
            return refused
        page, limit = int(request.query.get("page", 1)), max(1, min(50, int(request.query.get("limit", 10))))
        with self.lock:
            products = list(self.products.values())
        last = max(1, -(-len(products) // limit))
        return web.json_response(
            {
                "current_page": page,
                "last_page": last,
                "total": len(products),
                "data": products[(page - 1) * limit : page * limit],
            }
        )

    def _check(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "Unauthenticated."}, status=401)
        if not request.headers.get("User-Agent"):
            return web.json_response({"error": "User-Agent header is required"}, status=403)
        if request.match_info["shop"] != self.shop_id:
            return web.json_response({"error": "Shop not found"}, status=404)
        return None

    def _order(self, order_id: str) -> dict[str, Any] | None:
        order = self.orders.get(order_id)
        if (
            order is not None
            and order["status"] == "pending"
            and time.monotonic() - self.created_at[order_id] >= self.pending_s
        ):
            order["status"] = "on-hold"  # Printify finished calculating costs
        if order is not None and self.production_s is not None and order_id in self.sent_at:
            self._produce(order, time.monotonic() - self.sent_at[order_id])
        return order

    def _produce(self, order: dict[str, Any], since_sent: float) -> None:
        """Move an order sent to production on by the clock (in production, then shipped with tracking)."""
        assert self.production_s is not None
        if since_sent >= 2 * self.production_s and order["status"] != "fulfilled":
            order["status"] = "fulfilled"
            order["shipments"].append(
                {
                    "carrier": "usps",
                    "number": f"9400{order['id'][:12]}",
                    "url": f"https://tools.usps.com/go/TrackConfirmAction?tLabels={order['id']}",
                }
            )
        elif since_sent >= self.production_s and order["status"] == "sending-to-production":
            order["status"] = "in-production"

    async def create(self, request: web.Request) -> web.StreamResponse:
        if (failure := await self.inject("create", request)) is not None:
            return failure
        if (refused := self._check(request)) is not None:
            return refused
        body = await request.json()
        if not body.get("line_items") or not body.get("address_to"):
            return web.json_response(
                {
                    "status": "error",
                    "code": 10100,
                    "message": "Validation failed.",
                    "errors": {"reason": "line_items and address_to are required"},
                },
                status=400,
            )
        order_id = secrets.token_hex(12)
        with self.lock:
            self.orders[order_id] = {
                "id": order_id,
                "external_id": str(body.get("external_id") or ""),
                "label": body.get("label"),
                "status": "pending",
                "line_items": body["line_items"],
                "address_to": body["address_to"],
                "shipments": [],
                "created_at": time.strftime("%Y-%m-%d %H:%M:%S+00:00"),
            }
            self.created_at[order_id] = time.monotonic()
            self.creates[self.orders[order_id]["external_id"]] += 1
        return web.json_response({"id": order_id})

    async def list_orders(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._check(request)) is not None:
            return refused
        page, limit = int(request.query.get("page", 1)), min(50, int(request.query.get("limit", 10)))
        with self.lock:
            newest = [self._order(i) for i in reversed(list(self.orders))]
        last = max(1, -(-len(newest) // limit))
        data = newest[(page - 1) * limit : page * limit]
        return web.json_response({"current_page": page, "last_page": last, "total": len(newest), "data": data})

    async def get(self, request: web.Request) -> web.StreamResponse:
        if (failure := await self.inject("get", request)) is not None:
            return failure
        if (refused := self._check(request)) is not None:
            return refused
        with self.lock:
            order = self._order(request.match_info["id"])
        return web.json_response(order) if order else web.json_response({"error": "Not found"}, status=404)

    async def send(self, request: web.Request) -> web.StreamResponse:
        if (failure := await self.inject("send", request)) is not None:
            return failure
        if (refused := self._check(request)) is not None:
            return refused
        with self.lock:
            order = self._order(request.match_info["id"])
            if order is None:
                return web.json_response({"error": "Not found"}, status=404)
            if order["status"] == "pending":
                return web.json_response({"code": 8502, "message": "Operation failed."}, status=400)
            if order["status"] not in ("on-hold", "payment-not-received"):
                return web.json_response({"code": 8501, "message": "Order is not on hold."}, status=400)
            order["status"] = "sending-to-production"
            self.sends[order["id"]] += 1
            self.sent_at[order["id"]] = time.monotonic()
        return web.json_response(order)

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._check(request)) is not None:
            return refused
        with self.lock:
            order = self._order(request.match_info["id"])
            if order is None or order["status"] not in ("on-hold", "payment-not-received", "pending"):
                return web.json_response({"code": 8501, "message": "Order can not be canceled."}, status=400)
            order["status"] = "canceled"
        return web.json_response(order)
