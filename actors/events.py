"""Storefront events (queue `events`): the relay from the outbox, one delivery per (endpoint, event), the sweep.

The triggers of migration 0013 write each event in the transaction of its change; the relay
turns committed events into deliveries and sends one `deliver_event` per delivery after its
own commit; the sweep re-sends whatever a dead relay or worker left without a message. A
resource's events reach an endpoint in order: a newer one parks while an older one is pending,
and each success sends the next.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import dramatiq

from actors.chain import enqueue
from actors.event_relay import delivery_session
from actors.watch import alert
from broker.waits import Failure, Wait, retry_policy
from config.settings import get_settings
from db import events as db
from db.outbox import OutboxJob, select_unsent_jobs, update_jobs_sent
from db.pool import get_process_pool
from domain.events import retry_delay_ms, should_disable
from providers.storefront import Outcome, deliver, outcome_summary

QUEUE = "events"
UNSENT_GRACE_S = 30.0  # a relay sends its deliveries within this long of its commit
SWEEP_LIMIT = 5_000


def _retry_when(retries: int, exception: BaseException) -> bool:
    """Failures up to EVENTS_MAX_FAILURES (read at each decision), waits for a lease practically unbounded."""
    return retry_policy(max_failures=get_settings().events_max_failures, max_waits=1_000)(retries, exception)


def _send_all(deliveries: list[tuple[int, int]]) -> None:
    for endpoint_id, event_id in deliveries:
        deliver_event.send(endpoint_id, event_id)


async def send_deliveries(deliveries: list[tuple[int, int]]) -> None:
    """Send one deliver_event per delivery (off the event loop), then note them sent (the sweep re-sends the rest)."""
    if deliveries:
        await asyncio.to_thread(_send_all, deliveries)
        async with get_process_pool().acquire() as conn:
            await db.update_enqueued(conn, deliveries)


@dramatiq.actor(queue_name=QUEUE, max_retries=5, max_backoff=10_000, time_limit=120_000)
async def relay_events() -> dict[str, int]:
    """Send committed next steps; turn committed events into deliveries and send them; repeat while backlogged."""
    limit = get_settings().events_relay_batch
    jobs = await send_outbox_jobs(limit)
    async with get_process_pool().acquire() as conn, conn.transaction():
        count, deliveries = await db.relay_events(conn, limit=limit)
    await send_deliveries(deliveries)
    if count == limit or jobs == limit:
        await enqueue(relay_events)
    return {"events": count, "deliveries": len(deliveries), "jobs": jobs}


def _send_jobs(jobs: list[OutboxJob]) -> None:
    for job in jobs:
        options: dict[str, Any] = {"unique_key": job.unique_key} if job.unique_key else {}
        deliver_event.broker.get_actor(job.actor).send_with_options(args=tuple(job.args), **options)


async def send_outbox_jobs(limit: int) -> int:
    """Send the actors' committed next steps (job_outbox), then mark them sent; returns how many."""
    async with get_process_pool().acquire() as conn:
        jobs = await select_unsent_jobs(conn, limit=limit)
    if jobs:
        await asyncio.to_thread(_send_jobs, jobs)
        async with get_process_pool().acquire() as conn:
            await update_jobs_sent(conn, [job.id for job in jobs])
    return len(jobs)


@dramatiq.actor(queue_name=QUEUE, max_retries=3, max_backoff=60_000, time_limit=120_000)
async def sweep_events(older_than_s: float = UNSENT_GRACE_S) -> dict[str, int]:
    """Relay events nobody relayed and send deliveries left without a message (a worker died after a commit)."""
    await enqueue(relay_events)
    async with get_process_pool().acquire() as conn:
        unsent = await db.select_unsent_deliveries(conn, older_than_s=older_than_s, limit=SWEEP_LIMIT)
    await send_deliveries(unsent)
    return {"resent": len(unsent)}


