"""/v1/admin/endpoints: storefront endpoints, their delivery log, replays (admin:read to read, admin to act)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from quart import Blueprint, current_app
from quart_schema import document_response, tag, validate_querystring

from admin.endpoints import (
    EndpointRefused,
    NewEndpoint,
    add_endpoint,
    endpoint_view,
    remove_endpoint,
    replay,
    set_enabled,
)
from db.events import select_attempts, select_endpoints
from web.admin.api import ACT, READ
from web.auth import require, who
from web.bodies import validate_body
from web.errors import problem
from web.schemas import MAX_ID, Id, Problem

blueprint = Blueprint("admin_events", __name__, url_prefix="/v1/admin/endpoints")
T = TypeVar("T")


class EndpointView(BaseModel):
    """An endpoint (the secret appears only in the answer that created it)."""

    id: int
    name: str
    url: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    secret_prefix: str
    secret: str | None = None


class Endpoints(BaseModel):
    """Every endpoint."""

    endpoints: list[EndpointView]


class AttemptView(BaseModel):
    """One delivery attempt: which event, when, the answer's status (none: no answer), latency, excerpt."""

    id: int
    event_id: int
    event_type: str
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    excerpt: str | None
    delivery_status: str
    attempts: int


class DeliveryLog(BaseModel):
    """An endpoint's attempts, newest first; `next_before` pages on."""

    attempts: list[AttemptView]
    next_before: int | None


class LogQuery(BaseModel):
    """Paging of the delivery log."""

    before: int | None = Field(None, ge=1, le=MAX_ID)
    limit: int = Field(50, ge=1, le=500)


class ReplayRequest(BaseModel):
    """Exactly one of: an event id, or a time (every event since then)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    event_id: Id | None = None
    since: AwareDatetime | None = None


class Replayed(BaseModel):
    """How many deliveries were queued again."""

    replayed: int


class Removed(BaseModel):
    """Nothing: a 204 has no body (the OpenAPI document says so)."""


class Switched(BaseModel):
    """The endpoint's state after the change, and whether it changed."""

    id: int
    enabled: bool
    changed: bool


async def on_db(work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `work` on a pooled connection."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        return await work(conn)


async def sweep() -> None:
    """Have the worker send whatever now waits without a message (after the change committed)."""
    from actors.events import sweep_events

    await asyncio.to_thread(sweep_events.send, 0)


@blueprint.errorhandler(EndpointRefused)
async def refused(error: EndpointRefused) -> Any:
    """An unknown endpoint (404) or a refused change (409)."""
    return problem(404 if str(error).startswith("no endpoint") else 409, str(error))


@blueprint.get("")
@require(READ)
@tag(["admin"])
@document_response(Endpoints)
async def list_endpoints() -> Any:
    """Every storefront endpoint: URL, event types, enabled or why not, failing since."""
    endpoints = await on_db(select_endpoints)
    return Endpoints(endpoints=[EndpointView(**endpoint_view(e)) for e in endpoints]).model_dump(mode="json")


@blueprint.post("")
@require(ACT)
@tag(["admin"])
@validate_body(NewEndpoint)
@document_response(EndpointView, 201)
@document_response(Problem, 409)
async def create_endpoint(data: NewEndpoint) -> Any:
    """Add an endpoint; the answer holds its signing secret, shown this once."""
    endpoint = await on_db(lambda conn: add_endpoint(conn, data, by=who()))
    return EndpointView(**endpoint_view(endpoint), secret=endpoint.secret).model_dump(mode="json"), 201


async def _switch(endpoint_id: int, enabled: bool) -> Any:
    changed = await on_db(lambda conn: set_enabled(conn, endpoint_id, enabled, by=who()))
    if enabled and changed:
        await sweep()
    return Switched(id=endpoint_id, enabled=enabled, changed=changed).model_dump()


@blueprint.post("/<id:endpoint_id>/enable")
@require(ACT)
@tag(["admin"])
@document_response(Switched)
@document_response(Problem, 404)
async def enable_endpoint(endpoint_id: int) -> Any:
    """Switch an endpoint back on; deliveries that waited are sent (replay what it missed while off)."""
    return await _switch(endpoint_id, True)


@blueprint.post("/<id:endpoint_id>/disable")
@require(ACT)
@tag(["admin"])
@document_response(Switched)
@document_response(Problem, 404)
async def disable_endpoint(endpoint_id: int) -> Any:
    """Switch an endpoint off: nothing is delivered to it until it is enabled."""
    return await _switch(endpoint_id, False)


@blueprint.delete("/<id:endpoint_id>")
@require(ACT)
@tag(["admin"])
@document_response(Removed, 204)
@document_response(Problem, 404)
async def delete_endpoint(endpoint_id: int) -> Any:
    """Remove an endpoint with its deliveries and their log."""
    await on_db(lambda conn: remove_endpoint(conn, endpoint_id, by=who()))
    return "", 204


@blueprint.get("/<id:endpoint_id>/deliveries")
@require(READ)
@tag(["admin"])
@validate_querystring(LogQuery)
@document_response(DeliveryLog)
async def delivery_log(endpoint_id: int, query_args: LogQuery) -> Any:
    """The endpoint's delivery attempts, newest first: status, latency, a short excerpt of the answer."""
    rows = await on_db(
        lambda conn: select_attempts(conn, endpoint_id, before_id=query_args.before, limit=query_args.limit)
    )
    attempts = [AttemptView(**{k: v for k, v in vars(r).items() if k != "delivery_id"}) for r in rows]
    next_before = attempts[-1].id if len(attempts) == query_args.limit else None
    return DeliveryLog(attempts=attempts, next_before=next_before).model_dump(mode="json")


@blueprint.post("/<id:endpoint_id>/replay")
@require(ACT)
@tag(["admin"])
@validate_body(ReplayRequest)
@document_response(Replayed)
@document_response(Problem, 404)
@document_response(Problem, 409)
async def replay_events(endpoint_id: int, data: ReplayRequest) -> Any:
    """Deliver one event, or every event since a time, to the endpoint again (in order per resource)."""
    count = await on_db(lambda conn: replay(conn, endpoint_id, by=who(), event_id=data.event_id, since=data.since))
    await sweep()
    return Replayed(replayed=count).model_dump()
