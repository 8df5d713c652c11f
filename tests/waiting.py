"""The suite's one way to wait: poll a check until it holds, or fail naming what was awaited.

Use it only for something that *will* happen; to prove that something did not happen, join
the broker or read the records instead of waiting for a while.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

TIMEOUT_S = 20.0
INTERVAL_S = 0.02


def _failure(
    check: Callable[..., Any], timeout: float, what: str | None, last: Any, detail: Callable[[], str] | None
) -> AssertionError:
    if what is None:  # still name the check: where it was written
        code = getattr(check, "__code__", None)
        what = f"{getattr(check, '__qualname__', check)!s}" + (
            f" ({code.co_filename}:{code.co_firstlineno})" if code else ""
        )
    more = f"\n{detail()}" if detail else ""
    return AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r}){more}")


def wait_until(
    check: Callable[[], T],
    timeout: float = TIMEOUT_S,
    what: str | None = None,
    *,
    interval: float = INTERVAL_S,
    detail: Callable[[], str] | None = None,
) -> T:
    """Call `check()` until it returns something truthy, and return that; fail after `timeout` seconds, naming
    `what` and the last value (and `detail()`, e.g. a process's log, read only then)."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise _failure(check, timeout, what, last, detail)
        time.sleep(interval)


async def eventually(
    check: Callable[[], Awaitable[T] | T],
    timeout: float = TIMEOUT_S,
    what: str | None = None,
    *,
    interval: float = INTERVAL_S,
    detail: Callable[[], str] | None = None,
) -> T:
    """`wait_until` for a coroutine: awaits `check()` when it returns an awaitable, and yields to the loop between
    tries so tasks on the same loop make progress."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() >= deadline:
            raise _failure(check, timeout, what, last, detail)
        await asyncio.sleep(interval)
