"""The audit log: who did which admin action to what, when, and what changed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg

from domain.admin import AuditEntry, AuditRow

_COLUMNS = "id, actor, action, target, before, after, at"


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(_storable(value), default=str)


def _storable(value: Any) -> Any:
    """`value` with each NUL character as U+FFFD: Postgres text and jsonb refuse NUL, and an action
    already done (a replay whose arguments hold one) must still get its audit row."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(item) for item in value]
    return value


def _row(row: Mapping[str, Any]) -> AuditRow:
    return AuditRow(
        id=row["id"],
        actor=row["actor"],
        action=row["action"],
        target=row["target"] or "",
        before=json.loads(row["before"]) if row["before"] is not None else None,
        after=json.loads(row["after"]) if row["after"] is not None else None,
        at=row["at"],
    )


async def insert_audit(conn: asyncpg.Connection, *, actor: str, entry: AuditEntry) -> AuditRow:
    """Store one admin action done by `actor` (each action is its own row: no conflict to handle)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO audit_log (actor, action, target, before, after)
        VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)
        RETURNING {_COLUMNS}
        """,
        _storable(actor),
        entry.action,
        _storable(entry.target),
        _json(entry.before),
        _json(entry.after),
    )
    return _row(row)


async def select_audit(
    conn: asyncpg.Connection, *, limit: int = 50, target: str | None = None, action: str | None = None
) -> list[AuditRow]:
    """The newest audit rows, optionally for one target or one action."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM audit_log
        WHERE ($1::text IS NULL OR target = $1) AND ($2::text IS NULL OR action = $2)
        ORDER BY at DESC, id DESC
        LIMIT $3
        """,
        target,
        action,
        limit,
    )
    return [_row(r) for r in rows]
