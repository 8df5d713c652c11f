"""Storefront events: their types, the body a storefront receives, and the delivery policy maths."""

from __future__ import annotations

import base64
import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EVENT_TYPES = (
    "item.approved",
    "item.available",
    "item.sold",
    "item.archived",
    "item.updated",
    "item.stock_changed",
    "order.status_changed",
    "collection.published",
)
MAX_EXCERPT = 300  # characters of a storefront's answer kept in the delivery log


@dataclass(frozen=True)
class StorefrontEvent:
    """One outbox row: what changed on which resource, the resource's sequence number, when."""

    id: int
    event_type: str
    resource: str
    resource_id: str
    seq: int
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Endpoint:
    """A storefront's webhook endpoint (the secret is whsec_ base64, as Standard Webhooks has it)."""

    id: int
    name: str
    url: str
    secret: str
    event_types: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None

    def wants(self, event_type: str) -> bool:
        """True when this endpoint subscribed to `event_type` (no types = every type)."""
        return not self.event_types or event_type in self.event_types


def message_id(event_id: int) -> str:
    """The webhook-id: the same on every attempt of an event, so a storefront can drop repeats."""
    return f"evt_{event_id}"


def event_body(event: StorefrontEvent) -> str:
    """The JSON a storefront receives: {type, timestamp, data}, data thin (ids, changed fields, seq)."""
    body = {
        "type": event.event_type,
        "timestamp": event.created_at.isoformat(),
        "data": {**event.data, "resource": event.resource, "seq": event.seq},
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str)


def unknown_types(types: list[str] | tuple[str, ...]) -> list[str]:
    """The names in `types` that are not event types."""
    return [t for t in types if t not in EVENT_TYPES]


def address_allowed(address: str, *, allow: str) -> bool:
    """May a delivery connect to `address`? allow: 'public' (default), 'loopback' (dev, tests), 'private'."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return allow in ("loopback", "private")
    if ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
        return allow == "private" and not (ip.is_multicast or ip.is_unspecified)
    return True


def should_disable(failing_for_s: float | None, *, disable_after_s: float) -> bool:
    """An endpoint failing without a single success for longer than `disable_after_s` is switched off."""
    return failing_for_s is not None and failing_for_s >= disable_after_s


def excerpt(raw: bytes) -> str:
    """The start of a storefront's answer, as text, for the delivery log."""
    return raw[:MAX_EXCERPT].decode("utf-8", errors="replace")


def retry_delay_ms(attempts: int, *, min_ms: int, max_ms: int, jitter: float) -> int:
    """Delay before attempt `attempts + 1`: doubling from `min_ms` up to `max_ms`; `jitter` (0-1) adds <= 50%."""
    base = min(max_ms, min_ms * 2 ** min(max(attempts - 1, 0), 40))
    return int(min(max_ms, base * (1 + jitter / 2)))


def new_secret(random_bytes: bytes) -> str:
    """A Standard Webhooks secret from 24+ random bytes: `whsec_` and their base64."""
    if len(random_bytes) < 24:
        raise ValueError("a secret needs at least 24 random bytes")
    return "whsec_" + base64.b64encode(random_bytes).decode()


def secret_valid(secret: str) -> bool:
    """True for `whsec_` followed by the base64 of at least 24 bytes."""
    if not secret.startswith("whsec_"):
        return False
    try:
        return len(base64.b64decode(secret[6:], validate=True)) >= 24
    except ValueError:
        return False
