"""Stripe through its own library: webhook signatures, events and refunds (async, idempotent)."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

import aiohttp
import stripe

from providers.errors import Permanent, RateLimited, Retryable
from providers.http import retry_after_ms

if TYPE_CHECKING:  # stripe's request parameter types, for the checker only
    from stripe.params import RefundCreateParams
    from stripe.params.checkout import SessionListParams

NAME = "stripe"
TOLERANCE_S = 300
T = TypeVar("T")


class InvalidSignature(ValueError):
    """The payload is not signed by our webhook secret (or is older than the tolerance)."""


def verify_event(payload: bytes, header: str | None, secret: str, *, tolerance_s: int = TOLERANCE_S) -> dict:
    """The verified event as a dict; InvalidSignature for a bad/missing/stale signature or bad JSON."""
    if not header:
        raise InvalidSignature("missing Stripe-Signature header")
    try:
        event = stripe.Webhook.construct_event(payload, header, secret, tolerance=tolerance_s)
    except stripe.SignatureVerificationError as error:
        raise InvalidSignature(str(error).split("\n")[0]) from None
    except ValueError as error:
        raise InvalidSignature(f"unreadable payload: {error}") from None
    # Stripe's library refuses only stale timestamps; one from the future is refused the same way
    if signed_at(header) > time.time() + tolerance_s:
        raise InvalidSignature("Timestamp outside the tolerance zone (in the future)")
    return event.to_dict()


def signed_at(header: str) -> int:
    """The `t=` timestamp of a `Stripe-Signature` header (0 when absent or unreadable)."""
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            return int(value)
    return 0


def sign_payload(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header for `payload` (fakes, tests and the bench)."""
    text = payload.decode() if isinstance(payload, bytes) else payload
    return stripe.WebhookSignature.generate_signature_header(text, secret, timestamp=timestamp)


class Stripe:
    """The few API calls Backroom makes, on the process's aiohttp session, retries left to the job."""

    name = NAME

    def __init__(self, session: aiohttp.ClientSession, secret_key: str, api_base: str | None = None) -> None:
        http = stripe.AIOHTTPClient(session=session, timeout=30)
        self.client = stripe.StripeClient(
            secret_key,
            http_client=http,
            max_network_retries=0,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
        )

    async def retrieve_event(self, event_id: str) -> dict:
        """The event as Stripe stores it (the truth; a webhook body is only a hint)."""
        event = await _call(self.client.v1.events.retrieve_async(event_id))
        return event.to_dict()

    async def refund(
        self, payment_intent: str, *, amount: int | None, idempotency_key: str, metadata: dict[str, str]
    ) -> str:
        """Refund a payment (all of it when `amount` is None); the key makes a repeat return the same refund."""
        params: RefundCreateParams = {
            "payment_intent": payment_intent,
            "metadata": metadata,
            "reason": "requested_by_customer",
        }
        if amount is not None:
            params["amount"] = amount
        try:
            refund = await _call(self.client.v1.refunds.create_async(params, {"idempotency_key": idempotency_key}))
        except Permanent as error:
            if "charge_already_refunded" in error.reason:
                return "already_refunded"
            raise
        return str(refund.id)

    async def list_sessions(
        self, *, created_gte: int, starting_after: str | None = None, limit: int = 100
    ) -> tuple[list[dict], str | None]:
        """One page of Checkout Sessions created since `created_gte`, newest first; the next page's cursor."""
        params: SessionListParams = {"created": {"gte": created_gte}, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        page = await _call(self.client.v1.checkout.sessions.list_async(params))
        sessions = [session.to_dict() for session in page.data]
        return sessions, (str(sessions[-1]["id"]) if page.has_more and sessions else None)


async def _call(awaitable: Awaitable[T]) -> T:
    """Await a Stripe call, translating its errors to retryable / rate-limited / permanent."""
    try:
        return await awaitable
    except stripe.RateLimitError as error:
        raise RateLimited(NAME, retry_after_ms(dict(error.headers or {}), 1_000)) from None
    except stripe.APIConnectionError as error:
        raise Retryable(NAME, f"connection failed ({type(error).__name__})") from None
    except stripe.IdempotencyError as error:
        if error.http_status == 409:
            raise Retryable(NAME, "409 the same idempotency key is in flight", 1_000) from None
        raise Permanent(NAME, _reason(error), error.http_status) from None
    except stripe.StripeError as error:
        status = error.http_status or 0
        if status >= 500 or status in (408, 409, 425):
            raise Retryable(NAME, f"{status} {_reason(error)}") from None
        raise Permanent(NAME, _reason(error), status or None) from None


def _reason(error: stripe.StripeError) -> str:
    code = getattr(error, "code", None)
    text = (error.user_message or str(error) or "error").split("\n")[0][:300]
    return f"{code}: {text}" if code else text
