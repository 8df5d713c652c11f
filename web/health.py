"""/healthz (Redis and Postgres reachable) and /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import redis
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from quart import Blueprint, current_app, request
from pydantic import BaseModel
from quart_schema import document_response, hide, security_scheme

import actors
from broker.outage import refusal
from config.settings import get_settings
from domain.tokens import grants, hash_token
from web.errors import problem

blueprint = Blueprint("health", __name__)
REQUESTS = Counter("backroom_http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"])
LATENCY = Histogram("backroom_http_request_seconds", "HTTP request latency", ["endpoint"])


async def _check_redis() -> str:
    # a write, not a PING: a full (maxmemory, noeviction) or read-only Redis answers PING but takes no job
    key = f"{actors.broker.namespace}:healthz"
    try:
        await asyncio.wait_for(current_app.config["REDIS"].set(key, "1", px=60_000), timeout=2)
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


async def _metrics_refusal(access: str) -> Any:
    """None when this client may read /metrics, else the problem answer."""
    if access == "open":
        return None
    if access == "private":
        try:
            address = ipaddress.ip_address(request.remote_addr or "")
        except ValueError:
            address = None
        if address is not None and (address.is_private or address.is_loopback):
            return None
        return problem(403, "/metrics answers only clients on a private address")
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    token = await current_app.config["TOKEN_CACHE"].lookup(hash_token(raw.strip())) if raw.strip() else None
    if scheme.lower() != "bearer" or token is None:
        return problem(
            401, "/metrics needs a bearer token with the admin:read scope", headers={"WWW-Authenticate": "Bearer"}
        )
    if not grants(token.scopes, "admin:read"):
        return problem(403, "this token lacks the 'admin:read' scope")
    return None


class Health(BaseModel):
    """Each dependency's state: `ok`, or `down: <error>`."""

    status: str
    redis: str
    postgres: str


@blueprint.get("/healthz")
@security_scheme([])  # public: for load balancers and probes
@document_response(Health, 200)
@document_response(Health, 503)
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
    """Prometheus exposition of the web process's metrics (METRICS_ACCESS: token, private or open)."""
    refusal = await _metrics_refusal(get_settings().metrics_access)
    if refusal is not None:
        return refusal
    # in a thread: the queue gauges (web.admin.metrics) read Redis while collected
    return await asyncio.to_thread(generate_latest), 200, {"Content-Type": CONTENT_TYPE_LATEST}
