"""Message senders: Resend (email), Pushover (admin push), Telegram (ops chat), and the console outbox."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from domain.notifications import Rendered
from providers.errors import Permanent, RateLimited, Retryable
from providers.http import raise_for, request, retry_after_ms

log = logging.getLogger("backroom.notify")


@dataclass
class Resend:
    """`POST /emails` with an Idempotency-Key: a retry with the same key never sends twice."""

    session: aiohttp.ClientSession
    api_key: str
    sender: str
    api_base: str = "https://api.resend.com"
    name: str = "resend"
    idempotent: bool = True

    async def send(self, to: str, message: Rendered, *, idempotency_key: str) -> str:
        """Send one email; returns Resend's email id."""
        reply = await request(
            self.session,
            self.name,
            "POST",
            f"{self.api_base.rstrip('/')}/emails",
            json={"from": self.sender, "to": [to], "subject": message.subject, "text": message.text},
            headers={"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": idempotency_key[:256]},
        )
        name = str(reply.field("name") or "")
        reason = f"{name}: {reply.field('message') or ''}".strip(": ") or "error"
        if reply.status == 409 and name == "concurrent_idempotent_requests":
            raise Retryable(self.name, f"409 {reason}", 1_000)  # the same key is in flight elsewhere
        if reply.status == 429 and name in ("daily_quota_exceeded", "monthly_quota_exceeded"):
            raise Permanent(self.name, reason, 429)
        raise_for(self.name, reply, reason)
        return str(reply.field("id"))


@dataclass
class Pushover:
    """`POST /1/messages.json`; no idempotency, so an unanswered call is never repeated."""

    session: aiohttp.ClientSession
    token: str
    user: str
    api_base: str = "https://api.pushover.net"
    name: str = "pushover"
    idempotent: bool = False

    async def send(self, to: str, message: Rendered, *, idempotency_key: str) -> str:
        """Push to a user key (`admin` = PUSHOVER_USER); returns Pushover's request id."""
        form = {
            "token": self.token,
            "user": self.user if to == "admin" else to,
            "title": message.subject[:250],
            "message": message.text[:1024],
        }
        reply = await request(
            self.session, self.name, "POST", f"{self.api_base.rstrip('/')}/1/messages.json", data=form
        )
        errors = reply.field("errors")
        reason = "; ".join(map(str, errors)) if isinstance(errors, list) else "error"
        if reply.status == 429:
            # over the app's quota: blocked until X-Limit-App-Reset (unix s), or retry-after
            raise RateLimited(self.name, _pushover_reset_ms(reply.headers), f"429 {reason}")
        raise_for(self.name, reply, reason, min_retry_ms=5_000)  # Pushover: wait >= 5 s after a 5xx
        return str(reply.field("request"))


def _pushover_reset_ms(headers: Mapping[str, str]) -> int:
    reset = next((v for k, v in headers.items() if k.lower() == "x-limit-app-reset"), None)
    if reset is not None:
        try:
            return max(1_000, min(3_600_000, int((float(reset) - time.time()) * 1000)))
        except ValueError:
            pass
    return retry_after_ms(headers, 60_000)


@dataclass
class Telegram:
    """`POST /bot<token>/sendMessage`; 429 carries `parameters.retry_after`, which is honoured exactly."""

    session: aiohttp.ClientSession
    token: str
    chat_id: str
    api_base: str = "https://api.telegram.org"
    name: str = "telegram"
    idempotent: bool = False

    async def send(self, to: str, message: Rendered, *, idempotency_key: str) -> str:
        """Send to a chat (`ops` = TELEGRAM_CHAT_ID); returns the message id."""
        chat = self.chat_id if to == "ops" else to
        text = f"{message.subject}\n{message.text}" if message.subject else message.text
        reply = await request(
            self.session,
            self.name,
            "POST",
            f"{self.api_base.rstrip('/')}/bot{self.token}/sendMessage",
            json={"chat_id": chat, "text": text[:4096], "link_preview_options": {"is_disabled": True}},
        )
        reason = str(reply.field("description") or "error")
        if reply.status == 429:
            seconds = reply.field("parameters", "retry_after")
            delay = int(float(seconds) * 1000) if seconds is not None else retry_after_ms(reply.headers, 1_000)
            raise RateLimited(self.name, max(1_000, delay), f"429 {reason}")
        raise_for(self.name, reply, reason)
        return str(reply.field("result", "message_id"))


@dataclass
class Console:
    """The outbox of `make run`: appends each message to a JSON-lines file and logs its subject.

    Only the subject is logged: a body may carry a private source URL (Tap-to-Secure).
    """

    path: Path
    name: str = "console"
    idempotent: bool = True

    async def send(self, to: str, message: Rendered, *, idempotency_key: str) -> str:
        """Write the message out; returns a fresh id."""
        message_id = f"console-{uuid.uuid4().hex[:12]}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as outbox:
            outbox.write(
                json.dumps(
                    {
                        "id": message_id,
                        "to": to,
                        "subject": message.subject,
                        "text": message.text,
                        "idempotency_key": idempotency_key,
                    }
                )
                + "\n"
            )
        log.info("outbox %s: to=%s subject=%r (body in %s)", message_id, to, message.subject, self.path)
        return message_id
