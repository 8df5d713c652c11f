"""Orders: reading a paid Checkout Session, the hold, and the rules of each status change.

Pure: a Stripe session comes in as a plain mapping, times are passed in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

CheckoutType = Literal["goods", "membership"]
# metadata keys that steer the order; every other key is attribution (session, creative, ...)
_STEERING = {"type", "items", "profile_email"}
MEMBERSHIP_TYPES = {"membership", "society"}
# forward-only progress after release; a late or duplicate webhook never moves an order back
_PROGRESS = {"released": 0, "in_production": 1, "dispatched": 2}
PRINTIFY_RELEASED = {
    "sending-to-production",
    "in-production",
    "fulfilled",
    "partially-fulfilled",
    "checking-sending-to-production",
    "callback-received",
}
PRINTIFY_WAITING = {"pending"}
PRINTIFY_SENDABLE = {"on-hold", "payment-not-received"}
PRINTIFY_DEAD = {"canceled", "cancelled"}


class InvalidCheckout(ValueError):
    """The session cannot become an order (bad metadata, unpaid, no items)."""


@dataclass(frozen=True)
class CheckoutLine:
    """One purchased item and how many."""

    item_id: int
    quantity: int = 1


@dataclass(frozen=True)
class Checkout:
    """What an order needs from a completed Checkout Session."""

    session_id: str
    type: CheckoutType
    payment_intent: str | None
    email: str | None
    name: str | None
    currency: str | None
    amount_total: int | None
    amount_subtotal: int | None
    shipping_cents: int | None
    shipping: dict[str, Any] | None
    attribution: dict[str, str]
    lines: tuple[CheckoutLine, ...] = field(default_factory=tuple)
    profile_email: str | None = None
    paid: bool = True  # False: a completed checkout whose asynchronous payment is still processing


def parse_items(raw: str | None) -> tuple[CheckoutLine, ...]:
    """`items` metadata: a JSON list of {"id", "qty"} or "12,13x2" (id, optional x quantity)."""
    if not raw or not raw.strip():
        return ()
    text = raw.strip()
    try:
        if text.startswith("["):
            lines = [CheckoutLine(int(entry["id"]), int(entry.get("qty", 1))) for entry in json.loads(text)]
        else:
            lines = []
            for part in filter(None, (p.strip() for p in text.split(","))):
                item, _, qty = part.partition("x")
                lines.append(CheckoutLine(int(item), int(qty or 1)))
    except (ValueError, TypeError, KeyError) as error:
        raise InvalidCheckout(f"unreadable items metadata {raw[:80]!r}: {error}") from None
    if any(line.quantity < 1 or line.item_id < 1 for line in lines):
        raise InvalidCheckout("items metadata has a non-positive id or quantity")
    return _merge(lines)


def _merge(lines: list[CheckoutLine]) -> tuple[CheckoutLine, ...]:
    merged: dict[int, int] = {}
    for line in lines:
        merged[line.item_id] = merged.get(line.item_id, 0) + line.quantity
    return tuple(CheckoutLine(item, qty) for item, qty in merged.items())


def parse_checkout(session: Mapping[str, Any], *, allow_unpaid: bool = False) -> Checkout:
    """Read a completed Checkout Session; InvalidCheckout when it cannot be an order.

    With `allow_unpaid`, a completed session whose asynchronous payment is still processing
    is read too (`paid=False`): its order waits for the payment with its items claimed.
    """
    paid = session.get("payment_status") in ("paid", "no_payment_required")
    pending = allow_unpaid and session.get("payment_status") == "unpaid" and session.get("status") == "complete"
    if not paid and not pending:
        raise InvalidCheckout(f"session is not paid (payment_status={session.get('payment_status')!r})")
    metadata = {str(k): str(v) for k, v in (session.get("metadata") or {}).items()}
    kind: CheckoutType = "membership" if metadata.get("type", "").lower() in MEMBERSHIP_TYPES else "goods"
    details = session.get("customer_details") or {}
    email = details.get("email") or session.get("customer_email")
    lines = parse_items(metadata.get("items"))
    if kind == "goods" and not lines:
        raise InvalidCheckout("a goods checkout without items metadata")
    collected = session.get("collected_information") or {}
    totals = session.get("total_details") or {}
    currency = session.get("currency")
    return Checkout(
        session_id=str(session["id"]),
        type=kind,
        payment_intent=_id_of(session.get("payment_intent")),
        email=email,
        name=details.get("name"),
        currency=currency.upper() if currency else None,
        amount_total=session.get("amount_total"),
        amount_subtotal=session.get("amount_subtotal"),
        shipping_cents=totals.get("amount_shipping"),
        shipping=collected.get("shipping_details"),
        attribution={k: v for k, v in metadata.items() if k not in _STEERING},
        lines=lines,
        profile_email=metadata.get("profile_email") or email,
        paid=paid,
    )


def _id_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return str(value.get("id")) if value.get("id") else None
    return str(value) if value else None


@dataclass(frozen=True)
class PricedItem:
    """What one item costs now, as the shop lists it."""

    price_cents: int | None
    currency: str | None


def payment_mismatch(checkout: Checkout, items: Mapping[int, PricedItem]) -> str | None:
    """Why the paid amount or currency does not match what the checkout buys (None: it matches).

    The items' subtotal is compared (Stripe's `amount_subtotal`: before discounts, shipping
    and tax); lines for unknown items are left to the claims (they cancel the order).
    """
    expected, currencies = 0, set()
    for line in checkout.lines:
        item = items.get(line.item_id)
        if item is None:
            continue
        if item.price_cents is None:
            return f"item {line.item_id} has no price"
        expected += item.price_cents * line.quantity
        currencies.add((item.currency or "").upper())
    paid = checkout.amount_subtotal if checkout.amount_subtotal is not None else checkout.amount_total
    if currencies and currencies != {checkout.currency}:
        return f"paid in {checkout.currency or '?'}, the items are priced in {', '.join(sorted(currencies))}"
    if currencies and paid != expected:
        return f"paid {money(paid, checkout.currency)} for items priced {money(expected, checkout.currency)}"
    return None


def hold_until(now: datetime, hold_minutes: float) -> datetime:
    """When the hold of an order created at `now` ends."""
    return now + timedelta(minutes=hold_minutes)


def delay_ms(now: datetime, until: datetime) -> int:
    """Milliseconds from `now` to `until` (0 when past)."""
    return max(0, int((until - now).total_seconds() * 1000))


def may_progress(current: str, target: str) -> bool:
    """True when a released order may move from `current` to `target` (forward only)."""
    return current in _PROGRESS and target in _PROGRESS and _PROGRESS[target] > _PROGRESS[current]


PrintifyStep = Literal["create", "wait", "send", "done", "dead"]


def printify_step(printify_status: str | None) -> PrintifyStep:
    """What the release does next given the Printify order's status (None: no order yet)."""
    if printify_status is None:
        return "create"
    if printify_status in PRINTIFY_WAITING:
        return "wait"
    if printify_status in PRINTIFY_SENDABLE:
        return "send"
    if printify_status in PRINTIFY_DEAD:
        return "dead"
    if printify_status in PRINTIFY_RELEASED or printify_status == "has-issues":
        return "done"
    return "wait"  # an unknown transitional status: look again later


