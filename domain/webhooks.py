"""Provider events Backroom keeps because they name an order it does not know. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Source = Literal["stripe", "printify"]
SOURCES: tuple[str, ...] = ("stripe", "printify")
RefKind = Literal["checkout_session", "payment_intent", "printify_order", "unknown"]


def ref_kind(source: str, ref: str | None) -> RefKind:
    """What kind of object a kept event names: Stripe ids carry their kind as a prefix."""
    if not ref:
        return "unknown"
    if source == "printify":
        return "printify_order"
    if ref.startswith("cs_"):
        return "checkout_session"
    if ref.startswith("pi_"):
        return "payment_intent"
    return "unknown"


@dataclass(frozen=True)
class UnmatchedEvent:
    """An event kept because it names no known order: where from, which, what it named, when it came."""

    id: int
    source: str
    event_id: str
    event_type: str
    received_at: datetime
    order_ref: str
    refers_to: RefKind
