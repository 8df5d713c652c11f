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
    # the upsert always updates, so it locks the row until commit and returns its state in one statement
    row = await conn.fetchrow(
        """
        INSERT INTO notifications (idempotency_key, channel, recipient, template, data, template_version, locale)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (idempotency_key) DO UPDATE SET
            template_version = CASE WHEN notifications.locale IS NULL THEN EXCLUDED.template_version
                                    ELSE notifications.template_version END,
            locale = COALESCE(notifications.locale, EXCLUDED.locale)
        RETURNING status, lease_until, provider_message_id, attempts, now() AS db_now
        """,
        key,
        channel,
        recipient,
        template,
        json.dumps(dict(data), default=str),
        template_version,
        locale,
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


_TEMPLATE_FIELDS = ("name", "channel", "locale", "version", "subject", "body", "created_by", "created_at")
_TEMPLATE_COLUMNS = ", ".join(_TEMPLATE_FIELDS)


@dataclass(frozen=True)
class SendContext:
    """What a send needs from the database before its claim: opt-out, template version and locale."""

    opted_out: bool
    template: StoredTemplate | None  # None: the code default
    locale: str


async def select_send_context(
    conn: asyncpg.Connection, *, key: str, name: str, channel: str, locale: str, recipient: str
) -> SendContext:
    """Whether `recipient` opted out of `channel` (or of all), and the template version to render.

    That is the one an earlier attempt of `key` used (pinned, with its locale), so a retry after
    an edit sends the same text under the same key; else the newest for `channel` (else '*') and
    `locale` (else 'en'); None when no edited version applies (the code default).
    """
    row = await conn.fetchrow(
        f"""
        WITH pinned AS (SELECT template_version, locale FROM notifications
                        WHERE idempotency_key = $1 AND locale IS NOT NULL),
             wanted AS (SELECT COALESCE((SELECT locale FROM pinned), $4) AS locale)
        SELECT EXISTS (SELECT 1 FROM notification_opt_outs WHERE recipient = $5 AND channel IN ($3, '*'))
                   AS opted_out,
               (SELECT locale FROM wanted) AS wanted_locale, t.*
        FROM (SELECT 1) AS one LEFT JOIN LATERAL (
            SELECT {_TEMPLATE_COLUMNS} FROM notification_templates
            WHERE name = $2 AND channel IN ($3, '*') AND locale IN ((SELECT locale FROM wanted), 'en')
              AND (NOT EXISTS (SELECT 1 FROM pinned) OR version = (SELECT template_version FROM pinned))
            ORDER BY channel = $3 DESC, locale = (SELECT locale FROM wanted) DESC, version DESC LIMIT 1
        ) AS t ON true
        """,
        key,
        name,
        channel,
        locale,
        recipient,
    )
    found = None if row["name"] is None else StoredTemplate(**{k: row[k] for k in _TEMPLATE_FIELDS})
    return SendContext(row["opted_out"], found, row["wanted_locale"])


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
