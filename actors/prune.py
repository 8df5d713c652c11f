"""Prune: is each available sourced item still listed? Sold -> `sold`, removed -> `archived`, else unchanged.

`prune_listings` fans out one `check_listing` per item, paced per host by its send delay;
`check_listing` takes a per-host slot (rate, jitter, in-flight cap, shared by every worker)
and fetches the listing server-side, or, for sources that block datacenter IPs, sends the
check to the edge, whose answer comes back to `record_listing_check`. Every decision is
stored with its evidence; an unknown one (blocked, timed out) is checked again later.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import dramatiq

from actors.chain import enqueue
from actors.prune_steps import Recheck, check_here, politeness, record, send_edge_check, take_slot
from broker.waits import retry_policy
from config.settings import get_settings
from db.listing_checks import select_check_target, select_check_targets
from db.pool import get_process_pool
from domain.contracts import RECORD_LISTING_CHECK
from domain.listing_checks import confirm, host_of, pace, plan_check

LEASE_MARGIN_MS = 10_000


class NoSuchItem(LookupError):
    """The item to record a check for does not exist."""


@dramatiq.actor(queue_name="default", max_retries=3, min_backoff=5_000, max_backoff=300_000, time_limit=900_000)
async def prune_listings(source: str | None = None) -> dict:
    """Fan out check_listing for available sourced items (of `source`; ids only, a page at a time), paced per host."""
    settings, after, hosts = get_settings(), 0, Counter[str]()
    free: dict[str, float] = {}
    gap_ms = 1000 / settings.prune_host_rate_per_s
    while True:
        async with get_process_pool().acquire() as conn:
            targets = await select_check_targets(conn, after_id=after, limit=settings.prune_batch_size, source=source)
        if not targets:
            return {"items": sum(hosts.values()), "hosts": dict(hosts)}
        names = [host_of(t.source_url or "") for t in targets]
        jitters = [settings.prune_jitter * random.random() for _ in targets]
        delays, free = pace(names, interval_ms=gap_ms, jitters=jitters, start_ms=free)
        await asyncio.to_thread(_send_checks, [t.id for t in targets], delays)
        hosts.update(names)
        after = targets[-1].id


def _send_checks(item_ids: list[int], delays: list[int]) -> None:
    for item_id, delay in zip(item_ids, delays, strict=True):
        check_listing.send_with_options(args=(item_id,), delay=delay or None, unique_key=f"check_listing:{item_id}")


@dramatiq.actor(
    queue_name="default",
    retry_when=retry_policy(max_failures=3, max_waits=500),
    min_backoff=2_000,
    max_backoff=300_000,
    time_limit=180_000,
    throws=(),
)
async def check_listing(item_id: int) -> dict:
    """Check one available sourced item at its source (here, or on the edge) and record what it proves."""
    settings = get_settings()
    async with get_process_pool().acquire() as conn:
        target = await select_check_target(conn, item_id)
    if target is None or target.status != "available" or not target.source_url:
        return {"skipped": "not an available sourced item"}
    plan = plan_check(
        target.source, target.source_url, target.source_listing_id, settings.prune_edge_sources.split(",")
    )
    token = f"item:{item_id}"
    lease_ms = int(settings.prune_timeout_s * 1000) + LEASE_MARGIN_MS
    await take_slot(
        plan.host, token, lease_ms=lease_ms if plan.where == "server" else 3 * lease_ms, source=target.source
    )
    if plan.where == "edge":
        sent = await send_edge_check(target, plan.host, token)
        if "job_id" in sent:
            return sent
        return await _recorded(item_id, "unknown", sent, "server")  # no live edge node: try again later
    outcome, evidence = await check_here(target.source, plan.url, plan.host, token)
    return await _recorded(item_id, outcome, evidence, "server")


@dramatiq.actor(
    actor_name=RECORD_LISTING_CHECK,
    queue_name="ingest",
    max_retries=5,
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=60_000,
    throws=(NoSuchItem,),
)
async def record_listing_check(item_id: int, outcome: str, evidence: dict[str, Any]) -> dict:
    """Store an edge check's evidence and apply its outcome, only when the evidence proves it."""
    async with get_process_pool().acquire() as conn:
        target = await select_check_target(conn, item_id)
    if target is None:
        raise NoSuchItem(f"no item {item_id}")
    if target.source_url:
        await asyncio.to_thread(politeness().release, host_of(target.source_url), f"item:{item_id}")
    decision = confirm(outcome, evidence.get("http_status"), evidence.get("markers") or [], evidence.get("error"))
    return await _recorded(item_id, decision.outcome, {**evidence, "reason": decision.reason}, "edge")


async def _recorded(item_id: int, outcome: str, evidence: dict[str, Any], via: str) -> dict:
    """Record the check (in its transaction), then, after the commit, schedule the recheck an unknown asks for."""
    result, recheck = await record(item_id, outcome, evidence, via)
    if recheck is not None:
        await enqueue(check_listing, item_id, delay_ms=recheck.delay_ms, unique_key=recheck.unique_key)
    return result


__all__ = ["prune_listings", "check_listing", "record_listing_check", "NoSuchItem", "Recheck"]
