"""The admin surface under a big backlog: overview and dead-letter page latencies at 1,000 and 100,000 jobs.

Run from the repo root with no arguments: `python bench/admin_pages.py` (about a minute). It
starts its own redis-server (no database: the figures are Redis work; the HTTP layer adds
the same constant at any size), writes jobs straight into the broker's Redis layout with
pipelines (queue list + payload hash, job records, job index, dead-letter ZSET + payloads),
and times what the pages and API compute on each load:

- overview: every queue's counts, latency, 5/60-minute outcomes and consumers, the chart
  samples and the worker list (`/admin/`, `/admin/overview.json`, `GET /v1/admin/queues`);
- dead page: per-queue dead counts and the newest 50 dead letters of `default` with their
  records (`/admin/dead`, `GET /v1/admin/dead/default`).

Two namespaces in the same Redis hold 1,000 queued + 100 dead jobs and 100,000 queued +
10,000 dead (the same 10:1 mix), four live workers holding a few jobs each in both. The
calls alternate between the two, so a busy machine slows both alike; each figure is the
median of BENCH_ADMIN_ROUNDS (default 300) calls. The ratio large/small must stay below 2:
nothing on a page load may scan per job. Ends with one line:
`bench: admin overview_ratio=.. dead_ratio=..`.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# `python bench/x.py` puts bench/ on the path; the repo root too, so the top-level packages import
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _services import Stack, percentile, say  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ADMIN_ROUNDS", "300"))
SIZES = ((1_000, 100), (100_000, 10_000))  # (queued, dead): small, large
BATCH = 5_000
WORKERS = 4


def fill(client: Any, ns: str, queued: int, dead: int) -> float:
    """Write `queued` ready jobs and `dead` dead letters on `default` in the broker's layout; seconds taken."""
    started = time.monotonic()
    now = int(time.time() * 1000)
    for first in range(0, queued + dead, BATCH):
        with client.pipeline(transaction=False) as pipe:
            for n in range(first, min(first + BATCH, queued + dead)):
                _job(pipe, ns, now - (queued + dead - n) * 10, is_dead=n >= queued)
            pipe.execute()
    return time.monotonic() - started


def _job(pipe: Any, ns: str, at_ms: int, *, is_dead: bool) -> None:
    job_id, rid = str(uuid.uuid4()), str(uuid.uuid4())
    kwargs = {"message": f"bench {job_id[:8]}", "fail": is_dead, "sleep_ms": 0}
    options: dict[str, Any] = {"redis_message_id": rid}
    if is_dead:
        options.update(retries=2, traceback="Traceback (most recent call last):\nPingFailed: ping asked to fail")
    payload = json.dumps(
        {
            "queue_name": "default",
            "actor_name": "ping",
            "args": [],
            "kwargs": kwargs,
            "options": options,
            "message_id": job_id,
            "message_timestamp": at_ms,
        }
    )
    record = {
        "status": "dead" if is_dead else "queued",
        "actor": "ping",
        "queue": "default",
        "attempts": 3 if is_dead else 0,
        "args": json.dumps({"args": [], "kwargs": kwargs}),
        "enqueued_at": at_ms,
        "rid": rid,
        "qname": "default",
    }
    if is_dead:
        record.update(last_error="PingFailed: ping asked to fail", finished_at=at_ms + 5)
        pipe.zadd(f"{ns}:default.XQ", {rid: at_ms + 5}).hset(f"{ns}:default.XQ.msgs", rid, payload)
    else:
        pipe.hset(f"{ns}:default.msgs", rid, payload).rpush(f"{ns}:default", rid)
    pipe.hset(f"{ns}:job:{job_id}", mapping=record).zadd(f"{ns}:jobs", {job_id: at_ms})


