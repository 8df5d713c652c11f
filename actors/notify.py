"""notify: one templated message per idempotency key, through Resend, Pushover, Telegram or the outbox."""

from __future__ import annotations

from typing import Any

import dramatiq

from actors.clients import call, get_providers
from broker.waits import Failure, Wait, retry_policy
from config.settings import get_settings
from db.notifications import (
    StoredTemplate,
    claim_notification,
    delete_opt_out,
    insert_opt_out,
    insert_unsent_notification,
    select_opted_out,
    select_pinned_version,
    select_template,
    update_notification_outcome,
    update_notification_sent,
)
from db.pool import get_process_pool
from domain.notifications import TemplateError, normalise_recipient, render
from providers.errors import Ambiguous, NotConfigured, Permanent, ProviderError

LEASE_S = 60.0  # longer than a provider call can take (connect 5 s + read 15 s)
BUSY_RETRY_MS = 5_000


class MaybeSent(Exception):
    """A provider without idempotency may have sent it and we cannot know: never sent again."""


class NoAddress(Exception):
    """The recipient `admin` on email needs ADMIN_EMAIL."""


@dramatiq.actor(
    queue_name="notify",
    retry_when=retry_policy(max_failures=6, max_waits=100),
    min_backoff=2_000,
    max_backoff=300_000,
    time_limit=60_000,
    throws=(NotConfigured, Permanent, MaybeSent, TemplateError, NoAddress),
)
async def notify(
    channel: str, recipient: str, template: str, data: dict[str, Any] | None, idempotency_key: str
) -> dict[str, Any]:
    """Send one templated message once per idempotency key, honouring opt-outs and rate limits."""
    return await deliver(channel, recipient, template, data or {}, idempotency_key)


@dramatiq.actor(queue_name="notify", max_retries=5, max_backoff=60_000, time_limit=30_000)
async def update_opt_out(channel: str, recipient: str, opted_out: bool = True) -> None:
    """Opt a recipient out of a channel ('*' = every channel), or back in."""
    who = normalise_recipient(channel, recipient)
    async with get_process_pool().acquire() as conn:
        await (insert_opt_out if opted_out else delete_opt_out)(conn, channel, who)


async def deliver(
    channel: str, recipient: str, template: str, data: dict[str, Any], key: str, locale: str = "en"
) -> dict[str, Any]:
    """The send path shared by every notifying actor: check, claim, call the provider once, record."""
    who = normalise_recipient(channel, recipient)
    try:
        sender = get_providers().sender(channel)
        stored, locale = await _template(template, channel, locale, key)
        message = render(template, data, stored.message() if stored else None)
        address = _address(channel, who)
    except (NotConfigured, TemplateError, NoAddress) as error:
        await _unsent(key, channel, who, template, "failed", str(error))
        raise
    async with get_process_pool().acquire() as conn, conn.transaction():
        if await select_opted_out(conn, channel, who):
            await insert_unsent_notification(
                conn,
                key=key,
                channel=channel,
                recipient=who,
                template=template,
                status="skipped",
                reason="recipient opted out",
            )
            return {"status": "skipped", "reason": "opted out"}
        version = stored.version if stored else None
        claim = await claim_notification(
            conn,
            key=key,
            channel=channel,
            recipient=who,
            template=template,
            data=data,
            provider=sender.name,
            idempotent=sender.idempotent,
            lease_s=LEASE_S,
            template_version=version,
            locale=locale,
        )
    if claim.decision in ("done", "skipped"):
        return {
            "status": claim.status,
            "provider_message_id": claim.provider_message_id,
            "deduplicated": True,
            "template_version": version,
        }
    if claim.decision == "busy":
        raise Wait("another attempt is sending this notification", BUSY_RETRY_MS)
    if claim.decision == "maybe_sent":
        raise MaybeSent("an earlier attempt may have sent it; not sending again")
    return {**await _send(sender, address, message, key), "template_version": version}


async def _template(name: str, channel: str, locale: str, key: str) -> tuple[StoredTemplate | None, str]:
    """The edited version to render (None: the code default): the one an earlier attempt of `key` used, else the
    newest for the channel and locale, so a retry after an edit sends the same text under the same key."""
    async with get_process_pool().acquire() as conn:
        pinned = await select_pinned_version(conn, key)
        if pinned is not None and pinned[1] is not None:
            version, locale = pinned[0], pinned[1]
            return (None if version is None else await select_template(conn, name, channel, locale, version)), locale
        return await select_template(conn, name, channel, locale), locale


async def _send(sender: Any, address: str, message: Any, key: str) -> dict[str, Any]:
    try:
        message_id = await call(
            sender.name, lambda: sender.send(address, message, idempotency_key=key), repeatable=sender.idempotent
        )
    except (Wait, Failure) as error:
        await _outcome(key, "pending", str(error))
        raise
    except Ambiguous as error:  # a provider without idempotency: it may have gone out
        await _outcome(key, "unknown", str(error))
        raise MaybeSent(f"{error}; not retried, it may have been sent") from None
    except ProviderError as error:
        await _outcome(key, "failed", str(error))
        raise
    async with get_process_pool().acquire() as conn:
        await update_notification_sent(conn, key, provider=sender.name, message_id=message_id)
    return {"status": "sent", "provider": sender.name, "provider_message_id": message_id}


async def _unsent(key: str, channel: str, recipient: str, template: str, status: str, reason: str) -> None:
    async with get_process_pool().acquire() as conn:
        await insert_unsent_notification(
            conn, key=key, channel=channel, recipient=recipient, template=template, status=status, reason=reason
        )


async def _outcome(key: str, status: str, error: str) -> None:
    async with get_process_pool().acquire() as conn:
        await update_notification_outcome(conn, key, status, error=error)


def _address(channel: str, recipient: str) -> str:
    if channel == "email" and recipient == "admin":
        admin = get_settings().admin_email
        if not admin:
            raise NoAddress("recipient 'admin' on email needs ADMIN_EMAIL")
        return admin
    return recipient
