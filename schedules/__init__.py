"""Periodic actors, in UTC: each only fans out to a real actor.

Declared the periodiq way (`periodic=cron("...")`, or a plain cron string) and fired by
Backroom's own scheduler, `backroom scheduler` (schedules/runner.py): one leader among
any number of processes, each tick exactly once, missed ticks caught up. Workers import
this module too so they can run the fan-out messages.
"""
from __future__ import annotations

import dramatiq
from periodiq import cron

from actors import broker  # noqa: F401  (the server broker, with PeriodiqMiddleware)
from actors.jobs import trim_dead_letters, trim_job_index


@dramatiq.actor(queue_name="default", periodic=cron("17 3 * * *"), max_retries=3, max_backoff=60_000, time_limit=10_000)
def schedule_trim_job_index() -> None:
    """Daily at 03:17 UTC: trim the job index past the retention window."""
    trim_job_index.send()


@dramatiq.actor(queue_name="default", periodic=cron("27 3 * * *"), max_retries=3, max_backoff=60_000, time_limit=10_000)
def schedule_trim_dead_letters() -> None:
    """Daily at 03:27 UTC: trim dead letters past DLQ_RETENTION_DAYS."""
    trim_dead_letters.send()


from schedules import orders  # noqa: E402,F401  (the hold-release sweep)
