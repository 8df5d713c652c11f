"""Dead letters as a service: list, requeue and discard what Dramatiq dead-lettered.

Dead letters of queue `q` are the ZSET `<ns>:q.XQ` (redis id -> dead-at ms) and the HASH
`<ns>:q.XQ.msgs` (redis id -> payload). Every move out of them is one WATCH/MULTI/EXEC that
also writes the job record: a message is always in exactly one place, and a second requeue
of the same id (a double click) finds nothing to move.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, UTC
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import redis
from dramatiq.common import current_millis
from dramatiq.errors import DecodeError
from dramatiq.message import Message
from pydantic import BaseModel

from broker.keys import Keys
from config.settings import ALL_QUEUES
from domain.jobs import JobStatus, redact

if TYPE_CHECKING:
    from broker.redis import BackroomBroker

CHUNK = 500  # dead letters read per round trip when a filtered listing or bulk action scans
BATCH = 100  # dead letters moved per transaction
MAX_SCAN = 100_000  # a filtered listing stops counting here (its total becomes a lower bound)
WATCH_ATTEMPTS = 50
# eta would send it through the delay queue, scheduled_at makes periodiq skip it, and the
# rest describe the failed run, not the new one
DROPPED_OPTIONS = frozenset(
    {"eta", "traceback", "scheduled_at", "requeue_timestamp", "backroom_recovered", "backroom_isolate"}
)
_RECORD_FIELDS = ("last_error", "traceback", "attempts", "status")
Stamp = datetime | int | None  # ms since the epoch, or a datetime
Ids = list[str]  # (aliases: inside DeadLetters, `list` is the method)
Rows = list[tuple[str, float]]
Found = list[tuple[str, "Message | None"]]
Letters = list["DeadLetter"]


class DeadLetter(BaseModel):
    """One dead-lettered message as an admin sees it (arguments redacted)."""

    redis_id: str
    job_id: str | None = None
    queue: str
    actor: str = "?"
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    error: str | None = None
    traceback: str | None = None
    attempts: int = 0
    status: str | None = None  # the job record's status; None when the record is gone
    dead_at: datetime
    expires_at: datetime


class DeadPage(BaseModel):
    """One page of dead letters, newest first."""

    items: list[DeadLetter]
    total: int
    offset: int
    limit: int
    exact: bool = True  # False when a filtered scan stopped at MAX_SCAN: total is a lower bound


class RequeueResult(BaseModel):
    """What a requeue did: the redis ids moved back (with their job ids) and those skipped."""

    requeued: list[str] = []
    job_ids: list[str] = []
    skipped: list[str] = []

    def add(self, other: RequeueResult) -> None:
        """Fold another batch's result into this one."""
        self.requeued += other.requeued
        self.job_ids += other.job_ids
        self.skipped += other.skipped


