"""Enqueueing the next step from an async actor: off the event loop, after the transaction commits."""

from __future__ import annotations

import asyncio
from typing import Any

import dramatiq


async def enqueue(
    actor: dramatiq.Actor, *args: Any, delay_ms: int | None = None, unique_key: str | None = None, **kwargs: Any
) -> str:
    """Send `actor(*args, **kwargs)` (delayed, deduplicated by `unique_key` while live); returns the job id."""
    options: dict[str, Any] = {}
    if unique_key:
        options["unique_key"] = unique_key
    message = await asyncio.to_thread(
        actor.send_with_options, args=args, kwargs=kwargs, delay=delay_ms or None, **options
    )
    return str(message.message_id)
