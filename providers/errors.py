"""How a provider call went wrong, in the terms a job needs: wait, retry, or give up."""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every provider failure; `provider` names the service."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason


class NotConfigured(ProviderError):
    """The provider's credentials are not set: the job fails at once."""

    def __init__(self, provider: str) -> None:
        super().__init__(provider, "provider not configured")


class Permanent(ProviderError):
    """The provider refused the request for good (4xx): retrying cannot help."""

    def __init__(self, provider: str, reason: str, status: int | None = None) -> None:
        super().__init__(provider, reason if status is None else f"{status} {reason}")
        self.status = status


class Retryable(ProviderError):
    """A 5xx, a dropped connection or a timeout: try again later (after `delay_ms` when given)."""

    def __init__(self, provider: str, reason: str, delay_ms: int | None = None) -> None:
        super().__init__(provider, reason)
        self.delay_ms = delay_ms


class Busy(Retryable):
    """The provider asks us to come back after `delay_ms` (e.g. Printify still pricing an order): a wait."""

    def __init__(self, provider: str, delay_ms: int, reason: str) -> None:
        super().__init__(provider, reason, delay_ms)


class RateLimited(Busy):
    """A 429: wait exactly `delay_ms` (every worker does, see RateLimiter.block); not a failure."""

    def __init__(self, provider: str, delay_ms: int, reason: str = "rate limited") -> None:
        super().__init__(provider, delay_ms, reason)


class Ambiguous(ProviderError):
    """The request may have reached the provider but no answer came back (a read timeout)."""
