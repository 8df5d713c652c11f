"""Notifications (the sent-record keyed by idempotency key) and recipients' opt-outs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from domain.notifications import Decision, MessageTemplate, decide


@dataclass(frozen=True)
class Claim:
    """What this attempt may do, and the notification's state it decided on."""

    decision: Decision
    status: str
    provider_message_id: str | None
    attempts: int


@dataclass(frozen=True)
class NotificationRecord:
    """One notification as logged: status and the provider's message id."""

    idempotency_key: str
    channel: str
    recipient: str
    template: str
    status: str
    provider: str | None
    provider_message_id: str | None
    error: str | None
    attempts: int
    created_at: datetime
    sent_at: datetime | None


async def claim_notification(
    conn: asyncpg.Connection,
    *,
    key: str,
    channel: str,
    recipient: str,
    template: str,
    data: Mapping[str, Any],
    provider: str,
    idempotent: bool,
    lease_s: float,
    template_version: int | None = None,
    locale: str | None = None,
) -> Claim:
    """Record the notification once and decide whether this attempt sends it (run in a transaction).

    A `send` decision marks it `sending` with a lease before the provider is called, so a
    concurrent attempt waits and a crashed one is recognised afterwards.
    """
    await conn.execute(
        """
        INSERT INTO notifications (idempotency_key, channel, recipient, template, data, template_version, locale)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (idempotency_key) DO UPDATE SET template_version = EXCLUDED.template_version,
            locale = EXCLUDED.locale WHERE notifications.locale IS NULL
        """,
        key,
        channel,
        recipient,
        template,
        json.dumps(dict(data), default=str),
        template_version,
        locale,
    )
    row = await conn.fetchrow(
        "SELECT status, lease_until, provider_message_id, attempts, now() AS db_now FROM notifications"
        " WHERE idempotency_key = $1 FOR UPDATE",
        key,
    )
    decision = decide(row["status"], row["lease_until"], row["db_now"], idempotent=idempotent)
    if decision == "send":
        await conn.execute(
            """
            UPDATE notifications SET status = 'sending', provider = $2, attempts = attempts + 1,
                                     lease_until = now() + make_interval(secs => $3), error = NULL
            WHERE idempotency_key = $1
            """,
            key,
            provider,
            lease_s,
        )
    elif decision == "maybe_sent" and row["status"] == "sending":
        await update_notification_outcome(
            conn, key, "unknown", error="an earlier attempt died mid-call; it may have been sent"
        )
    return Claim(decision, row["status"], row["provider_message_id"], row["attempts"] + (decision == "send"))


async def update_notification_sent(conn: asyncpg.Connection, key: str, *, provider: str, message_id: str) -> None:
    """Record the provider's acceptance: from now on this key never sends again."""
    await conn.execute(
        """
        UPDATE notifications SET status = 'sent', provider = $2, provider_message_id = $3, sent_at = now(),
                                 lease_until = NULL, error = NULL
        WHERE idempotency_key = $1
        """,
        key,
        provider,
        message_id,
    )


async def update_notification_outcome(conn: asyncpg.Connection, key: str, status: str, *, error: str) -> None:
    """Record a failed attempt: `pending` (will retry), `failed`, `skipped` or `unknown` (maybe sent)."""
    await conn.execute(
        "UPDATE notifications SET status = $2, error = $3, lease_until = NULL WHERE idempotency_key = $1",
        key,
        status,
        error[:1000],
    )


async def insert_unsent_notification(
    conn: asyncpg.Connection, *, key: str, channel: str, recipient: str, template: str, status: str, reason: str
) -> None:
    """Log a notification that is not sent (`skipped`: opted out; `failed`: e.g. no provider); a sent one stays sent."""
    await conn.execute(
        """
        INSERT INTO notifications (idempotency_key, channel, recipient, template, status, error)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (idempotency_key) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error
            WHERE notifications.status IN ('pending', 'failed', 'skipped')
        """,
        key,
        channel,
        recipient,
        template,
        status,
        reason[:1000],
    )


