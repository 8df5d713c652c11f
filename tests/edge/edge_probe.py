"""Edge actors for tests: a delivery to `ingest` (optionally failing first or waiting for a go-ahead)."""

from __future__ import annotations

import time
from pathlib import Path

import dramatiq

from config.settings import EDGE_QUEUE
from domain.contracts import INGEST_LISTINGS
from edge.deliver import deliver


@dramatiq.actor(queue_name=EDGE_QUEUE, max_retries=2, min_backoff=100, max_backoff=200, time_limit=60_000)
def deliver_probe(delivery_id: str, fail_first: bool = False, wait_for: str = "") -> str:
    """Deliver one (empty) listing batch to ingest_listings; `fail_first` raises on the first attempt."""
    if fail_first and not dramatiq.middleware.CurrentMessage.get_current_message().options.get("retries"):
        raise RuntimeError("first attempt fails on purpose")
    deadline = time.monotonic() + 50
    while wait_for and not Path(wait_for).exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the test cuts Redis while the job runs, then lets it deliver
    deliver(INGEST_LISTINGS, {"source": "probe", "listings": [], "delivery_id": delivery_id}, delivery_id=delivery_id)
    return delivery_id


@dramatiq.actor(queue_name=EDGE_QUEUE, max_retries=0, time_limit=10_000)
def fail_probe() -> None:
    """Always fails (no retries): its message is dead-lettered on edge.XQ."""
    raise RuntimeError("fails on purpose")