@dramatiq.actor(
    queue_name=QUEUE,
    time_limit=60_000,
    retry_when=_retry_when,
    min_backoff=1_000,
    max_backoff=21_600_000,
    on_retry_exhausted="close_dead_delivery",
)
async def deliver_event(endpoint_id: int, event_id: int) -> dict[str, Any]:
    """POST one signed event to one endpoint; a failure retries with backoff (about three days), then dead-letters."""
    settings = get_settings()
    async with get_process_pool().acquire() as conn:
        claim = await db.claim_delivery(conn, endpoint_id, event_id, lease_s=settings.events_timeout_s * 2 + 5)
    if claim == "leased":
        raise Wait("another attempt holds this delivery", settings.events_min_backoff_ms)
    if isinstance(claim, str):
        return {"skipped": claim}
    outcome = await deliver(delivery_session(), claim.endpoint, claim.event, allow=settings.events_allow_addresses)
    await settle(claim, outcome)
    return outcome_summary(outcome)


async def settle(claim: db.Claim, outcome: Outcome) -> None:
    """Log the attempt; on success send the resource's next event; on 410 or a day of failures disable."""
    if outcome.ok:
        async with get_process_pool().acquire() as conn:
            next_id = await db.update_delivered(
                conn, claim, status_code=outcome.status or 0, latency_ms=outcome.latency_ms, excerpt=outcome.excerpt
            )
        if next_id is not None:
            await send_deliveries([(claim.endpoint.id, next_id)])
        return
    settings = get_settings()
    disabled: str | None = None
    async with get_process_pool().acquire() as conn, conn.transaction():
        await db.insert_attempt(
            conn,
            claim,
            status_code=outcome.status,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
            excerpt=outcome.excerpt,
        )
        if outcome.status == 410:
            disabled = "the endpoint answered 410 Gone"
        elif should_disable(
            await db.update_failed(conn, claim), disable_after_s=settings.events_disable_after_hours * 3600
        ):
            disabled = f"failing for {settings.events_disable_after_hours:g} h without a success"
        if disabled and not await db.update_endpoint_enabled(conn, claim.endpoint.id, enabled=False, reason=disabled):
            return  # another attempt disabled it (and alerted) first
    if disabled:
        alert(
            f"endpoint_disabled:{claim.endpoint.id}:{claim.delivery_id}",
            f"Storefront endpoint {claim.endpoint.name} disabled",
            f"Backroom stopped delivering events to {claim.endpoint.name}: {disabled}. "
            "Fix it, then enable it and replay from the admin page or `backroom endpoints`.",
        )
        return
    raise Failure(
        f"endpoint {claim.endpoint.id}: {outcome.status or outcome.error}",
        retry_delay_ms(
            claim.attempts,
            min_ms=settings.events_min_backoff_ms,
            max_ms=settings.events_max_backoff_ms,
            jitter=random.random(),
        ),
    )


async def kick_next(endpoint_id: int, resource: str, resource_id: str) -> None:
    """Send the resource's next pending event to the endpoint (a lost kick is the sweep's)."""
    async with get_process_pool().acquire() as conn:
        next_id = await db.select_next_pending(conn, endpoint_id, resource, resource_id)
    if next_id is not None:
        await send_deliveries([(endpoint_id, next_id)])


@dramatiq.actor(queue_name=QUEUE, max_retries=5, time_limit=30_000)
async def close_dead_delivery(message: dict[str, Any], retries: dict[str, Any]) -> dict[str, Any]:
    """A delivery's retries are spent (its message is in the dead letters): close it, unblock the resource."""
    endpoint_id, event_id = (int(x) for x in message["args"][:2])
    async with get_process_pool().acquire() as conn:
        closed = await db.update_delivery_status(conn, endpoint_id, event_id, "dead")
        resource = await db.select_event_resource(conn, event_id)
    if resource is not None:
        await kick_next(endpoint_id, *resource)
    return {"endpoint_id": endpoint_id, "event_id": event_id, "closed": closed}
