"""Enqueueing from the web process: off the event loop, and 503 when Redis is down."""
from __future__ import annotations

import asyncio
from typing import Any

import dramatiq
import redis
from dramatiq.errors import BrokerConnectionError
from quart import g, url_for

from web.errors import problem

BROKER_DOWN = (redis.ConnectionError, redis.TimeoutError, BrokerConnectionError)


async def enqueue(actor: dramatiq.Actor, **kwargs: Any) -> Any:
    """Send one message in a thread; 202 with the job id, or 503 when Redis is unreachable."""
    options = {"request_id": getattr(g, "request_id", None)}
    try:
        message = await asyncio.to_thread(actor.send_with_options, kwargs=kwargs, **options)
    except BROKER_DOWN:
        return problem(503, "the job queue is unreachable; nothing was enqueued, try again",
                       headers={"Retry-After": "5"})
    return accepted(message.message_id)


def accepted(job_id: str) -> Any:
    """The 202 body every enqueueing endpoint answers."""
    return {"job_id": job_id, "status_url": url_for("jobs.get_job", job_id=job_id, _external=False)}, 202
