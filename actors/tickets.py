"""Ops tickets: opened once per cause by the system, worked by admins (assign, comment, close).

Each write carries a key, so a job that runs twice writes one ticket and one thread entry.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq

from broker.waits import retry_policy
from db.pool import get_process_pool
from db.tickets import insert_interaction, insert_ticket, select_ticket, update_ticket

log = logging.getLogger("backroom.tickets")
RETRIES: dict[str, Any] = {
    "retry_when": retry_policy(max_failures=8, max_waits=200),
    "min_backoff": 1_000,
    "max_backoff": 300_000,
}
# what each admin action does to the ticket's status (None: leaves it)
ACTIONS: dict[str, str | None] = {"comment": None, "assigned": None, "closed": "closed", "reopened": "open"}


class TicketError(Exception):
    """The ticket does not exist."""


@dramatiq.actor(queue_name="orders", time_limit=30_000, **RETRIES)
async def open_ticket(
    kind: str,
    key: str,
    subject: str,
    text: str,
    order_id: int | None = None,
    contact: str | None = None,
    note_key: str | None = None,
) -> dict[str, Any]:
    """Open the ticket of `key` once; an existing one gets `text` as a note instead (once per `note_key`)."""
    async with get_process_pool().acquire() as conn, conn.transaction():
        ticket_id, opened = await insert_ticket(
            conn, kind=kind, key=key, subject=subject, order_id=order_id, contact=contact, body=text, note_key=note_key
        )
        if not opened and note_key:
            await insert_interaction(
                conn, ticket_id, author="system", action="comment", body=text, key=f"{ticket_id}:{note_key}"
            )
    if opened:
        log.info("ticket %s opened: %s", ticket_id, subject)
    return {"ticket_id": ticket_id, "opened": opened}


@dramatiq.actor(queue_name="orders", time_limit=30_000, throws=(TicketError,), **RETRIES)
async def act_on_ticket(
    ticket_id: int, action: str, author: str, body: str = "", assignee: str | None = None, key: str | None = None
) -> dict[str, Any]:
    """An admin's comment, assignment, close or reopen: the thread entry and the ticket's new state, once."""
    if action not in ACTIONS:
        raise TicketError(f"unknown ticket action {action!r}")
    async with get_process_pool().acquire() as conn, conn.transaction():
        if not await update_ticket(
            conn, ticket_id, status=ACTIONS[action], assignee=assignee if action == "assigned" else None
        ):
            raise TicketError(f"ticket {ticket_id} does not exist")
        text = body or (f"assigned to {assignee}" if action == "assigned" else "")
        await insert_interaction(conn, ticket_id, author=author, action=action, body=text, key=key)
        ticket = await select_ticket(conn, ticket_id)
    assert ticket is not None
    return {"ticket_id": ticket_id, "status": ticket.status, "assignee": ticket.assignee}
