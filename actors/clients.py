"""Third-party clients per worker process: opened at boot on the worker's event loop, never per message."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dramatiq import Middleware
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.broker import Broker

from broker.waits import Failure, Wait
from config.settings import get_settings
from providers.errors import Ambiguous, Busy, RateLimited, Retryable
from providers.http import new_session
from providers.ratelimit import RateLimiter
from providers.registry import Providers, build, limits

T = TypeVar("T")
_providers: Providers | None = None


class ProviderClients(Middleware):
    """Builds the process's providers (one aiohttp session, the shared rate limiter) at worker boot."""

    def before_worker_boot(self, broker: Any, worker: Any) -> None:  # Backroom's RedisBroker; before consuming starts
        global _providers
        loop_thread = get_event_loop_thread()
        if loop_thread is None:
            raise RuntimeError("the AsyncIO middleware must come before ProviderClients")
        settings = get_settings()
        limiter = RateLimiter(broker.client, broker.namespace, limits(settings))

        async def open_clients() -> Providers:
            return build(settings, new_session(settings.provider_timeout_s), limiter)

        _providers = loop_thread.run_coroutine(open_clients())

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        global _providers
        loop_thread, providers, _providers = get_event_loop_thread(), _providers, None
        if loop_thread is not None and providers is not None:
            loop_thread.run_coroutine(providers.session.close())


def get_providers() -> Providers:
    """This process's providers, or raise if the worker never booted them."""
    if _providers is None:
        raise RuntimeError("providers are not open in this process (ProviderClients middleware missing?)")
    return _providers


async def call(provider: str, request: Callable[[], Awaitable[T]], *, repeatable: bool = True) -> T:
    """Make one provider call under its shared rate limit, turning outcomes into job semantics.

    A busy provider or a 429 is a Wait (a 429 holds every worker back); a 5xx or dropped
    connection is a Failure; a lost answer is a Failure only when `repeatable` (the call is
    idempotent), else it propagates. Permanent errors and NotConfigured propagate as they are.
    """
    providers = get_providers()
    wait_ms = await asyncio.to_thread(providers.limiter.take, provider)
    if wait_ms:
        raise Wait(f"{provider}: shared rate limit", wait_ms)
    try:
        return await request()
    except RateLimited as error:
        await asyncio.to_thread(providers.limiter.block, provider, error.delay_ms or 1_000)
        raise Wait(str(error), error.delay_ms or 1_000) from None
    except Busy as error:
        raise Wait(str(error), error.delay_ms or 1_000) from None
    except Retryable as error:
        raise Failure(str(error), error.delay_ms) from None
    except Ambiguous as error:
        if repeatable:
            raise Failure(str(error)) from None
        raise
