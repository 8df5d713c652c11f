"""Printify: create an order on hold, read it, send it to production; verify its webhooks."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from providers.errors import Busy, Permanent, Retryable
from providers.http import raise_for, request

NAME = "printify"
PENDING_CODE = 8502  # send_to_production while costs are still being computed


@dataclass
class Printify:
    """The orders endpoints of one shop (`PRINTIFY_SHOP_ID`)."""

    session: aiohttp.ClientSession
    token: str
    shop_id: str
    api_base: str = "https://api.printify.com"
    name: str = NAME

    def _url(self, path: str) -> str:
        return f"{self.api_base.rstrip('/')}/v1/shops/{self.shop_id}/{path}"

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        reply = await request(
            self.session, NAME, method, self._url(path), headers={"Authorization": f"Bearer {self.token}"}, **kwargs
        )
        if reply.status == 400 and reply.field("code") == PENDING_CODE:
            raise Busy(NAME, 2_000, "8502 the order is still being calculated")
        raise_for(NAME, reply, str(reply.field("message") or reply.field("error") or "error"))
        return reply.body

    async def create_order(self, body: Mapping[str, Any]) -> str:
        """Create an order (it waits on hold for send_to_production); returns Printify's id."""
        created = await self._call("POST", "orders.json", json=dict(body))
        order_id = created.get("id") if isinstance(created, Mapping) else None
        if not order_id:
            raise Retryable(NAME, "create answered without an order id")
        return str(order_id)

    async def get_order(self, order_id: str) -> dict[str, Any]:
        """The order as Printify has it now (status, shipments...)."""
        return dict(await self._call("GET", f"orders/{order_id}.json"))

    async def find_by_external_id(self, external_id: str, *, pages: int = 5) -> str | None:
        """The id of the order created with `external_id`, looking through the newest `pages` pages."""
        for page in range(1, pages + 1):
            listing = await self._call("GET", "orders.json", params={"page": page, "limit": 50})
            for order in listing.get("data") or []:
                if str(order.get("external_id")) == external_id:
                    return str(order["id"])
            if page >= int(listing.get("last_page") or 1):
                return None
        return None

    async def list_orders(self, page: int, *, limit: int = 50) -> tuple[list[dict[str, Any]], bool]:
        """One page of the shop's orders, newest first; whether a later page exists."""
        listing = await self._call("GET", "orders.json", params={"page": page, "limit": limit})
        return list(listing.get("data") or []), page < int(listing.get("last_page") or 1)

    async def list_products(self, page: int, *, limit: int = 50) -> tuple[list[dict[str, Any]], bool]:
        """One page of the shop's products with their variants and prices; whether a later page exists."""
        listing = await self._call("GET", "products.json", params={"page": page, "limit": limit})
        return list(listing.get("data") or []), page < int(listing.get("last_page") or 1)

    async def send_to_production(self, order_id: str) -> None:
        """Release the order to production (this charges the merchant)."""
        await self._call("POST", f"orders/{order_id}/send_to_production.json")

    async def cancel(self, order_id: str) -> None:
        """Cancel an order still on hold."""
        await self._call("POST", f"orders/{order_id}/cancel.json")


def verify_webhook(secret: str, body: bytes, header: str | None) -> bool:
    """True when `X-Pfy-Signature` is `sha256=<hex HMAC-SHA256(secret, raw body)>` (bare hex accepted)."""
    if not secret or not header:
        return False
    given = header.strip()
    given = given[len("sha256=") :] if given.startswith("sha256=") else given
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given.lower())


def sign_webhook(secret: str, body: bytes) -> str:
    """The `X-Pfy-Signature` value for `body` (fakes and tests)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def order_body(external_id: str, label: str, lines: list[Mapping[str, Any]], address: Mapping[str, str]) -> dict:
    """The create body: our order id as external_id, standard shipping, no Printify emails."""
    if not lines:
        raise Permanent(NAME, "no print-on-demand lines with a product and variant id")
    return {
        "external_id": external_id,
        "label": label,
        "line_items": [dict(line) for line in lines],
        "shipping_method": 1,
        "is_printify_express": False,
        "is_economy_shipping": False,
        "send_shipping_notification": False,
        "address_to": dict(address),
    }
