"""Worker processes for the admin surface: who is alive, what each holds, what waits for rescue.

Workers are found through the heartbeat ZSETs (never KEYS): the server namespace's, and the
edge namespace's, where edge nodes' workers and the edge gateway beat. What a worker holds is
its ack sets (bounded by its prefetch), so the cost grows with workers and their threads, not
with the backlog. A worker whose heartbeat is older than the timeout is dead: a live worker's
reaper (for edge workers, the gateway's) puts its jobs back within one reap interval after it.
Edge nodes can write the edge namespace, so what is read there may be garbage: an unreadable
entry is logged once and skipped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis
from pydantic import ValidationError

from broker.garbled import skip_garbled
from broker.keys import EDGE_NAMESPACE_QUEUES, Keys
from broker.recovery import reap_interval_s
from domain.admin import HeldJob, OrphanJob, WorkersView, WorkerView, ms_to_dt, rescue_expected_ms, worker_view

MAX_PROCESSES = 1_000  # newest heartbeats read per namespace (a node can pad the edge heartbeat set)
_RECORD = ("status", "broker", "started_at")
Held = dict[str, list[tuple[str, str]]]


class Workers:
    """Lists worker processes (server and edge) and the orphaned jobs of dead ones."""

    def __init__(self, client: Any, keys: Keys, queues: Sequence[str], heartbeat_timeout_ms: int) -> None:
        self.client = client
        self.keys = keys
        self.queues = tuple(queues)
        self.timeout_ms = heartbeat_timeout_ms

    def view(self, now_ms: int) -> WorkersView:
        """Every heartbeating process with a description, live first, plus orphaned jobs."""
        workers: list[WorkerView] = []
        orphans: list[OrphanJob] = []
        for keys in (self.keys, self.keys.edge):
            found, lost = self._namespace(keys, now_ms)
            workers += found
            orphans += lost
        workers.sort(key=lambda w: (not w.alive, w.edge, w.name))
        return WorkersView(workers=workers, orphans=orphans, heartbeat_timeout_s=self.timeout_ms / 1000)

    def _namespace(self, keys: Keys, now_ms: int) -> tuple[list[WorkerView], list[OrphanJob]]:
        """The processes beating in one namespace, and the jobs their dead ones hold."""
        edge = keys != self.keys
        beats = self._beats(keys)
        infos, stats, held = self._describe(keys, [b for b, _ in beats])
        jobs = self._held_jobs(keys, held)
        workers, orphans = [], []
        for broker_id, last_ms in beats:
            alive = last_ms >= now_ms - self.timeout_ms
            mine = jobs.get(broker_id, [])
            if not infos[broker_id] and not mine:
                continue  # a process that used the broker without ever describing itself, holding nothing
            try:  # a description (or beat) out of range or not a number: an edge node's garbage
                worker = worker_view(
                    broker_id, last_ms, infos[broker_id], alive=alive, jobs=mine, stats=stats[broker_id], edge=edge
                )
                lost = [] if alive else self._orphans(worker, last_ms, now_ms)
            except (ValueError, OverflowError, OSError, ValidationError) as error:
                skip_garbled(keys.worker(broker_id), error)
                continue
            workers.append(worker)
            orphans += lost
        return workers, orphans

    def _queues(self, keys: Keys) -> tuple[str, ...]:
        """The queues whose ack sets live in `keys`' namespace."""
        if keys != self.keys:
            return EDGE_NAMESPACE_QUEUES
        return tuple(q for q in self.queues if self.keys.for_queue(q) == self.keys)

    def _beats(self, keys: Keys) -> list[tuple[str, int]]:
        """(broker id, last beat ms), newest first, at most MAX_PROCESSES."""
        try:
            rows = self.client.zrevrange(keys.heartbeats, 0, MAX_PROCESSES - 1, withscores=True)
        except redis.ResponseError as error:
            skip_garbled(keys.heartbeats, error)
            return []
        return [(b.decode(errors="replace"), int(score)) for b, score in rows if math.isfinite(score)]

    def _describe(
        self, keys: Keys, brokers: list[str]
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]], Held]:
        """Each process's description, counters and held (queue, redis id) pairs."""
        queues = self._queues(keys)
        with self.client.pipeline(transaction=False) as pipe:
            for broker_id in brokers:
                pipe.hgetall(keys.worker(broker_id)).hgetall(keys.worker_stats(broker_id))
                for queue in queues:
                    pipe.smembers(keys.acks(broker_id, queue))
            replies = pipe.execute(raise_on_error=False)  # a key of the wrong type reads as empty
        step = 2 + len(queues)
        infos, stats, held = {}, {}, {}
        for i, broker_id in enumerate(brokers):
            info, counters, *acks = (_or(r, {}) for r in replies[i * step : (i + 1) * step])
            infos[broker_id], stats[broker_id] = _decoded(info), _decoded(counters)
            held[broker_id] = [
                (q, rid.decode(errors="replace")) for q, rids in zip(queues, acks) for rid in sorted(rids)
            ]
        return infos, stats, held

    def _held_jobs(self, keys: Keys, held: Held) -> dict[str, list[HeldJob]]:
        """The jobs behind held redis ids: payload for id and actor, record for running or not."""
        pairs = [(broker_id, queue, rid) for broker_id, items in held.items() for queue, rid in items]
        if not pairs:
            return {}
        with self.client.pipeline(transaction=False) as pipe:
            for _, queue, rid in pairs:
                pipe.hget(keys.messages(queue), rid)
            replies = pipe.execute(raise_on_error=False)
        payloads = [_payload(keys.messages(q), p) for (_, q, _), p in zip(pairs, replies)]
        found = [(pair, p) for pair, p in zip(pairs, payloads) if p]
        with self.client.pipeline(transaction=False) as pipe:
            for _, payload in found:
                pipe.hmget(keys.job(payload["message_id"]), _RECORD)
            records = [_or(r, [None] * len(_RECORD)) for r in pipe.execute(raise_on_error=False)]
        jobs: dict[str, list[HeldJob]] = {}
        for ((broker_id, queue, _), payload), (status, runner, started) in zip(found, records):
            running = status == b"running" and runner is not None and runner == broker_id.encode()
            started_ms = _int(started) if running else None
            jobs.setdefault(broker_id, []).append(
                HeldJob(
                    job_id=payload["message_id"],
                    actor=str(payload.get("actor_name", "?"))[:200],
                    queue=queue,
                    running=running,
                    started_at=_dt(started_ms),
                )
            )
        return jobs

    def _orphans(self, worker: WorkerView, last_ms: int, now_ms: int) -> list[OrphanJob]:
        rescue = rescue_expected_ms(last_ms, self.timeout_ms, reap_interval_s(self.timeout_ms))
        return [
            OrphanJob(
                job_id=job.job_id,
                actor=job.actor,
                queue=job.queue,
                worker=worker.name,
                last_beat=ms_to_dt(last_ms),
                rescue_expected_at=ms_to_dt(rescue),
                overdue=now_ms > rescue,
            )
            for job in worker.jobs
        ]


def _or(reply: Any, empty: Any) -> Any:
    """A pipeline reply, or `empty` where Redis answered an error (a key of the wrong type)."""
    return empty if isinstance(reply, Exception) else reply


def _payload(key: str, raw: Any) -> dict[str, Any] | None:
    """A held message's payload as a dict with a string message id, else None (garbage is logged once)."""
    if not isinstance(raw, bytes):
        return None
    try:
        payload = json.loads(raw)
    except ValueError as error:
        skip_garbled(key, error)
        return None
    ok = isinstance(payload, dict) and isinstance(payload.get("message_id"), str)
    return payload if ok else None


def _dt(ms: int | None) -> datetime | None:
    try:
        return ms_to_dt(ms) if ms else None
    except (ValueError, OverflowError, OSError):
        return None


def _int(raw: bytes | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _decoded(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in raw.items()}
