"""Chaos actors: every start, failure and effect is appended to a ledger outside Redis.

`backroom worker --module bench._chaos_actors` imports it next to the server actors; the
chaos driver imports it too (to build messages). The ledger is a directory of one append-only
file per process (CHAOS_LEDGER): it survives Redis outages and is written from inside a
network namespace too (namespaces share the file system), so a cut-off worker's effects count.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import dramatiq
from dramatiq.middleware import CurrentMessage

import actors  # noqa: F401  (the global broker the actors bind to)

QUEUE = "default"


def note(kind: str, tag: str) -> None:
    """Append `kind tag pid time` to this process's ledger file (one write: atomic with O_APPEND)."""
    ledger = Path(os.environ.get("CHAOS_LEDGER", "/tmp/backroom-chaos-ledger"))
    line = f"{kind} {tag} {os.getpid()} {time.time():.6f}\n".encode()
    fd = os.open(ledger / f"{os.getpid()}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@dramatiq.actor(queue_name=QUEUE, max_retries=3, min_backoff=300, max_backoff=1_000, time_limit=120_000)
def chaos_job(tag: str, seconds: float = 0.0, fail_times: int = 0) -> None:
    """Note the start, sleep, fail the first `fail_times` attempts, then note the effect."""
    note("start", tag)
    time.sleep(seconds)
    message = CurrentMessage.get_current_message()
    if message is not None and message.options.get("retries", 0) < fail_times:
        note("fail", tag)
        raise RuntimeError(f"planned failure of {tag}")
    note("done", tag)


@dramatiq.actor(queue_name=QUEUE, max_retries=5, time_limit=60_000)
def chaos_poison(tag: str) -> None:
    """A poison job: it SIGKILLs the worker process running it, every time."""
    note("start", tag)
    os.kill(os.getpid(), signal.SIGKILL)
