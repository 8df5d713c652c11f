"""The job outbox: an actor's next step written with its transaction, sent by the relay after commit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class OutboxJob:
    """One next step to send: the actor's name, its arguments, its unique key."""

    id: int
    actor: str
    args: list[Any]
    unique_key: str | None


async def insert_job(conn: asyncpg.Connection, actor: str, args: list[Any], *, unique_key: str | None = None) -> int:
    """Write a next step in the caller's transaction; the relay listener hears of it at commit."""
    job_id = await conn.fetchval(
        "INSERT INTO job_outbox (actor, args, unique_key) VALUES ($1, $2, $3) RETURNING id",
        actor,
        json.dumps(args),
        unique_key,
    )
    await conn.execute("SELECT pg_notify('storefront_events', '')")
    return int(job_id)


async def select_unsent_jobs(conn: asyncpg.Connection, *, limit: int) -> list[OutboxJob]:
    """Steps not sent yet, oldest first."""
    rows = await conn.fetch(
        "SELECT id, actor, args, unique_key FROM job_outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1", limit
    )
    return [OutboxJob(r["id"], r["actor"], json.loads(r["args"]), r["unique_key"]) for r in rows]


async def update_jobs_sent(conn: asyncpg.Connection, ids: list[int]) -> None:
    """Note these steps sent (a relay that dies first makes the next one send them again: actors are idempotent)."""
    await conn.execute("UPDATE job_outbox SET sent_at = now() WHERE id = ANY($1::bigint[]) AND sent_at IS NULL", ids)
