"""A job's history for admins: timeline events, the attempts they make up, error fingerprints."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain.admin import ms_to_dt
from domain.jobs import REDACTED, JobRecord, JobStatus

# events that end an attempt; "recovered" means its worker died under it
OUTCOMES = {"succeeded", "failed", "dead", "cancelled", "recovered"}


class JobEvent(BaseModel):
    """One thing that happened to a job (enqueued, started, failed, requeued, replayed, ...)."""

    model_config = ConfigDict(extra="allow")

    at: datetime
    event: str
    worker: str | None = None
    error: str | None = None
    traceback: str | None = None


def event_from_raw(raw: Mapping[str, Any]) -> JobEvent:
    """A JobEvent from its stored JSON object (`at` in ms)."""
    fields = dict(raw)
    fields["at"] = ms_to_dt(float(fields.get("at") or 0))
    if "eta" in fields and isinstance(fields["eta"], (int, float)):
        fields["eta"] = ms_to_dt(fields["eta"])
    return JobEvent(**fields)


class Attempt(BaseModel):
    """One run of a job: who ran it, how it ended, its error and traceback."""

    number: int
    worker: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = "running"
    error: str | None = None
    traceback: str | None = None
    duration_ms: int | None = None


def attempts_from(events: Iterable[JobEvent]) -> list[Attempt]:
    """Pair each `started` event with the outcome that follows it (a worker death ends it as `recovered`)."""
    attempts: list[Attempt] = []
    current: Attempt | None = None
    for event in events:
        if event.event == "started":
            current = Attempt(number=len(attempts) + 1, worker=event.worker, started_at=event.at)
            attempts.append(current)
        elif current is not None and event.event in OUTCOMES:
            current.outcome = event.event
            current.finished_at = event.at
            current.error, current.traceback = event.error, event.traceback
            current.duration_ms = int((event.at - current.started_at).total_seconds() * 1000)
            current = None
    return attempts


def ordered(events: list[JobEvent]) -> list[JobEvent]:
    """Events in time order, an attempt's failure before the retry its failure scheduled.

    The retry is enqueued (and logged) a moment before the failure itself is written.
    """
    out = sorted(events, key=lambda e: e.at)
    for i in range(len(out) - 1):
        first, second = out[i], out[i + 1]
        if first.event == "retrying" and second.event == "failed" and (second.at - first.at).total_seconds() < 1:
            out[i], out[i + 1] = second, first
    return out


class DeadRef(BaseModel):
    """Where a dead job's message waits: its queue and dead letter's redis id."""

    queue: str
    redis_id: str


class JobDetail(BaseModel):
    """A job's record, every attempt, its timeline and its lineage."""

    record: JobRecord
    attempts: list[Attempt]
    timeline: list[JobEvent]
    dead_letter: DeadRef | None = None


class JobSummary(BaseModel):
    """One row of a job search."""

    job_id: str
    actor: str
    queue: str
    status: JobStatus
    attempts: int = 0
    enqueued_at: datetime | None = None
    finished_at: datetime | None = None
    last_error: str | None = None
    args: str = ""


class JobPage(BaseModel):
    """A page of job search results, newest first; `next_cursor` continues where the scan stopped."""

    items: list[JobSummary]
    next_cursor: str | None = None
    scanned: int
    complete: bool


class ReplayResult(BaseModel):
    """An edited dead letter replayed as a new job linked to the dead one."""

    job_id: str
    replayed_from: str
    queue: str
    actor: str
    args: list[Any]
    kwargs: dict[str, Any]
    original_args: list[Any] = []
    original_kwargs: dict[str, Any] = {}


_VOLATILE = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    (re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{12,}\b", re.I), "<hex>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\d+(\.\d+)?"), "<n>"),
]


def error_signature(error: str | None) -> str:
    """An error's first line with ids, numbers and quoted values blanked, so alike errors match."""
    line = (error or "").strip().splitlines()[0] if (error or "").strip() else "(no error recorded)"
    for pattern, marker in _VOLATILE:
        line = pattern.sub(marker, line)
    return line[:300]


def fingerprint(error: str | None) -> str:
    """A short stable id of an error's signature."""
    return hashlib.sha1(error_signature(error).encode()).hexdigest()[:12]


class ErrorGroup(BaseModel):
    """Dead letters whose errors share a fingerprint."""

    fingerprint: str
    signature: str
    example: str | None
    count: int
    actors: list[str]
    newest: datetime
    oldest: datetime


class ErrorGroups(BaseModel):
    """The error groups among the newest `scanned` of a queue's `total` dead letters."""

    queue: str
    groups: list[ErrorGroup]
    scanned: int
    total: int


def group_errors(letters: Iterable[tuple[str | None, str, datetime]]) -> list[ErrorGroup]:
    """Group (error, actor, dead at) triples by fingerprint, biggest group first."""
    groups: dict[str, ErrorGroup] = {}
    for error, actor, dead_at in letters:
        key = fingerprint(error)
        group = groups.get(key)
        if group is None:
            groups[key] = ErrorGroup(
                fingerprint=key,
                signature=error_signature(error),
                example=error,
                count=1,
                actors=[actor],
                newest=dead_at,
                oldest=dead_at,
            )
            continue
        group.count += 1
        group.newest, group.oldest = max(group.newest, dead_at), min(group.oldest, dead_at)
        if actor not in group.actors:
            group.actors.append(actor)
    return sorted(groups.values(), key=lambda g: (-g.count, g.signature))


def unredact(edited: Any, original: Any) -> Any:
    """`edited` with every value left as the redaction marker taken back from `original`."""
    if edited == REDACTED:
        return original
    if isinstance(edited, dict) and isinstance(original, dict):
        return {k: unredact(v, original.get(k, v)) for k, v in edited.items()}
    if isinstance(edited, list) and isinstance(original, (list, tuple)):
        return [unredact(v, original[i]) if i < len(original) else v for i, v in enumerate(edited)]
    return edited
