"""Waiting on job records without sleeping blindly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import actors
from domain.jobs import JobRecord, JobStatus
from tests.waiting import wait_until


def wait_for_status(
    job_id: str, *statuses: JobStatus, timeout: float = 15.0, where: Callable[[JobRecord], bool] = lambda r: True
) -> JobRecord:
    """Poll the job record until it reaches one of `statuses` and satisfies `where`."""

    def reached() -> JobRecord | None:
        record = actors.broker.jobs.get(job_id)
        return record if record is not None and record.status in statuses and where(record) else None

    return wait_until(
        reached,
        timeout,
        f"job {job_id} to reach {[s.value for s in statuses]}",
        detail=lambda: f"last record: {actors.broker.jobs.get(job_id)}",
    )


def wait_for_quiet(timeout: float = 30.0) -> list[JobRecord]:
    """Wait until every job recorded so far is final or waiting for a later time, and return their records.

    How a test proves that something did *not* happen, without sleeping: a job is recorded before the
    send that enqueued it returns, and a job sends its follow-ups before its own record turns final, so
    once nothing is queued, running or due, whatever the jobs so far were going to do now is done.
    """
    store = actors.broker.jobs

    def settled() -> tuple[list[JobRecord]] | None:  # a tuple: truthy even when no job was recorded
        records = [store.get(job_id.decode()) for job_id in store.client.zrange(store.keys.job_index, 0, -1)]
        known = [record for record in records if record is not None]
        now = datetime.now(UTC)
        # a job waiting for a later time (delayed, or retrying after a backoff) does nothing until then
        later = (JobStatus.DELAYED, JobStatus.RETRYING)
        busy = [r for r in known if not r.status.final and not (r.status in later and r.eta and r.eta > now)]
        return None if busy else (known,)

    def busy() -> str:
        records = [store.get(job_id.decode()) for job_id in store.client.zrange(store.keys.job_index, 0, -1)]
        return "\n".join(
            f"{r.job_id} {r.actor} on {r.queue}: {r.status.value} eta={r.eta} enqueued={r.enqueued_at}"
            for r in records
            if r is not None and not r.status.final
        )

    (records,) = wait_until(settled, timeout, "every recorded job to be final or waiting for a later time", detail=busy)
    return records
