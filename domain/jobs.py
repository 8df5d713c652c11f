"""Jobs: the statuses a job moves through and the record an API client sees."""

from __future__ import annotations

import enum
import functools
import json
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class JobStatus(str, enum.Enum):
    """Where a job stands; `succeeded`, `dead` and `cancelled` are final."""

    QUEUED = "queued"
    DELAYED = "delayed"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """True when nothing more will happen to the job by itself."""
        return self in FINAL_STATUSES

    @property
    def cancellable(self) -> bool:
        """True while the job has not started (and is not over)."""
        return self in CANCELLABLE_STATUSES


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.DEAD, JobStatus.CANCELLED})
CANCELLABLE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.DELAYED, JobStatus.RETRYING})


def status_on_enqueue(*, retries: int, delayed: bool) -> JobStatus:
    """The status a job takes when its message is (re-)enqueued."""
    if retries > 0:
        return JobStatus.RETRYING
    return JobStatus.DELAYED if delayed else JobStatus.QUEUED


def status_after_attempt(*, failed: bool, dead_lettered: bool) -> JobStatus:
    """The status after one attempt: success, a retry to come, or the dead-letter queue."""
    if not failed:
        return JobStatus.SUCCEEDED
    return JobStatus.DEAD if dead_lettered else JobStatus.RETRYING


class JobRecord(BaseModel):
    """One job as API clients and admins see it."""

    job_id: str
    actor: str
    queue: str
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    status: JobStatus
    attempts: int = 0
    last_error: str | None = None
    traceback: str | None = None
    enqueued_at: datetime | None = None
    eta: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker: str | None = None
    result: Any = None
    unique_key: str | None = None
    recoveries: int = 0
    crashes: int = 0
    recovered_at: datetime | None = None
    requeued_at: datetime | None = None
    replayed_from: str | None = None  # the dead job this one is an edited replay of
    replayed_as: str | None = None  # the job that replayed this (dead) one
    token_id: int | None = None  # the API token that enqueued it (None: a schedule, an actor, an admin action)


_SECRET_KEY = re.compile(r"(secret|token|password|passwd|api[_-]?key|authorization|credential|dsn)", re.I)
REDACTED = "[redacted]"
# marketplace addresses ride in edge results (ingest_listings); job records never show them
_PRIVATE_URL_KEY = re.compile(r"^(url|source_url|image_urls|final_url)$")


def redact(value: Any) -> Any:
    """Copy `value` with every secret-looking (or marketplace-URL) mapping key's value replaced by a marker."""
    if isinstance(value, dict):
        return {k: REDACTED if _hidden(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


@functools.lru_cache(maxsize=4096)
def _hidden(key: str) -> bool:
    """Whether a mapping key names a secret or a marketplace URL (the same few keys recur in every job)."""
    return bool(_SECRET_KEY.search(key) or _PRIVATE_URL_KEY.match(key))


def summarise_result(value: Any, limit: int = 2000) -> Any:
    """A small, JSON-safe summary of an actor's return value (big results are cut)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "…"
    if not isinstance(value, (dict, list)):
        return repr(value)[:limit]
    encoded = json.dumps(redact(value), default=str)
    return redact(value) if len(encoded) <= limit else encoded[:limit] + "…"


def error_text(exc: BaseException, limit: int = 1000) -> str:
    """`Type: message`, cut to a size fit for a record and a list view."""
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"
