"""/v1/webhooks: Stripe and Printify deliveries, verified on the raw body, enqueued once by event id.

No bearer token here: the signature is the authentication. A bad signature is 400 with
nothing enqueued; an unreachable Redis is 503 so the provider delivers again later.
"""

from __future__ import annotations

import json
from typing import Any

import dramatiq
from quart import Blueprint, request
from quart_schema import hide

from actors.orders import handle_printify_event, handle_stripe_event
from config.settings import get_settings
from providers.payments import InvalidSignature, verify_event
from providers.printify import verify_webhook
from web.enqueue import BROKER_DOWN, send
from web.errors import problem

blueprint = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks")
PRINTIFY_ORDER_TOPICS = (
    "order:updated",
    "order:sent-to-production",
    "order:shipment:created",
    "order:shipment:delivered",
)


@blueprint.post("/stripe")
@hide
async def stripe_webhook() -> Any:
    """Verify a Stripe delivery and enqueue `handle_stripe_event` keyed by its event id."""
    secret = get_settings().stripe_webhook_secret
    if secret is None or not secret.get_secret_value():
        return problem(503, "stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET)")
    body = await request.get_data(cache=True, as_text=False, parse_form_data=False)  # bytes, not text
    try:
        event = verify_event(body, request.headers.get("Stripe-Signature"), secret.get_secret_value())
    except InvalidSignature as error:
        return problem(400, f"invalid signature: {error}")
    if not isinstance(event.get("id"), str):
        return problem(400, "the event has no id")
    return await _enqueue(handle_stripe_event, f"stripe:{event['id']}", event["id"])


@blueprint.post("/printify")
@hide
async def printify_webhook() -> Any:
    """Verify a Printify delivery (X-Pfy-Signature) and enqueue `handle_printify_event` for order topics."""
    secret = get_settings().printify_webhook_secret
    if secret is None or not secret.get_secret_value():
        return problem(503, "printify webhooks are not configured (PRINTIFY_WEBHOOK_SECRET)")
    body = await request.get_data(cache=True, as_text=False, parse_form_data=False)
    if not verify_webhook(secret.get_secret_value(), body, request.headers.get("X-Pfy-Signature")):
        return problem(400, "invalid signature")
    try:
        envelope = json.loads(body)
        event_id, topic = str(envelope["id"]), str(envelope["type"])
        resource_id = str(envelope["resource"]["id"])
    except (ValueError, KeyError, TypeError):
        return problem(400, "not a Printify webhook envelope (id, type, resource.id)")
    if topic not in PRINTIFY_ORDER_TOPICS:
        return {"received": True, "ignored": topic}, 200
    return await _enqueue(handle_printify_event, f"printify:{event_id}", event_id, resource_id, topic)


async def _enqueue(actor: dramatiq.Actor, unique_key: str, *args: Any) -> Any:
    try:
        message = await send(actor, args=args, unique_key=unique_key)
    except BROKER_DOWN:
        return problem(503, "the job queue is unreachable; deliver again later", headers={"Retry-After": "30"})
    return {"received": True, "job_id": message.message_id}, 200
