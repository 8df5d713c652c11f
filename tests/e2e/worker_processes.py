"""Real `backroom worker` process trees for e2e tests, and polling them with a deadline (no fixed sleeps)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from cli.stack import stop_tree
from fakes.marketplace import Marketplace
from media.store import LocalMediaStore
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 300.0  # Chromium, the model and three sources on a loaded 2-core machine
T = TypeVar("T")


class Process:
    """One `backroom worker` tree started for a test module; its output goes to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "worker", *args],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """SIGTERM (graceful, closes Chromium), then SIGKILL whatever is left of the tree."""
        stop_tree(self.process, grace_s=60)


class Stack:
    """The marketplace, the edge worker, the server pool and where the media land."""

    def __init__(self, market: Marketplace, edge: Process, server: Process, media: LocalMediaStore) -> None:
        self.market, self.edge, self.server, self.media = market, edge, server, media

    def logs(self) -> str:
        return f"--- edge worker ---\n{self.edge.tail()}\n--- server worker ---\n{self.server.tail()}"


async def until(probe: Callable[[], Awaitable[T | None]], what: str, stack: Stack, timeout: float = DEADLINE_S) -> T:
    """Poll `probe` until it returns something truthy, or fail naming `what` with the workers' logs."""
    return await eventually(probe, timeout, what, interval=0.25, detail=stack.logs)
