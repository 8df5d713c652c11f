"""The steps the prune actors share: a polite per-host slot, the edge hand-off, recording a decision."""

from __future__ import annotations

import asyncio
import functools
import random
import uuid
from dataclasses import dataclass
from typing import Any

from actors.broker import broker
from actors.clients import get_providers
from actors.edge import NoLiveEdgeNode, send_to_edge
from broker.waits import Wait
from config.settings import get_settings
from db.listing_checks import CheckTarget, record_check, update_next_check
from db.pool import get_process_pool
from domain.contracts import CHECK_LISTING_ON_EDGE
from domain.listing_checks import Evidence, judge, recheck_delay_ms
from providers.listings import fetch_listing
from providers.politeness import HostPoliteness

# how long a check may wait for its host in the actor (holding a worker thread); longer waits go back to
# the queue. The next gap is known exactly, so it is worth a sleep; a busy host frees at an unknown time.
SLEEP_BUDGET_MS = 5_000
BUSY_BUDGET_MS = 1_000


@dataclass(frozen=True)
class Recheck:
    """A check to send again after an unknown outcome."""

    delay_ms: int
    unique_key: str


@functools.cache
def _politeness(rate_per_s: float, concurrency: int, jitter: float) -> HostPoliteness:
    return HostPoliteness(
        broker.client, broker.namespace, rate_per_s=rate_per_s, concurrency=concurrency, jitter=jitter
    )


def politeness() -> HostPoliteness:
    """The per-host limiter for the current PRUNE_HOST_* settings (one per process and settings)."""
    settings = get_settings()
    return _politeness(settings.prune_host_rate_per_s, settings.prune_host_concurrency, settings.prune_jitter)


async def take_slot(host: str, token: str, *, lease_ms: int, source: str) -> None:
    """Take a polite slot on `host`: short waits are slept here, longer ones raise Wait (back to the queue)."""
    limiter, slept = politeness(), 0
    while True:
        slot = await asyncio.to_thread(limiter.acquire, host, token, lease_ms=lease_ms)
        if slot.granted:
            return
        pause = min(slot.wait_ms, 250) if slot.busy else slot.wait_ms  # a busy slot may free before its lease ends
        if slept + pause > (BUSY_BUDGET_MS if slot.busy else SLEEP_BUDGET_MS):
            # a lease's end is only a bound (slots usually come back sooner): a busy host is asked again soon
            wait = min(slot.wait_ms, max(1_000, int(2 * limiter.gap_ms))) if slot.busy else slot.wait_ms
            spread = int(wait * (1 + random.random()))  # jittered, so waiting checks do not return together
            raise Wait(f"{source}: {'checks in flight' if slot.busy else 'per-host rate'} at the limit", spread)
        await asyncio.sleep(pause / 1000)
        slept += pause


async def check_here(source: str, url: str, host: str, token: str) -> tuple[str, dict[str, Any]]:
    """Fetch the listing from this worker (its host slot is already held, and released here) and judge it."""
    settings = get_settings()
    try:
        fetched = await fetch_listing(get_providers().session, url, timeout_s=settings.prune_timeout_s)
    finally:
        await asyncio.to_thread(politeness().release, host, token)
    if fetched.retry_after_ms:  # the host asked every one of us to slow down
        await asyncio.to_thread(politeness().block, host, fetched.retry_after_ms)
    decision = judge(Evidence(source, url, fetched.http_status, fetched.final_url, fetched.body, fetched.error))
    return decision.outcome, {
        "check_id": f"server:{uuid.uuid4()}",
        "source": source,
        "http_status": fetched.http_status,
        "final_url": fetched.final_url,
        "markers": list(decision.markers),
        "error": fetched.error,
        "reason": decision.reason,
        "elapsed_ms": fetched.elapsed_ms,
    }


async def send_edge_check(target: CheckTarget, host: str, token: str) -> dict[str, Any]:
    """Send the check to the edge (`{"job_id"}`), or, with no live edge node, the evidence of an unknown."""
    kwargs = {"item_id": target.id, "source": target.source, "url": target.source_url}
    try:
        job_id = await asyncio.to_thread(send_to_edge, CHECK_LISTING_ON_EDGE, kwargs)
    except NoLiveEdgeNode as error:
        await asyncio.to_thread(politeness().release, host, token)
        return {
            "check_id": f"server:{uuid.uuid4()}",
            "source": target.source,
            "http_status": None,
            "final_url": None,
            "markers": [],
            "error": f"not checked: {error}",
            "reason": "no live edge node",
        }
    return {"job_id": job_id, "sent_to": "edge"}


async def record(item_id: int, outcome: str, evidence: dict[str, Any], via: str) -> tuple[dict, Recheck | None]:
    """Store the check and apply it in one transaction; returns the summary and the recheck to send after commit."""
    settings = get_settings()
    async with get_process_pool().acquire() as conn, conn.transaction():
        recorded = await record_check(
            conn,
            check_id=str(evidence.get("check_id") or f"{via}:{uuid.uuid4()}"),
            item_id=item_id,
            outcome=outcome,
            via=via,
            http_status=evidence.get("http_status"),
            final_url=evidence.get("final_url"),
            markers=[str(m) for m in evidence.get("markers") or []],
            error=evidence.get("error"),
            reason=evidence.get("reason"),
            elapsed_ms=evidence.get("elapsed_ms"),
        )
        delay = None
        if recorded.stored and outcome == "unknown" and recorded.status == "available":
            delay = recheck_delay_ms(
                recorded.unknown_streak,
                base_ms=int(settings.prune_recheck_minutes * 60_000),
                max_rechecks=settings.prune_max_rechecks,
                jitter=settings.prune_jitter * random.random(),
            )
            if delay is not None:
                await update_next_check(conn, item_id, delay)
    summary = {
        "outcome": outcome,
        "status": recorded.status,
        "applied": recorded.applied,
        "stored": recorded.stored,
        "markers": list(evidence.get("markers") or []),
        "recheck_in_ms": delay,
    }
    recheck = Recheck(delay, f"recheck_listing:{item_id}:{recorded.unknown_streak}") if delay is not None else None
    return summary, recheck
