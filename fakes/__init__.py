"""Local stand-ins for the services Backroom does not own: Stripe, Printify, Resend, Pushover, Telegram.

Each is an aiohttp server on 127.0.0.1 speaking the real request/response shapes,
including the failures (429 with retry-after, 5xx, timeouts, dropped connections,
permanent 4xx). Tests and the bench start them in-process; `python -m fakes` runs them for
`make run` and prints the settings that point Backroom at them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fakes.base import FakeRunner, FakeServer
from fakes.messaging import FakePushover, FakeResend, FakeTelegram
from fakes.printify import FakePrintify
from fakes.stripe import FakeStripe

__all__ = ["Fakes", "FakeServer", "FakeStripe", "FakePrintify", "FakeResend", "FakePushover", "FakeTelegram"]


@dataclass
class Fakes:
    """All five fakes, started together; `env()` is what points Backroom's settings at them."""

    stripe: FakeStripe = field(default_factory=FakeStripe)
    printify: FakePrintify = field(default_factory=FakePrintify)
    resend: FakeResend = field(default_factory=FakeResend)
    pushover: FakePushover = field(default_factory=FakePushover)
    telegram: FakeTelegram = field(default_factory=FakeTelegram)
    runner: FakeRunner | None = None

    @property
    def all(self) -> tuple[FakeServer, ...]:
        """Every fake."""
        return (self.stripe, self.printify, self.resend, self.pushover, self.telegram)

    def start(self, ports: dict[str, int] | None = None) -> Fakes:
        """Start every fake on 127.0.0.1 (free ports unless `ports` names them)."""
        self.runner = FakeRunner(*self.all, ports=ports).start()
        return self

    def stop(self) -> None:
        """Stop every fake."""
        if self.runner is not None:
            self.runner.stop()
            self.runner = None

    def reset(self) -> None:
        """Forget every call, fault and piece of state."""
        for fake in self.all:
            fake.reset()

    def env(self) -> dict[str, str]:
        """Backroom's settings for these fakes (credentials included: they are the fakes' own)."""
        return {
            "STRIPE_SECRET_KEY": self.stripe.secret_key,
            "STRIPE_WEBHOOK_SECRET": self.stripe.webhook_secret,
            "STRIPE_API_BASE": self.stripe.base_url,
            "PRINTIFY_TOKEN": self.printify.token,
            "PRINTIFY_SHOP_ID": self.printify.shop_id,
            "PRINTIFY_API_BASE": self.printify.base_url,
            "PRINTIFY_WEBHOOK_SECRET": self.printify.webhook_secret,
            "RESEND_API_KEY": self.resend.api_key,
            "RESEND_API_BASE": self.resend.base_url,
            "RESEND_FROM": "Backroom <orders@example.com>",
            "PUSHOVER_TOKEN": self.pushover.token,
            "PUSHOVER_USER": sorted(self.pushover.users)[0],
            "PUSHOVER_API_BASE": self.pushover.base_url,
            "TELEGRAM_BOT_TOKEN": self.telegram.token,
            "TELEGRAM_CHAT_ID": "-100123",
            "TELEGRAM_API_BASE": self.telegram.base_url,
        }
