"""Actors whose every effect is counted in Redis, imported by the worker pools under test."""
from __future__ import annotations

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


@dramatiq.actor(queue_name="default", max_retries=5, time_limit=60_000)
def kill_my_worker(tag: str) -> None:
    """A poison message: it SIGKILLs the worker process running it, every time."""
    actors.broker.client.hincrby(EFFECTS, tag, 1)
    os.kill(os.getpid(), signal.SIGKILL)
