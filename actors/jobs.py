"""Housekeeping of job records (the records themselves expire by TTL in Redis)."""

from __future__ import annotations

import time

import dramatiq
from dramatiq.common import current_millis

from actors.broker import broker, settings
from broker.deadletters import DeadLetters


@dramatiq.actor(queue_name="default", max_retries=3, max_backoff=60_000, time_limit=120_000)
def trim_job_index() -> int:
    """Drop index entries of jobs older than the retention window, edge jobs' included; returns how many."""
    horizon_ms = int((time.time() - settings.job_retention_days * 86400) * 1000)
    keys = broker.jobs.keys
    with broker.client.pipeline(transaction=False) as pipe:
        for index in (keys.job_index, keys.edge.job_index):  # edge jobs are indexed where their records live
            pipe.zremrangebyscore(index, "-inf", horizon_ms)
        removed = pipe.execute(raise_on_error=False)  # an edge index a node overwrote: the gateway repairs it
    return sum(n for n in removed if isinstance(n, int))


@dramatiq.actor(queue_name="default", max_retries=3, max_backoff=60_000, time_limit=300_000)
def trim_dead_letters() -> int:
    """Drop dead letters older than DLQ_RETENTION_DAYS; returns how many."""
    return DeadLetters.for_broker(broker).trim_expired(current_millis())
