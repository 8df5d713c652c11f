"""Job search and job detail for the admin surface.

A search walks the job index (a ZSET of job ids by first-enqueue time) newest first,
inside the asked time range, reading each chunk's records with one pipelined HMGET per
job, and stops once a page is full or `max_scan` entries were read: its cost is bounded
whatever the number of jobs, and `next_cursor` resumes the walk where it stopped.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from broker.jobs import record_from_hash
from broker.keys import Keys
from domain.admin import ms_to_dt
from domain.jobs import JobStatus
from domain.timeline import DeadRef, JobDetail, JobPage, JobSummary, attempts_from, event_from_raw, ordered

CHUNK = 500
MAX_SCAN = 20_000
_FIELDS = ("status", "actor", "queue", "args", "enqueued_at", "finished_at", "attempts", "last_error")


class JobSearch:
    """Searches job records and assembles one job's detail."""

    def __init__(self, client: Any, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def search(self, *, status: str | None = None, actor: str | None = None, queue: str | None = None,
               text: str | None = None, since: datetime | None = None, until: datetime | None = None,
               limit: int = 50, cursor: str | None = None, max_scan: int = MAX_SCAN) -> JobPage:
        """Jobs matching every given filter, newest first; `text` is searched in the arguments (any case)."""
        wanted = {"status": status, "actor": actor, "queue": queue}
        needle = text.lower() if text else None
        page = JobPage(items=[], scanned=0, complete=True)
        for job_id, score, fields in self._walk(since, until, cursor):
            page.scanned += 1
            if _matches(fields, wanted, needle):
                page.items.append(_summary(job_id, fields))
            if len(page.items) >= limit or page.scanned >= max_scan:
                page.next_cursor, page.complete = f"{score}:{job_id}", False
                break
        return page

    def _walk(self, since: datetime | None, until: datetime | None,
              cursor: str | None) -> Iterator[tuple[str, int, dict[str, bytes | None]]]:
        """(job id, score, record fields) newest first, from the cursor or the range's top."""
        high = str(int(until.timestamp() * 1000)) if until else "+inf"
        low = str(int(since.timestamp() * 1000)) if since else "-inf"
        after: tuple[int, str] | None = None
        if cursor:
            score, _, job_id = cursor.partition(":")
            after, high = (int(score), job_id), score
        offset = 0
        while True:
            rows = self.client.zrevrangebyscore(self.keys.job_index, high, low, start=offset, num=CHUNK,
                                                withscores=True)
            if high == "+inf" and rows:  # pin the top: jobs enqueued meanwhile must not shift the offsets
                high = str(int(rows[0][1]))
            offset += len(rows)
            # within one score ZREVRANGEBYSCORE orders members by descending bytes: skip what the cursor saw
            ids = [(m.decode(), int(s)) for m, s in rows if after is None or int(s) < after[0] or m.decode() < after[1]]
            if ids:
                with self.client.pipeline(transaction=False) as pipe:
                    for job_id, _ in ids:
                        pipe.hmget(self.keys.job(job_id), _FIELDS)
                    records = pipe.execute()
                for (job_id, score), values in zip(ids, records):
                    yield job_id, score, dict(zip(_FIELDS, values))
            if len(rows) < CHUNK:
                return

    def detail(self, job_id: str) -> JobDetail | None:
        """A job's record, attempts, timeline and, when it is dead-lettered, where its message waits.

        An edge job's record lives in the edge namespace, which edge nodes can write: a record
        that does not parse reads as unknown.
        """
        for keys in (self.keys, self.keys.edge):
            with self.client.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.job(job_id)).lrange(keys.events(job_id), 0, -1)
                raw, events_raw = pipe.execute(raise_on_error=False)
            if isinstance(raw, dict) and b"status" in raw:
                try:
                    return self._detail(keys, job_id, raw, events_raw if isinstance(events_raw, list) else [])
                except (ValueError, KeyError, TypeError, AttributeError):
                    return None
        return None

    def _detail(self, keys: Keys, job_id: str, raw: dict[bytes, bytes], events_raw: list[bytes]) -> JobDetail:
        record = record_from_hash(job_id, raw)
        events = ordered([event_from_raw(json.loads(e)) for e in events_raw])
        dead_letter = None
        rid, qname = raw.get(b"rid"), raw.get(b"qname")
        if record.status is JobStatus.DEAD and rid and qname:
            if self.client.zscore(keys.dead(qname.decode()), rid) is not None:
                dead_letter = DeadRef(queue=qname.decode(), redis_id=rid.decode())
        return JobDetail(record=record, attempts=attempts_from(events), timeline=events, dead_letter=dead_letter)


def _summary(job_id: str, fields: dict[str, bytes | None]) -> JobSummary:
    """A search row from record fields."""
    status = fields["status"] or b"queued"
    enqueued, finished = fields["enqueued_at"], fields["finished_at"]
    args = json.loads(fields["args"] or b"{}")
    return JobSummary(
        job_id=job_id, actor=(fields["actor"] or b"?").decode(), queue=(fields["queue"] or b"?").decode(),
        status=JobStatus(status.decode()), attempts=int(fields["attempts"] or 0),
        enqueued_at=ms_to_dt(int(enqueued)) if enqueued else None,
        finished_at=ms_to_dt(int(finished)) if finished else None,
        last_error=(fields["last_error"] or b"").decode() or None,
        args=json.dumps([args.get("args", []), args.get("kwargs", {})], default=str)[:300],
    )


def _matches(fields: dict[str, bytes | None], wanted: dict[str, str | None], needle: str | None) -> bool:
    """True when the record exists (its index entry may outlive it) and every filter holds."""
    if not fields["status"]:
        return False
    for name, value in wanted.items():
        if value and (fields[name] or b"").decode() != value:
            return False
    return not needle or needle in (fields["args"] or b"").decode().lower()
