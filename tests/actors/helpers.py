"""Waiting on job records without sleeping blindly."""
from __future__ import annotations

import time
from collections.abc import Callable

import actors
from domain.jobs import JobRecord, JobStatus


def wait_for_status(
    job_id: str, *statuses: JobStatus, timeout: float = 15.0, where: Callable[[JobRecord], bool] = lambda r: True
) -> JobRecord:
    """Poll the job record until it reaches one of `statuses` and satisfies `where`."""
    deadline = time.monotonic() + timeout
    record = None
    while time.monotonic() < deadline:
        record = actors.broker.jobs.get(job_id)
        if record is not None and record.status in statuses and where(record):
            return record
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} never reached {statuses}; last record: {record}")
