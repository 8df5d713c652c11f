"""Actors whose every effect is counted in Redis, imported by the worker pools under test."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import dramatiq
import redis

import actors

EFFECTS = "test:effects"
# a test that makes the broker's Redis refuse writes counts effects in another one (EFFECTS_REDIS_URL)
_STORE = redis.Redis.from_url(os.environ["EFFECTS_REDIS_URL"]) if os.environ.get("EFFECTS_REDIS_URL") else None
# a test that kills a worker process while it boots holds the boot here until the file BOOT_GATE exists
while os.environ.get("BOOT_GATE") and not os.path.exists(os.environ["BOOT_GATE"]):
    time.sleep(0.05)


def _store() -> redis.Redis:
    return _STORE or actors.broker.client


def effects(tag: str) -> int:
    """How many times the effect `tag` happened."""
    return int(actors.broker.client.hget(EFFECTS, tag) or 0)


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=300_000)
def slow_effect(tag: str, seconds: float) -> None:
    """Count a start, sleep, then count the effect: a kill mid-sleep leaves no effect."""
    actors.broker.client.hincrby(EFFECTS, f"{tag}:started", 1)
    time.sleep(seconds)
    actors.broker.client.hincrby(EFFECTS, tag, 1)


def note(event: str, tag: str) -> None:
    """Append `event tag side pid` to $EFFECTS_FILE: counted outside Redis, so a cut-off host's effects count too."""
    line = f"{event} {tag} {os.environ.get('EFFECTS_SIDE', '-')} {os.getpid()}\n".encode()
    fd = os.open(os.environ["EFFECTS_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write on an O_APPEND file: lines of concurrent processes never interleave
    finally:
        os.close(fd)


def noted(path: str) -> list[tuple[str, str, str, int]]:
    """Every (event, tag, side, pid) appended by `note`, oldest first."""
    if not os.path.exists(path):
        return []
    with open(path) as lines:
        return [(e, t, s, int(p)) for e, t, s, p in (line.split() for line in lines if line.strip())]


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=300_000)
def file_effect(tag: str, seconds: float) -> None:
    """Note a start, sleep, then note the effect, in a file (the host may be cut off from Redis)."""
    note("start", tag)
    time.sleep(seconds)
    note("done", tag)


@dramatiq.actor(queue_name="default", max_retries=3, min_backoff=100, time_limit=300_000)
async def async_file_effect(tag: str, seconds: float) -> None:
    """file_effect as a coroutine: notes `stopped` when it is cancelled."""
    note("start", tag)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        note("stopped", tag)
        raise
    note("done", tag)


@dramatiq.actor(queue_name="default", max_retries=5, time_limit=60_000)
def kill_my_worker(tag: str) -> None:
    """A poison message: it SIGKILLs the worker process running it, every time."""
    actors.broker.client.hincrby(EFFECTS, tag, 1)
    os.kill(os.getpid(), signal.SIGKILL)


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=300_000)
def counted_effect(tag: str, seconds: float) -> None:
    """slow_effect counting in the effects store (EFFECTS_REDIS_URL), not in the broker's Redis."""
    _store().hincrby(EFFECTS, f"{tag}:started", 1)
    time.sleep(seconds)
    _store().hincrby(EFFECTS, tag, 1)


@dramatiq.actor(queue_name="default", max_retries=3, min_backoff=1_000, max_backoff=2_000, time_limit=120_000)
def fail_first_attempt(tag: str, gate: str) -> None:
    """Count a start; the first attempt waits for the file `gate`, marks `gate`.failing and fails (no Redis
    touched after the wait); a retry counts the effect."""
    started = _store().hincrby(EFFECTS, f"{tag}:started", 1)
    if started == 1:
        while not os.path.exists(gate):
            time.sleep(0.05)
        open(gate + ".failing", "w").close()
        raise RuntimeError("first attempt fails")
    _store().hincrby(EFFECTS, tag, 1)
