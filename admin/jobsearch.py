"""Job search and job detail for the admin surface.

A search walks the job indexes (ZSETs of job ids by first-enqueue time) of the server
namespace and of the edge namespace (where edge jobs' records live), merged newest first,
inside the asked time range, reading each chunk's records with one pipelined HMGET per job,
and stops once a page is full or `max_scan` entries were read: its cost is bounded whatever
the number of jobs, and `next_cursor` resumes both walks where the merged one stopped.
Edge nodes can write the edge namespace: an entry or record there that does not parse is
logged once and skipped.
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

import redis

from admin.timeline import DeadRef, JobDetail, JobPage, JobSummary, attempts_from, event_from_raw, ordered
from broker.garbled import skip_garbled
from broker.jobs import record_from_hash
from broker.keys import EDGE_NAMESPACE_QUEUES, Keys
from domain.admin import ms_to_dt
from domain.jobs import JobStatus

CHUNK = 500
MAX_SCAN = 20_000
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the highest score a search reads
_FIELDS = ("status", "actor", "queue", "args", "enqueued_at", "finished_at", "attempts", "last_error")
_ID = re.compile(r"[0-9A-Za-z-]{1,64}")  # what a cursor can name (and what an edge job id looks like)
_EDGE = "edge"  # a cursor's suffix when it stopped on an edge-namespace entry


class Row(NamedTuple):
    """One index entry: score (ms), member, namespace rank (0 server, 1 edge), record fields (None: garbage)."""

    score: int
    member: bytes
    rank: int
    fields: dict[str, bytes | None] | None


class JobSearch:
    """Searches job records and assembles one job's detail."""

    def __init__(self, client: Any, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def search(
        self,
        *,
        status: str | None = None,
        actor: str | None = None,
        queue: str | None = None,
        text: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        max_scan: int = MAX_SCAN,
    ) -> JobPage:
        """Jobs of both namespaces matching every given filter, newest first; `text` is searched in the arguments."""
        wanted = {"status": status, "actor": actor, "queue": queue}
        needle = text.lower() if text else None
        after = parse_cursor(cursor) if cursor else None
        spaces = [
            (rank, keys)
            for rank, keys in enumerate((self.keys, self.keys.edge))
            if queue is None or self.keys.for_queue(queue) == keys
        ]  # a queue lives in one namespace
        walks = [self._walk(keys, rank, since, until, after) for rank, keys in spaces]
        page = JobPage(items=[], scanned=0, complete=True)
        for row in heapq.merge(*walks, key=_order, reverse=True):
            page.scanned += 1
            summary = self._summary(row)
            if summary is not None and _matches(summary, row.fields or {}, wanted, needle):
                page.items.append(summary)
            if len(page.items) >= limit or page.scanned >= max_scan:
                page.next_cursor, page.complete = _cursor_of(row), False
                break
        return page

    def _walk(
        self,
        keys: Keys,
        rank: int,
        since: datetime | None,
        until: datetime | None,
        after: tuple[int, bytes, int] | None,
    ) -> Iterator[Row]:
        """One namespace's entries newest first (by score, then member, both descending), past the cursor."""
        # bounded to [0, year 9999]: an entry a node scored outside is never read (no cursor could name it)
        high = str(after[0]) if after else str(min(_ms(until), MAX_MS) if until else MAX_MS)
        low = str(max(_ms(since), 0) if since else 0)
        pinned = bool(after or until)
        offset = 0
        while True:
            try:
                rows = self.client.zrevrangebyscore(keys.job_index, high, low, start=offset, num=CHUNK, withscores=True)
            except redis.ResponseError as error:  # the edge index overwritten with another type
                skip_garbled(keys.job_index, error)
                return
            if not pinned and rows:  # pin the top: jobs enqueued meanwhile must not shift the offsets
                high, pinned = str(int(rows[0][1])), True
            offset += len(rows)
            # within one score ZREVRANGEBYSCORE orders members by descending bytes: skip what the cursor saw
            kept = [
                (int(s), m) for m, s in rows if after is None or (int(s), m, -rank) < (after[0], after[1], -after[2])
            ]
            yield from self._rows(keys, rank, kept)
            if len(rows) < CHUNK:
                return

    def _rows(self, keys: Keys, rank: int, entries: list[tuple[int, bytes]]) -> Iterator[Row]:
        """The entries with their record fields (one pipelined HMGET each); an edge id that is not one: garbage."""
        readable = [(s, m) for s, m in entries if rank == 0 or _ID.fullmatch(m.decode(errors="replace"))]
        if len(readable) < len(entries):
            skip_garbled(keys.job_index, "entries that are not job ids")
        with self.client.pipeline(transaction=False) as pipe:
            for _, member in readable:
                pipe.hmget(keys.job(member.decode(errors="replace")), _FIELDS)
            records = iter(pipe.execute(raise_on_error=False))
        ok = set(readable)
        for score, member in entries:
            values = next(records) if (score, member) in ok else None
            fields = dict(zip(_FIELDS, values)) if isinstance(values, list) else None
            yield Row(score, member, rank, fields)

    def _summary(self, row: Row) -> JobSummary | None:
        """The row's search summary; None for a missing record (its index entry may outlive it) or garbage."""
        if not row.fields or not row.fields["status"]:
            return None
        keys = self.keys.edge if row.rank else self.keys
        job_id = row.member.decode(errors="replace")
        try:
            summary = _summary(job_id, row.fields)
            if row.rank and summary.queue not in EDGE_NAMESPACE_QUEUES:
                raise ValueError(f"an edge-namespace record claims queue {summary.queue!r}")
            return summary
        except (ValueError, TypeError, AttributeError, OverflowError, OSError) as error:
            skip_garbled(keys.job(job_id), error)
            return None

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


def parse_cursor(cursor: str) -> tuple[int, bytes, int]:
    """(score, job id, namespace rank) from a `next_cursor`: `<ms>:<job id>`, `:edge` appended for the edge one."""
    score, _, rest = cursor.partition(":")
    job_id, _, space = rest.partition(":")
    if not (score.isdecimal() and re.fullmatch(r"[0-9A-Za-z-]+", job_id) and space in ("", _EDGE)):
        raise ValueError(f"not a job search cursor: {cursor[:100]!r}")
    return int(score), job_id.encode(), int(space == _EDGE)


def _cursor_of(row: Row) -> str:
    """The cursor continuing after `row`.

    An edge entry whose member no cursor can name (a node's garbage) continues after "-",
    the least id: the walk still moves on, though a job sharing that exact millisecond may be passed.
    """
    member = row.member.decode(errors="replace")
    job_id = member if _ID.fullmatch(member) else "-"
    return f"{row.score}:{job_id}" + (f":{_EDGE}" if row.rank else "")


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _order(row: Row) -> tuple[int, bytes, int]:
    """The merge order (descending): newest first, then member bytes as Redis orders them, server first."""
    return row.score, row.member, -row.rank


def _summary(job_id: str, fields: dict[str, bytes | None]) -> JobSummary:
    """A search row from record fields."""
    status = fields["status"] or b"queued"
    enqueued, finished = fields["enqueued_at"], fields["finished_at"]
    args = json.loads(fields["args"] or b"{}")
    return JobSummary(
        job_id=job_id,
        actor=(fields["actor"] or b"?").decode(),
        queue=(fields["queue"] or b"?").decode(),
        status=JobStatus(status.decode()),
        attempts=int(fields["attempts"] or 0),
        enqueued_at=ms_to_dt(int(enqueued)) if enqueued else None,
        finished_at=ms_to_dt(int(finished)) if finished else None,
        last_error=(fields["last_error"] or b"").decode() or None,
        args=json.dumps([args.get("args", []), args.get("kwargs", {})], default=str)[:300],
    )


def _matches(
    summary: JobSummary, fields: dict[str, bytes | None], wanted: dict[str, str | None], needle: str | None
) -> bool:
    """True when every filter holds (`text` in the stored arguments, any case)."""
    shown = {"status": summary.status.value, "actor": summary.actor, "queue": summary.queue}
    if any(value and shown[name] != value for name, value in wanted.items()):
        return False
    return not needle or needle in (fields["args"] or b"").decode(errors="replace").lower()
