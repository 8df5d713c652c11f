"""Diagnostic actors: prove the pipeline end to end without touching business data."""

from __future__ import annotations

import asyncio

import dramatiq


class PingFailed(Exception):
    """Raised on purpose by a ping asked to fail."""


@dramatiq.actor(queue_name="default", max_retries=2, min_backoff=200, max_backoff=2_000, time_limit=60_000, throws=())
async def ping(message: str = "pong", fail: bool = False, sleep_ms: int = 0) -> dict:
    """Answer `message` back (or fail, to exercise retries and the dead-letter queue)."""
    if sleep_ms:
        await asyncio.sleep(sleep_ms / 1000)
    if fail:
        raise PingFailed(f"ping asked to fail: {message}")
    return {"message": message}
