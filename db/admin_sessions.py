"""/admin/ sign-in sessions: a row per sign-in, found by the hash of the browser's random id."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from db.tokens import ApiToken, token_from_row

_TOKEN_COLUMNS = "t.id, t.name, t.prefix, t.scopes, t.created_at, t.last_used_at, t.revoked_at, t.rate_limit_per_min"


@dataclass(frozen=True)
class AdminSessionRow:
    """A live session: its token, its CSRF token, its stored data and when it was last seen."""

    token: ApiToken
    csrf: str
    data: dict[str, Any]
    created_at: datetime
    last_seen_at: datetime


async def insert_admin_session(conn: asyncpg.Connection, id_hash: str, token_id: int, csrf: str) -> None:
    """Store a new session (its id is fresh randomness: no conflict to handle)."""
    await conn.execute(
        "INSERT INTO admin_sessions (id_hash, token_id, csrf) VALUES ($1, $2, $3)", id_hash, token_id, csrf
    )


async def select_admin_session(
    conn: asyncpg.Connection, id_hash: str, *, idle_s: float, absolute_s: float
) -> AdminSessionRow | None:
    """The session if it is live: not revoked, within both timeouts, and its token not revoked."""
    row = await conn.fetchrow(
        f"""
        SELECT {_TOKEN_COLUMNS}, s.csrf, s.data, s.created_at AS session_created_at, s.last_seen_at
        FROM admin_sessions s JOIN api_tokens t ON t.id = s.token_id
        WHERE s.id_hash = $1 AND s.revoked_at IS NULL AND t.revoked_at IS NULL
          AND s.last_seen_at > now() - make_interval(secs => $2)
          AND s.created_at > now() - make_interval(secs => $3)
        """,
        id_hash,
        float(idle_s),
        float(absolute_s),
    )
    if row is None:
        return None
    data = row["data"]
    return AdminSessionRow(
        token=token_from_row(row),
        csrf=row["csrf"],
        data=json.loads(data) if isinstance(data, str) else data,
        created_at=row["session_created_at"],
        last_seen_at=row["last_seen_at"],
    )


async def update_admin_session_seen(conn: asyncpg.Connection, id_hash: str, data: dict[str, Any]) -> None:
    """Record a use of the session (the idle timeout starts again) and its data."""
    await conn.execute(
        "UPDATE admin_sessions SET last_seen_at = now(), data = $2::jsonb WHERE id_hash = $1", id_hash, json.dumps(data)
    )


async def update_admin_session_revoked(conn: asyncpg.Connection, id_hash: str) -> None:
    """End a session (sign-out, or the old id of a sign-in that rotated it)."""
    await conn.execute("UPDATE admin_sessions SET revoked_at = coalesce(revoked_at, now()) WHERE id_hash = $1", id_hash)


async def delete_old_admin_sessions(conn: asyncpg.Connection, absolute_s: float) -> int:
    """Forget sessions past their absolute timeout (revoked or not); returns how many."""
    result = await conn.execute(
        "DELETE FROM admin_sessions WHERE created_at < now() - make_interval(secs => $1)", float(absolute_s)
    )
    return int(result.split()[-1])
