"""Crash recovery: heartbeats from a thread of their own, and a reaper in every worker.

Dramatiq re-runs a dead worker's messages only when a 0.1%-chance maintenance step runs
(minutes later) and never counts a crash as a retry. Here every worker process
heartbeats every `interval`, independent of how busy its worker threads are, and reaps
dead workers every few seconds: their in-flight messages go back to their queues, and a
message whose worker died while running it `poison_threshold` times, the last time alone,
is dead-lettered (see lua/reap.lua and broker.gate).

A worker cut off from Redis fences itself (broker.gate): its heartbeats tell it how long
Redis has not heard from it. The reaper leaves a tombstone (`reaped:<broker id>`) for every
worker it reaps; a worker whose heartbeat finds its own tombstone knows its jobs run
elsewhere now, so it starts nothing more, its late record writes are refused (see
broker.tracking), and it stops itself so that its pool starts a fresh process.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from importlib import resources
from typing import Any

import redis
from redis.typing import EncodableT
from dramatiq import Middleware
from dramatiq.broker import Broker

from broker.gate import Fence
from broker.handback import hand_back
from broker.outage import die_with_parent, guard_threads
from config.settings import ALL_QUEUES

log = logging.getLogger(__name__)
_REAP = resources.files("broker").joinpath("lua/reap.lua").read_text()


class Recovery(Middleware):
    """Starts the heartbeat and reaper threads in each worker process."""

    def __init__(
        self,
        *,
        heartbeat_timeout_ms: int,
        poison_threshold: int,
        job_retention_s: int,
        reap: bool = True,
        fence: Fence | None = None,
    ) -> None:
        self.timeout_ms = heartbeat_timeout_ms
        self.fence = fence or Fence(heartbeat_timeout_ms)
        self.threshold = poison_threshold
        self.retention_s = job_retention_s
        self.reap = reap
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.beat_failed_at = float("-inf")  # monotonic time of this process's last refused heartbeat

    def after_process_boot(self, broker: Broker) -> None:
        # a worker process (not the web or the scheduler): it dies with its parent (no orphan
        # consumes on after a master's SIGKILL), with any of its threads, and waits out outages
        die_with_parent()
        guard_threads()
        if hasattr(broker, "enqueue_until_it_lands"):
            broker.enqueue_until_it_lands = True

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        self.stopping.clear()
        self.fence.stopping.clear()
        self.fence.beat_ok()  # the first beat follows at once
        self.worker = worker
        targets = [self._heartbeat_loop] + ([self._reap_loop] if self.reap else [])
        self.threads = [threading.Thread(target=t, args=(broker,), daemon=True, name=t.__name__) for t in targets]
        for thread in self.threads:
            thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        self.stopping.set()

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:  # Backroom's RedisBroker (client, namespace)
        for thread in self.threads:
            thread.join(timeout=5)
        if self.fence.reaped.is_set() or self.fence.unreturned:  # what it may still hold: the reaper frees it
            log.warning("stopped holding messages it could not hand back; leaving its heartbeat to expire")
            return
        # jobs still running past the shutdown deadline go back to their queues; when Redis
        # refuses, the heartbeat stays so that it expires and the reaper re-queues them
        if not hand_back(broker, sorted(getattr(worker, "consumers", {})), int(time.time() * 1000)):
            return
        try:  # a clean exit: nothing in flight any more, so this worker needs no reaping
            broker.client.zrem(f"{broker.namespace}:__heartbeats__", broker.broker_id)
            broker.client.delete(f"{broker.namespace}:worker:{broker.broker_id}")
        except redis.RedisError:
            log.warning("could not remove this worker's heartbeat; the reaper will")

    def _heartbeat_loop(self, broker: Any) -> None:
        interval, client = heartbeat_interval_s(self.timeout_ms), beat_client(broker.client, self.timeout_ms)
        fenced_at: float | None = None
        failing = False  # one log line per outage, not per beat
        while not self.stopping.is_set():
            try:
                if not beat(broker, self.worker, ttl_s=max(1, self.timeout_ms * 3 // 1000), client=client):
                    return self._reaped()
                self.fence.beat_ok()
                if fenced_at is not None:
                    log.warning("Redis answers again after %.1f s; fence lifted", time.monotonic() - fenced_at)
                    self.fence.notify(False)
                fenced_at, failing = None, False
            except redis.RedisError as error:
                if not failing:
                    log.warning("heartbeat failed: %s", error)
                failing = True
                self.beat_failed_at = time.monotonic()
            if fenced_at is None and self.fence.fenced():
                fenced_at = self.fence.last_ok
                log.error(
                    "no heartbeat reached Redis for %.1f s: fenced, starting no job until one does",
                    time.monotonic() - fenced_at,
                )
                self.fence.notify(True)
            self.stopping.wait(interval)

    def _reaped(self) -> None:
        self.fence.reaped.set()
        self.fence.changed.set()
        log.error("this worker was reaped while cut off from Redis (its jobs were re-queued); stopping it")
        # a worker process handles SIGTERM as a graceful stop, and its pool starts a fresh one
        if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None):
            os.kill(os.getpid(), signal.SIGTERM)

    def _reap_loop(self, broker: Any) -> None:
        interval = reap_interval_s(self.timeout_ms)
        while not self.stopping.wait(interval):
            # fenced: its own heartbeat is stale too (it would reap itself); and when Redis refused
            # our heartbeats (down, full, read-only) it refused everyone's: every heartbeat looks
            # old until all workers beat again
            if self.fence.fenced() or time.monotonic() - self.beat_failed_at < self.timeout_ms * 1.5 / 1000:
                continue
            try:
                reap(broker, timeout_ms=self.timeout_ms, threshold=self.threshold, retention_s=self.retention_s)
            except redis.RedisError as error:
                log.warning("reaper failed: %s", error)


def heartbeat_interval_s(timeout_ms: int) -> float:
    """How often a worker process heartbeats: ten beats per timeout."""
    return max(0.2, timeout_ms / 10_000)


def reap_interval_s(timeout_ms: int) -> float:
    """How often each worker looks for dead ones (the admin pages add it to the expected rescue time)."""
    return max(0.5, min(5.0, timeout_ms / 4000))


def rss_bytes() -> int:
    """This process's resident memory now (Linux /proc), else its peak; 0 when unknown."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        try:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return peak if sys.platform == "darwin" else peak * 1024
        except (ImportError, OSError):
            return 0


