"""Notifications: the templates, their rendering, and when a send may (not) happen.

Templates are `string.Template` text kept here in the repository, so rendering is pure and
a missing field fails loudly instead of sending a half-filled message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from string import Template
from typing import Any, Literal

Channel = Literal["email", "push", "chat"]
CHANNELS: tuple[Channel, ...] = ("email", "push", "chat")
# channel -> the provider that carries it
PROVIDER_OF: dict[str, str] = {"email": "resend", "push": "pushover", "chat": "telegram"}
# providers that honour an idempotency key, so a retry after a timeout cannot double-send
IDEMPOTENT_PROVIDERS = frozenset({"resend", "console"})


# What `string.Template` reads without error: text with no NUL (Postgres refuses it) whose every "$"
# starts $$, $name or ${name}. The API's schema states these; the server checks with Template itself.
_PLACEHOLDER = r"\$\$|\$[A-Za-z_][A-Za-z0-9_]*|\$\{[A-Za-z_][A-Za-z0-9_]*\}"
_SPACE = " \t\n\x0b\x0c\r"  # ASCII white space: a body of nothing else is empty
TEMPLATE_TEXT = rf"^(?:[^$\x00]|{_PLACEHOLDER})*$"
TEMPLATE_BODY = rf"^[ \t\n\x0b\x0c\r]*(?:[^$\x00 \t\n\x0b\x0c\r]|{_PLACEHOLDER})(?:[^$\x00]|{_PLACEHOLDER})*$"


class TemplateError(ValueError):
    """An unknown template, or data missing a field the template needs."""


@dataclass(frozen=True)
class MessageTemplate:
    """A subject line and a body, each a `string.Template`."""

    subject: str
    body: str


TEMPLATES: dict[str, MessageTemplate] = {
    "order_confirmation": MessageTemplate(
        "Your order #$order_id is confirmed",
        "Thank you for your order #$order_id ($total).\n\n$items\n\n"
        "We hold it for $hold_minutes minutes before it goes to production; write to us within that time "
        "to change or cancel it.",
    ),
    "order_cancelled": MessageTemplate(
        "Your order #$order_id was cancelled",
        "Your order #$order_id was cancelled and $total is on its way back to your card.",
    ),
    "order_refunded": MessageTemplate(
        "Your refund for order #$order_id",
        "We refunded $total for order #$order_id. It reaches your card within 5-10 days.",
    ),
    "order_payment_failed": MessageTemplate(
        "Your payment for order #$order_id did not go through",
        "The payment for order #$order_id ($total) failed: $reason. Nothing was charged and the order is"
        " cancelled; you are welcome to order again.",
    ),
    "order_sold_out": MessageTemplate(
        "Sorry: order #$order_id could not be fulfilled",
        "Someone secured $items a moment before you. We refunded $total in full.",
    ),
    "order_in_production": MessageTemplate(
        "Order #$order_id is in production",
        "Your order #$order_id is being made now. We write again when it ships.",
    ),
    "order_dispatched": MessageTemplate(
        "Order #$order_id is on its way",
        "Your order #$order_id has shipped with $carrier, tracking number $tracking_number.\n$tracking_url",
    ),
    "membership_welcome": MessageTemplate(
        "Welcome to the Society",
        "Your membership is active: 10% off every piece, saved looks and priority sourcing.",
    ),
    "tap_to_secure": MessageTemplate(
        "Tap to secure: $title",
        'Order #$order_id is out of its hold. Secure "$title" now ($price):\n$source_url',
    ),
    "race_lost": MessageTemplate(
        "Sold twice: order #$order_id refunded",
        "Order #$order_id lost the race for $items; it was refunded automatically ($total).",
    ),
    "release_failed": MessageTemplate(
        "Order #$order_id could not be released",
        "Order #$order_id stopped at release and needs you: $reason",
    ),
    "ops_message": MessageTemplate("$title", "$text"),
}


@dataclass(frozen=True)
class Rendered:
    """A message ready for a provider."""

    subject: str
    text: str


def render(template: str, data: Mapping[str, Any], stored: MessageTemplate | None = None) -> Rendered:
    """Fill `template` (an edited version `stored`, else the code default) with `data`; TemplateError names a gap."""
    found = stored or TEMPLATES.get(template)
    if found is None:
        raise TemplateError(f"unknown template {template!r} (known: {', '.join(sorted(TEMPLATES))})")
    values = {str(k): "" if v is None else str(v) for k, v in data.items()}
    try:
        return Rendered(Template(found.subject).substitute(values), Template(found.body).substitute(values))
    except KeyError as missing:
        raise TemplateError(f"template {template!r} needs field {missing.args[0]!r}") from None
    except ValueError as error:
        raise TemplateError(f"template {template!r} is malformed: {error}") from None


def fields_of(found: MessageTemplate) -> set[str]:
    """The fields a template's subject and body use; TemplateError when either is malformed."""
    names: set[str] = set()
    for text in (found.subject, found.body):
        for match in Template.pattern.finditer(text):
            if match.group("invalid") is not None:
                at = match.start("invalid")
                raise TemplateError(f"malformed placeholder at position {at}: write $field or ${{field}}")
            name = match.group("named") or match.group("braced")
            if name:
                names.add(name)
    return names


def required_fields(template: str, stored: MessageTemplate | None = None) -> set[str]:
    """The fields `template` needs (for validating requests before they are queued)."""
    found = stored or TEMPLATES.get(template)
    if found is None:
        raise TemplateError(f"unknown template {template!r}")
    return fields_of(found)


# fields every reminder send fills in itself (domain.reminders.message_data)
PROVIDED_FIELDS = frozenset({"occurrence", "days_before"})


def check_edit(template: str, edit: MessageTemplate) -> set[str]:
    """The fields an edited version needs; TemplateError when it is malformed or empty, or when it
    needs a field the code default's senders never provide (they would fail at send time)."""
    if not edit.body.strip(_SPACE):
        raise TemplateError("the body is empty")
    needed = fields_of(edit)
    default = TEMPLATES.get(template)
    if default is not None:
        unknown = needed - fields_of(default) - PROVIDED_FIELDS
        if unknown:
            raise TemplateError(
                f"{template!r} is sent with {', '.join(sorted(fields_of(default)))}; "
                f"no sender provides {', '.join(sorted(unknown))}"
            )
    return needed


Decision = Literal["send", "done", "busy", "maybe_sent", "skipped"]


def decide(status: str, lease_until: datetime | None, now: datetime, *, idempotent: bool) -> Decision:
    """Whether this attempt may call the provider, given the stored notification's state.

    `sent` is final. `sending` with a live lease is another attempt in flight. A lapsed
    `sending` is an attempt that died mid-call: safe to repeat only when the provider
    dedupes by idempotency key; otherwise it may have been sent, and it never is again.
    """
    if status in ("sent", "skipped"):
        return "done" if status == "sent" else "skipped"
    if status == "unknown":
        return "maybe_sent"
    if status == "sending":
        if lease_until is not None and lease_until > now:
            return "busy"
        return "send" if idempotent else "maybe_sent"
    return "send"  # pending, or failed before (a failed send never reached the recipient)


def normalise_recipient(channel: str, recipient: str) -> str:
    """The form opt-outs and records use (emails compare case-insensitively)."""
    recipient = recipient.strip()
    return recipient.lower() if channel == "email" else recipient
