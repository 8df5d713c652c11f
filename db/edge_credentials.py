"""The history of edge nodes' Redis credentials: issued, replaced, revoked (the live one is the ACL user)."""

from __future__ import annotations

import asyncpg

from domain.edge_registry import EdgeCredential

_COLUMNS = "id, node_id, redis_user, created_at, created_by, replaced_at, revoked_at, revoked_by"


async def insert_edge_credential(conn: asyncpg.Connection, node_id: str, redis_user: str, *, by: str) -> EdgeCredential:
    """Record a credential issued to `node_id`; the one it replaces stays in the history as replaced."""
    await conn.execute(
        "UPDATE edge_credentials SET replaced_at = now() "
        "WHERE node_id = $1 AND replaced_at IS NULL AND revoked_at IS NULL",
        node_id,
    )
    row = await conn.fetchrow(
        f"INSERT INTO edge_credentials (node_id, redis_user, created_by) VALUES ($1, $2, $3) RETURNING {_COLUMNS}",
        node_id,
        redis_user,
        by,
    )
    return EdgeCredential(**dict(row))


async def revoke_edge_credential(conn: asyncpg.Connection, node_id: str, *, by: str) -> int:
    """Mark `node_id`'s live credential revoked; how many rows changed (0: none was live)."""
    status = await conn.execute(
        "UPDATE edge_credentials SET revoked_at = now(), revoked_by = $2 "
        "WHERE node_id = $1 AND replaced_at IS NULL AND revoked_at IS NULL",
        node_id,
        by,
    )
    return int(status.split()[-1])


async def select_edge_credentials(conn: asyncpg.Connection, *, limit: int = 500) -> list[EdgeCredential]:
    """Every credential ever issued, newest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM edge_credentials ORDER BY created_at DESC, id DESC LIMIT $1", limit
    )
    return [EdgeCredential(**dict(r)) for r in rows]