class DeadLetters:
    """Lists, requeues, discards and trims dead letters under one namespace."""

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        retention_ms: int,
        *,
        job_retention_s: int = 7 * 86400,
        queues: Sequence[str] = ALL_QUEUES,
    ) -> None:
        self.client: Any = client  # redis-py's return types are unions of sync and async
        self.keys = Keys(namespace)
        self.retention_ms = retention_ms
        self.job_retention_s = job_retention_s
        self.queues = tuple(queues)

    @classmethod
    def for_broker(cls, broker: BackroomBroker) -> DeadLetters:
        """The service over `broker`'s client, namespace and retention settings."""
        return cls(broker.client, broker.namespace, broker.dead_message_ttl, job_retention_s=broker.jobs.retention_s)

    def _keys(self, queue: str) -> Keys:
        """The keys of `queue`'s namespace (the edge queue's dead letters and job records live in the edge one)."""
        return self.keys.for_queue(queue)

    def counts(self) -> dict[str, int]:
        """How many dead letters each queue holds."""
        return dict(
            zip(self.queues, map(int, self._pipelined(lambda p, q: p.zcard(self._keys(q).dead(q)), self.queues)))
        )

    def list(
        self,
        queue: str,
        *,
        offset: int = 0,
        limit: int = 50,
        actor: str | None = None,
        error_contains: str | None = None,
        since: Stamp = None,
        until: Stamp = None,
    ) -> DeadPage:
        """A page of `queue`'s dead letters, newest first, optionally filtered."""
        self._check(queue)
        page = DeadPage(items=[], total=0, offset=max(0, offset), limit=max(1, limit))
        if actor is None and not error_contains:
            return self._plain_page(queue, page, _score(since, "-inf"), _score(until, "+inf"))
        scanned = 0
        for rows, matching in self._scan(queue, actor, error_contains, since, until):
            start, end = page.offset - page.total, page.offset + page.limit - page.total
            page.items += matching[max(0, start) : max(0, end)]
            page.total += len(matching)
            scanned += rows
            if scanned >= MAX_SCAN:
                page.exact = False
                break
        return page

    def resolve(self, queue: str, ids: Iterable[str]) -> tuple[Ids, Ids]:
        """Split ids into dead letters' redis ids (job ids accepted too) and ids that match none."""
        self._check(queue)
        asked = _unique(ids)
        if not asked:
            return [], []
        # a job's record names the redis id of its last enqueue, which is the one that died
        rids = [
            r.decode() if r else ""
            for r in self._pipelined(lambda p, i: p.hget(self._keys(queue).job(i), "rid"), asked)
        ]
        scores = self.client.zmscore(self._keys(queue).dead(queue), asked + rids)
        picks = [
            i if mine is not None else (r if theirs is not None else None)
            for i, r, mine, theirs in zip(asked, rids, scores[: len(asked)], scores[len(asked) :])
        ]
        return _unique(p for p in picks if p), [i for i, p in zip(asked, picks) if p is None]

    def requeue(self, queue: str, redis_ids: Iterable[str]) -> RequeueResult:
        """Move dead letters back to `queue` as fresh messages (same job id, retries reset)."""
        self._check(queue)
        result = RequeueResult()
        for chunk in _chunks(_unique(redis_ids), BATCH):
            moved, skipped = self._transact(queue, chunk, self._stage_requeue, need_decode=True)
            result.add(
                RequeueResult(
                    requeued=[rid for rid, _ in moved],
                    skipped=skipped,
                    job_ids=[m.message_id for _, m in moved if m is not None],
                )
            )
        return result

    def requeue_matching(self, queue: str, **filters: Any) -> RequeueResult:
        """Requeue every dead letter of `queue` that matches the `list` filters, in batches."""
        result = RequeueResult()
        for batch in self._matching(queue, **filters):
            result.add(self.requeue(queue, batch))
        return result

    def move(self, queue: str, redis_ids: Ids, stage: Callable[..., None]) -> tuple[Found, Ids]:
        """Move dead letters with `stage(pipe, queue, rid, message, now_ms)` in one transaction (see `_transact`)."""
        self._check(queue)
        return self._transact(queue, redis_ids, stage, need_decode=True)

    def discard(self, queue: str, redis_ids: Iterable[str]) -> int:
        """Delete dead letters for good; their job records then expire like finished ones."""
        self._check(queue)
        return sum(
            len(self._transact(queue, chunk, self._stage_forget("discarded_at"))[0])
            for chunk in _chunks(_unique(redis_ids), BATCH)
        )

    def discard_matching(self, queue: str, **filters: Any) -> int:
        """Discard every dead letter of `queue` that matches the `list` filters, in batches."""
        return sum(self.discard(queue, batch) for batch in self._matching(queue, **filters))

    def trim_expired(self, now_ms: int) -> int:
        """Remove dead letters older than the retention from every queue; returns how many."""
        removed = 0
        for queue in self.queues:
            while ids := [
                m.decode()
                for m in self.client.zrangebyscore(
                    self._keys(queue).dead(queue), "-inf", now_ms - self.retention_ms, start=0, num=BATCH
                )
            ]:
                removed += len(self._transact(queue, ids, self._stage_forget("dlq_expired_at"))[0])
        return removed

    # -- reading -----------------------------------------------------------------------------

    def _check(self, queue: str) -> None:
        if queue not in self.queues:
            raise ValueError(f"unknown queue {queue!r}; known: {', '.join(self.queues)}")

    def _pipelined(self, call: Callable[[Any, str], Any], items: Sequence[str]) -> Sequence[Any]:
        with self.client.pipeline(transaction=False) as pipe:
            for item in items:
                call(pipe, item)
            return pipe.execute()

    def _plain_page(self, queue: str, page: DeadPage, low: str, high: str) -> DeadPage:
        key, start, num = self._keys(queue).dead(queue), page.offset, page.limit
        with self.client.pipeline(transaction=False) as pipe:  # by rank, or by score for a time window
            if (low, high) == ("-inf", "+inf"):
                pipe.zrevrange(key, start, start + num - 1, withscores=True).zcard(key)
            else:
                pipe.zrevrangebyscore(key, high, low, start=start, num=num, withscores=True).zcount(key, low, high)
            rows, total = pipe.execute()
        page.items, page.total = self._load(queue, [(m.decode(), s) for m, s in rows]), int(total)
        return page

    def _walk(self, queue: str, low: str, high: str) -> Iterator[Rows]:
        """Chunks of (redis id, dead-at) newest first, by a score cursor that survives removals."""
        edge: float | None = None
        seen: set[str] = set()  # ids already yielded that carry the cursor's score
        while True:
            want = CHUNK + len(seen)
            rows = self.client.zrevrangebyscore(
                self._keys(queue).dead(queue), high, low, start=0, num=want, withscores=True
            )
            fresh = [(m.decode(), s) for m, s in rows if not (s == edge and m.decode() in seen)]
            if not fresh:
                return
            yield fresh
            last = fresh[-1][1]
            seen = (seen if last == edge else set()) | {m for m, s in fresh if s == last}
            edge, high = last, repr(last)
            if len(rows) < want:
                return

    def _load(self, queue: str, rows: Rows) -> Letters:
        if not rows:
            return []
        payloads = self.client.hmget(self._keys(queue).dead_messages(queue), [rid for rid, _ in rows])
        messages = [_decode(raw) for raw in payloads]
        job_ids = [m.message_id if m else "-" for m in messages]
        records = self._pipelined(lambda p, job_id: p.hmget(self._keys(queue).job(job_id), _RECORD_FIELDS), job_ids)
        return [
            self._item(queue, rid, score, m, dict(zip(_RECORD_FIELDS, r)))
            for (rid, score), m, r in zip(rows, messages, records)
        ]

    def _item(
        self, queue: str, rid: str, score: float, message: Message | None, record: dict[str, bytes | None]
    ) -> DeadLetter:
        dead_ms = int(score)
        item = DeadLetter(redis_id=rid, queue=queue, dead_at=_dt(dead_ms), expires_at=_dt(dead_ms + self.retention_ms))
        if message is None:
            item.error = "payload missing or undecodable"
            return item
        options_tb = message.options.get("traceback") or None
        item.job_id, item.actor = message.message_id, message.actor_name
        item.args, item.kwargs = redact(list(message.args)), redact(dict(message.kwargs))
        item.error = _text(record["last_error"]) or _last_line(options_tb)
        item.traceback = _text(record["traceback"]) or options_tb
        item.attempts = int(record["attempts"] or 0) or int(message.options.get("retries", 0)) + 1
        item.status = _text(record["status"])
        return item

    def _scan(
        self, queue: str, actor: str | None, error_contains: str | None, since: Stamp, until: Stamp
    ) -> Iterator[tuple[int, Letters]]:
        """Per chunk scanned: how many rows, and the dead letters among them that match."""
        for rows in self._walk(queue, _score(since, "-inf"), _score(until, "+inf")):
            yield len(rows), [i for i in self._load(queue, rows) if _matches(i, actor, error_contains)]

    def _matching(
        self,
        queue: str,
        *,
        actor: str | None = None,
        error_contains: str | None = None,
        since: Stamp = None,
        until: Stamp = None,
    ) -> Iterator[Ids]:
        self._check(queue)
        for _, items in self._scan(queue, actor, error_contains, since, until):
            yield from _chunks([i.redis_id for i in items], BATCH)

    # -- moving ------------------------------------------------------------------------------

    def _transact(
        self, queue: str, ids: Ids, stage: Callable[..., None], *, need_decode: bool = False
    ) -> tuple[Found, Ids]:
        """Move `ids` in one MULTI, retried whenever the dead letters changed underneath."""
        dead, dead_messages = self._keys(queue).dead(queue), self._keys(queue).dead_messages(queue)
        with self.client.pipeline() as pipe:
            for _ in range(WATCH_ATTEMPTS):
                try:
                    pipe.watch(dead, dead_messages)
                    found = _present(ids, pipe.hmget(dead_messages, ids), pipe.zmscore(dead, ids), need_decode)
                    if not found:
                        pipe.reset()
                        return [], ids
                    pipe.multi()
                    now_ms = current_millis()
                    for rid, message in found:
                        stage(pipe, queue, rid, message, now_ms)
                    pipe.execute()
                    done = {rid for rid, _ in found}
                    return found, [rid for rid in ids if rid not in done]
                except redis.WatchError:
                    continue
        raise RuntimeError(f"dead letters of {queue!r} kept changing; gave up after {WATCH_ATTEMPTS} attempts")

    def _stage_requeue(self, pipe: Any, queue: str, rid: str, message: Message, now_ms: int) -> None:
        keys = self._keys(queue)
        options = {k: v for k, v in message.options.items() if k not in DROPPED_OPTIONS}
        new_rid = options["redis_message_id"] = str(uuid4())
        options["retries"] = 0
        # AgeLimit counts from message_timestamp: the requeue is a new start
        fresh = dataclasses.replace(message, queue_name=queue, options=options, message_timestamp=now_ms)
        pipe.zrem(keys.dead(queue), rid).hdel(keys.dead_messages(queue), rid)
        pipe.hset(keys.messages(queue), new_rid, fresh.encode()).rpush(keys.queue(queue), new_rid)
        job = keys.job(message.message_id)
        args = json.dumps(redact({"args": list(message.args), "kwargs": message.kwargs}), default=str)
        # a fresh budget: retries restart at 0 above, and so do the crashes that poison a job
        pipe.hset(
            job,
            mapping={
                "status": JobStatus.QUEUED.value,
                "requeued_at": now_ms,
                "rid": new_rid,
                "qname": queue,
                "queue": queue,
                "eta": "",
                "crashes": 0,
            },
        )
        pipe.hdel(job, "finished_at", "unseen_crash", "alone")
        for name, value in (("actor", message.actor_name), ("args", args), ("enqueued_at", now_ms), ("attempts", 0)):
            pipe.hsetnx(job, name, value)
        pipe.zadd(keys.job_index, {message.message_id: now_ms}, nx=True)
        pipe.expire(job, self.job_retention_s)
        events = keys.events(message.message_id)
        pipe.rpush(events, json.dumps({"at": now_ms, "event": "requeued", "queue": queue})).ltrim(events, -100, -1)
        pipe.expire(events, self.job_retention_s)
        pipe.publish(keys.wake(queue), "1")

    def _stage_forget(self, mark: str) -> Callable[..., None]:
        def stage(pipe: Any, queue: str, rid: str, message: Message | None, now_ms: int) -> None:
            pipe.zrem(self._keys(queue).dead(queue), rid).hdel(self._keys(queue).dead_messages(queue), rid)
            if message is not None:
                job_id = message.message_id
                mark_if_exists(
                    pipe,
                    self._keys(queue),
                    job_id,
                    {mark: now_ms},
                    ttl_s=self.job_retention_s,
                    event={"at": now_ms, "event": mark.removesuffix("_at")},
                )

        return stage