async def select_notification(conn: asyncpg.Connection, key: str) -> NotificationRecord | None:
    """The notification logged under `key`, or None."""
    row = await conn.fetchrow(
        """
        SELECT idempotency_key, channel, recipient, template, status, provider, provider_message_id, error,
               attempts, created_at, sent_at
        FROM notifications WHERE idempotency_key = $1
        """,
        key,
    )
    return None if row is None else NotificationRecord(**dict(row))


async def select_opted_out(conn: asyncpg.Connection, channel: str, recipient: str) -> bool:
    """True when `recipient` opted out of `channel` (or of everything)."""
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM notification_opt_outs WHERE recipient = $2 AND channel IN ($1, '*'))",
        channel,
        recipient,
    )


async def insert_opt_out(conn: asyncpg.Connection, channel: str, recipient: str) -> None:
    """Opt `recipient` out of `channel` ('*' = all); repeating it changes nothing."""
    await conn.execute(
        "INSERT INTO notification_opt_outs (channel, recipient) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        channel,
        recipient,
    )


async def delete_opt_out(conn: asyncpg.Connection, channel: str, recipient: str) -> None:
    """Opt `recipient` back in to `channel`."""
    await conn.execute("DELETE FROM notification_opt_outs WHERE channel = $1 AND recipient = $2", channel, recipient)


@dataclass(frozen=True)
class StoredTemplate:
    """One version of an edited template for a channel ('*' = any) and locale."""

    name: str
    channel: str
    locale: str
    version: int
    subject: str
    body: str
    created_by: str | None
    created_at: datetime

    def message(self) -> MessageTemplate:
        """The template text as rendering takes it."""
        return MessageTemplate(self.subject, self.body)


_TEMPLATE_COLUMNS = "name, channel, locale, version, subject, body, created_by, created_at"


async def select_template(
    conn: asyncpg.Connection, name: str, channel: str, locale: str, version: int | None = None
) -> StoredTemplate | None:
    """The newest version for `channel` (else '*') and `locale` (else 'en'); or exactly `version`."""
    row = await conn.fetchrow(
        f"""
        SELECT {_TEMPLATE_COLUMNS} FROM notification_templates
        WHERE name = $1 AND channel IN ($2, '*') AND locale IN ($3, 'en') AND ($4::int IS NULL OR version = $4)
        ORDER BY channel = $2 DESC, locale = $3 DESC, version DESC LIMIT 1
        """,
        name,
        channel,
        locale,
        version,
    )
    return None if row is None else StoredTemplate(**dict(row))


async def select_pinned_version(conn: asyncpg.Connection, key: str) -> tuple[int | None, str | None] | None:
    """The template version and locale an earlier attempt of `key` used (None: no attempt yet)."""
    row = await conn.fetchrow("SELECT template_version, locale FROM notifications WHERE idempotency_key = $1", key)
    return None if row is None else (row["template_version"], row["locale"])


async def insert_template(
    conn: asyncpg.Connection, name: str, channel: str, locale: str, subject: str, body: str, *, by: str
) -> StoredTemplate:
    """Store the next version of (name, channel, locale) (run in a transaction)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('notification_templates:' || $1))", name)
    row = await conn.fetchrow(
        f"""
        INSERT INTO notification_templates (name, channel, locale, version, subject, body, created_by)
        SELECT $1, $2, $3, COALESCE(max(version), 0) + 1, $4, $5, $6 FROM notification_templates
        WHERE name = $1 AND channel = $2 AND locale = $3
        RETURNING {_TEMPLATE_COLUMNS}
        """,
        name,
        channel,
        locale,
        subject,
        body,
        by,
    )
    return StoredTemplate(**dict(row))


async def select_templates(conn: asyncpg.Connection, name: str | None = None) -> list[StoredTemplate]:
    """Every stored version (of `name`, or of all), newest first per (name, channel, locale)."""
    rows = await conn.fetch(
        f"SELECT {_TEMPLATE_COLUMNS} FROM notification_templates"
        " WHERE $1::text IS NULL OR name = $1 ORDER BY name, channel, locale, version DESC"
        " LIMIT 1000",
        name,
    )
    return [StoredTemplate(**dict(r)) for r in rows]
