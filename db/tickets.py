"""Ops tickets and their threads; every write idempotent by key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from domain.tickets import Interaction, Ticket

_COLUMNS = "id, kind, key, subject, order_id, contact, status, assignee, created_at, updated_at, closed_at"


def _ticket(row: Mapping[str, Any], thread: list[Interaction] | None = None) -> Ticket:
    return Ticket(**dict(row), thread=tuple(thread or ()))


async def insert_ticket(
    conn: asyncpg.Connection,
    *,
    kind: str,
    key: str,
    subject: str,
    order_id: int | None,
    contact: str | None,
    body: str,
    status: str = "open",
    note_key: str | None = None,
) -> tuple[int, bool]:
    """Open the ticket of `key` once, its first thread entry with it; (id, whether this call opened it).

    `note_key` names what opened it, so the same cause arriving again adds no note (open_ticket).
    """
    ticket_id = await conn.fetchval(
        """
        INSERT INTO tickets (kind, key, subject, order_id, contact, status) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (key) DO NOTHING RETURNING id
        """,
        kind,
        key[:300],
        subject[:300],
        order_id,
        contact,
        status,
    )
    if ticket_id is None:
        return await conn.fetchval("SELECT id FROM tickets WHERE key = $1", key[:300]), False
    await insert_interaction(
        conn,
        ticket_id,
        author="system",
        action="opened",
        body=body,
        key=f"{ticket_id}:{note_key}" if note_key else f"opened:{ticket_id}",
    )
    return ticket_id, True


async def insert_interaction(
    conn: asyncpg.Connection, ticket_id: int, *, author: str, action: str, body: str = "", key: str | None = None
) -> bool:
    """Add one entry to a ticket's thread (once per key); False when the key was written before."""
    return (
        await conn.fetchval(
            """
        INSERT INTO ticket_interactions (ticket_id, author, action, body, key) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (key) DO NOTHING RETURNING id
        """,
            ticket_id,
            author[:100],
            action,
            body[:5000],
            key,
        )
        is not None
    )


async def update_ticket(
    conn: asyncpg.Connection, ticket_id: int, *, status: str | None = None, assignee: str | None = None
) -> bool:
    """Set a ticket's status and/or assignee; False when there is no such ticket."""
    return (
        await conn.fetchval(
            """
        UPDATE tickets SET status = coalesce($2, status), assignee = coalesce($3, assignee),
               closed_at = CASE WHEN $2 = 'closed' THEN coalesce(closed_at, now())
                                WHEN $2 IS NOT NULL THEN NULL ELSE closed_at END
        WHERE id = $1 RETURNING id
        """,
            ticket_id,
            status,
            assignee,
        )
        is not None
    )


async def select_ticket(conn: asyncpg.Connection, ticket_id: int) -> Ticket | None:
    """One ticket with its thread, or None."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM tickets WHERE id = $1", ticket_id)
    if row is None:
        return None
    thread = await conn.fetch(
        "SELECT id, author, action, body, created_at FROM ticket_interactions WHERE ticket_id = $1 ORDER BY id",
        ticket_id,
    )
    return _ticket(row, [Interaction(**dict(r)) for r in thread])


async def select_tickets(
    conn: asyncpg.Connection,
    *,
    status: str | None = None,
    kind: str | None = None,
    order_id: int | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Ticket]:
    """Tickets, newest first, filtered by status, kind and order; paged by `before_id`."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM tickets
        WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2)
          AND ($3::bigint IS NULL OR order_id = $3) AND ($4::bigint IS NULL OR id < $4)
        ORDER BY id DESC LIMIT $5
        """,
        status,
        kind,
        order_id,
        before_id,
        limit,
    )
    return [_ticket(r) for r in rows]
