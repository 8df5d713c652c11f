"""Honest waits: `raise Wait(delay_ms)` retries after exactly that long, on a budget of its own.

Dramatiq's Retries middleware counts every retry alike and hands `retry_when` only the
count and the exception. `WaitAccounting` runs just before it (its after-hook is called
first) and writes how many of the retries so far were waits onto the exception, so an
actor's `retry_when=retry_policy(...)` can judge failures and waits apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq import Middleware
from dramatiq.broker import Broker, MessageProxy

from domain.retrying import RetryBudget


class Wait(dramatiq.Retry):
    """Try again after `delay_ms`: a rate limit, a 429's retry-after, a provider still busy."""

    def __init__(self, reason: str, delay_ms: int) -> None:
        super().__init__(f"{reason} (retry in {delay_ms} ms)", delay=max(1, int(delay_ms)))
        self.reason = reason


class Failure(dramatiq.Retry):
    """A retryable failure with a delay of its own (e.g. Pushover asks for >= 5 s after a 5xx)."""

    def __init__(self, reason: str, delay_ms: int | None = None) -> None:
        super().__init__(reason, delay=delay_ms)


class WaitAccounting(Middleware):
    """Counts a message's waits in its options and annotates each exception with both counts."""

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if exception is None:
            return
        waits = int(message.options.get("waits", 0))
        failures = max(0, int(message.options.get("retries", 0)) - waits)
        try:
            # tagged on the exception for retry_policy, which sees only the exception
            exception.backroom_waits = waits  # type: ignore[attr-defined]  # a tag of ours
            exception.backroom_failures = failures  # type: ignore[attr-defined]  # a tag of ours
        except AttributeError:  # an exception type with __slots__: the policy falls back to totals
            pass
        if isinstance(exception, Wait):
            message.options["waits"] = waits + 1


def retry_policy(*, max_failures: int, max_waits: int) -> Callable[[int, BaseException], bool]:
    """A `retry_when` for actors: up to `max_failures` failures and, apart, `max_waits` waits."""
    budget = RetryBudget(max_failures=max_failures, max_waits=max_waits)

    def retry_when(retries: int, exception: BaseException) -> bool:
        waits = getattr(exception, "backroom_waits", 0)
        failures = getattr(exception, "backroom_failures", retries - waits)
        return budget.allows(failures=failures, waits=waits, waiting=isinstance(exception, Wait))

    return retry_when
