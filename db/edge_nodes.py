"""Edge nodes as registered in the database (the edge work fills the table)."""

from __future__ import annotations

import asyncpg

from domain.admin import EdgeNodeRow

_COLUMNS = "node_id, version, host, last_seen, current_job, done_count, failed_count"


async def select_edge_nodes(conn: asyncpg.Connection, *, limit: int = 500) -> list[EdgeNodeRow]:
    """Every registered edge node, most recently seen first."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM edge_nodes ORDER BY last_seen DESC LIMIT $1", limit)
    return [EdgeNodeRow(**dict(r)) for r in rows]
