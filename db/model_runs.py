"""Model runs: one row per model call, and what today's calls have cost."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg

from domain.model_runs import ModelRun, NewModelRun


async def insert_model_run(conn: asyncpg.Connection, run: NewModelRun) -> int:
    """Record one model call; returns its id."""
    return await conn.fetchval(
        """
        INSERT INTO model_runs (kind, provider, model, item_ids, prompt_tokens, completion_tokens, latency_ms,
                                cost_usd, status, error, request_id, detail)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb) RETURNING id
        """,
        run.kind,
        run.provider,
        run.model,
        list(run.item_ids),
        run.prompt_tokens,
        run.completion_tokens,
        run.latency_ms,
        run.cost_usd,
        run.status,
        None if run.error is None else run.error[:1000],
        run.request_id,
        json.dumps(run.detail),
    )


async def select_cost_since(conn: asyncpg.Connection, kind: str, since: datetime) -> float:
    """What the runs of `kind` since `since` cost, in USD."""
    value = await conn.fetchval(
        "SELECT coalesce(sum(cost_usd), 0) FROM model_runs WHERE kind = $1 AND created_at >= $2", kind, since
    )
    return float(value)


async def select_model_runs(
    conn: asyncpg.Connection, *, kind: str | None = None, item_id: int | None = None, limit: int = 100
) -> list[ModelRun]:
    """The newest runs, optionally of one kind and/or touching one item, oldest first among them."""
    rows = await conn.fetch(
        """
        SELECT * FROM (
            SELECT * FROM model_runs
            WHERE ($1::text IS NULL OR kind = $1) AND ($2::bigint IS NULL OR $2 = ANY(item_ids))
            ORDER BY id DESC LIMIT $3
        ) newest ORDER BY id
        """,
        kind,
        item_id,
        limit,
    )
    return [
        ModelRun(
            id=r["id"],
            kind=r["kind"],
            provider=r["provider"],
            model=r["model"],
            item_ids=tuple(r["item_ids"]),
            prompt_tokens=r["prompt_tokens"],
            completion_tokens=r["completion_tokens"],
            latency_ms=r["latency_ms"],
            cost_usd=float(r["cost_usd"]),
            status=r["status"],
            error=r["error"],
            request_id=r["request_id"],
            detail=json.loads(r["detail"]),
            created_at=r["created_at"],
        )
        for r in rows
    ]
