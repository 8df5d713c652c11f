"""Which providers this deployment has, built once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from config.settings import Settings
from domain.notifications import PROVIDER_OF, Rendered
from providers.errors import NotConfigured
from providers.notify import Console, Pushover, Resend, Telegram
from providers.payments import Stripe
from providers.printify import Printify
from providers.ratelimit import Limit, RateLimiter


class Sender(Protocol):
    """Anything that delivers a rendered message to one recipient."""

    name: str
    idempotent: bool

    async def send(self, to: str, message: Rendered, *, idempotency_key: str) -> str: ...


def configured(settings: Settings) -> set[str]:
    """Names of the providers whose credentials are set (an empty variable counts as unset)."""
    s = settings
    needs = {
        "resend": (s.resend_api_key, s.resend_from),
        "pushover": (s.pushover_token, s.pushover_user),
        "telegram": (s.telegram_bot_token, s.telegram_chat_id),
        "stripe": (s.stripe_secret_key,),
        "printify": (s.printify_token, s.printify_shop_id),
    }
    return {name for name, values in needs.items() if all(_secret(v) for v in values)}


def sender_name(settings: Settings, channel: str) -> str | None:
    """The provider that would carry `channel` (the console outbox as fallback when enabled), or None."""
    provider = PROVIDER_OF.get(channel)
    if provider in configured(settings):
        return provider
    return "console" if settings.notify_fallback == "console" else None


def limits(settings: Settings) -> dict[str, Limit]:
    """Each provider's shared rate limit."""
    return {
        "resend": Limit(settings.resend_rate_per_s, burst=max(1, int(settings.resend_rate_per_s))),
        "pushover": Limit(settings.pushover_rate_per_s, burst=max(1, int(settings.pushover_rate_per_s))),
        "telegram": Limit(settings.telegram_rate_per_s, burst=max(1, int(settings.telegram_rate_per_s))),
        "printify": Limit(settings.printify_rate_per_min / 60, burst=max(1, settings.printify_rate_per_min // 60)),
        "stripe": Limit(settings.stripe_rate_per_s, burst=max(1, int(settings.stripe_rate_per_s))),
        # the nightly catalog sync's own, slower budget (on top of Printify's)
        "printify_catalog": Limit(settings.printify_catalog_rate_per_min / 60, burst=1),
    }


@dataclass
class Providers:
    """The process's clients; a missing one raises NotConfigured when a job needs it."""

    settings: Settings
    session: aiohttp.ClientSession
    limiter: RateLimiter
    senders: dict[str, Any] = field(default_factory=dict)
    stripe_client: Stripe | None = None
    printify_client: Printify | None = None

    def sender(self, channel: str) -> Sender:
        """The sender for `channel`; NotConfigured when neither its provider nor the console is set up."""
        name = sender_name(self.settings, channel)
        if name is None:
            raise NotConfigured(PROVIDER_OF.get(channel, channel))
        return self.senders[name]

    @property
    def stripe(self) -> Stripe:
        """The Stripe client, or NotConfigured."""
        if self.stripe_client is None:
            raise NotConfigured("stripe")
        return self.stripe_client

    @property
    def printify(self) -> Printify:
        """The Printify client, or NotConfigured."""
        if self.printify_client is None:
            raise NotConfigured("printify")
        return self.printify_client


def build(settings: Settings, session: aiohttp.ClientSession, limiter: RateLimiter) -> Providers:
    """Every configured client on `session`."""
    s, have = settings, configured(settings)
    senders: dict[str, Any] = {"console": Console(Path(s.notify_outbox_path))}
    if "resend" in have:
        senders["resend"] = Resend(session, _secret(s.resend_api_key), s.resend_from or "", s.resend_api_base)
    if "pushover" in have:
        senders["pushover"] = Pushover(session, _secret(s.pushover_token), s.pushover_user or "", s.pushover_api_base)
    if "telegram" in have:
        senders["telegram"] = Telegram(
            session, _secret(s.telegram_bot_token), s.telegram_chat_id or "", s.telegram_api_base
        )
    return Providers(
        settings,
        session,
        limiter,
        senders,
        stripe_client=Stripe(session, _secret(s.stripe_secret_key), s.stripe_api_base) if "stripe" in have else None,
        printify_client=(
            Printify(session, _secret(s.printify_token), s.printify_shop_id or "", s.printify_api_base)
            if "printify" in have
            else None
        ),
    )


def _secret(value: Any) -> str:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value or "")
