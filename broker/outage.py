"""Living through a Redis outage: which errors pass, retrying until Redis answers, and no silent thread deaths.

A worker's background threads (consumers' delay-queue hops, retries' re-enqueues, the
heartbeat, the reaper, the record writer, the wake-up listener) must outlive a Redis
restart, a full Redis (maxmemory with `noeviction`) and a read-only one (a replica after a
failover): each of these errors is transient, so the work is retried with a backoff until
it lands. A thread that dies anyway takes its process down (`guard_threads`), so the pool
replaces the process and the reaper re-queues what it held; otherwise the process would
keep heartbeating while nothing consumes or hands back its messages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_BACKOFF_S = 5.0
PR_SET_PDEATHSIG = 1


def refusal(error: BaseException) -> str:
    """Why Redis refused a write that will land later ("full", "read-only"), or "" for any other error.

    Searched in the whole text: Redis 6 reports a refusal inside a script as
    "Error running script ... -OOM command not allowed ...".
    """
    if isinstance(error, redis.exceptions.ReadOnlyError):
        return "read-only"
    if isinstance(error, redis.exceptions.OutOfMemoryError):
        return "full"
    if not isinstance(error, redis.ResponseError):
        return ""
    text = str(error)
    if "OOM command not allowed" in text:
        return "full"
    if any(mark in text for mark in ("READONLY", "read only replica", "MASTERDOWN", "NOREPLICAS")):
        return "read-only"
    return ""


def transient(error: BaseException) -> bool:
    """True for errors that go away by themselves: unreachable, loading, full or read-only Redis."""
    return isinstance(error, (redis.ConnectionError, redis.TimeoutError)) or bool(refusal(error))


def backoff_s(attempt: int) -> float:
    """The wait before retry `attempt` (0-based): 0.1 s doubling up to MAX_BACKOFF_S."""
    return min(MAX_BACKOFF_S, 0.1 * 2 ** min(attempt, 10))


def until_it_lands(call: Callable[[], T], what: str, stopping: threading.Event | None = None) -> T:
    """`call()`, retried with backoff while Redis is down, full or read-only (one warning per outage).

    With `stopping`, gives up (re-raising the last error) once it is set.
    """
    attempt = 0
    while True:
        try:
            result = call()
        except redis.RedisError as error:
            if not transient(error) or (stopping is not None and stopping.is_set()):
                raise
            if attempt == 0:
                log.warning("%s failed (%s); retrying until Redis accepts it", what, error)
            time.sleep(backoff_s(attempt))
            attempt += 1
            continue
        if attempt:
            log.warning("%s landed after %d retries", what, attempt)
        return result


def guard_threads() -> None:
    """Make an uncaught exception in any thread of this process end the process (exit code 70).

    A dead consumer, heartbeat or writer thread in a live process strands what it held:
    the process keeps its heartbeat, so the reaper never frees its messages.
    """
    previous = threading.excepthook

    def die(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        previous(args)
        log.critical(
            "thread %s died (%s); stopping this worker process so it is replaced",
            getattr(args.thread, "name", "?"),
            args.exc_type.__name__,
        )
        logging.shutdown()
        os._exit(70)

    threading.excepthook = die


def die_with_parent(parent_pid: int | None = None) -> None:
    """Ask the kernel to SIGTERM this process when its parent dies; exit now if it already has.

    `parent_pid`: the parent this process was started by (default: multiprocessing's parent,
    else the current one); the check after arming closes the race where it died first.
    """
    if parent_pid is None:
        parent = multiprocessing.parent_process()
        parent_pid = parent.pid if parent is not None and parent.pid else os.getppid()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        log.critical("parent %d died before this process armed its death signal; exiting", parent_pid)
        os._exit(1)
