"""Ops tickets: what a ticket is, its thread, and the refund window rule. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

TicketKind = Literal["payment_failed", "dispute", "provider_rejected", "shipping_problem", "refund_request", "mismatch"]
TicketStatus = Literal["open", "waiting", "closed"]
KINDS: tuple[str, ...] = (
    "payment_failed",
    "dispute",
    "provider_rejected",
    "shipping_problem",
    "refund_request",
    "mismatch",
)
STATUSES: tuple[str, ...] = ("open", "waiting", "closed")


@dataclass(frozen=True)
class Interaction:
    """One entry of a ticket's thread."""

    id: int
    author: str
    action: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class Ticket:
    """A ticket and (when read one at a time) its thread."""

    id: int
    kind: str
    key: str
    subject: str
    order_id: int | None
    contact: str | None
    status: str
    assignee: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    thread: tuple[Interaction, ...] = ()


def within_refund_window(paid_at: datetime | None, now: datetime, window_days: float) -> bool:
    """True when a refund asked for at `now` falls inside the window after payment (auto-approved)."""
    return paid_at is not None and now - paid_at <= timedelta(days=window_days)
