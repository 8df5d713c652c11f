"""A fake Stripe API: events to retrieve, refunds with Idempotency-Key replay, and signed webhooks."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

import aiohttp
from aiohttp import web

from fakes.base import FakeServer
from providers.payments import sign_payload


class FakeStripe(FakeServer):
    """`GET /v1/events/{id}`, `POST /v1/refunds`, `GET /v1/refunds/{id}`, with Stripe's error shapes."""

    name = "stripe"

    def __init__(self, *, secret_key: str = "sk_test_fake", webhook_secret: str = "whsec_fake") -> None:
        super().__init__()
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.reset_state()

    def reset_state(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.charged: dict[str, int] = {}  # payment intent -> amount paid
        self.idempotency: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}  # completed Checkout Sessions, for listing
        self.emitted: list[dict[str, Any]] = []  # events Stripe would deliver on its own (charge.refunded)

    # --- building and signing events (tests, bench, dev) ---
    def checkout_completed(
        self,
        *,
        items: str,
        amount_total: int = 5000,
        email: str = "buyer@example.com",
        metadata: dict[str, str] | None = None,
        session_id: str | None = None,
        payment_status: str = "paid",
        kind: str = "archive",
    ) -> dict[str, Any]:
        """Register (and return) a `checkout.session.completed` event for `items` ("12,13x2")."""
        session_id = session_id or f"cs_test_{secrets.token_hex(8)}"
        intent = f"pi_{secrets.token_hex(8)}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "complete",
            "payment_status": payment_status,
            "amount_subtotal": amount_total,
            "amount_total": amount_total,
            "currency": "eur",
            "payment_intent": intent,
            "customer_email": email,
            "customer_details": {"email": email, "name": "Ada Buyer", "phone": None, "address": None},
            "metadata": {"type": kind, "items": items, **(metadata or {})},
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "collected_information": {
                "shipping_details": {
                    "name": "Ada Buyer",
                    "address": {
                        "line1": "1 Rue X",
                        "line2": None,
                        "city": "Paris",
                        "postal_code": "75001",
                        "state": None,
                        "country": "FR",
                    },
                }
            },
        }
        session["created"] = int(time.time())
        with self.lock:
            self.sessions[session_id] = session
        return self.add_event("checkout.session.completed", session, charged=(intent, amount_total))

    def add_event(
        self, event_type: str, obj: dict[str, Any], *, charged: tuple[str, int] | None = None
    ) -> dict[str, Any]:
        """Register an event around `obj` so `GET /v1/events/{id}` serves it."""
        event: dict[str, Any] = {
            "id": f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {"object": obj},
        }
        with self.lock:
            self.events[event["id"]] = event
            if charged:
                self.charged[charged[0]] = charged[1]
        return event

    def async_payment(self, completed: dict[str, Any], *, succeeded: bool) -> dict[str, Any]:
        """`checkout.session.async_payment_succeeded` / `_failed` for the session of `completed`."""
        session = {**completed["data"]["object"], "payment_status": "paid" if succeeded else "unpaid"}
        kind = "succeeded" if succeeded else "failed"
        with self.lock:
            self.sessions[session["id"]] = session
        charged = (session["payment_intent"], session["amount_total"]) if succeeded else None
        return self.add_event(f"checkout.session.async_payment_{kind}", session, charged=charged)

    def session_expired(self, completed: dict[str, Any] | None = None) -> dict[str, Any]:
        """`checkout.session.expired` (for the session of `completed`, or a session never seen)."""
        session = (
            dict(completed["data"]["object"])
            if completed
            else {
                "id": f"cs_test_{secrets.token_hex(8)}",
                "object": "checkout.session",
                "payment_intent": None,
                "metadata": {},
                "amount_total": 0,
            }
        )
        return self.add_event("checkout.session.expired", {**session, "status": "expired", "payment_status": "unpaid"})

    def payment_failed(
        self, payment_intent: str, *, amount: int = 5000, message: str = "Your card was declined."
    ) -> dict[str, Any]:
        """`payment_intent.payment_failed` with Stripe's `last_payment_error`."""
        intent = {
            "id": payment_intent,
            "object": "payment_intent",
            "amount": amount,
            "currency": "eur",
            "status": "requires_payment_method",
            "last_payment_error": {"type": "card_error", "code": "card_declined", "message": message},
        }
        return self.add_event("payment_intent.payment_failed", intent)

    def dashboard_refund(self, payment_intent: str, amount: int | None = None) -> dict[str, Any]:
        """A refund made in Stripe's dashboard: the refund recorded, and its `charge.refunded` event."""
        with self.lock:
            status, refund = self._refund({"payment_intent": payment_intent, "amount": amount or ""})
        if status != 200:
            raise ValueError(refund["error"]["message"])
        return self.charge_refunded_event(payment_intent)

    def dispute(
        self,
        payment_intent: str,
        *,
        status: str = "needs_response",
        reason: str = "fraudulent",
        dispute_id: str | None = None,
    ) -> dict[str, Any]:
        """`charge.dispute.created`, or `charge.dispute.closed` when `status` is an outcome (won, lost...)."""
        closed = status in ("won", "lost", "warning_closed")
        dispute = {
            "id": dispute_id or f"dp_{secrets.token_hex(8)}",
            "object": "dispute",
            "status": status,
            "reason": reason,
            "amount": self.charged.get(payment_intent, 0),
            "currency": "eur",
            "charge": f"ch_{payment_intent[3:]}",
            "payment_intent": payment_intent,
        }
        return self.add_event("charge.dispute.closed" if closed else "charge.dispute.created", dispute)

    def charge_refunded_event(self, payment_intent: str) -> dict[str, Any]:
        """Register the `charge.refunded` event of `payment_intent` as it stands (Stripe sends one per refund)."""
        with self.lock:
            paid = self.charged.get(payment_intent, 0)
            refunds = [r for r in self.refunds.values() if r["payment_intent"] == payment_intent]
        refunded = sum(r["amount"] for r in refunds)
        charge = {
            "id": f"ch_{payment_intent[3:]}",
            "object": "charge",
            "payment_intent": payment_intent,
            "amount": paid,
            "amount_refunded": refunded,
            "refunded": refunded >= paid,
            "currency": "eur",
            "refunds": {"object": "list", "data": sorted(refunds, key=lambda r: -r["created"])},
        }
        event = self.add_event("charge.refunded", charge)
        self.emitted.append(event)
        return event

    def signed(self, event: dict[str, Any], *, timestamp: int | None = None) -> tuple[bytes, str]:
        """The webhook body of `event` and its `Stripe-Signature` header."""
        body = json.dumps(event).encode()
        return body, sign_payload(body, self.webhook_secret, timestamp=timestamp)

    def refunded(self, payment_intent: str) -> int:
        """How much of `payment_intent` has been refunded."""
        with self.lock:
            return sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == payment_intent)

    # --- the API ---
    def error(self, status: int, retry_after: float | None) -> Any:
        kinds = {
            429: ("rate_limit", "rate_limit", "Too many requests hit the API too quickly."),
            400: ("invalid_request_error", "parameter_invalid", "Invalid request."),
            401: ("invalid_request_error", None, "Invalid API Key provided."),
        }
        kind, code, message = kinds.get(status, ("api_error", None, "An unknown error occurred."))
        return {"error": {"type": kind, "code": code, "message": message}}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/events/{id}", self.get_event),
            web.post("/v1/refunds", self.post_refund),
            web.get("/v1/refunds/{id}", self.get_refund),
            web.post("/_fake/checkout", self.fake_checkout),
            web.get("/v1/checkout/sessions", self.list_sessions),
        ]

    async def list_sessions(self, request: web.Request) -> web.StreamResponse:
        """Stripe's list: newest first, `created[gte]`, `limit` (<= 100), `starting_after` cursor."""
        if (failure := await self.inject("sessions", request)) is not None:
            return failure
        if not self._authorised(request):
            return self._unauthorised()
        since = int(request.query.get("created[gte]", 0))
        limit = max(1, min(100, int(request.query.get("limit", 10))))
        with self.lock:
            newest = [s for s in reversed(list(self.sessions.values())) if s["created"] >= since]
        after = request.query.get("starting_after")
        start = next((i + 1 for i, s in enumerate(newest) if s["id"] == after), 0) if after else 0
        page = newest[start : start + limit]
        return web.json_response(
            {"object": "list", "url": "/v1/checkout/sessions", "data": page, "has_more": start + limit < len(newest)}
        )

    async def fake_checkout(self, request: web.Request) -> web.StreamResponse:
        """Dev helper: `{"items": "12,13x2", "deliver_to": "http://127.0.0.1:8000/v1/webhooks/stripe"}`
        registers a paid checkout and delivers its signed webhook, as Stripe would."""
        body = await request.json()
        event = self.checkout_completed(
            items=str(body["items"]),
            amount_total=int(body.get("amount_total", 5000)),
            email=body.get("email", "buyer@example.com"),
        )
        payload, signature = self.signed(event)
        async with aiohttp.ClientSession() as session:
            async with session.post(
                body.get("deliver_to", "http://127.0.0.1:8000/v1/webhooks/stripe"),
                data=payload,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            ) as answer:
                return web.json_response({"event": event["id"], "delivered": answer.status})

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.secret_key}"

    def _unauthorised(self) -> web.Response:
        return web.json_response(self.error(401, None), status=401)

    async def get_event(self, request: web.Request) -> web.StreamResponse:
        if (failure := await self.inject("event", request)) is not None:
            return failure
        if not self._authorised(request):
            return self._unauthorised()
        event = self.events.get(request.match_info["id"])
        if event is None:
            return web.json_response(
                {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such event"}},
                status=404,
            )
        return web.json_response(event)

    async def get_refund(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return self._unauthorised()
        refund = self.refunds.get(request.match_info["id"])
        return web.json_response(refund) if refund else web.json_response(self.error(404, None), status=404)

    async def post_refund(self, request: web.Request) -> web.StreamResponse:
        if (failure := await self.inject("refund", request)) is not None:
            return failure
        if not self._authorised(request):
            return self._unauthorised()
        form = dict(await request.post())
        key = request.headers.get("Idempotency-Key")
        digest = hashlib.sha256(json.dumps(form, sort_keys=True).encode()).hexdigest()
        with self.lock:
            if key and key in self.idempotency:
                seen_digest, status, body = self.idempotency[key]
                if seen_digest != digest:
                    return web.json_response(
                        {
                            "error": {
                                "type": "idempotency_error",
                                "message": (
                                    "Keys for idempotent requests can only be used with the same parameters"
                                    " they were first used with."
                                ),
                            }
                        },
                        status=400,
                    )
                return web.json_response(body, status=status, headers={"Idempotent-Replayed": "true"})
            status, body = self._refund(form)
            if key:
                self.idempotency[key] = (digest, status, body)
        if status == 200:
            self.charge_refunded_event(body["payment_intent"])
        return web.json_response(body, status=status)

    def _refund(self, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        intent = str(form.get("payment_intent") or "")
        paid = self.charged.get(intent)
        if paid is None:
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "message": f"No such payment_intent: '{intent}'",
                }
            }
        remaining = paid - sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent)
        amount = int(form["amount"]) if form.get("amount") else remaining
        if remaining <= 0:
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "charge_already_refunded",
                    "message": "Charge has already been refunded.",
                }
            }
        if amount > remaining:
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "amount_too_large",
                    "message": "Refund amount is greater than unrefunded amount on charge.",
                }
            }
        refund: dict[str, Any] = {
            "id": f"re_{secrets.token_hex(12)}",
            "object": "refund",
            "amount": amount,
            "currency": "eur",
            "payment_intent": intent,
            "status": "succeeded",
            "reason": form.get("reason"),
            "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        return 200, refund
