"""Shared by the recovery bench (bench/recovery.py) and its worker modules.

The victim actor records each start (wall-clock time and the pid of the worker process
running it) in a Redis list outside every namespace, then sleeps up to `seconds`; the
bench ends the sleep early by setting the tag's release key once it has what it needs.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import dramatiq

BARE_QUEUE = "recovery"


def starts_key(tag: str) -> str:
    """The Redis list of start records of the job tagged `tag`."""
    return f"bench:recovery:starts:{tag}"


def release_key(tag: str) -> str:
    """Set by the bench to end the job tagged `tag` early."""
    return f"bench:recovery:release:{tag}"


def record_and_sleep(client: Any, tag: str, seconds: float) -> None:
    """Record this start, then sleep up to `seconds` (until released)."""
    client.rpush(starts_key(tag), json.dumps({"t": time.time(), "pid": os.getpid()}))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client.exists(release_key(tag)):
            return
        time.sleep(0.1)


def declare_bare(broker: Any) -> tuple[dramatiq.Actor, dramatiq.Actor]:
    """Declare the victim and a no-op (for background load) on a plain Dramatiq broker."""

    @dramatiq.actor(queue_name=BARE_QUEUE, max_retries=0, broker=broker, actor_name="recovery_victim")
    def recovery_victim(tag: str, seconds: float = 30.0) -> None:
        record_and_sleep(broker.client, tag, seconds)

    @dramatiq.actor(queue_name=BARE_QUEUE, max_retries=0, broker=broker, actor_name="recovery_noop")
    def recovery_noop() -> None:
        """Background load: every enqueue and fetch is a dispatch call that may roll maintenance."""

    return recovery_victim, recovery_noop
