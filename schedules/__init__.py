"""Periodic actors (periodiq, UTC): each only fans out to a real actor.

Run the scheduler with `periodiq schedules`; workers import this module too so they can
run the fan-out messages.
"""
from __future__ import annotations

import os

os.environ.setdefault("TZ", "UTC")  # periodiq reads local time: schedules are in UTC

import dramatiq  # noqa: E402
from periodiq import cron  # noqa: E402

from actors import broker  # noqa: E402,F401  (the server broker, with PeriodiqMiddleware)
from actors.jobs import trim_job_index  # noqa: E402


@dramatiq.actor(queue_name="default", periodic=cron("17 3 * * *"), max_retries=3, max_backoff=60_000, time_limit=10_000)
def schedule_trim_job_index() -> None:
    """Daily at 03:17: trim the job index past the retention window."""
    trim_job_index.send()
