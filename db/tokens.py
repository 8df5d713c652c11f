"""API tokens: stored by sha256 hash only, with scopes, last use and revocation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

_COLUMNS = "id, name, prefix, scopes, created_at, last_used_at, revoked_at, rate_limit_per_min"


@dataclass(frozen=True)
class ApiToken:
    """An API token as admins see it: never the secret, never its hash."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    rate_limit_per_min: int | None = None  # None: the TOKEN_RATE_LIMIT_PER_MIN default; 0: unlimited

    @property
    def revoked(self) -> bool:
        """True once the token has been revoked."""
        return self.revoked_at is not None


def _token(row: Mapping[str, Any]) -> ApiToken:
    return ApiToken(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        scopes=tuple(row["scopes"]),
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
        rate_limit_per_min=row["rate_limit_per_min"],
    )


def token_from_row(row: Mapping[str, Any]) -> ApiToken:
    """An ApiToken from a row carrying the token columns (e.g. joined into another query)."""
    return _token(row)


async def insert_token(
    conn: asyncpg.Connection,
    *,
    name: str,
    token_hash: str,
    prefix: str,
    scopes: Sequence[str],
    rate_limit_per_min: int | None = None,
) -> ApiToken:
    """Store a token by hash; inserting the same hash again returns the stored token."""
    # The no-op DO UPDATE makes RETURNING yield the existing row on a retry.
    row = await conn.fetchrow(
        f"""
        INSERT INTO api_tokens (name, token_hash, prefix, scopes, rate_limit_per_min)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (token_hash) DO UPDATE SET token_hash = EXCLUDED.token_hash
        RETURNING {_COLUMNS}
        """,
        name,
        token_hash,
        prefix,
        list(scopes),
        rate_limit_per_min,
    )
    return _token(row)


async def select_token_by_hash(conn: asyncpg.Connection, token_hash: str) -> ApiToken | None:
    """Return the non-revoked token with this hash, or None."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        token_hash,
    )
    return None if row is None else _token(row)


async def select_tokens(conn: asyncpg.Connection) -> list[ApiToken]:
    """Return every token, revoked ones included, oldest first."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY id")
    return [_token(r) for r in rows]


async def update_token_revoked(conn: asyncpg.Connection, token_id: int) -> bool:
    """Revoke a token (keeping the first revocation time); False when no such token exists."""
    revoked = await conn.fetchval(
        """
        UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
        WHERE id = $1
        RETURNING id
        """,
        token_id,
    )
    return revoked is not None


async def update_token_rate_limit(conn: asyncpg.Connection, token_id: int, per_min: int | None) -> bool:
    """Set a token's requests a minute (None: the default; 0: unlimited); False when no such token exists."""
    return (
        await conn.fetchval(
            "UPDATE api_tokens SET rate_limit_per_min = $2 WHERE id = $1 RETURNING id", token_id, per_min
        )
        is not None
    )


async def update_token_used(conn: asyncpg.Connection, token_id: int) -> None:
    """Record that a token was used, writing at most once a minute per token."""
    # Every authenticated request calls this; the guard keeps it from a write per request.
    await conn.execute(
        """
        UPDATE api_tokens SET last_used_at = now()
        WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
        """,
        token_id,
    )
