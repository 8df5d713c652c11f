"""A real Dramatiq worker, in-process, on the real Redis broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from dramatiq import Worker

import actors


@pytest.fixture()
def worker(redis_client: redis.Redis) -> Iterator[Worker]:
    """A started worker over every server queue (Redis emptied first)."""
    worker = Worker(actors.broker, worker_threads=4, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()
    tracking = next(m for m in actors.broker.middleware if type(m).__name__ == "JobTracking")
    tracking.writer.flush()