def status_from_printify(printify_status: str, shipments: list[Mapping[str, Any]]) -> str | None:
    """The order status a Printify order implies after release (None: nothing to change)."""
    if shipments or printify_status in ("fulfilled", "partially-fulfilled"):
        return "dispatched"
    if printify_status in ("sending-to-production", "in-production", "checking-sending-to-production"):
        return "in_production"
    return None


def tracking_from_printify(order: Mapping[str, Any]) -> dict[str, str] | None:
    """Carrier, number and URL of the first shipment of a Printify order, if any."""
    for shipment in order.get("shipments") or []:
        carrier = shipment.get("carrier")
        if isinstance(carrier, Mapping):  # the webhook shape: carrier{code, tracking_number, tracking_url}
            return {
                "carrier": str(carrier.get("code") or ""),
                "number": str(carrier.get("tracking_number") or ""),
                "url": str(carrier.get("tracking_url") or ""),
            }
        return {
            "carrier": str(carrier or ""),
            "number": str(shipment.get("number") or ""),
            "url": str(shipment.get("url") or ""),
        }
    return None


def printify_address(shipping: Mapping[str, Any] | None, email: str | None) -> dict[str, str]:
    """Printify's `address_to` from Stripe's `collected_information.shipping_details`."""
    shipping = shipping or {}
    address = shipping.get("address") or {}
    first, _, last = str(shipping.get("name") or "").strip().partition(" ")
    return {
        "first_name": first,
        "last_name": last,
        "email": email or "",
        "country": address.get("country") or "",
        "region": address.get("state") or "",
        "address1": address.get("line1") or "",
        "address2": address.get("line2") or "",
        "city": address.get("city") or "",
        "zip": address.get("postal_code") or "",
    }


