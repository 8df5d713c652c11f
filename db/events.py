"""Storefront endpoints, the event outbox, deliveries and their attempts (the triggers of 0013 write events)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from domain.events import Endpoint, StorefrontEvent

_ENDPOINT_COLUMNS = "id, name, url, secret, event_types, enabled, disabled_reason, failing_since"


@dataclass(frozen=True)
class Claim:
    """A delivery leased to this attempt: its id, where it goes and what it carries."""

    delivery_id: int
    endpoint: Endpoint
    event: StorefrontEvent
    attempts: int


@dataclass(frozen=True)
class Attempt:
    """One row of an endpoint's delivery log."""

    id: int
    delivery_id: int
    event_id: int
    event_type: str
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    excerpt: str | None
    delivery_status: str
    attempts: int


def _endpoint(row: Mapping[str, Any]) -> Endpoint:
    return Endpoint(
        id=row["id"],
        name=row["name"],
        url=row["url"],
        secret=row["secret"],
        event_types=tuple(row["event_types"]),
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        failing_since=row["failing_since"],
    )


def _event(row: Mapping[str, Any]) -> StorefrontEvent:
    data = row["data"]
    return StorefrontEvent(
        id=row["event_id"],
        event_type=row["event_type"],
        resource=row["resource"],
        resource_id=row["resource_id"],
        seq=row["seq"],
        data=json.loads(data) if isinstance(data, str) else data,
        created_at=row["created_at"],
    )


async def insert_endpoint(
    conn: asyncpg.Connection, *, name: str, url: str, secret: str, event_types: list[str]
) -> Endpoint | None:
    """Add an endpoint; None when the name is taken."""
    row = await conn.fetchrow(
        f"INSERT INTO storefront_endpoints (name, url, secret, event_types) VALUES ($1, $2, $3, $4)"
        f" ON CONFLICT (name) DO NOTHING RETURNING {_ENDPOINT_COLUMNS}",
        name,
        url,
        secret,
        event_types,
    )
    return None if row is None else _endpoint(row)


async def select_endpoints(conn: asyncpg.Connection) -> list[Endpoint]:
    """Every endpoint, by id."""
    return [_endpoint(r) for r in await conn.fetch(f"SELECT {_ENDPOINT_COLUMNS} FROM storefront_endpoints ORDER BY id")]


async def select_endpoint(conn: asyncpg.Connection, endpoint_id: int) -> Endpoint | None:
    """One endpoint, or None."""
    row = await conn.fetchrow(f"SELECT {_ENDPOINT_COLUMNS} FROM storefront_endpoints WHERE id = $1", endpoint_id)
    return None if row is None else _endpoint(row)


async def update_endpoint_enabled(
    conn: asyncpg.Connection, endpoint_id: int, *, enabled: bool, reason: str | None = None
) -> bool:
    """Switch an endpoint on (its failure run forgotten) or off with a reason; False when nothing changed."""
    return (
        await conn.fetchval(
            """
        WITH changed AS (
            UPDATE storefront_endpoints SET enabled = $2, disabled_reason = CASE WHEN $2 THEN NULL ELSE $3 END,
                                            failing_since = CASE WHEN $2 THEN NULL ELSE failing_since END
            WHERE id = $1 AND enabled IS DISTINCT FROM $2 RETURNING id),
        -- switched back on: its waiting deliveries have no message any more; the sweep sends them
        unparked AS (
            UPDATE event_deliveries SET enqueued_at = NULL
            WHERE $2 AND endpoint_id IN (SELECT id FROM changed) AND status = 'pending')
        SELECT id FROM changed
        """,
            endpoint_id,
            enabled,
            reason,
        )
        is not None
    )


async def delete_endpoint(conn: asyncpg.Connection, endpoint_id: int) -> bool:
    """Remove an endpoint with its deliveries and log; False when there was none."""
    return await conn.fetchval("DELETE FROM storefront_endpoints WHERE id = $1 RETURNING id", endpoint_id) is not None


async def relay_events(conn: asyncpg.Connection, *, limit: int) -> tuple[int, list[tuple[int, int]]]:
    """Turn up to `limit` unrelayed events into deliveries to the enabled endpoints that want them.

    Returns how many events were relayed and the new (endpoint_id, event_id) deliveries. Run in a
    transaction; SKIP LOCKED lets several relays share a backlog without waiting on each other.
    """
    events = await conn.fetch(
        "SELECT id FROM storefront_events WHERE relayed_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED", limit
    )
    if not events:
        return 0, []
    ids = [r["id"] for r in events]
    rows = await conn.fetch(
        """
        INSERT INTO event_deliveries (endpoint_id, event_id, resource, resource_id)
        SELECT ep.id, e.id, e.resource, e.resource_id
        FROM storefront_events e JOIN storefront_endpoints ep
          ON ep.enabled AND (cardinality(ep.event_types) = 0 OR e.event_type = ANY(ep.event_types))
        WHERE e.id = ANY($1::bigint[])
        ORDER BY e.id, ep.id
        ON CONFLICT (endpoint_id, event_id) DO NOTHING
        RETURNING endpoint_id, event_id
        """,
        ids,
    )
    await conn.execute("UPDATE storefront_events SET relayed_at = clock_timestamp() WHERE id = ANY($1::bigint[])", ids)
    return len(ids), [(r["endpoint_id"], r["event_id"]) for r in rows]


