"""API token storage against real PostgreSQL."""

from __future__ import annotations

import hashlib

import asyncpg
import pytest

from db.tokens import (
    ApiToken,
    insert_token,
    select_token_by_hash,
    select_tokens,
    update_token_revoked,
    update_token_used,
)


def token_hash(secret: str) -> str:
    """The sha256 hex of a token secret, as stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def test_insert_and_select_by_hash(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        token = await insert_token(conn, name="ci", token_hash=token_hash("s1"), prefix="br_s1", scopes=["jobs:read"])
        found = await select_token_by_hash(conn, token_hash("s1"))
        missing = await select_token_by_hash(conn, token_hash("nope"))
    assert isinstance(token, ApiToken)
    assert (token.name, token.prefix, token.scopes) == ("ci", "br_s1", ("jobs:read",))
    assert token.last_used_at is None and token.revoked_at is None and not token.revoked
    assert found == token
    assert missing is None


async def test_insert_is_idempotent_on_the_hash(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        first = await insert_token(conn, name="a", token_hash=token_hash("dup"), prefix="br_d", scopes=["admin"])
        again = await insert_token(conn, name="a", token_hash=token_hash("dup"), prefix="br_d", scopes=["admin"])
        assert again == first
        assert len(await select_tokens(conn)) == 1


async def test_hash_must_be_sha256_hex(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await insert_token(conn, name="x", token_hash="plaintext", prefix="p", scopes=[])


async def test_revoke_hides_the_token_from_lookup(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        keep = await insert_token(conn, name="keep", token_hash=token_hash("k"), prefix="k", scopes=[])
        gone = await insert_token(conn, name="gone", token_hash=token_hash("g"), prefix="g", scopes=["a", "b"])
        assert await update_token_revoked(conn, gone.id) is True
        first_revoked_at = (await select_tokens(conn))[1].revoked_at
        assert await update_token_revoked(conn, gone.id) is True  # idempotent
        assert await update_token_revoked(conn, 10_000_000) is False
        assert await select_token_by_hash(conn, token_hash("g")) is None
        assert await select_token_by_hash(conn, token_hash("k")) == keep
        listed = await select_tokens(conn)
    assert [t.name for t in listed] == ["keep", "gone"]
    assert not listed[0].revoked
    assert listed[1].revoked and listed[1].revoked_at == first_revoked_at
    assert listed[1].scopes == ("a", "b")


async def test_update_used_sets_last_used_at(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        token = await insert_token(conn, name="u", token_hash=token_hash("u"), prefix="u", scopes=[])
        await update_token_used(conn, token.id)
        used = await select_token_by_hash(conn, token_hash("u"))
        assert used is not None and used.last_used_at is not None
        assert used.last_used_at >= token.created_at
        # A second use within the minute does not rewrite the row.
        await conn.execute(
            "UPDATE api_tokens SET last_used_at = last_used_at - interval '30 seconds' WHERE id = $1",
            token.id,
        )
        stamped = (await select_token_by_hash(conn, token_hash("u"))).last_used_at
        await update_token_used(conn, token.id)
        assert (await select_token_by_hash(conn, token_hash("u"))).last_used_at == stamped
        # After a minute it does.
        await conn.execute(
            "UPDATE api_tokens SET last_used_at = last_used_at - interval '2 minutes' WHERE id = $1",
            token.id,
        )
        await update_token_used(conn, token.id)
        assert (await select_token_by_hash(conn, token_hash("u"))).last_used_at > stamped