def beat_client(client: redis.Redis, timeout_ms: int) -> redis.Redis:
    """A client for heartbeats that gives up on a silent link in time to fence (a plain pool only)."""
    pool = client.connection_pool
    if type(pool) is not redis.ConnectionPool:  # e.g. Sentinel-managed: keep its own
        return client
    seconds = max(0.5, timeout_ms / 4000)
    kwargs = {**pool.connection_kwargs, "socket_timeout": seconds, "socket_connect_timeout": seconds}
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


def beat(broker: Any, worker: Any, *, ttl_s: int, client: redis.Redis | None = None) -> bool:
    """Write this process's heartbeat and a description of it (for the admin pages); False when it was reaped."""
    ns, now = broker.namespace, int(time.time() * 1000)
    info: dict[EncodableT, EncodableT] = {
        "name": f"{socket.gethostname()}:{os.getpid()}",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "queues": ",".join(sorted(_consumed(worker, broker))),
        "threads": getattr(worker, "worker_threads", 0),
        "last_beat": now,
        "rss": rss_bytes(),
        # queue -> [since_ms, last_ms] of each pause this process's consumer holds to (see broker.pauses)
        "pauses_seen": json.dumps(broker.pauses.observed() if hasattr(broker, "pauses") else {}),
    }
    with (client or broker.client).pipeline(transaction=False) as pipe:
        pipe.exists(f"{ns}:reaped:{broker.broker_id}")
        pipe.zadd(f"{ns}:__heartbeats__", {broker.broker_id: now})
        pipe.hset(f"{ns}:worker:{broker.broker_id}", mapping=info)
        pipe.expire(f"{ns}:worker:{broker.broker_id}", ttl_s)
        return not pipe.execute()[0]


def _consumed(worker: Any, broker: Any) -> set[str]:
    """The queues a worker consumes: its `--queues` whitelist, else every declared one."""
    chosen = getattr(worker, "consumer_whitelist", None) or getattr(worker, "queues", None)
    return set(chosen or (q for q in broker.get_declared_queues() if not q.endswith(".DQ")))


def reap(broker: Any, *, timeout_ms: int, threshold: int, retention_s: int) -> tuple[int, int, int]:
    """Recover dead workers' messages once; returns (dead workers, recovered, poisoned)."""
    client: redis.Redis = broker.client
    # right after a Redis restart every heartbeat looks old: give live workers time to beat
    if int(client.info("server")["uptime_in_seconds"]) * 1000 < timeout_ms * 1.5:
        return (0, 0, 0)
    queues = sorted({*ALL_QUEUES, *(q for q in broker.get_declared_queues() if not q.endswith(".DQ"))})
    result = client.eval(
        _REAP,
        1,
        f"{broker.namespace}:__heartbeats__",
        broker.namespace,
        int(time.time() * 1000),
        timeout_ms,
        threshold,
        retention_s,
        *queues,
    )
    dead, recovered, poisoned = (int(x) for x in result)
    if dead:
        log.warning(
            "reaped %d dead worker(s): %d job(s) re-queued, %d poison job(s) dead-lettered", dead, recovered, poisoned
        )
    return dead, recovered, poisoned
