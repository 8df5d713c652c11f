"""Services and child processes for the bench scripts: started like the tests start them, always stopped."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from cli.stack import PostgresProcess, RedisProcess

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
BIN = Path(sys.executable).parent


def say(line: str) -> None:
    """Print one progress line at once (the bench runs for minutes)."""
    print(line, flush=True)


@dataclass
class Stack:
    """A fresh redis-server (and, on demand, Postgres) in a temp dir, plus the children we spawn."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="backroom-bench-")))
    redis: RedisProcess | None = None
    postgres: PostgresProcess | None = None
    database_url: str = "postgresql://unused@127.0.0.1:1/unused"  # Settings needs one even when unused
    children: list[Child] = field(default_factory=list)

    def start_redis(self) -> str:
        """Start redis-server on a free port; returns its URL."""
        self.redis = RedisProcess(self.root / "redis").start()
        return self.redis.url

    def start_postgres(self) -> str:
        """Start embedded Postgres, migrate a fresh database; returns its DSN."""
        from db.migrate import migrate

        self.postgres = PostgresProcess(self.root / "pg").start()
        self.database_url = self.postgres.database_url("backroom_bench")
        asyncio.run(migrate(self.database_url))
        return self.database_url

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a worker or API child (bench/ importable, quiet logs, no metrics port)."""
        assert self.redis is not None
        env = dict(os.environ)
        env.update(
            REDIS_URL=self.redis.url,
            DATABASE_URL=self.database_url,
            METRICS_PORT="0",
            LOG_LEVEL="WARNING",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), str(BENCH_DIR), env.get("PYTHONPATH")])),
        )
        env.update(extra)
        return env

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        """Start a child in its own process group, logging to a file in the temp dir."""
        log = self.root / f"{name}.log"
        handle = log.open("ab")
        process = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        handle.close()
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def stop(self) -> None:
        """Stop every child, then the services; remove the temp dir."""
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        with ExitStack() as stack:  # each stop runs even when an earlier one raised
            if self.postgres is not None:
                stack.callback(self.postgres.stop)
            if self.redis is not None:
                stack.callback(self.redis.stop, kill=True)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Child:
    """A child process group we started (dramatiq's master forks its workers into it)."""

    name: str
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        """True while the group leader runs."""
        return self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        """The end of the child's log, for error messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the leader only (it forwards it to its workers), SIGKILL the group after `timeout`."""
        # Not the whole group: a dramatiq worker that gets SIGTERM twice (ours, then the
        # master's) skips its graceful stop, and with the AsyncIO middleware it then hangs.
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                say(f"  {self.name}: no clean exit within {timeout:.0f}s, killing")
        self._kill_group(signal.SIGKILL)  # stragglers; harmless when the group is gone
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def _kill_group(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def create_token(database_url: str) -> str:
    """Insert an API token with the `jobs` scope; returns the secret."""
    import asyncpg

    from db.tokens import insert_token
    from domain.tokens import display_prefix, hash_token, make_token

    token = make_token(secrets.token_hex(32))

    async def insert() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await insert_token(
                conn,
                name="bench",
                token_hash=hash_token(token),
                prefix=display_prefix(token),
                scopes=["jobs"],
                rate_limit_per_min=0,
            )  # the bench measures throughput, not the limiter
        finally:
            await conn.close()

    asyncio.run(insert())
    return token


def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition") -> float:
    """Poll `predicate` until true; returns the monotonic time it became true, raises on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def percentile(values: list[float], p: float) -> float:
    """The `p`-th percentile (0-100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
