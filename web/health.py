"""/healthz (Redis and Postgres reachable) and /metrics (Prometheus)."""
from __future__ import annotations

import asyncio
from typing import Any

import redis
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from quart import Blueprint, current_app
from quart_schema import hide

import actors
from broker.outage import refusal

blueprint = Blueprint("health", __name__)
REQUESTS = Counter("backroom_http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"])
LATENCY = Histogram("backroom_http_request_seconds", "HTTP request latency", ["endpoint"])


async def _check_redis() -> str:
    # a write, not a PING: a full (maxmemory, noeviction) or read-only Redis answers PING but takes no job
    key = f"{actors.broker.namespace}:healthz"
    try:
        await asyncio.wait_for(asyncio.to_thread(actors.broker.client.set, key, "1", px=60_000), timeout=2)
    except redis.ResponseError as error:
        why = refusal(error)
        if not why:
            raise
        return f"down: {why} (refuses writes)"
    return "ok"


async def _check_postgres() -> str:
    async with current_app.config["DB_POOL"].acquire(timeout=2) as conn:
        await conn.fetchval("select 1")
    return "ok"


@blueprint.get("/healthz")
async def healthz() -> Any:
    """200 when Redis takes writes and Postgres answers, else 503 naming what is down (Redis full or read-only too)."""
    checks: dict[str, str] = {}
    for name, check in (("redis", _check_redis), ("postgres", _check_postgres)):
        try:
            checks[name] = await check()
        except Exception as error:  # any failure of a dependency is reported, not raised
            checks[name] = f"down: {type(error).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return {"status": "ok" if healthy else "degraded", **checks}, 200 if healthy else 503


@blueprint.get("/metrics")
@hide
async def metrics() -> Any:
    """Prometheus exposition of the web process's metrics."""
    # in a thread: the queue gauges (web.admin_metrics) read Redis while collected
    return await asyncio.to_thread(generate_latest), 200, {"Content-Type": CONTENT_TYPE_LATEST}
