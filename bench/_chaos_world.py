"""One chaos scenario's world: its own Redis, worker pools, the effects ledger and the jobs it sent.

`with world(name) as w:` starts a fresh redis-server in a temp directory; everything the
scenario starts through `w` (pools, namespaces, Sentinels, killed processes' orphans) is
stopped when the block ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench._chaos_actors import chaos_job, chaos_poison
from bench._services import wait_until
from bench._chaos_ledger import Counts, Line, Loss, State, count, pending, read_ledger
from bench._chaos_procs import REPO, Netns, SentinelSet, WorkerPool, alive, kill
from broker.setup import build_broker
from cli.stack import RedisProcess
from config.settings import get_settings

HEARTBEAT_MS = 2_000  # as the reliability tests: dead workers are reaped within seconds
SETTLE_TIMEOUT_S = 40.0
DUMMY_DATABASE_URL = "postgresql://chaos@127.0.0.1:1/unused"  # Settings need one; the chaos actors use none


@dataclass
class World:
    """A scenario's services, processes, sent jobs and losses."""

    name: str
    root: Path
    redis_url: str
    server: RedisProcess | None = None
    sentinels: SentinelSet | None = None
    wait_replicas: int = 0  # REDIS_WAIT_REPLICAS of the sender and the pools
    heartbeat_ms: int = HEARTBEAT_MS
    jobs: dict[str, str] = field(default_factory=dict)  # tag -> job id
    poison: set[str] = field(default_factory=set)
    losses: list[Loss] = field(default_factory=list)
    pools: list[WorkerPool] = field(default_factory=list)
    netns: list[Netns] = field(default_factory=list)
    broker: Any = None
    counts: Counts = field(init=False)

    def __post_init__(self) -> None:
        self.ledger = self.root / "ledger"
        self.ledger.mkdir(parents=True, exist_ok=True)
        self.counts = Counts(self.name)
        update: dict[str, Any] = {
            "redis_url": self.redis_url,
            "worker_heartbeat_timeout_ms": self.heartbeat_ms,
            "redis_wait_replicas": self.wait_replicas,
        }
        if self.sentinels is not None:
            update["redis_sentinels"] = self.sentinels.addresses
        self.broker = build_broker(get_settings().model_copy(update=update))
        self.client = self.broker.client

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a worker pool of this world."""
        env = {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "WORKER_HEARTBEAT_TIMEOUT_MS": str(self.heartbeat_ms),
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "console",
            "METRICS_PORT": "0",
            "REDIS_WAIT_REPLICAS": str(self.wait_replicas),
            "CHAOS_LEDGER": str(self.ledger),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        env.setdefault("DATABASE_URL", DUMMY_DATABASE_URL)
        if self.sentinels is not None:
            env["REDIS_SENTINELS"] = self.sentinels.addresses
        return {**env, **extra}

    def pool(self, processes: int, threads: int, *, netns: str | None = None, **env: str) -> WorkerPool:
        """Start a `backroom worker` pool running the chaos actors."""
        pool = WorkerPool(
            self.root / f"pool{len(self.pools)}.log", self.env(**env), processes=processes, threads=threads, netns=netns
        )
        self.pools.append(pool)
        return pool

    def send(self, tag: str, seconds: float = 0.0, *, fail_times: int = 0, delay: int | None = None) -> None:
        """Enqueue one counted job."""
        message = self.broker.enqueue(chaos_job.message(tag, seconds, fail_times), delay=delay)
        self.jobs[tag] = message.message_id

    def send_poison(self, tag: str) -> None:
        """Enqueue a job that SIGKILLs whatever worker process runs it."""
        self.jobs[tag] = self.broker.enqueue(chaos_poison.message(tag)).message_id
        self.poison.add(tag)

    def lines(self) -> dict[str, list[Line]]:
        """The ledger so far."""
        return read_ledger(self.ledger)

    def running(self, pids: set[int] | list[int]) -> dict[int, int]:
        """pid -> how many jobs each of `pids` is running now, by the ledger."""
        open_starts: dict[int, int] = {}
        for lines in self.lines().values():
            for index, line in enumerate(lines):
                if (
                    line.kind == "start"
                    and line.pid in pids
                    and not any(later.pid == line.pid and later.kind != "start" for later in lines[index + 1 :])
                ):
                    open_starts[line.pid] = open_starts.get(line.pid, 0) + 1
        return open_starts

    def wait_running(self, pool: WorkerPool, at_least: int = 1, timeout: float = 60) -> dict[int, int]:
        """Wait until `pool`'s workers run `at_least` jobs between them; returns pid -> running."""
        found: dict[int, int] = {}

        def enough() -> bool:
            found.clear()
            found.update(self.running(set(pool.workers())))
            return sum(found.values()) >= at_least

        wait_until(enough, timeout=timeout, interval=0.1, what=f"{at_least} job(s) running in {self.name}")
        return found

    def done(self) -> int:
        """How many distinct jobs took effect so far."""
        return sum(1 for lines in self.lines().values() if any(line.kind == "done" for line in lines))

    def states(self) -> dict[str, State]:
        """Each job's record status and whether Redis still holds its message."""
        keys = self.broker.jobs.keys
        tags = list(self.jobs)
        with self.client.pipeline(transaction=False) as pipe:
            for tag in tags:
                pipe.hmget(keys.job(self.jobs[tag]), "status", "rid")
            records = pipe.execute()
        with self.client.pipeline(transaction=False) as pipe:
            for _status, rid in records:
                for queue in ("default", "default.DQ"):
                    pipe.hexists(keys.messages(queue), rid or b"-")
            held = pipe.execute()
        return {
            tag: State(status.decode() if status else None, held[2 * i] or held[2 * i + 1])
            for i, (tag, (status, _)) in enumerate(zip(tags, records))
        }

    def tally(self) -> Counts:
        """Count now (the poison job's starts are losses of the processes it killed)."""
        ledger = self.lines()
        losses = self.losses + [
            Loss(frozenset({line.pid}), line.at)
            for tag in self.poison
            for line in ledger.get(tag, [])
            if line.kind == "start"
        ]
        return count(self.counts, self.jobs, self.states(), ledger, losses, self.poison)

    def settle(self, since: float, timeout: float = SETTLE_TIMEOUT_S) -> Counts:
        """Wait until Redis holds no job and every record reads finished; record the time it took."""
        try:
            settled_at = wait_until(
                lambda: pending(self.states()) == 0, timeout=timeout, interval=0.25, what=f"{self.name} to settle"
            )
        except (TimeoutError, redis.RedisError):
            settled_at = time.monotonic()
        self.counts.settle_s = max(self.counts.settle_s, settled_at - since)
        return self.tally()

    def note(self, text: str) -> None:
        """Add a remark to the scenario's line."""
        self.counts.notes.append(text)

    def stop(self) -> None:
        """Stop every process this world started (orphans of killed masters included)."""
        for pool in self.pools:
            pool.stop()
        for pid in {pid for loss in self.losses for pid in loss.pids}:
            if alive(pid):
                kill(pid)
        for namespace in self.netns:
            namespace.delete()
        self.broker.close()


@contextmanager
def world(
    name: str,
    *,
    redis_args: tuple[str, ...] = (),
    sentinels: bool = False,
    wait_replicas: int = 0,
    heartbeat_ms: int = HEARTBEAT_MS,
) -> Iterator[World]:
    """A fresh world for one scenario (a redis-server, or a Sentinel set), torn down at the end."""
    root = Path(tempfile.mkdtemp(prefix=f"backroom-chaos-{name}-"))
    server = sentinel_set = None
    w: World | None = None
    try:
        if sentinels:
            sentinel_set = SentinelSet(root / "redis")
            url = sentinel_set.primary.url
        else:
            server = RedisProcess(root / "redis", extra_args=redis_args).start()
            url = server.url
        w = World(
            name,
            root,
            url,
            server=server,
            sentinels=sentinel_set,
            wait_replicas=wait_replicas,
            heartbeat_ms=heartbeat_ms,
        )
        yield w
    finally:
        if w is not None:
            w.stop()
        if sentinel_set is not None:
            sentinel_set.stop()
        if server is not None:
            server.stop(kill=True)
        shutil.rmtree(root, ignore_errors=True)
