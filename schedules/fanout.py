"""What every periodic actor shares: its options, and a send that never piles onto a live run."""

from __future__ import annotations

from typing import Any

import dramatiq

# a fan-out only sends: a short time limit, a few quick retries (Redis blips)
PERIODIC: dict[str, Any] = {"max_retries": 3, "max_backoff": 60_000, "time_limit": 60_000}


def send_once(actor: dramatiq.Actor, *args: Any, key: str | None = None, **kwargs: Any) -> str:
    """Send `actor(*args, **kwargs)` unless its job for `key` is still queued or running; the job id."""
    unique_key = f"schedule:{actor.actor_name}" + (f":{key}" if key else "")
    return str(actor.send_with_options(args=args, kwargs=kwargs, unique_key=unique_key).message_id)
