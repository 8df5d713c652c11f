"""The admin surface against a real `backroom worker` pool: pause/resume across processes, the
workers' descriptions (memory), and job duration histograms served by the pool's metrics port."""

from __future__ import annotations

import os
import time
import urllib.request
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


def test_pause_holds_a_pool_and_resume_releases_it(redis_client: redis.Redis, pools, tmp_path: Path) -> None:
    port = free_port()
    pools(os.environ["REDIS_URL"], processes=2, threads=2, METRICS_PORT=str(port), dramatiq_prom_db=str(tmp_path))
    wait_until(lambda: len(live_workers(redis_client)) == 2, 60, "two workers heartbeat")
    admin = Admin(actors.broker)
    admin.pause("default")
    # a consumer that checked the paused set just before the pause may still be fetching: that
    # fetch runs what it gets (broker.pauses), so the jobs are sent once such a fetch is over
    time.sleep(0.5)
    held = [slow_effect.send(f"held-{i}", 0.0) for i in range(6)]
    time.sleep(2.0)  # long enough for either idle process to have fetched them, were it allowed to
    assert [status(m.message_id) for m in held] == [JobStatus.QUEUED] * 6
    assert not redis_client.hget(EFFECTS, "held-0")
    default = next(q for q in admin.queue_views() if q.name == "default")
    assert default.paused and default.ready == 6 and len(default.workers) == 2 and default.latency_s >= 1.5
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