def workers(client: Any, ns: str) -> None:
    """Four live worker processes, each holding two of the queued jobs (moved to its ack set)."""
    now = int(time.time() * 1000)
    for i in range(WORKERS):
        broker_id = f"bench-worker-{i}"
        client.zadd(f"{ns}:__heartbeats__", {broker_id: now + 600_000})  # stays live for the whole run
        client.hset(
            f"{ns}:worker:{broker_id}",
            mapping={
                "name": f"bench:{i}",
                "host": "bench",
                "pid": i,
                "queues": "default,ml",
                "threads": 8,
                "rss": 50_000_000,
                "last_beat": now,
            },
        )
        for rid in client.lpop(f"{ns}:default", 2) or []:
            client.sadd(f"{ns}:__acks__.{broker_id}.default", rid)


def paired(small: Callable[[], Any], large: Callable[[], Any]) -> tuple[list[float], list[float]]:
    """Milliseconds per call of each, alternating which goes first, after a warm-up."""
    for _ in range(10):
        small()
        large()
    times: tuple[list[float], list[float]] = ([], [])
    for n in range(ROUNDS):
        order = ((0, small), (1, large)) if n % 2 == 0 else ((1, large), (0, small))
        for index, call in order:
            started = time.perf_counter()
            call()
            times[index].append((time.perf_counter() - started) * 1000)
    return times


def overview(admin: Any) -> Callable[[], None]:
    """What the overview computes: queue counts, chart samples, the worker list."""

    def call() -> None:
        admin.queue_views()
        admin.histories()
        admin.workers()

    return call


def dead_page(admin: Any) -> Callable[[], None]:
    """What the dead-letter page computes: counts per queue and the newest 50 of `default`."""

    def call() -> None:
        admin.dead.counts()
        admin.dead_page("default", limit=50)

    return call


def prepare(settings: Any, namespace: str, queued: int, dead: int) -> Any:
    """A broker on its own namespace, filled; its admin service."""
    from broker.setup import build_broker
    from admin.service import Admin

    broker = build_broker(settings.model_copy(update={"redis_namespace": namespace}), reap=False)
    seconds = fill(broker.client, namespace, queued, dead)
    workers(broker.client, namespace)
    admin = Admin(broker)
    views = {q.name: q for q in admin.queue_views()}
    assert views["default"].ready == queued - 2 * WORKERS and views["default"].dead == dead
    assert views["default"].in_flight == 2 * WORKERS and admin.dead_page("default").total == dead
    say(f"{namespace}: filled {queued:,} queued + {dead:,} dead jobs in {seconds:.1f} s")
    return admin


def main() -> int:
    """Fill, time, compare; prints the figures and the summary line."""
    stack = Stack()
    try:
        os.environ.update(
            REDIS_URL=stack.start_redis(), DATABASE_URL=stack.database_url, METRICS_PORT="0", LOG_LEVEL="WARNING"
        )
        from config.settings import get_settings

        small, large = (prepare(get_settings(), name, q, d) for name, (q, d) in zip(("small", "large"), SIZES))
        say(
            f"redis holds {large.broker.client.info('memory')['used_memory_human']}; {ROUNDS} alternating calls of each"
        )
        ratios = {}
        for name, make in (("overview", overview), ("dead page", dead_page)):
            at_small, at_large = paired(make(small), make(large))
            ratios[name] = statistics.median(at_large) / statistics.median(at_small)
            say(
                f"  {name:<9} at 1,000: p50 {statistics.median(at_small):5.2f} ms"
                f" p95 {percentile(at_small, 95):5.2f} ms"
                f" | at 100,000: p50 {statistics.median(at_large):5.2f} ms p95 {percentile(at_large, 95):5.2f} ms"
                f" | x{ratios[name]:.2f}"
            )
        for admin in (small, large):
            admin.broker.close()
        say(f"bench: admin overview_ratio={ratios['overview']:.2f} dead_ratio={ratios['dead page']:.2f}")
        return 0 if max(ratios.values()) < 2 else 1
    finally:
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
