"""The asyncpg pool, with the pgvector codec on every connection, and its per-process holder."""

from __future__ import annotations

from typing import Any

import asyncpg
from pgvector.asyncpg import register_vector

_process_pool: asyncpg.Pool | None = None

_VECTOR_SCHEMA_SQL = """
SELECT n.nspname
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'vector'
"""


async def init_connection(conn: asyncpg.Connection) -> None:
    """Register the pgvector codec on `conn` when the `vector` extension is installed."""
    # Before the first migration the extension is absent and register_vector would raise;
    # such a connection simply has no codec (migrate() expires pool connections afterwards).
    schema = await conn.fetchval(_VECTOR_SCHEMA_SQL)
    if schema is not None:
        await register_vector(conn, schema=schema)


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, **connect_kwargs: Any) -> asyncpg.Pool:
    """Open an asyncpg pool whose connections encode and decode pgvector values."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=init_connection, **connect_kwargs)
    return pool


def set_process_pool(pool: asyncpg.Pool) -> None:
    """Make `pool` the one pool of this process (call from a startup hook)."""
    global _process_pool
    if _process_pool is not None and _process_pool is not pool:
        raise RuntimeError("a process pool is already open; close_process_pool() it first")
    _process_pool = pool


def get_process_pool() -> asyncpg.Pool:
    """Return this process's pool, or raise if the startup hook never opened it."""
    if _process_pool is None:
        raise RuntimeError(
            "the database pool is not open in this process: call "
            "set_process_pool(await create_pool(dsn)) in the startup hook first"
        )
    return _process_pool


async def close_process_pool() -> None:
    """Close and forget this process's pool; a no-op when none is open."""
    global _process_pool
    pool, _process_pool = _process_pool, None
    if pool is not None:
        await pool.close()
