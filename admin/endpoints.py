"""Storefront endpoints as admins manage them: add, enable, disable, remove, replay; each change audited.

Shared by the CLI (`backroom endpoints ...`) and the admin API/page. A change and its audit
row are one transaction. Replayed deliveries are sent by `sweep_events`, which the caller
enqueues after the commit.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

import asyncpg
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from db import events as db
from db.audit import insert_audit
from domain.admin import AuditEntry
from domain.events import EVENT_TYPES, Endpoint, new_secret, secret_valid


class EndpointRefused(ValueError):
    """No such endpoint, or the change is not possible (a taken name)."""


def _known_type(value: object) -> object:
    """An unknown event type named with the known ones (the enum's own message lists them all, less readably)."""
    if isinstance(value, str) and value not in EVENT_TYPES:
        raise ValueError(f"unknown event type {value!r}; known: {', '.join(EVENT_TYPES)}")
    return value


if TYPE_CHECKING:  # the checker cannot read a Literal built from a tuple: an event type is a name
    EventType = str
else:
    EventType = Annotated[Literal[EVENT_TYPES], BeforeValidator(_known_type)]
# base64 of 24..150 bytes after whsec_: what `secret_valid` takes, stated in the schema
SECRET = r"^whsec_(?:[A-Za-z0-9+/]{4}){8,50}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class NewEndpoint(BaseModel):
    """An endpoint to add: a name, its URL, the event types it wants (none = all), maybe its own secret."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    # ASCII only (regex engines disagree on what \s is): a host[:port], then a path without brackets
    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://[A-Za-z0-9.:-]+([/?#][\x21-\x5a\x5e-\x7e]*)?$")
    event_types: list[EventType] = Field(default_factory=list, max_length=len(EVENT_TYPES))
    secret: str | None = Field(None, pattern=SECRET, description="A whsec_ secret; unset = one is made (shown once).")

    @field_validator("secret")
    @classmethod
    def _decodes(cls, value: str | None) -> str | None:
        if value is not None and not secret_valid(value):
            raise ValueError("not a whsec_ secret: the part after whsec_ must be base64 of 24 bytes or more")
        return value

    @field_validator("event_types")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


def endpoint_view(endpoint: Endpoint) -> dict[str, object]:
    """An endpoint as admins see it after creation: the secret shortened to its start."""
    return {
        "id": endpoint.id,
        "name": endpoint.name,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "secret_prefix": endpoint.secret[:10],
    }


async def add_endpoint(conn: asyncpg.Connection, new: NewEndpoint, *, by: str) -> Endpoint:
    """Add an endpoint (its secret made here unless given), audited; refused when the name is taken."""
    async with conn.transaction():
        endpoint = await db.insert_endpoint(
            conn,
            name=new.name,
            url=new.url,
            secret=new.secret or new_secret(secrets.token_bytes(32)),
            event_types=new.event_types,
        )
        if endpoint is None:
            raise EndpointRefused(f"an endpoint named {new.name!r} exists already")
        await insert_audit(
            conn,
            actor=by,
            entry=AuditEntry(action="endpoints.add", target=f"endpoint:{endpoint.id}", after=_public(endpoint)),
        )
    return endpoint


async def set_enabled(conn: asyncpg.Connection, endpoint_id: int, enabled: bool, *, by: str) -> bool:
    """Switch an endpoint on or off, audited; False when it already was."""
    async with conn.transaction():
        if await db.select_endpoint(conn, endpoint_id) is None:
            raise EndpointRefused(f"no endpoint {endpoint_id}")
        changed = await db.update_endpoint_enabled(
            conn, endpoint_id, enabled=enabled, reason=None if enabled else f"disabled by {by}"
        )
        if changed:
            await insert_audit(
                conn,
                actor=by,
                entry=AuditEntry(
                    action="endpoints.enable" if enabled else "endpoints.disable",
                    target=f"endpoint:{endpoint_id}",
                    before={"enabled": not enabled},
                    after={"enabled": enabled},
                ),
            )
    return changed


async def remove_endpoint(conn: asyncpg.Connection, endpoint_id: int, *, by: str) -> None:
    """Delete an endpoint with its deliveries and log, audited."""
    async with conn.transaction():
        endpoint = await db.select_endpoint(conn, endpoint_id)
        if endpoint is None or not await db.delete_endpoint(conn, endpoint_id):
            raise EndpointRefused(f"no endpoint {endpoint_id}")
        await insert_audit(
            conn,
            actor=by,
            entry=AuditEntry(action="endpoints.remove", target=f"endpoint:{endpoint_id}", before=_public(endpoint)),
        )


async def replay(
    conn: asyncpg.Connection, endpoint_id: int, *, by: str, event_id: int | None = None, since: datetime | None = None
) -> int:
    """Mark one event, or every event since a time, to be delivered again; returns how many (audited)."""
    if (event_id is None) == (since is None):
        raise EndpointRefused("give exactly one of event_id and since")
    async with conn.transaction():
        if await db.select_endpoint(conn, endpoint_id) is None:
            raise EndpointRefused(f"no endpoint {endpoint_id}")
        deliveries = await db.replay_deliveries(conn, endpoint_id, event_id=event_id, since=since)
        await insert_audit(
            conn,
            actor=by,
            entry=AuditEntry(
                action="endpoints.replay",
                target=f"endpoint:{endpoint_id}",
                after={"event_id": event_id, "since": since.isoformat() if since else None, "count": len(deliveries)},
            ),
        )
    return len(deliveries)


def _public(endpoint: Endpoint) -> dict[str, object]:
    return {k: v for k, v in endpoint_view(endpoint).items() if k not in ("failing_since",)}
