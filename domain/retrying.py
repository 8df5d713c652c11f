"""Retry policy that tells waiting apart from failing.

Waiting (a provider's 429 with retry-after, our own rate limit, Printify still computing
an order) is expected and says nothing about the job's health; failing (5xx, timeouts)
does. Dramatiq counts both as retries, so each gets its own budget here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryBudget:
    """How many failures and how many waits a message may go through before it is dead-lettered."""

    max_failures: int
    max_waits: int

    def allows(self, *, failures: int, waits: int, waiting: bool) -> bool:
        """True when one more retry is allowed (`failures`/`waits` counted before this attempt)."""
        if waiting:
            return waits < self.max_waits
        return failures < self.max_failures
