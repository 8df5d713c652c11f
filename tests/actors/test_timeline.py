"""Each job's timeline and the per-minute outcome counters, written by the real tracking path."""

from __future__ import annotations

import redis
from dramatiq import Worker

import actors
from actors.ops import ping
from admin.timeline import attempts_from, event_from_raw, ordered
from broker.pauses import Pauses, pause_queue, resume_queue
from broker.queues import QueueStats, known_queues
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_status

KEYS = actors.broker.jobs.keys


def test_retries_then_dead_make_a_readable_timeline(redis_client: redis.Redis, worker: Worker) -> None:
    message = ping.send(message="boom", fail=True)  # max_retries=2, backoff 200..2000 ms
    wait_for_status(message.message_id, JobStatus.DEAD, timeout=30)
    worker.stop()
    next(m for m in actors.broker.middleware if type(m).__name__ == "JobTracking").writer.flush()
    events = ordered([event_from_raw(e) for e in actors.broker.jobs.events(message.message_id)])
    names = [e.event for e in events]
    assert names == [
        "queued",
        "started",
        "failed",
        "retrying",
        "retry_due",
        "started",
        "failed",
        "retrying",
        "retry_due",
        "started",
        "dead",
    ], names
    assert events[3].eta is not None and events[2].error == "PingFailed: ping asked to fail: boom"
    attempts = attempts_from(events)
    assert [a.outcome for a in attempts] == ["failed", "failed", "dead"]
    assert all("PingFailed" in (a.traceback or "") and a.worker and a.duration_ms is not None for a in attempts)
    ttl = redis_client.ttl(KEYS.events(message.message_id))
    assert ttl == -1  # a dead job's timeline is kept as long as its record


def test_outcomes_are_counted_per_queue_minute_and_worker(redis_client: redis.Redis, worker: Worker) -> None:
    ok = [ping.send(message=f"ok{i}") for i in range(3)]
    for message in ok:
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
    worker.stop()
    next(m for m in actors.broker.middleware if type(m).__name__ == "JobTracking").writer.flush()
    stats = QueueStats(actors.broker.client, KEYS, known_queues(actors.broker), actors.broker.heartbeat_timeout)
    from dramatiq.common import current_millis

    default = next(q for q in stats.overview(current_millis()) if q.name == "default")
    assert (default.processed_5m, default.failed_5m, default.processed_60m) == (3, 0, 3)
    (hour_key,) = redis_client.keys(f"{KEYS.ns}:stats:default:*")
    assert 0 < redis_client.ttl(hour_key) <= 2 * 3600 + 300
    (worker_key,) = redis_client.keys(f"{KEYS.ns}:workerstats:*")
    assert redis_client.hget(worker_key, "processed") == b"3"


def test_pause_view_asks_redis_when_fresh_and_caches_otherwise(redis_client: redis.Redis) -> None:
    pauses = Pauses(actors.broker.client, KEYS, refresh_s=60)
    assert pauses.paused("ml") is False
    assert pause_queue(actors.broker.client, KEYS, "ml") is True
    assert pause_queue(actors.broker.client, KEYS, "ml") is False
    assert pauses.paused("ml") is False  # the cached copy, as a busy consumer sees it for up to a second
    assert pauses.paused("ml", fresh=True) is True  # an idle consumer asks Redis
    assert resume_queue(actors.broker.client, KEYS, "ml") is True and pauses.paused("ml", fresh=True) is False
