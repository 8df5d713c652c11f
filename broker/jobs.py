"""The job store: one Redis hash per job, written in the same round trip as the work.

Redis and not Postgres because every status change happens on the hot path of every
message: the enqueue writes the record inside the enqueue script, and a worker's start and
outcome are written in batches (see `tracking`); only a recovered message's start is one
synchronous script call (the claim).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from datetime import datetime, UTC
from importlib import resources
from typing import Any, cast

import redis

from broker.keys import Keys
from domain.jobs import JobRecord, JobStatus

log = logging.getLogger(__name__)
EVENTS_CAP = 100  # timeline events kept per job (the Lua scripts trim to the same number)
_LUA = {
    name: resources.files("broker").joinpath(f"lua/{name}.lua").read_text() for name in ("enqueue", "claim", "cancel")
}


class JobStore:
    """Reads and writes job records under one namespace."""

    def __init__(self, client: redis.Redis, namespace: str, retention_s: int) -> None:
        self.client = client
        self.keys = Keys(namespace)
        self.retention_s = retention_s
        self.scripts = {name: client.register_script(source) for name, source in _LUA.items()}

    def claim(
        self, job_id: str, *, worker: str, actor: str, queue: str, now_ms: int, broker_id: str = "", alone: bool = False
    ) -> bool:
        """Mark a job running on `worker` (`alone`: nothing else runs there); False when cancelled or reaped."""
        args: list[str | int] = [now_ms, worker, self.retention_s, actor, queue, broker_id, int(alone)]
        keys = [self.keys.job(job_id), self.keys.events(job_id), self.keys.reaped(broker_id)]
        return bool(self.scripts["claim"](keys=keys, args=args))

    def cancel(self, job_id: str, *, now_ms: int, answer_within_s: float = 2.0) -> JobStatus | None:
        """Cancel a job that has not started; returns its status afterwards (None: unknown job).

        When a worker has already fetched the message, that worker decides (it alone knows
        whether the job started) and clears `cancel_requested`; this waits for its answer.
        """
        for keys in (self.keys, self.keys.edge):  # an edge job's record lives in the edge namespace
            key = keys.job(job_id)
            status = self.scripts["cancel"](keys=[key, keys.events(job_id)], args=[now_ms, keys.ns, job_id])
            status = status.decode(errors="replace") if isinstance(status, bytes) else status
            if status:
                break
        deadline = time.monotonic() + answer_within_s
        while status == "cancelling":
            asked, current = cast(list[bytes | None], self.client.hmget(key, "cancel_requested", "status"))
            if not asked or time.monotonic() > deadline:  # answered (or the worker is silent: still queued)
                status = current.decode(errors="replace") if current else ""
            else:
                time.sleep(0.002)
        return JobStatus(status) if status in {s.value for s in JobStatus} else None  # edge records may hold garbage

    def get(self, job_id: str) -> JobRecord | None:
        """The record of one job (its namespace's, else the edge namespace's), or None when unknown or expired."""
        # edge jobs' records live in the edge namespace, where edge nodes can write them: every
        # record is read as untrusted (a wrong type or garbage is logged once and reads as unknown)
        for keys in (self.keys, self.keys.edge):
            try:
                raw = cast(dict[bytes, bytes], self.client.hgetall(keys.job(job_id)))
                if raw:
                    return record_from_hash(job_id, raw)
            except (redis.ResponseError, ValueError, KeyError, TypeError, AttributeError) as error:
                _report_garbled(keys.job(job_id), error)
                return None
        return None

    def write_final(
        self,
        pipe: Any,
        job_id: str,
        fields: dict[str, Any],
        *,
        keep: bool,
        event: dict[str, Any] | list[dict[str, Any]] | None = None,
        incr: tuple[str, ...] = (),
        drop: tuple[str, ...] = (),
    ) -> None:
        """Queue a status write (and timeline events) on `pipe`; `keep` holds them past retention (dead jobs).

        `incr` names counter fields to add one to, once per mention (a start's `attempts`);
        `drop` fields to delete.
        """
        key = self.keys.job(job_id)
        if fields:
            pipe.hset(key, mapping={k: _encode(v) for k, v in fields.items()})
        for name, count in Counter(incr).items():
            pipe.hincrby(key, name, count)
        if drop:
            pipe.hdel(key, *drop)
        touched = [key]
        if event:
            touched.append(self.append_event(pipe, job_id, *(event if isinstance(event, list) else [event])))
        for name in touched:
            if keep:
                pipe.persist(name)
            else:
                pipe.expire(name, self.retention_s)

    def append_event(self, pipe: Any, job_id: str, *events_: dict[str, Any]) -> str:
        """Queue timeline events on `pipe` (capped list); returns its key for the caller to expire."""
        events = self.keys.events(job_id)
        pipe.rpush(events, *(json.dumps(event, default=str) for event in events_))
        pipe.ltrim(events, -EVENTS_CAP, -1)
        return events

    def adopt(
        self,
        pipe: Any,
        job_id: str,
        *,
        actor: str,
        queue: str,
        args: str,
        enqueued_ms: int,
        redis_message_id: str,
        queue_name: str,
    ) -> None:
        """Queue on `pipe` what the enqueue script would have written for a job a foreign producer enqueued.

        A message pushed the way Dramatiq documents for other languages (RPUSH + HSET, no
        Backroom script) has no record until a worker sees it; its first start writes this.
        """
        key = self.keys.job(job_id)
        pipe.hset(
            key, mapping={"actor": actor, "queue": queue, "args": args, "rid": redis_message_id, "qname": queue_name}
        )
        pipe.hsetnx(key, "enqueued_at", enqueued_ms)
        pipe.zadd(self.keys.job_index, {job_id: enqueued_ms}, nx=True)
        self.append_event(pipe, job_id, {"at": enqueued_ms, "event": "queued", "queue": queue, "producer": "foreign"})
        pipe.expire(key, self.retention_s)

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """One job's timeline events, oldest first."""
        return [json.loads(raw) for raw in self.client.lrange(self.keys.events(job_id), 0, -1)]


_garbled: set[str] = set()


def _report_garbled(key: str, error: Exception) -> None:
    """Log an unreadable job record once per process."""
    if key not in _garbled and len(_garbled) < 10_000:
        _garbled.add(key)
        log.warning("job record %s is unreadable, skipped: %s", key, str(error)[:200])


def _encode(value: Any) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return value
    return json.dumps(value, default=str)


def _ms_to_dt(raw: bytes | None) -> datetime | None:
    if not raw:
        return None
    return datetime.fromtimestamp(int(float(raw)) / 1000, tz=UTC)


def _text(raw: bytes | None) -> str | None:
    return raw.decode() if raw else None


def record_from_hash(job_id: str, raw: dict[bytes, bytes]) -> JobRecord:
    """Build a JobRecord from the stored hash fields."""
    args = json.loads(raw.get(b"args") or b"{}")
    result = raw.get(b"result")
    return JobRecord(
        job_id=job_id,
        actor=_text(raw.get(b"actor")) or "?",
        queue=_text(raw.get(b"queue")) or "?",
        args=args.get("args", []),
        kwargs=args.get("kwargs", {}),
        status=JobStatus(raw[b"status"].decode()),
        attempts=int(raw.get(b"attempts") or 0),
        last_error=_text(raw.get(b"last_error")),
        traceback=_text(raw.get(b"traceback")),
        enqueued_at=_ms_to_dt(raw.get(b"enqueued_at")),
        eta=_ms_to_dt(raw.get(b"eta")),
        started_at=_ms_to_dt(raw.get(b"started_at")),
        finished_at=_ms_to_dt(raw.get(b"finished_at")),
        worker=_text(raw.get(b"worker")),
        result=json.loads(result) if result else None,
        unique_key=_text(raw.get(b"unique_key")),
        recoveries=int(raw.get(b"recoveries") or 0),
        crashes=int(raw.get(b"crashes") or 0),
        recovered_at=_ms_to_dt(raw.get(b"recovered_at")),
        requeued_at=_ms_to_dt(raw.get(b"requeued_at")),
        replayed_from=_text(raw.get(b"replayed_from")),
        replayed_as=_text(raw.get(b"replayed_as")),
        token_id=int(raw[b"token_id"]) if raw.get(b"token_id") else None,
    )