# HSET alone would create a status-less stub when the job's record is already gone; the
# timeline (KEYS[2]) gets the event and then expires with the record
_MARK_IF_EXISTS = """
if redis.call("exists", KEYS[1]) == 1 then
  redis.call("hset", KEYS[1], unpack(ARGV, 3))
  redis.call("expire", KEYS[1], ARGV[1])
  redis.call("rpush", KEYS[2], ARGV[2])
  redis.call("ltrim", KEYS[2], -100, -1)
  redis.call("expire", KEYS[2], ARGV[1])
end
return 0
"""


def mark_if_exists(
    pipe: Any, keys: Keys, job_id: str, fields: dict[str, Any], *, ttl_s: int, event: dict[str, Any]
) -> None:
    """Queue on `pipe`: set `fields` on a job's record and append `event`, only if the record still exists."""
    pairs = [item for pair in fields.items() for item in pair]
    pipe.eval(_MARK_IF_EXISTS, 2, keys.job(job_id), keys.events(job_id), ttl_s, json.dumps(event), *pairs)


def _present(ids: Ids, payloads: Sequence[bytes | None], scores: Sequence[float | None], need_decode: bool) -> Found:
    """The ids still dead-lettered; a requeue also needs a payload it can decode."""
    found: Found = []
    for rid, raw, score in zip(ids, payloads, scores):
        message = _decode(raw)
        if (message is not None) if need_decode else (raw is not None or score is not None):
            found.append((rid, message))
    return found


def _decode(raw: bytes | None) -> Message | None:
    try:
        return Message.decode(raw) if raw is not None else None
    except DecodeError:
        return None


def _matches(item: DeadLetter, actor: str | None, error_contains: str | None) -> bool:
    if actor is not None and item.actor != actor:
        return False
    return not error_contains or error_contains.lower() in (item.error or "").lower()


def _score(value: Stamp, default: str) -> str:
    if value is None:
        return default
    return str(int(value.timestamp() * 1000) if isinstance(value, datetime) else int(value))


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _text(raw: bytes | None) -> str | None:
    return raw.decode() if raw else None


def _last_line(text: str | None) -> str | None:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else None


def _unique(ids: Iterable[str]) -> Ids:
    return list(dict.fromkeys(str(i) for i in ids))


def _chunks(items: Ids, size: int) -> Iterator[Ids]:
    return (items[start : start + size] for start in range(0, len(items), size))
