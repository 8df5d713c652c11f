"""Worker processes for the admin surface: who is alive, what each holds, what waits for rescue.

Workers are found through the heartbeat ZSET (never KEYS). What a worker holds is its ack
sets (bounded by its prefetch), so the cost grows with workers and their threads, not with
the backlog. A worker whose heartbeat is older than the timeout is dead: a live worker's
reaper puts its jobs back within one reap interval after the timeout.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from broker.keys import Keys
from broker.recovery import reap_interval_s
from domain.admin import HeldJob, OrphanJob, WorkersView, WorkerView, ms_to_dt, rescue_expected_ms, worker_view

_RECORD = ("status", "broker", "started_at")


class Workers:
    """Lists worker processes and the orphaned jobs of dead ones."""

    def __init__(self, client: Any, keys: Keys, queues: Sequence[str], heartbeat_timeout_ms: int) -> None:
        self.client = client
        self.keys = keys
        self.queues = tuple(queues)
        self.timeout_ms = heartbeat_timeout_ms

    def view(self, now_ms: int) -> WorkersView:
        """Every heartbeating process with a description, newest beat first, plus orphaned jobs."""
        beats = [(b.decode(), int(score)) for b, score in self.client.zrange(self.keys.heartbeats, 0, -1,
                                                                            withscores=True)]
        infos, stats, held = self._describe([b for b, _ in beats])
        jobs = self._held_jobs(held)
        workers, orphans = [], []
        for broker_id, last_ms in beats:
            alive = last_ms >= now_ms - self.timeout_ms
            mine = jobs.get(broker_id, [])
            if not infos[broker_id] and not mine:
                continue  # a process that used the broker without ever describing itself, holding nothing
            worker = worker_view(broker_id, last_ms, infos[broker_id], alive=alive, jobs=mine, stats=stats[broker_id])
            workers.append(worker)
            if not alive:
                orphans += self._orphans(worker, last_ms, now_ms)
        workers.sort(key=lambda w: (not w.alive, w.name))
        return WorkersView(workers=workers, orphans=orphans, heartbeat_timeout_s=self.timeout_ms / 1000)

    def _describe(self, brokers: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]],
                                                     dict[str, list[tuple[str, str]]]]:
        """Each process's description, counters and held (queue, redis id) pairs."""
        with self.client.pipeline(transaction=False) as pipe:
            for broker_id in brokers:
                pipe.hgetall(self.keys.worker(broker_id)).hgetall(self.keys.worker_stats(broker_id))
                for queue in self.queues:
                    pipe.smembers(self.keys.acks(broker_id, queue))
            replies = pipe.execute()
        step = 2 + len(self.queues)
        infos, stats, held = {}, {}, {}
        for i, broker_id in enumerate(brokers):
            info, counters, *acks = replies[i * step:(i + 1) * step]
            infos[broker_id], stats[broker_id] = _decoded(info), _decoded(counters)
            held[broker_id] = [(q, rid.decode()) for q, rids in zip(self.queues, acks) for rid in sorted(rids)]
        return infos, stats, held

    def _held_jobs(self, held: dict[str, list[tuple[str, str]]]) -> dict[str, list[HeldJob]]:
        """The jobs behind held redis ids: payload for id and actor, record for running or not."""
        pairs = [(broker_id, queue, rid) for broker_id, items in held.items() for queue, rid in items]
        if not pairs:
            return {}
        with self.client.pipeline(transaction=False) as pipe:
            for _, queue, rid in pairs:
                pipe.hget(self.keys.messages(queue), rid)
            payloads = [json.loads(p) if p else None for p in pipe.execute()]
        found = [(pair, p) for pair, p in zip(pairs, payloads) if p]
        with self.client.pipeline(transaction=False) as pipe:
            for _, payload in found:
                pipe.hmget(self.keys.job(payload["message_id"]), _RECORD)
            records = pipe.execute()
        jobs: dict[str, list[HeldJob]] = {}
        for ((broker_id, queue, _), payload), (status, runner, started) in zip(found, records):
            running = status == b"running" and runner is not None and runner.decode() == broker_id
            jobs.setdefault(broker_id, []).append(HeldJob(
                job_id=payload["message_id"], actor=payload.get("actor_name", "?"), queue=queue, running=running,
                started_at=ms_to_dt(int(started)) if running and started else None))
        return jobs

    def _orphans(self, worker: WorkerView, last_ms: int, now_ms: int) -> list[OrphanJob]:
        rescue = rescue_expected_ms(last_ms, self.timeout_ms, reap_interval_s(self.timeout_ms))
        return [OrphanJob(job_id=job.job_id, actor=job.actor, queue=job.queue, worker=worker.name,
                          last_beat=ms_to_dt(last_ms), rescue_expected_at=ms_to_dt(rescue), overdue=now_ms > rescue)
                for job in worker.jobs]


def _decoded(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}
