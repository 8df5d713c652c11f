"""The admin surface against a real `backroom worker` pool: pause/resume across processes, the
workers' descriptions (memory), and job duration histograms served by the pool's metrics port."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

import actors
from admin.service import Admin
from cli.stack import free_port
from domain.jobs import JobStatus
from tests.reliability.conftest import live_workers
from tests.reliability.effects import EFFECTS, slow_effect
from tests.waiting import wait_until

pytestmark = pytest.mark.reliability


def status(job_id: str) -> JobStatus | None:
    record = actors.broker.jobs.get(job_id)
    return record.status if record else None


def now_ms() -> int:
    return int(time.time() * 1000)  # the clock the pool's processes on this host stamp their records with


def pauses_seen(client: redis.Redis, queue: str, holds: Callable[[int, int], bool]) -> list[tuple[int, int]]:
    """Each live worker process's record of the pause of `queue` (broker.pauses: (since_ms, last_ms)) when
    every one has a record and `holds(since_ms, last_ms)` for each, else []."""
    records = []
    for info in live_workers(client).values():
        if queue in info.get("queues", "").split(","):
            seen = json.loads(info.get("pauses_seen") or "{}").get(queue)
            if not seen or not holds(int(seen[0]), int(seen[1])):
                return []
            records.append((int(seen[0]), int(seen[1])))
    return records


def test_pause_holds_a_pool_and_resume_releases_it(redis_client: redis.Redis, pools, tmp_path: Path) -> None:
    port = free_port()
    pools(os.environ["REDIS_URL"], processes=2, threads=2, METRICS_PORT=str(port), dramatiq_prom_db=str(tmp_path))
    wait_until(lambda: len(live_workers(redis_client)) == 2, 60, "two workers heartbeat")
    admin = Admin(actors.broker)
    admin.pause("default")
    paused_at = now_ms()  # the pause is in Redis by now
    # a consumer that checked the paused set just before the pause may still be fetching, and runs what it
    # gets: the jobs are sent once every live process's consumer of `default` has found it paused in a check
    # begun after the pause, from when it fetches nothing until the resume (see WakingConsumer.__next__)
    wait_until(
        lambda: pauses_seen(redis_client, "default", lambda _, last: last > paused_at),
        30,
        "every live worker to see the pause of default",
        detail=lambda: f"paused at {paused_at}: {live_workers(redis_client)}",
    )
    held = [slow_effect.send(f"held-{i}", 0.0) for i in range(6)]
    sent_at = now_ms()
    # nothing happened: each has checked again since the jobs were sent and found default still paused,
    # with no fetch since before they were sent (a fetch clears its record: it would start after sent_at)
    seen = wait_until(
        lambda: pauses_seen(redis_client, "default", lambda since, last: since <= sent_at < last),
        30,
        "every live worker to check the pause of default after the send, fetching nothing",
        detail=lambda: f"sent at {sent_at}: {live_workers(redis_client)}",
    )
    assert len(seen) == 2
    assert [status(m.message_id) for m in held] == [JobStatus.QUEUED] * 6
    assert not redis_client.hget(EFFECTS, "held-0")
    viewed_from = now_ms()
    default = next(q for q in admin.queue_views() if q.name == "default")
    assert default.paused and default.ready == 6 and len(default.workers) == 2
    assert default.latency_s >= (viewed_from - sent_at) / 1000 and default.latency_s > 0
    admin.resume("default")
    for message in held:
        wait_until(lambda m=message: status(m.message_id) is JobStatus.SUCCEEDED, 30, "held jobs run after resume")
    view = admin.workers()
    server = [w for w in view.workers if not w.edge]
    assert len([w for w in server if w.alive]) == 2
    assert all(w.rss_bytes and w.rss_bytes > 10_000_000 and w.threads == 2 for w in server)
    assert sum(w.processed for w in server) == 6
    assert [w.queues for w in view.workers if w.edge and w.alive] == [["results"]]  # the pool's edge gateway

    def histogram_count() -> float:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        except OSError:
            return 0.0
        lines = [
            line
            for line in text.splitlines()
            if line.startswith("dramatiq_message_duration_milliseconds_count") and "slow_effect" in line
        ]
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines)

    # both processes' observations, served from the pool's one port
    assert wait_until(lambda: histogram_count() == 6, 30, "six durations in the pool's histogram")