async def update_enqueued(conn: asyncpg.Connection, deliveries: list[tuple[int, int]]) -> None:
    """Note that these deliveries' messages are on the queue (the sweep re-sends the others)."""
    await conn.execute(
        """
        UPDATE event_deliveries d SET enqueued_at = now()
        FROM unnest($1::bigint[], $2::bigint[]) AS x(endpoint_id, event_id)
        WHERE d.endpoint_id = x.endpoint_id AND d.event_id = x.event_id AND d.enqueued_at IS NULL
        """,
        [d[0] for d in deliveries],
        [d[1] for d in deliveries],
    )


async def select_unsent_deliveries(
    conn: asyncpg.Connection, *, older_than_s: float, limit: int
) -> list[tuple[int, int]]:
    """Pending deliveries at the head of their resource with no message (a relay or a kick died after commit)."""
    rows = await conn.fetch(
        """
        SELECT d.endpoint_id, d.event_id FROM event_deliveries d JOIN storefront_endpoints ep ON ep.id = d.endpoint_id
        WHERE d.status = 'pending' AND d.enqueued_at IS NULL AND ep.enabled
          AND d.updated_at < now() - make_interval(secs => $1)
          AND NOT EXISTS (SELECT 1 FROM event_deliveries o WHERE o.endpoint_id = d.endpoint_id
                          AND o.resource = d.resource AND o.resource_id = d.resource_id
                          AND o.event_id < d.event_id AND o.status = 'pending')
        ORDER BY d.event_id LIMIT $2
        """,
        older_than_s,
        limit,
    )
    return [(r["endpoint_id"], r["event_id"]) for r in rows]


async def claim_delivery(conn: asyncpg.Connection, endpoint_id: int, event_id: int, *, lease_s: float) -> Claim | str:
    """Lease a pending delivery for one attempt, or say why not: missing, done, disabled, blocked, leased.

    `blocked`: an older event of the same resource is still pending for this endpoint (storefronts
    get each resource's events in order); a blocked delivery is parked (no message) in the same
    statement, and the older one's success sends it. One round trip: this runs per delivery.
    """
    row = await conn.fetchrow(
        f"""
        WITH d AS (SELECT id, status, resource, resource_id FROM event_deliveries
                   WHERE endpoint_id = $1 AND event_id = $2),
        blocked AS (SELECT EXISTS (SELECT 1 FROM event_deliveries o JOIN d ON o.resource = d.resource
                                   AND o.resource_id = d.resource_id
                                   WHERE o.endpoint_id = $1 AND o.event_id < $2 AND o.status = 'pending') AS b),
        ep AS (SELECT {_ENDPOINT_COLUMNS} FROM storefront_endpoints WHERE id = $1),
        leased AS (
            UPDATE event_deliveries u SET lease_until = now() + make_interval(secs => $3), attempts = u.attempts + 1
            FROM d, blocked, ep
            WHERE u.id = d.id AND d.status = 'pending' AND NOT blocked.b AND ep.enabled
              AND (u.lease_until IS NULL OR u.lease_until < now())
            RETURNING u.attempts),
        parked AS (
            UPDATE event_deliveries u SET enqueued_at = NULL FROM d, blocked
            WHERE u.id = d.id AND d.status = 'pending' AND blocked.b)
        SELECT d.id AS delivery_id, d.status, blocked.b AS blocked, (SELECT attempts FROM leased) AS attempts,
               e.id AS event_id, e.event_type, e.resource, e.resource_id, e.seq, e.data, e.created_at,
               {", ".join("ep." + c for c in _ENDPOINT_COLUMNS.split(", "))}
        FROM d CROSS JOIN blocked CROSS JOIN ep JOIN storefront_events e ON e.id = $2
        """,
        endpoint_id,
        event_id,
        lease_s,
    )
    if row is None:
        return "missing"
    if row["status"] != "pending":
        return "done"
    if not row["enabled"]:
        return "disabled"
    if row["blocked"]:
        return "blocked"
    if row["attempts"] is None:
        return "leased"
    return Claim(row["delivery_id"], _endpoint(row), _event(row), row["attempts"])


async def select_next_pending(
    conn: asyncpg.Connection, endpoint_id: int, resource: str, resource_id: str
) -> int | None:
    """The oldest pending event of a resource for an endpoint (the next to send), or None."""
    return await conn.fetchval(
        "SELECT min(event_id) FROM event_deliveries WHERE endpoint_id = $1 AND resource = $2 AND resource_id = $3"
        " AND status = 'pending'",
        endpoint_id,
        resource,
        resource_id,
    )


