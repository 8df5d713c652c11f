"""Notifications (the sent-record keyed by idempotency key) and recipients' opt-outs."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from domain.notifications import Decision, decide


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


async def claim_notification(conn: asyncpg.Connection, *, key: str, channel: str, recipient: str, template: str,
                             data: Mapping[str, Any], provider: str, idempotent: bool, lease_s: float) -> Claim:
    """Record the notification once and decide whether this attempt sends it (run in a transaction).

    A `send` decision marks it `sending` with a lease before the provider is called, so a
    concurrent attempt waits and a crashed one is recognised afterwards.
    """
    await conn.execute(
        """
        INSERT INTO notifications (idempotency_key, channel, recipient, template, data)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING
        """, key, channel, recipient, template, json.dumps(dict(data), default=str))
    row = await conn.fetchrow(
        "SELECT status, lease_until, provider_message_id, attempts, now() AS db_now FROM notifications"
        " WHERE idempotency_key = $1 FOR UPDATE", key)
    decision = decide(row["status"], row["lease_until"], row["db_now"], idempotent=idempotent)
    if decision == "send":
        await conn.execute(
            """
            UPDATE notifications SET status = 'sending', provider = $2, attempts = attempts + 1,
                                     lease_until = now() + make_interval(secs => $3), error = NULL
            WHERE idempotency_key = $1
            """, key, provider, lease_s)
    elif decision == "maybe_sent" and row["status"] == "sending":
        await update_notification_outcome(conn, key, "unknown",
                                          error="an earlier attempt died mid-call; it may have been sent")
    return Claim(decision, row["status"], row["provider_message_id"], row["attempts"] + (decision == "send"))


async def update_notification_sent(conn: asyncpg.Connection, key: str, *, provider: str, message_id: str) -> None:
    """Record the provider's acceptance: from now on this key never sends again."""
    await conn.execute(
        """
        UPDATE notifications SET status = 'sent', provider = $2, provider_message_id = $3, sent_at = now(),
                                 lease_until = NULL, error = NULL
        WHERE idempotency_key = $1
        """, key, provider, message_id)


async def update_notification_outcome(conn: asyncpg.Connection, key: str, status: str, *, error: str) -> None:
    """Record a failed attempt: `pending` (will retry), `failed`, `skipped` or `unknown` (maybe sent)."""
    await conn.execute(
        "UPDATE notifications SET status = $2, error = $3, lease_until = NULL WHERE idempotency_key = $1",
        key, status, error[:1000])


async def insert_unsent_notification(conn: asyncpg.Connection, *, key: str, channel: str, recipient: str,
                                     template: str, status: str, reason: str) -> None:
    """Log a notification that is not sent (`skipped`: opted out; `failed`: e.g. no provider); a sent one stays sent."""
    await conn.execute(
        """
        INSERT INTO notifications (idempotency_key, channel, recipient, template, status, error)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (idempotency_key) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error
            WHERE notifications.status IN ('pending', 'failed', 'skipped')
        """, key, channel, recipient, template, status, reason[:1000])


async def select_notification(conn: asyncpg.Connection, key: str) -> NotificationRecord | None:
    """The notification logged under `key`, or None."""
    row = await conn.fetchrow(
        """
        SELECT idempotency_key, channel, recipient, template, status, provider, provider_message_id, error,
               attempts, created_at, sent_at
        FROM notifications WHERE idempotency_key = $1
        """, key)
    return None if row is None else NotificationRecord(**dict(row))


async def select_opted_out(conn: asyncpg.Connection, channel: str, recipient: str) -> bool:
    """True when `recipient` opted out of `channel` (or of everything)."""
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM notification_opt_outs WHERE recipient = $2 AND channel IN ($1, '*'))",
        channel, recipient)


async def insert_opt_out(conn: asyncpg.Connection, channel: str, recipient: str) -> None:
    """Opt `recipient` out of `channel` ('*' = all); repeating it changes nothing."""
    await conn.execute("INSERT INTO notification_opt_outs (channel, recipient) VALUES ($1, $2)"
                       " ON CONFLICT DO NOTHING", channel, recipient)


async def delete_opt_out(conn: asyncpg.Connection, channel: str, recipient: str) -> None:
    """Opt `recipient` back in to `channel`."""
    await conn.execute("DELETE FROM notification_opt_outs WHERE channel = $1 AND recipient = $2", channel, recipient)
