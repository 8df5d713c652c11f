"""Edge worker processes (`backroom worker --edge`) on a Redis server of the test's own."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli.stack import stop_tree

ROOT = Path(__file__).resolve().parents[2]


class EdgeWorker:
    """One `backroom worker --edge` tree started for a test; its output goes to `log`."""

    def __init__(self, redis_url: str, tmp: Path, env: dict[str, str]) -> None:
        self.log = tmp / f"edge-worker-{time.monotonic_ns()}.log"
        full_env = {**os.environ, "REDIS_URL": redis_url, "EDGE_OUTBOX_PATH": str(tmp / "outbox.sqlite3"),
                    "EDGE_HEARTBEAT_S": "0.3", "EDGE_OUTBOX_FLUSH_S": "0.2", "LOG_LEVEL": "WARNING",
                    "LOG_FORMAT": "console", "WORKER_HEARTBEAT_TIMEOUT_MS": "5000", **env}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "worker", "--edge", "-p", "1", "-t", "2",
                 "--module", "tests.edge.edge_probe"],
                cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM the tree (the masters run in sessions of their own), then SIGKILL what is left."""
        stop_tree(self.process, grace_s=30)



@pytest.fixture()
def edge_workers(tmp_path: Path) -> Iterator[Callable[..., EdgeWorker]]:
    """Start edge worker trees; each is stopped at the end of the test."""
    started: list[EdgeWorker] = []

    def start(redis_url: str, **env: str) -> EdgeWorker:
        worker = EdgeWorker(redis_url, tmp_path, env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_until(predicate: Callable[[], object], timeout: float, message: str) -> object:
    """Poll `predicate` until truthy (returning its value) or fail with `message`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s: {message}")
