"""`run_scheduler` in real processes: signals, a bad spec, and two schedulers side by side."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, UTC
from pathlib import Path

import pytest
import redis

import actors
from schedules.runner import current_leader
from tests.schedules.conftest import enqueued
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
NS = actors.broker.jobs.keys.ns
RUN = (
    "import tests.schedules.periodic_actors; from cli.scheduler import run_scheduler; raise SystemExit(run_scheduler())"
)


def start(code: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """A scheduler process with the suite's environment (REDIS_URL, DATABASE_URL), its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LOG_LEVEL": "INFO", "LOG_FORMAT": "console", **env},
        )


def stop(process: subprocess.Popen[bytes], signum: int | None = signal.SIGTERM) -> int:
    """Signal `process` (unless `signum` is None) and return its exit status (killed after 15 s)."""
    if signum is not None and process.poll() is None:
        process.send_signal(signum)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_scheduler_leads_then_stops_on_a_signal_and_hands_the_lock_back(
    redis_client: redis.Redis, tmp_path: Path, signum: int
) -> None:
    process = start(RUN, tmp_path / "scheduler.log")
    try:
        wait_until(
            lambda: current_leader(redis_client, NS) is not None or process.poll() is not None,
            timeout=30,
            what="a leader or the process to exit",
        )
        assert process.poll() is None, (tmp_path / "scheduler.log").read_text()
    finally:
        status = stop(process, signum)
    output = (tmp_path / "scheduler.log").read_text()
    assert status == 0, output
    assert "is now the leader" in output and "released the leadership" in output
    assert current_leader(redis_client, NS) is None


def test_a_bad_cron_spec_stops_the_scheduler_naming_the_actor(redis_client: redis.Redis, tmp_path: Path) -> None:
    code = (
        "import actors, dramatiq\n"
        "def nightly(): pass\n"
        "dramatiq.actor(nightly, periodic='61 * * * *')\n"
        "from cli.scheduler import run_scheduler; raise SystemExit(run_scheduler())"
    )
    process = start(code, tmp_path / "scheduler.log")
    status = process.wait(timeout=60)
    output = (tmp_path / "scheduler.log").read_text()
    assert status == 2, output
    assert "backroom scheduler: periodic actor nightly: cron spec '61 * * * *': minute field: 61" in output
    assert current_leader(redis_client, NS) is None


@pytest.mark.reliability
def test_two_scheduler_processes_enqueue_each_minute_exactly_once(redis_client: redis.Redis, tmp_path: Path) -> None:
    started = datetime.now(UTC)
    logs = [tmp_path / f"scheduler-{i}.log" for i in range(2)]
    processes = [start(RUN, log, SCHEDULER_LEADER_TTL_MS="3000") for log in logs]
    try:
        deadline = time.monotonic() + 68  # the run's length, long enough to cross a minute boundary
        while time.monotonic() < deadline:
            ticks = enqueued(redis_client, "sched_every_minute")
            assert len(ticks) == len(set(ticks)), f"a tick was enqueued twice: {ticks}"
            assert all(p.poll() is None for p in processes), [log.read_text() for log in logs]
            time.sleep(0.25)  # samples the ticks while the run lasts
        running_outputs = [log.read_text() for log in logs]  # before a stop hands the lock over
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        statuses = [stop(p, None) for p in processes]
    stopped = datetime.now(UTC)
    outputs = [log.read_text() for log in logs]
    assert statuses == [0, 0], outputs
    ticks = [datetime.fromisoformat(t) for t in enqueued(redis_client, "sched_every_minute")]
    assert len(ticks) >= 2 and not [t for t, n in Counter(ticks).items() if n > 1]
    assert ticks == [ticks[0] + timedelta(minutes=i) for i in range(len(ticks))]  # none skipped
    assert started.replace(second=0, microsecond=0) <= ticks[0] and ticks[-1] <= stopped
    assert sum("is now the leader" in output for output in running_outputs) == 1, running_outputs
    assert current_leader(redis_client, NS) is None