async def insert_attempt(
    conn: asyncpg.Connection,
    claim: Claim,
    *,
    status_code: int | None,
    latency_ms: int,
    error: str | None,
    excerpt: str | None,
) -> None:
    """Write one line of the endpoint's delivery log."""
    await conn.execute(
        "INSERT INTO delivery_attempts (delivery_id, endpoint_id, status_code, latency_ms, error, excerpt)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        claim.delivery_id,
        claim.endpoint.id,
        status_code,
        latency_ms,
        error,
        excerpt,
    )


async def update_delivered(
    conn: asyncpg.Connection, claim: Claim, *, status_code: int, latency_ms: int, excerpt: str | None
) -> int | None:
    """Log the attempt, mark the delivery done and the endpoint healthy (one statement); returns the next event.

    The next event is the resource's oldest other pending one for this endpoint: the caller sends it.
    """
    return await conn.fetchval(
        """
        WITH logged AS (INSERT INTO delivery_attempts (delivery_id, endpoint_id, status_code, latency_ms, excerpt)
                        VALUES ($1, $2, $5, $6, $7)),
        done AS (UPDATE event_deliveries SET status = 'delivered', delivered_at = now(), lease_until = NULL
                 WHERE id = $1),
        healthy AS (UPDATE storefront_endpoints SET failing_since = NULL WHERE id = $2 AND failing_since IS NOT NULL)
        SELECT min(event_id) FROM event_deliveries
        WHERE endpoint_id = $2 AND resource = $3 AND resource_id = $4 AND status = 'pending' AND id <> $1
        """,
        claim.delivery_id,
        claim.endpoint.id,
        claim.event.resource,
        claim.event.resource_id,
        status_code,
        latency_ms,
        excerpt,
    )


async def update_failed(conn: asyncpg.Connection, claim: Claim) -> float:
    """Free the lease and note the endpoint failing; returns for how many seconds it has been failing."""
    await conn.execute("UPDATE event_deliveries SET lease_until = NULL WHERE id = $1", claim.delivery_id)
    return float(
        await conn.fetchval(
            "UPDATE storefront_endpoints SET failing_since = coalesce(failing_since, now()) WHERE id = $1"
            " RETURNING extract(epoch FROM now() - failing_since)",
            claim.endpoint.id,
        )
    )


async def update_delivery_status(conn: asyncpg.Connection, endpoint_id: int, event_id: int, status: str) -> bool:
    """Close a pending delivery as dead (retries spent) or cancelled (the endpoint is gone)."""
    return (
        await conn.fetchval(
            "UPDATE event_deliveries SET status = $3, lease_until = NULL WHERE endpoint_id = $1 AND event_id = $2"
            " AND status = 'pending' RETURNING id",
            endpoint_id,
            event_id,
            status,
        )
        is not None
    )


async def replay_deliveries(
    conn: asyncpg.Connection,
    endpoint_id: int,
    *,
    event_id: int | None = None,
    since: datetime | None = None,
    limit: int = 10_000,
) -> list[tuple[int, int]]:
    """Deliver one event (or every event since a time) to the endpoint again; returns the deliveries to send."""
    rows = await conn.fetch(
        """
        INSERT INTO event_deliveries (endpoint_id, event_id, resource, resource_id)
        SELECT $1, e.id, e.resource, e.resource_id FROM storefront_events e
        WHERE ($2::bigint IS NULL OR e.id = $2) AND ($3::timestamptz IS NULL OR e.created_at >= $3)
        ORDER BY e.id LIMIT $4
        ON CONFLICT (endpoint_id, event_id) DO UPDATE
            SET status = 'pending', enqueued_at = NULL, lease_until = NULL, delivered_at = NULL
        RETURNING endpoint_id, event_id
        """,
        endpoint_id,
        event_id,
        since,
        limit,
    )
    return [(r["endpoint_id"], r["event_id"]) for r in rows]


async def select_attempts(
    conn: asyncpg.Connection, endpoint_id: int, *, before_id: int | None = None, limit: int = 50
) -> list[Attempt]:
    """The endpoint's delivery log, newest first."""
    rows = await conn.fetch(
        """
        SELECT a.id, a.delivery_id, d.event_id, e.event_type, a.at, a.status_code, a.latency_ms, a.error, a.excerpt,
               d.status AS delivery_status, d.attempts
        FROM delivery_attempts a JOIN event_deliveries d ON d.id = a.delivery_id
             JOIN storefront_events e ON e.id = d.event_id
        WHERE a.endpoint_id = $1 AND ($2::bigint IS NULL OR a.id < $2)
        ORDER BY a.id DESC LIMIT $3
        """,
        endpoint_id,
        before_id,
        limit,
    )
    return [Attempt(**dict(r)) for r in rows]


async def select_event_resource(conn: asyncpg.Connection, event_id: int) -> tuple[str, str] | None:
    """The (resource, resource_id) an event is about."""
    row = await conn.fetchrow("SELECT resource, resource_id FROM storefront_events WHERE id = $1", event_id)
    return None if row is None else (row["resource"], row["resource_id"])
