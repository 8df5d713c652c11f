"""Periodic actors for the scheduler tests (also imported by the scheduler processes they start)."""

from __future__ import annotations

import dramatiq
from periodiq import cron

import actors

RUNS_KEY = "test:scheduled-runs"
# a queue of their own: workers other tests leave running consume the server queues, not this one
QUEUE = "schedtest"


@dramatiq.actor(queue_name=QUEUE, periodic=cron("* * * * *"), max_retries=0, time_limit=10_000)
def sched_every_minute() -> None:
    """Every minute: count the run."""
    actors.broker.client.hincrby(RUNS_KEY, "sched_every_minute", 1)


@dramatiq.actor(queue_name=QUEUE, periodic=cron("*/15 * * * *"), max_retries=0, time_limit=10_000)
def sched_quarter_hour() -> None:
    """Every quarter hour: count the run."""
    actors.broker.client.hincrby(RUNS_KEY, "sched_quarter_hour", 1)


@dramatiq.actor(queue_name=QUEUE, periodic=cron("0 9 * * 0"), max_retries=0, time_limit=10_000)
def sched_sunday_zero() -> None:
    """Sundays 09:00, spelt 0 (periodiq never fires this one)."""


@dramatiq.actor(queue_name=QUEUE, periodic=cron("0 9 * * sun"), max_retries=0, time_limit=10_000)
def sched_sunday_name() -> None:
    """Sundays 09:00, spelt sun (periodiq never fires this one either)."""


@dramatiq.actor(queue_name=QUEUE, periodic="0 0 1 jan *", max_retries=0, time_limit=10_000)
def sched_new_year() -> None:
    """A plain string spec with a month name (periodiq's own parser refuses month names)."""


class ScheduledFailure(Exception):
    """Raised on purpose by the failing periodic actor."""


@dramatiq.actor(
    queue_name=QUEUE, periodic=cron("0 * * * *"), max_retries=2, min_backoff=10, max_backoff=100, time_limit=10_000
)
def sched_failing() -> None:
    """Hourly: count the attempt, then fail (to prove retries of periodic jobs are not skipped)."""
    actors.broker.client.hincrby(RUNS_KEY, "sched_failing", 1)
    raise ScheduledFailure("scheduled failure")
