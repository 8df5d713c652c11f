"""Stripe events that change an order after its checkout: read from plain mappings, no I/O.

Each event names its order by the Checkout Session (checkout.session.*) or by the payment
intent (payment_intent.*, charge.*); `order_ref` is that name, kept with an event that
arrives before its order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

PaymentChange = Literal["payment_failed", "expired", "refunded", "dispute_created", "dispute_closed"]
# the Stripe event types read here, and what each does to an order
CHANGES: dict[str, PaymentChange] = {
    "payment_intent.payment_failed": "payment_failed",
    "checkout.session.async_payment_failed": "payment_failed",
    "checkout.session.expired": "expired",
    "charge.refunded": "refunded",
    "charge.dispute.created": "dispute_created",
    "charge.dispute.closed": "dispute_closed",
}


@dataclass(frozen=True)
class PaymentEvent:
    """What an order-changing Stripe event says, whichever object it carries."""

    event_id: str
    change: PaymentChange
    session_id: str | None = None
    payment_intent: str | None = None
    amount: int | None = None  # the charge's amount (refunds) or the disputed amount
    amount_refunded: int | None = None
    refund_id: str | None = None
    dispute_id: str | None = None
    dispute_status: str | None = None
    dispute_reason: str | None = None
    failure: str | None = None  # why a payment failed, as Stripe words it

    @property
    def order_ref(self) -> str:
        """The session or payment intent id this event is about."""
        return str(self.session_id or self.payment_intent or "")

    @property
    def full_refund(self) -> bool:
        """True when the whole charge has been refunded."""
        return self.amount_refunded is not None and self.amount is not None and self.amount_refunded >= self.amount


def id_of(value: Any) -> str | None:
    """An expandable Stripe field's id (a plain id or an object with `id`)."""
    if isinstance(value, Mapping):
        return str(value.get("id")) if value.get("id") else None
    return str(value) if value else None


def parse_payment_event(event: Mapping[str, Any]) -> PaymentEvent | None:
    """The order change an event carries; None for a type that changes no order (or has no reference)."""
    change = CHANGES.get(str(event.get("type")))
    obj = (event.get("data") or {}).get("object") or {}
    if change is None or not isinstance(obj, Mapping):
        return None
    kind = str(obj.get("object") or "")
    base: dict[str, Any] = {"event_id": str(event["id"]), "change": change}
    if kind == "checkout.session":
        parsed = PaymentEvent(**base, session_id=id_of(obj.get("id")), payment_intent=id_of(obj.get("payment_intent")))
    elif kind == "payment_intent":
        error = obj.get("last_payment_error") or {}
        parsed = PaymentEvent(
            **base,
            payment_intent=id_of(obj.get("id")),
            amount=obj.get("amount"),
            failure=str(error.get("message") or error.get("code") or "declined")[:200],
        )
    elif kind == "charge":
        refunds = (obj.get("refunds") or {}).get("data") or []
        parsed = PaymentEvent(
            **base,
            payment_intent=id_of(obj.get("payment_intent")),
            amount=obj.get("amount"),
            amount_refunded=obj.get("amount_refunded"),
            refund_id=id_of(refunds[0]) if refunds else f"charge:{obj.get('id')}",
        )
    elif kind == "dispute":
        parsed = PaymentEvent(
            **base,
            payment_intent=id_of(obj.get("payment_intent")),
            amount=obj.get("amount"),
            dispute_id=id_of(obj.get("id")),
            dispute_status=str(obj.get("status") or ""),
            dispute_reason=str(obj.get("reason") or "")[:100],
        )
    else:
        return None
    return parsed if parsed.order_ref else None


def dispute_text(event: PaymentEvent, order_id: int, summary: str) -> dict[str, str]:
    """The admin alert of a dispute opened or closed."""
    if event.change == "dispute_created":
        return {
            "title": f"Order #{order_id}: payment disputed ({event.dispute_reason or 'no reason'})",
            "text": f"The buyer of order #{order_id} ({summary}) disputed the payment. The order is not"
            " released while it is held; answer the dispute in Stripe.",
        }
    return {
        "title": f"Order #{order_id}: dispute closed, {event.dispute_status}",
        "text": f"The dispute on order #{order_id} ({summary}) closed with outcome {event.dispute_status}.",
    }
