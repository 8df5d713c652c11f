"""The Quart app under its test client, with real Redis and Postgres behind it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis

from db.tokens import insert_token
from domain.tokens import display_prefix, hash_token, make_token
from web.app import create_app


@pytest.fixture(scope="session")
async def app():  # type: ignore[no-untyped-def]
    """One app for the session, its `before_serving` run (the DB pool is open)."""
    quart_app = create_app()
    async with quart_app.test_app() as test_app:
        yield test_app


@pytest.fixture()
def client(app, redis_client: redis.Redis):  # type: ignore[no-untyped-def]
    """A test client (Redis emptied first)."""
    return app.test_client()


@pytest.fixture(scope="session")
async def tokens(database_url: str) -> AsyncIterator[dict[str, str]]:
    """One bearer token per scope, plus a revoked one (unlimited: the rate limit tests make their own)."""
    conn = await asyncpg.connect(database_url)
    made: dict[str, str] = {}
    try:
        for name, scopes in (
            ("jobs", ["jobs"]),
            ("admin", ["admin"]),
            ("reader", ["admin:read"]),
            ("revoked", ["jobs"]),
        ):
            token = make_token(secrets.token_hex(32))
            row = await insert_token(
                conn,
                name=f"test-{name}-{secrets.token_hex(3)}",
                token_hash=hash_token(token),
                prefix=display_prefix(token),
                scopes=scopes,
                rate_limit_per_min=0,
            )
            made[name] = token
            if name == "revoked":
                await conn.execute("update api_tokens set revoked_at = now() where id = $1", row.id)
        yield made
    finally:
        await conn.close()


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}
