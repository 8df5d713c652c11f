"""notify: one templated message per idempotency key, through Resend, Pushover, Telegram or the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dramatiq

from actors.clients import call, get_providers
from broker.waits import Failure, Wait, retry_policy
from config.settings import get_settings
from db.notifications import (
    Claim,
    claim_notification,
    delete_opt_out,
    insert_opt_out,
    insert_unsent_notification,
    select_send_context,
    update_notification_outcome,
    update_notification_sent,
)
from db.pool import get_process_pool
from domain.notifications import TemplateError, normalise_recipient, render
from providers.errors import Ambiguous, NotConfigured, Permanent, ProviderError

# longer than a provider call takes (connect 5 s + read 15 s by default). An attempt found past it died
# mid-call: a provider that dedupes by idempotency key gets the same key again, another is never called
# again (decide), so the lease only bounds how long a dead worker's send waits, never whether it doubles.
LEASE_S = 30.0
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


@dataclass(frozen=True)
class Outgoing:
    """A message ready to claim and send: rendered, addressed, with the sender that takes it."""

    key: str
    channel: str
    recipient: str  # normalised
    template: str
    data: dict[str, Any]
    locale: str
    template_version: int | None  # None: the code default
    opted_out: bool
    sender: Any
    address: str
    message: Any


async def deliver(
    channel: str, recipient: str, template: str, data: dict[str, Any], key: str, locale: str = "en"
) -> dict[str, Any]:
    """The send path shared by every notifying actor: check, claim, call the provider once, record."""
    async with get_process_pool().acquire() as conn:
        out = await prepare(conn, channel, recipient, template, data, key, locale)
        async with conn.transaction():
            claimed = await claim_send(conn, out)
    early = after_claim(out, claimed)
    if early is not None:
        return early
    result = await transmit(out)
    async with get_process_pool().acquire() as conn:
        await record_sent(conn, out, result)
    return result


async def prepare(
    conn: Any, channel: str, recipient: str, template: str, data: dict[str, Any], key: str, locale: str = "en"
) -> Outgoing:
    """Render and address the message (one read: opt-out and template version); a failure is recorded and raised."""
    who = normalise_recipient(channel, recipient)
    try:
        sender = get_providers().sender(channel)
        context = await select_send_context(conn, key=key, name=template, channel=channel, locale=locale, recipient=who)
        stored = context.template
        message = render(template, data, stored.message() if stored else None)
        address = _address(channel, who)
    except (NotConfigured, TemplateError, NoAddress) as error:
        await insert_unsent_notification(
            conn, key=key, channel=channel, recipient=who, template=template, status="failed", reason=str(error)
        )
        raise
    version = stored.version if stored else None
    return Outgoing(
        key, channel, who, template, data, context.locale, version, context.opted_out, sender, address, message
    )


async def claim_send(conn: Any, out: Outgoing) -> Claim | None:
    """Record the notification and decide this attempt (in the caller's transaction); None: opted out (recorded)."""
    if out.opted_out:
        await insert_unsent_notification(
            conn,
            key=out.key,
            channel=out.channel,
            recipient=out.recipient,
            template=out.template,
            status="skipped",
            reason="recipient opted out",
        )
        return None
    return await claim_notification(
        conn,
        key=out.key,
        channel=out.channel,
        recipient=out.recipient,
        template=out.template,
        data=out.data,
        provider=out.sender.name,
        idempotent=out.sender.idempotent,
        lease_s=LEASE_S,
        template_version=out.template_version,
        locale=out.locale,
    )


def after_claim(out: Outgoing, claim: Claim | None) -> dict[str, Any] | None:
    """After the claim's commit: the result when this attempt must not send (or Wait / MaybeSent); None: send."""
    if claim is None:
        return {"status": "skipped", "reason": "opted out"}
    if claim.decision in ("done", "skipped"):
        return {
            "status": claim.status,
            "provider_message_id": claim.provider_message_id,
            "deduplicated": True,
            "template_version": out.template_version,
        }
    if claim.decision == "busy":
        raise Wait("another attempt is sending this notification", BUSY_RETRY_MS)
    if claim.decision == "maybe_sent":
        raise MaybeSent("an earlier attempt may have sent it; not sending again")
    return None


async def record_sent(conn: Any, out: Outgoing, result: dict[str, Any]) -> None:
    """Record the provider's acceptance: from now on this key never sends again."""
    await update_notification_sent(conn, out.key, provider=result["provider"], message_id=result["provider_message_id"])


async def transmit(out: Outgoing) -> dict[str, Any]:
    """Call the provider once for a claimed message; a failure is recorded on the notification and raised."""
    sender, key = out.sender, out.key
    try:
        message_id = await call(
            sender.name,
            lambda: sender.send(out.address, out.message, idempotency_key=key),
            repeatable=sender.idempotent,
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
    return {
        "status": "sent",
        "provider": sender.name,
        "provider_message_id": message_id,
        "template_version": out.template_version,
    }


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
