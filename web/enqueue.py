"""Enqueueing from the web process: off the event loop, and 503 when Redis is down."""

from __future__ import annotations

import functools
import json
import os
import re
from typing import Any

import dramatiq
import redis
from dramatiq.errors import BrokerConnectionError
from quart import Response, current_app, g, request, url_for

from broker.replication import NotReplicated
from web.context import REQUEST_ID, header
from web.errors import InvalidInput, problem
from web.schemas import UNIQUE_KEY_MAX

# NotReplicated: the primary has it, no replica confirmed it (REDIS_WAIT_REPLICAS): a failover could lose it
BROKER_DOWN = (redis.ConnectionError, redis.TimeoutError, BrokerConnectionError, NotReplicated)
UNIQUE_KEY = re.compile(rf"[\x21-\x7e]{{1,{UNIQUE_KEY_MAX}}}")  # visible ASCII, as long as the body's field


async def enqueue(actor: dramatiq.Actor, *, unique_key: str | None = None, **kwargs: Any) -> Any:
    """Enqueue one message (asyncio Redis client); 202 with the job id, or 503 when Redis is unreachable.

    With a unique key (the body's `unique_key` or the `Unique-Key` header), a live job
    holding that key is answered instead and nothing is enqueued (`deduplicated: true`).
    """
    sent = unique_key_header()  # checked even when the handler names its own key
    options = message_options(unique_key or sent)
    return await enqueue_message(actor.broker, actor.message_with_options(kwargs=kwargs, **options))


def unique_key_header() -> str | None:
    """The request's `Unique-Key` header (None without one); InvalidInput (422) past 200 visible ASCII characters."""
    sent = header(request, b"unique-key", None)
    if sent is None:
        return None
    if not UNIQUE_KEY.fullmatch(sent):
        raise InvalidInput({"header.unique-key": f"1 to {UNIQUE_KEY_MAX} visible ASCII characters"})
    return sent


async def enqueue_message(broker: Any, message: dramatiq.Message) -> Any:
    """Enqueue a message built by the caller (e.g. for an edge actor this process does not declare); 202 or 503."""
    try:
        message = await current_app.config["ENQUEUER"].enqueue(message, broker=broker)
    except NotReplicated:
        return problem(
            503,
            "the job was queued but no replica confirmed it in time, so a Redis failover could "
            "lose it; try again (with a unique key, a job that did survive is not queued twice)",
            headers={"Retry-After": "5"},
        )
    except BROKER_DOWN:
        return unreachable()
    return accepted(message.message_id, deduplicated=bool(message.options.get("deduplicated")))


async def send(
    actor: dramatiq.Actor, *, args: tuple = (), kwargs: dict[str, Any] | None = None, unique_key: str | None = None
) -> dramatiq.Message:
    """Enqueue one message through the app's enqueuer (raises BROKER_DOWN errors)."""
    message = actor.message_with_options(args=args, kwargs=kwargs or {}, **message_options(unique_key))
    return await current_app.config["ENQUEUER"].enqueue(message, broker=actor.broker)


def message_options(unique_key: str | None) -> dict[str, Any]:
    """The options every message enqueued by the web carries: the request id, the token, the unique key if any.

    Its Redis id too, so that the enqueue need not copy the message to add one.
    """
    options: dict[str, Any] = {"request_id": REQUEST_ID.get(), "redis_message_id": random_uuid()}
    if unique_key:
        options["unique_key"] = unique_key
    token = g.get("token")
    if token is not None:  # the job's owner: a `jobs` token reads and cancels only its own jobs
        options["token_id"] = token.id
    return options


def random_uuid() -> str:
    """A random (version 4) UUID in its text form, like `str(uuid.uuid4())` (16 bytes of os.urandom).

    Formatted without building a UUID object: every enqueue from the web makes one.
    """
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def unreachable() -> Any:
    """The 503 answered when Redis cannot be reached: nothing was enqueued."""
    return problem(503, "the job queue is unreachable; nothing was enqueued, try again", headers={"Retry-After": "5"})


def accepted(job_id: str, *, deduplicated: bool = False) -> Any:
    """The 202 body every enqueueing endpoint answers."""
    # a Response, not a dict: quart-schema would build a pydantic TypeAdapter per response;
    # the status URL from a template: url_for binds a URL adapter per call
    body = {"job_id": job_id, "status_url": _status_url_template().format(job_id), "deduplicated": deduplicated}
    return Response(json.dumps(body), status=202, content_type="application/json")


@functools.cache
def _status_url_template() -> str:
    """`GET /v1/jobs/{job_id}`'s URL with a `{}` for the id (built once, in the first request)."""
    return url_for("jobs.get_job", job_id="JOB_ID", _external=False).replace("JOB_ID", "{}")