def money(cents: int | None, currency: str | None) -> str:
    """`12.50 EUR` for templates."""
    if cents is None:
        return "?"
    return f"{cents / 100:.2f} {currency or ''}".strip()


@dataclass(frozen=True)
class OrderLine:
    """One line of an order as stored."""

    id: int
    item_id: int | None
    kind: str
    quantity: int
    unit_price_cents: int
    title: str | None


@dataclass(frozen=True)
class Order:
    """An order as stored (never the items' private source URLs)."""

    id: int
    status: str
    stripe_session_id: str
    stripe_payment_intent: str | None
    hold_until: datetime | None
    amount_total_cents: int | None
    currency: str | None
    customer_email: str | None
    customer_name: str | None
    shipping: dict[str, Any] | None
    metadata: dict[str, Any]
    cancel_reason: str | None
    printify_order_id: str | None
    printify_requested_at: datetime | None
    printify_status: str | None
    tracking: dict[str, Any] | None
    stripe_refund_id: str | None
    restocked_at: datetime | None
    release_started_at: datetime | None
    released_at: datetime | None
    refunded_at: datetime | None
    created_at: datetime
    lines: tuple[OrderLine, ...] = ()
    review_reason: str | None = None  # why a paid order waits for an admin (status needs_review)
    paid_at: datetime | None = None
    refunded_cents: int | None = None
    dispute_id: str | None = None
    dispute_status: str | None = None

    def summary(self) -> str:
        """`2 x Tee, 1 x Jacket` for messages."""
        return ", ".join(f"{line.quantity} x {line.title or f'item {line.item_id}'}" for line in self.lines)

    def template_data(self, hold_minutes: float | None = None) -> dict[str, Any]:
        """The fields order templates use."""
        data: dict[str, Any] = {
            "order_id": self.id,
            "total": money(self.amount_total_cents, self.currency),
            "items": self.summary(),
        }
        if hold_minutes is not None:
            data["hold_minutes"] = f"{hold_minutes:g}"
        return data


@dataclass(frozen=True)
class ReleaseLine:
    """What the release needs of one line, its item's private source URL included (never logged)."""

    line_id: int
    item_id: int | None
    kind: str
    quantity: int
    title: str | None
    unit_price_cents: int
    source_url: str | None
    attributes: dict[str, Any]

    def printify_line(self) -> dict[str, Any] | None:
        """Printify's line item (product and variant ids from the item's attributes), or None."""
        product, variant = self.attributes.get("printify_product_id"), self.attributes.get("printify_variant_id")
        if self.kind != "print_on_demand" or not product or not variant:
            return None
        return {"product_id": str(product), "variant_id": int(variant), "quantity": self.quantity}


def progress_sources(target: str) -> list[str]:
    """The statuses an order may move to `target` from (released -> in_production -> dispatched)."""
    return [status for status in _PROGRESS if may_progress(status, target)]
