"""/v1/integrations/payload: Payload CMS hooks (Gifter's mirroring contract), verified, enqueued once by event id.

No bearer token: Payload authenticates with the shared secret (`X-Internal-Webhook-Secret`) or
an HMAC-SHA256 of the raw body (`X-Signature`, hex, `sha256=` optional). The event id is
`X-Event-Id`, else the body's `eventId`, else the body's sha256 (an identical redelivery is the
same event). The body is validated here and handed whole to the actor, which stores it once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import Any

import dramatiq
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Blueprint, request
from quart_schema import document_response, hide, tag, validate_querystring

from actors.catalog import add_seed, add_seed_upload, mirror_brand, mirror_order_status, mirror_product
from config.settings import get_settings
from domain.catalog import BrandChanged, OrderStatusChanged, ProductChanged
from media.images import ImageRejected, probe
from media.store import open_store
from web.auth import require
from web.bodies import validate_body
from web.enqueue import BROKER_DOWN, enqueue, send
from web.errors import document_errors, field_errors, problem
from web.openapi import document_binary_body
from web.schemas import TEXT, Accepted

log = logging.getLogger(__name__)
blueprint = Blueprint("catalog", __name__, url_prefix="/v1/integrations/payload")
MAX_BODY = 512 * 1024
KINDS: dict[str, tuple[type[BaseModel], dramatiq.Actor]] = {
    "product-changed": (ProductChanged, mirror_product),
    "brand-changed": (BrandChanged, mirror_brand),
    "order-status-changed": (OrderStatusChanged, mirror_order_status),
}


def authentic(secret: str, body: bytes) -> bool:
    """The shared-secret header matches, or the HMAC signature of the body does."""
    given = request.headers.get("X-Internal-Webhook-Secret")
    if given is not None and hmac.compare_digest(given.encode(), secret.encode()):
        return True
    signature = (request.headers.get("X-Signature") or "").removeprefix("sha256=").lower()
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return bool(signature) and hmac.compare_digest(signature, expected)


def event_id_of(body: bytes, parsed: dict[str, Any]) -> str:
    """X-Event-Id, else the body's eventId, else the body's sha256."""
    given = request.headers.get("X-Event-Id") or parsed.get("eventId")
    if isinstance(given, str) and 0 < len(given) <= 200:
        return given
    return "sha256:" + hashlib.sha256(body).hexdigest()


@blueprint.post("/<kind>")
@hide
async def payload_hook(kind: str) -> Any:
    """Verify a Payload hook, validate its body, enqueue its mirror actor keyed by the event id."""
    if kind not in KINDS:
        return problem(404, f"unknown hook {kind!r}; known: {', '.join(KINDS)}")
    secret = get_settings().payload_webhook_secret
    if secret is None or not secret.get_secret_value():
        return problem(503, "payload hooks are not configured (PAYLOAD_WEBHOOK_SECRET)")
    if (request.content_length or 0) > MAX_BODY:
        return problem(413, f"the body is larger than {MAX_BODY} bytes")
    body = await request.get_data(cache=True, as_text=False, parse_form_data=False)
    if len(body) > MAX_BODY:
        return problem(413, f"the body is larger than {MAX_BODY} bytes")
    if not authentic(secret.get_secret_value(), body):
        return problem(401, "invalid webhook secret or signature")
    model, actor = KINDS[kind]
    try:
        parsed = json.loads(body)
        model.model_validate(parsed)
    except ValueError as error:
        if isinstance(error, ValidationError):
            return problem(422, "invalid hook body", fields=field_errors(error))
        return problem(400, "the body is not JSON")
    if not isinstance(parsed, dict):
        return problem(422, "the body must be a JSON object")
    event_id = event_id_of(body, parsed)
    try:
        message = await send(actor, args=(event_id, parsed), unique_key=f"payload:{event_id}")
    except BROKER_DOWN:
        return problem(503, "the job queue is unreachable; deliver again later", headers={"Retry-After": "30"})
    return {"received": True, "event_id": event_id, "job_id": message.message_id}, 202


seeds_blueprint = Blueprint("seeds_in", __name__, url_prefix="/v1/seeds")


class NewSeed(BaseModel):
    """A style seed: a label and an image URL (rehosted, then embedded); an existing label gets the new image."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=100, pattern=TEXT)
    image_url: str = Field(
        min_length=10, max_length=2000, pattern=r"^https?://[A-Za-z0-9.:-]+([/?#][\x21-\x5a\x5e-\x7e]*)?$"
    )
    description: str | None = Field(None, max_length=1000, pattern=TEXT)


@seeds_blueprint.post("")
@require("admin")
@tag(["search"])
@validate_body(NewSeed)
@document_response(Accepted, 202)
async def post_seed(data: NewSeed) -> Any:
    """Add a style seed from an image URL: `add_seed` rehosts the image and embeds the seed."""
    return await enqueue(
        add_seed,
        unique_key=f"add_seed:{data.label}",
        label=data.label,
        image_url=data.image_url,
        description=data.description,
    )


# the upload's declared type -> the format its bytes must have (what the rehosting re-encodes)
UPLOAD_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


class SeedUpload(BaseModel):
    """The label (and optional description) of a style seed whose image is the request body."""

    label: str = Field(min_length=1, max_length=100, pattern=TEXT)
    description: str | None = Field(None, max_length=1000, pattern=TEXT)


@seeds_blueprint.post("/upload")
@require("admin")
@tag(["search"])
@validate_querystring(SeedUpload)
@document_binary_body(UPLOAD_TYPES, description="The image itself (JPEG, PNG or WebP), at most 1 MiB.")
@document_response(Accepted, 202)
@document_errors(415)
async def post_seed_upload(query_args: SeedUpload) -> Any:
    """Add a style seed from an uploaded image: staged in the media store, `add_seed_upload` rehosts and embeds it."""
    expected = UPLOAD_TYPES.get(request.mimetype)
    if expected is None:
        return problem(415, f"the body must be an image: Content-Type one of {', '.join(UPLOAD_TYPES)}")
    data = await request.get_data(
        True, False, False
    )  # bytes; at most MAX_CONTENT_LENGTH (1 MiB): past it, 413 before this runs
    settings = get_settings()
    try:
        found = await asyncio.to_thread(probe, data, max_pixels=settings.rehost_max_pixels)
    except ImageRejected as error:
        return problem(422, f"the body is not an acceptable image: {error}")
    if found != expected:
        return problem(422, f"the body is a {found} image, not {request.mimetype}")
    try:  # staged as it came (a worker cleans it); unreferenced, so the orphan purge removes it later
        key = await asyncio.to_thread(open_store(settings).put, data, extension="raw")
    except Exception as error:  # a full disk, an unreachable bucket: nothing was enqueued
        log.warning("seed upload not staged: %s", type(error).__name__)
        return problem(
            503, "the media store is unavailable; nothing was enqueued, try again", headers={"Retry-After": "30"}
        )
    return await enqueue(
        add_seed_upload,
        unique_key=f"add_seed:{query_args.label}",
        label=query_args.label,
        upload_key=key,
        description=query_args.description,
    )
