"""Actors whose every effect is counted in Redis, imported by the worker pools under test."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import dramatiq

import actors

EFFECTS = "test:effects"


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
