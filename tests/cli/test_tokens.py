"""`backroom tokens`: a token created with its own rate limit, and the limit changed later."""

from __future__ import annotations

import asyncio

import asyncpg
from typer.testing import CliRunner

from cli.main import app
from domain.tokens import hash_token


async def test_create_with_a_rate_limit_then_change_it(database_url: str) -> None:
    runner = CliRunner()
    made = await asyncio.to_thread(
        runner.invoke, app, ["tokens", "create", "--scope", "jobs", "--name", "shop", "--rate-limit", "5/s"]
    )
    assert made.exit_code == 0, made.output
    token = made.output.strip()
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT id, rate_limit_per_min FROM api_tokens WHERE token_hash = $1", hash_token(token)
        )
        assert row["rate_limit_per_min"] == 300
        changed = await asyncio.to_thread(runner.invoke, app, ["tokens", "limit", str(row["id"]), "0"])
        assert changed.exit_code == 0, changed.output
        assert await conn.fetchval("SELECT rate_limit_per_min FROM api_tokens WHERE id = $1", row["id"]) == 0
        listed = await asyncio.to_thread(runner.invoke, app, ["tokens", "list"], env={"COLUMNS": "200"})
        assert "unlimited" in listed.output
    finally:
        await conn.close()
    bad = await asyncio.to_thread(runner.invoke, app, ["tokens", "create", "--scope", "jobs", "--rate-limit", "lots"])
    assert bad.exit_code != 0 and "unreadable rate" in bad.output
