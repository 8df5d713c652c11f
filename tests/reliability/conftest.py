"""Real worker pools (`backroom worker`) on a Redis server each test may restart or outlive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis

from cli.stack import stop_tree

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_MS = 2_000


class Pool:
    """A `backroom worker` process tree started for a test."""

    def __init__(
        self, redis_url: str, processes: int, threads: int, extra_env: dict[str, str], wrap: Sequence[str] = ()
    ) -> None:
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "WORKER_HEARTBEAT_TIMEOUT_MS": str(HEARTBEAT_MS),
            "LOG_LEVEL": "WARNING",
            **extra_env,
        }
        self.process = subprocess.Popen(  # `wrap`: a prefix such as `ip netns exec <name>` (tests/reliability/netns.py)
            [
                *wrap,
                sys.executable,
                "-m",
                "cli.main",
                "worker",
                "-p",
                str(processes),
                "-t",
                str(threads),
                "--module",
                "tests.reliability.effects",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM the supervisor (graceful) and wait for it."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """Kill the whole process tree (the masters run in sessions of their own)."""
        stop_tree(self.process)


@pytest.fixture()
def pools() -> Iterator[Callable[..., Pool]]:
    """Start worker pools; all are killed at the end of the test."""
    started: list[Pool] = []

    def start(redis_url: str, processes: int = 2, threads: int = 2, wrap: Sequence[str] = (), **env: str) -> Pool:
        pool = Pool(redis_url, processes, threads, env, wrap)
        started.append(pool)
        return pool

    yield start
    for pool in started:
        pool.kill()


def live_workers(client: redis.Redis, ns: str = "backroom") -> dict[str, dict[str, str]]:
    """Broker id -> description of every worker process that heartbeats."""
    out = {}
    for key in client.scan_iter(f"{ns}:worker:*"):
        info = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
        if info:
            out[key.decode().rsplit(":", 1)[1]] = info
    return out
